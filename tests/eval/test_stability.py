"""antialias.eval.stability: diagonal shifts of an exactly invariant network change nothing."""

import pytest
import torch
from torch import nn

from antialias.eval import diagonal_stability


def equivariant_net(classes=5):
    """Stride-1 circular convs + global pooling: exactly invariant to circular shifts."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    ).double()


def batches(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (n,), generator=g)
    return [(x[:6], y[:6]), (x[6:], y[6:])]


def test_diagonal_stability_of_invariant_net_is_flat():
    result = diagonal_stability(equivariant_net(), batches(), max_shift=5, protocol="circular")
    assert result.prob_correct.shape == (12, 6)
    torch.testing.assert_close(result.prob_correct, result.prob_correct[:, :1].expand(12, 6))
    assert result.mean_abs_step_change == pytest.approx(0.0, abs=1e-12)
    assert result.prediction_changes == 0
