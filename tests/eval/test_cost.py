"""eval.cost: activation memory counted from autograd's saved tensors, and the timing record."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from antialias.eval.cost import saved_activation_bytes, step_cost


def _net(width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 3))


def _batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 1, 8, 8), torch.zeros(n, dtype=torch.long)


def test_activation_bytes_are_those_of_the_saved_maps():
    net = _net(4)
    x, y = _batch(5)
    # Which tensors are saved is torch's business: check a lower bound (the first 4-channel map), linearity
    # in the batch (activations grow with it, parameters would not) and determinism, not a brittle total.
    one, two = saved_activation_bytes(net, *_batch(5)), saved_activation_bytes(net, *_batch(10))
    assert one > 5 * 4 * 8 * 8 * 4  # at least the 4-channel map, in float32
    assert abs(two - 2 * one) <= 64  # up to a few scalars saved per step
    assert saved_activation_bytes(net, x, y) == one  # deterministic
    assert saved_activation_bytes(_net(8), x, y) > one


def test_step_cost_record():
    x, y = _batch(4)
    r = step_cost(_net(), x, y, steps=3, warmup=1)
    assert r["train_step_seconds"] > 0 and len(r["train_step_seconds_all"]) == 3
    assert r["inference_seconds"] > 0 and r["batch_size"] == 4 and r["device"] == "cpu"
    assert r["parameters"] == sum(p.numel() for p in _net().parameters())
    assert r["activation_bytes"] == saved_activation_bytes(_net(), x, y)


@pytest.mark.parametrize(("kwargs", "match"), [({"steps": 0}, "`steps` must be an int >= 1, got 0"),
                                               ({"warmup": -1}, "`warmup` must be an int >= 0, got -1")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        step_cost(_net(), *_batch(2), **kwargs)
