"""antialias.eval.equivariance: the author's upsampling; zero distance for equivariant nets, odd shifts if strided."""

import pytest
import torch
from torch import nn

from antialias.eval import circular_upsample, feature_distance_maps


def equivariant_net(classes=5):
    """Stride-1 circular convs + global pooling: exactly invariant to circular shifts."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    ).double()


class Subsample(nn.Module):
    def forward(self, x):
        return x[..., ::2, ::2]


def subsampling_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), Subsample()).double()


def batches(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (n,), generator=g)
    return [(x[:6], y[:6]), (x[6:], y[6:])]


# --------------------------------------------------------------------------- equivariance maps


def test_upsampler_reproduces_the_authors_example():
    a, b, c, d = 1.0, 3.0, 7.0, 5.0
    out = circular_upsample(torch.tensor([[[[a, b, c, d]]]]), (1, 8))
    expected = [a, (a + b) / 2, b, (b + c) / 2, c, (c + d) / 2, d, (d + a) / 2]
    assert out.flatten().tolist() == expected
    with pytest.raises(ValueError, match="power-of-two"):
        circular_upsample(torch.zeros(1, 1, 3, 3), (8, 8))


def recursive_2x(x, size):
    """The author's description, literally: per axis, interleave each value with the mean of it and
    its circular successor, until the size is reached."""
    for dim, target in ((2, size[0]), (3, size[1])):
        while x.shape[dim] < target:
            mid = (x + x.roll(-1, dim)) / 2
            x = torch.stack((x, mid), dim=dim + 1).flatten(dim, dim + 1)
    return x


@pytest.mark.parametrize("h,w", [(1, 1), (2, 4), (4, 8), (8, 2), (16, 16)])
def test_upsampler_equals_recursive_doubling(h, w):
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    torch.testing.assert_close(circular_upsample(x, (16, 16)), recursive_2x(x, (16, 16)))


def test_equivariant_net_has_zero_feature_distance_everywhere():
    images = batches(n=4)[0][0][:4]
    result = feature_distance_maps(equivariant_net(), images, step=3)
    assert result.layers == ["0", "1", "2", "3"]  # convs and ReLUs; global pooling is not a default layer
    assert result.maps.shape == (4, 6, 6)
    assert result.maps.abs().max() < 1e-6


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_subsampling_is_equivariant_only_at_even_shifts(distance):
    images = batches(n=3)[0][0][:3]
    result = feature_distance_maps(subsampling_net(), images, layers=["1"], distance=distance)
    m = result.maps[0]  # (16, 16) over all shifts
    even = m[::2, ::2]
    odd = torch.cat([m[1::2].flatten(), m[::2, 1::2].flatten()])
    assert even.abs().max() < 1e-6
    assert odd.min() > 1e-3


def test_unknown_layer_suggests():
    with pytest.raises(ValueError, match="Did you mean"):
        feature_distance_maps(equivariant_net(), torch.zeros(1, 1, 8, 8, dtype=torch.float64), layers=["11"])
