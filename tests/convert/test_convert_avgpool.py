"""AvgBlurPoolNd: the avg-pool drop-in of convert() keeps nn.AvgPoolNd's exact output size, so AvgPool converts
without an example input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from antialias import BlurPool2d
from antialias.convert import AvgBlurPool1d, AvgBlurPool2d, AvgBlurPool3d, convert

AVGPOOLS = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
DROPINS = {1: AvgBlurPool1d, 2: AvgBlurPool2d, 3: AvgBlurPool3d}


@st.composite
def _pool_case(draw, nd):
    k = tuple(draw(st.integers(1, 6)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    sizes = tuple(draw(st.integers(max(1, ki - 2 * pi), 13)) for ki, pi in zip(k, p, strict=True))
    return k, s, p, draw(st.booleans()), draw(st.booleans()), sizes, draw(st.sampled_from(["reflect", "zeros"]))


@pytest.mark.parametrize("nd", [1, 2, 3])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_output_size_equals_avgpool(nd, data):
    k, s, p, ceil_mode, count_include_pad, sizes, mode = data.draw(_pool_case(nd))
    filter_size = data.draw(st.sampled_from([1, 2, 3, 4, 5, 10]))
    x = torch.randn(2, 3, *sizes)
    pool = AVGPOOLS[nd](k, s, p, ceil_mode, count_include_pad)
    dropin = DROPINS[nd](k, s, p, ceil_mode, count_include_pad, filter_size=filter_size, padding_mode=mode)
    try:
        expected = pool(x).shape
    except RuntimeError:  # PyTorch refuses it (avg_pool3d also wants each axis >= its kernel)
        assume(False)
    assert dropin(x).shape == expected, (k, s, p, ceil_mode, sizes)
    assert dropin.output_size(sizes) == tuple(expected[2:])
    assert dropin(x[0]).shape == expected[1:]  # unbatched, as nn.AvgPool accepts
    const = torch.full_like(x, 2.5)  # the blur sums to 1: a constant stays (away from zero padding)
    if mode == "reflect":
        torch.testing.assert_close(dropin(const), torch.full(expected, 2.5))


def test_equals_blurpool_on_the_windows_they_share(reference):
    pool = AvgBlurPool2d(2)
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    torch.testing.assert_close(pool.double()(x), reference.blur_pool(x, [4, 4], 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(pool(x), BlurPool2d().double()(x), rtol=0, atol=1e-12)
    odd = torch.randn(1, 2, 11, 9, dtype=torch.float64)  # avg-pool floors: BlurPool's last row/column dropped
    torch.testing.assert_close(pool(odd), reference.blur_pool(odd, [4, 4], 2)[..., :5, :4], rtol=0, atol=1e-12)


def test_window_centres_follow_the_avgpool():
    """A unit impulse at input i lands on the output whose avg-pool window is centred nearest i."""
    pool = AvgBlurPool1d(4, 4, filter_size=10, padding_mode="zeros").double()  # k = s = 4: windows [4i, 4i+3]
    for i in range(4, 28):
        x = torch.zeros(1, 1, 32, dtype=torch.float64)
        x[..., i] = 1
        y = pool(x)[0, 0]
        assert int(y.argmax()) == i // 4 or abs(float(y[i // 4] - y.max())) < 1e-12


def test_convert_avgpool_without_example_input():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.AvgPool2d(3, 2, 1))
    new, report = convert(net)
    assert report.placements() == {"2": "drop-in", "3": "drop-in"} and not report.skipped
    assert isinstance(new[2], AvgBlurPool2d)
    assert isinstance(new[3], BlurPool2d)  # ceil(L/2) for every L already: the plain BlurPool
    for size in (15, 16, 17):
        x = torch.randn(1, 3, size, size + 3)
        with torch.no_grad():
            assert new(x).shape == net(x).shape


class FunctionalAvg(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, 2)


def test_convert_functional_avgpool_without_example_input():
    new, report = convert(FunctionalAvg())
    assert report.placements() and not report.skipped
    for size in (9, 10):
        x = torch.randn(1, 2, size, size)
        assert new(x).shape == FunctionalAvg()(x).shape


def test_errors():
    with pytest.raises(ValueError, match=r"AvgBlurPool2d: `padding` must be at most half of `kernel_size`"):
        AvgBlurPool2d(2, padding=2)
    with pytest.raises(ValueError, match=r"AvgBlurPool2d: input of shape .* is too small"):
        AvgBlurPool2d(5)(torch.randn(1, 1, 3, 3))
