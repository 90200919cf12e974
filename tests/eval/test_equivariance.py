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


# --------------------------------------------------------------------------- bounded memory, shared modules


def _reference_maps(model, images, step, distance):
    """The definition, computed the direct way: every layer's output upsampled, rolled and compared."""
    from antialias.eval.equivariance import _distance, default_layers

    names = default_layers(model)
    modules = dict(model.named_modules())
    h, w = images.shape[-2:]

    def features(x):
        out = {}
        handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.float()))
                   for n in names]
        with torch.no_grad():
            model(x)
        for hd in handles:
            hd.remove()
        return {n: circular_upsample(f, (h, w)) for n, f in out.items()}

    base = features(images)
    shifts = [(dh, dw) for dh in range(0, h, step) for dw in range(0, w, step)]
    maps = torch.zeros(len(names), len(shifts))
    for j, shift in enumerate(shifts):
        got = features(images.roll(shift, (-2, -1)))
        for i, n in enumerate(names):
            a, b = got[n], base[n].roll(shift, (-2, -1))
            maps[i, j] = _distance(a, b, a.norm(dim=1), b.norm(dim=1), distance).mean()
    return names, maps.view(len(names), len(range(0, h, step)), -1)


def strided_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 12, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_streamed_maps_equal_the_direct_definition_under_any_memory_bound(distance, monkeypatch):
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    names, want = _reference_maps(strided_net(), x, 2, distance)
    free = feature_distance_maps(strided_net(), x, step=2, distance=distance, split_max=False, max_memory_gib=None)
    # With the process counted as 0 bytes, 99 kB leaves 80,016 bytes after the base maps (18,984): one shift per
    # forward (5 * 1,536 + 16 * 256 bytes per image, 3 images) and 2 of the 12 channels per upsampling step
    # ((2 * 3 + 4 * 3) * 4 * 256 bytes each).
    monkeypatch.setattr("antialias.eval.equivariance.rss_bytes", lambda: 0)
    lines: list[str] = []
    bounded = feature_distance_maps(strided_net(), x, step=2, distance=distance, split_max=False,
                                    max_memory_gib=99_000 / 2**30, log=lines.append)
    assert free.layers == bounded.layers == names
    torch.testing.assert_close(free.maps, want, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(bounded.maps, want, atol=2e-5, rtol=1e-4)
    assert "1 shifts per forward, 2 channels per upsampling step" in lines[0] and "limit" in lines[0]
    assert float(want[:, 1:].max()) > 0.01  # the strided net is not equivariant: the comparison has teeth


def test_a_module_called_twice_gives_one_map_per_call():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
            self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
            self.act = nn.ReLU6()

        def forward(self, x):
            return self.act(self.conv2(self.act(self.conv1(x))))

    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r = feature_distance_maps(Shared(), x, step=1)
    assert r.layers == ["conv1", "act#1", "conv2", "act#2"] and r.kinds[1] == r.kinds[3] == "ReLU6"
    assert float(r.maps[1].max()) < 1e-5 < float(r.maps[3].max())  # first call equivariant, second after stride 2


def test_a_memory_bound_below_one_shift_is_refused():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"`max_memory_gib` must leave room for one shift of 2 images at 16x16"):
        feature_distance_maps(strided_net(), x, step=8, max_memory_gib=0.001)
    with pytest.raises(ValueError, match=r"`max_memory_gib` must be a positive number or None"):
        feature_distance_maps(strided_net(), x, step=8, max_memory_gib=0)


def test_progress_bar_on_stderr_only_when_asked(capsys):
    x = torch.rand(1, 3, 16, 16)
    feature_distance_maps(strided_net(), x, step=4)
    assert capsys.readouterr().err == ""
    feature_distance_maps(strided_net(), x, step=4, progress=True)
    err = capsys.readouterr().err
    assert "equivariance" in err and "16/16" in err
