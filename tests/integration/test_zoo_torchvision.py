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


@torch.no_grad()
def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Fill every floating ``state_dict`` entry of ``model`` in place (no second copy of a 140M-parameter VGG)."""
    gen = torch.Generator().manual_seed(seed)
    for key, value in model.state_dict().items():  # the entries share storage with the parameters and buffers
        if not value.is_floating_point():
            continue
        noise = torch.randn(value.shape, generator=gen, dtype=value.dtype)
        if key.endswith("running_var"):
            value.copy_(0.5 + noise.abs())
        elif value.ndim <= 1:
            value.copy_(1 + 0.2 * noise if key.endswith("weight") else 0.1 * noise)
        else:  # fan-in scaling keeps the activations of a deep network in range
            value.copy_(noise / value[0].numel() ** 0.5)


def test_zoo_shares_architectures_with_torchvision() -> None:
    assert len(ZOO_ARCHS) >= 20, ZOO_ARCHS
    assert {"resnet50", "vgg16_bn", "densenet121", "mobilenet_v2", "alexnet"} <= set(ZOO_ARCHS)


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.xdist_group(f"zoo.{a}")) for a in ZOO_ARCHS])
@torch.no_grad()
def test_baseline_matches_torchvision(arch: str) -> None:
    theirs = torchvision.models.get_model(arch, weights=None).eval()
    ours = get_model(arch, filter_size=None).eval()
    _randomise(theirs, seed=len(arch))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same order: checkpoints list the same
    x = natural_images(2, 64, seed=1)
    expected = theirs(x)
    assert expected.std() > 1e-3  # the check compares something
    torch.testing.assert_close(ours(x), expected)
