"""Ideal (Fourier) low-pass downsampling: nothing above the new Nyquist frequency, and no aliasing."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from antialias.downsample import IdealDownsample2d, ideal_downsample2d, ideal_lowpass2d


def _band(length: int, stride: int) -> torch.Tensor:
    """Frequencies ``|k| < L / (2 s)`` (the kept band) of an ``L``-point DFT axis; all of them at stride 1."""
    k = torch.fft.fftfreq(length, 1.0 / length)
    return k.abs() * 2 * stride < length if stride > 1 else torch.ones(length, dtype=torch.bool)


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 17), w=st.integers(1, 17), sh=st.integers(1, 4), sw=st.integers(1, 4),
       real=st.booleans(), seed=st.integers(0, 2**16))
def test_no_energy_above_the_new_nyquist(h, w, sh, sw, real, seed):
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    y = ideal_lowpass2d(x, (sh, sw), real=real)
    spec = torch.fft.fft2(y)
    outside = ~(_band(h, sh)[:, None] & _band(w, sw)[None, :])
    leak = spec[..., outside].abs()
    assert leak.numel() == 0 or float(leak.max()) < 1e-9 * max(1.0, float(x.abs().sum()))
    inside = ~outside
    assert torch.allclose(spec[..., inside], torch.fft.fft2(x)[..., inside], atol=1e-9)  # the band is untouched


@settings(max_examples=30, deadline=None)
@given(mh=st.integers(1, 6), mw=st.integers(1, 6), sh=st.integers(1, 3), sw=st.integers(1, 3),
       real=st.booleans(), backend=st.sampled_from(["fft", "matmul"]), seed=st.integers(0, 2**16))
def test_output_spectrum_is_the_input_low_band(mh, mw, sh, sw, real, backend, seed):
    """Alias-free: each output frequency holds the input's same frequency / (s_h s_w), nothing folded onto it."""
    h, w = mh * sh, mw * sw
    x = torch.randn(1, 2, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    y = ideal_downsample2d(x, (sh, sw), real=real, backend=backend)
    assert y.shape == (1, 2, mh, mw)
    got = torch.fft.fft2(y)
    ky = torch.fft.fftfreq(mh, 1.0 / mh).round().long()
    kx = torch.fft.fftfreq(mw, 1.0 / mw).round().long()
    expected = torch.fft.fft2(x)[..., ky % h, :][..., kx % w] / (sh * sw)
    keep = _band(h, sh)[ky % h][:, None] & _band(w, sw)[kx % w][None, :]
    expected = expected * keep
    assert torch.allclose(got, expected, atol=1e-9)


@pytest.mark.parametrize("size", [(8, 12), (7, 10), (9, 9)])
def test_crop_path_equals_mask_and_subsample(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    ref = ideal_lowpass2d(x, 2)[:, :, ::2, ::2]
    assert torch.allclose(ideal_downsample2d(x, 2), ref, atol=1e-12)
    assert torch.allclose(ideal_downsample2d(x, 2, real=False, backend="fft"), ref, atol=1e-12)
    assert torch.allclose(ideal_downsample2d(x, 2, backend="fft"), ref, atol=1e-12)
    assert torch.allclose(ideal_downsample2d(x, 2, backend="matmul"), ref, atol=1e-12)


def test_shift_by_stride_shifts_output_and_constants_stay():
    x = torch.randn(1, 2, 16, 12)
    y = ideal_downsample2d(x, 2)
    shifted = ideal_downsample2d(torch.roll(x, (2, 4), (2, 3)), 2)
    assert torch.allclose(shifted, torch.roll(y, (1, 2), (2, 3)), atol=1e-5)
    assert torch.allclose(ideal_downsample2d(torch.full((1, 1, 7, 9), 3.0), 3), torch.full((1, 1, 3, 3), 3.0))


def test_module_dtypes_layouts_and_gradcheck():
    x = torch.randn(2, 4, 10, 6)
    layer = IdealDownsample2d(4, 2)
    assert torch.equal(layer(x), ideal_downsample2d(x, 2))
    cl = layer(x.to(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.allclose(cl, layer(x), atol=1e-6)
    assert layer(x.half()).dtype == torch.float16
    assert list(layer.state_dict()) == []
    t = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda v: ideal_downsample2d(v, 2), (t,))
    assert gradcheck(lambda v: ideal_downsample2d(v, (3, 1), real=False, backend="fft"), (t,))
    assert gradcheck(lambda v: ideal_downsample2d(v, 2, backend="fft"), (t,))
    assert math.ceil(5 / 2) == ideal_downsample2d(t, 2).shape[-1]


def test_errors():
    with pytest.raises(ValueError, match=r"`ideal_downsample2d`: `stride` must be >= 1"):
        ideal_downsample2d(torch.randn(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"`ideal_downsample2d`: `backend` must be one of"):
        ideal_downsample2d(torch.randn(1, 1, 4, 4), backend="fftw")
    with pytest.raises(ValueError, match=r"`IdealDownsample2d`: expected 3 channels"):
        IdealDownsample2d(3)(torch.randn(1, 2, 4, 4))
