"""The zoo's baselines against live torchvision: same ``state_dict`` layout, same function.

``antialias.models.get_model(arch, filter_size=None)`` claims torchvision's layout (the unit suite
checks it against recorded facts, tests/models/data/torchvision_keys.json); here torchvision itself
is the reference. For every zoo architecture torchvision also has: torchvision's model with every
floating entry of its ``state_dict`` randomised (running variances kept positive, so BatchNorm is
no identity) loads into the zoo's model with ``strict=True`` (no key missing, none extra), and both give equal logits.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from eco_helpers import natural_images

from antialias.models import get_model, list_models

ZOO_ARCHS = sorted(set(list_models()) & set(torchvision.models.list_models(module=torchvision.models)))


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
            continue
        noise = torch.randn(value.shape, generator=gen, dtype=value.dtype)
        if key.endswith("running_var"):
            state[key] = 0.5 + noise.abs()
        elif value.ndim <= 1:
            state[key] = 1 + 0.2 * noise if key.endswith("weight") else 0.1 * noise
        else:  # fan-in scaling keeps the activations of a deep network in range
            state[key] = noise / value[0].numel() ** 0.5
    return state


def test_zoo_shares_architectures_with_torchvision() -> None:
    assert len(ZOO_ARCHS) >= 20, ZOO_ARCHS
    assert {"resnet50", "vgg16_bn", "densenet121", "mobilenet_v2", "alexnet"} <= set(ZOO_ARCHS)


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.xdist_group(f"zoo.{a}")) for a in ZOO_ARCHS])
@torch.no_grad()
def test_baseline_matches_torchvision(arch: str) -> None:
    theirs = torchvision.models.get_model(arch, weights=None).eval()
    ours = get_model(arch, filter_size=None).eval()
    state = _randomised(theirs, seed=len(arch))
    theirs.load_state_dict(state, strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same order: checkpoints list the same
    x = natural_images(2, 64, seed=1)
    expected = theirs(x)
    assert expected.std() > 1e-3  # the check compares something
    torch.testing.assert_close(ours(x), expected)
