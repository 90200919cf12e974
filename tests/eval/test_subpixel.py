"""Band-limited sub-pixel shifts: integer shifts are torch.roll, compositions, an independent interpolation formula."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from antialias.eval.subpixel import fourier_shift

sizes = st.integers(min_value=1, max_value=12)


@settings(max_examples=60, deadline=None)
@given(h=sizes, w=sizes, dy=st.integers(-30, 30), dx=st.integers(-30, 30), seed=st.integers(0, 2**16))
def test_integer_shift_is_torch_roll(h, w, dy, dx, seed):
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    expected = torch.roll(x, (dy, dx), dims=(2, 3))
    torch.testing.assert_close(fourier_shift(x, (dy, dx)), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(fourier_shift(x.float(), (dy, dx)), expected.float(), rtol=0, atol=1e-5)


def _dirichlet(u: torch.Tensor, n: int) -> torch.Tensor:
    """The periodic band-limited interpolation kernel of n samples (odd n: Dirichlet; even n: Nyquist split)."""
    near = torch.isclose(torch.remainder(u, n), torch.zeros_like(u)) | torch.isclose(
        torch.remainder(u, n), torch.full_like(u, float(n)))
    den = n * (torch.sin(math.pi * u / n) if n % 2 else torch.tan(math.pi * u / n))
    value = torch.sin(math.pi * u) / torch.where(near, torch.ones_like(den), den)
    return torch.where(near, torch.ones_like(u), value)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 11), d=st.floats(-5, 5, allow_nan=False).filter(lambda v: abs(v - round(v)) > 1e-3),
       seed=st.integers(0, 2**16))
def test_matches_the_interpolation_formula_in_the_signal_domain(n, d, seed):
    # x(t) = sum_m x[m] K(t - m), K the periodic sinc of n samples: a formula that never uses an FFT.
    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    t = torch.arange(n, dtype=torch.float64) - d  # out[j] = interp(x)(j - d)
    expected = (x[None, :] * _dirichlet(t[:, None] - torch.arange(n, dtype=torch.float64)[None, :], n)).sum(1)
    out = fourier_shift(x.view(1, 1, 1, n), (0, d)).view(n)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)
    out_h = fourier_shift(x.view(1, 1, n, 1), (d, 0)).view(n)  # the same along the other axis
    torch.testing.assert_close(out_h, expected, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 6).map(lambda k: 2 * k + 1), w=st.integers(1, 6).map(lambda k: 2 * k + 1),
       seed=st.integers(0, 2**16))
def test_half_twice_and_quarter_four_times_equal_one_pixel_on_odd_sizes(h, w, seed):
    x = torch.randn(1, 2, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    one = torch.roll(x, (1, -1), dims=(2, 3))
    torch.testing.assert_close(fourier_shift(fourier_shift(x, (0.5, -0.5)), (0.5, -0.5)), one, rtol=0, atol=1e-10)
    y = x
    for _ in range(4):
        y = fourier_shift(y, (0.25, -0.25))
    torch.testing.assert_close(y, one, rtol=0, atol=1e-10)


def _without_nyquist(x: torch.Tensor) -> torch.Tensor:
    spectrum = torch.fft.fft2(x)
    h, w = x.shape[-2:]
    if h % 2 == 0:
        spectrum[..., h // 2, :] = 0
    if w % 2 == 0:
        spectrum[..., :, w // 2] = 0
    return torch.fft.ifft2(spectrum).real


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 6).map(lambda k: 2 * k), w=st.integers(1, 6).map(lambda k: 2 * k), seed=st.integers(0, 2**16))
def test_half_twice_equals_one_pixel_on_even_sizes_without_nyquist_energy(h, w, seed):
    x = _without_nyquist(torch.randn(1, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    twice = fourier_shift(fourier_shift(x, (0.5, 0.5)), (0.5, 0.5))
    torch.testing.assert_close(twice, torch.roll(x, (1, 1), dims=(2, 3)), rtol=0, atol=1e-10)


def test_even_sizes_split_the_nyquist_bin_so_the_result_stays_real():
    # An alternating row is all Nyquist (plus its mean): half a pixel lands between the peaks, giving the mean.
    x = torch.tensor([0.0, 1.0] * 4, dtype=torch.float64).view(1, 1, 1, 8)
    torch.testing.assert_close(fourier_shift(x, (0, 0.5)), torch.full_like(x, 0.5), rtol=0, atol=1e-12)
    # The documented price: shifts do not compose on that bin (1/2 + 1/2 is the mean, a shift by 1 flips).
    twice = fourier_shift(fourier_shift(x, (0, 0.5)), (0, 0.5))
    assert not torch.allclose(twice, torch.roll(x, 1, dims=3))


def test_per_image_shifts_and_energy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 8, 9, dtype=torch.float64, generator=g)
    shifts = torch.tensor([[0.25, -1.5], [3.0, 0.5], [-0.75, 0.0]], dtype=torch.float64)
    batched = fourier_shift(x, shifts)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], fourier_shift(x[i : i + 1], shifts[i]), rtol=0, atol=1e-12)
    # A phase ramp keeps the mean exactly and never adds energy (|factor| <= 1, Parseval).
    torch.testing.assert_close(batched.mean(dim=(2, 3)), x.mean(dim=(2, 3)), rtol=0, atol=1e-12)
    assert bool((batched.pow(2).sum(dim=(2, 3)) <= x.pow(2).sum(dim=(2, 3)) + 1e-9).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_and_noncontiguous_input(dtype):
    x = torch.rand(2, 3, 10, 6).to(dtype).transpose(2, 3)  # non-contiguous (2, 3, 6, 10)
    out = fourier_shift(x, (1, 2))
    assert out.dtype == dtype and out.shape == x.shape
    tol = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-5
    torch.testing.assert_close(out.double(), torch.roll(x, (1, 2), dims=(2, 3)).double(), rtol=0, atol=tol)


def test_gradient_flows_to_the_images():
    x = torch.randn(1, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fourier_shift(t, (0.3, -1.25)), (x,))


@pytest.mark.parametrize(("images", "shifts", "match"), [
    (torch.zeros(3, 4, 4), (0, 0), "`images` must be a floating-point"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.long), (0, 0), "`images` must be a floating-point"),
    (torch.zeros(2, 1, 4, 4), torch.zeros(3, 2), r"`shifts` must be a finite \(dy, dx\) pair or \(2, 2\)"),
    (torch.zeros(1, 1, 4, 4), (float("nan"), 0), "`shifts` must be a finite"),
])
def test_bad_input_is_refused(images, shifts, match):
    with pytest.raises(ValueError, match=match):
        fourier_shift(images, shifts)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), d=st.floats(-5, 5, allow_nan=False))
def test_phase_ramp_is_hermitian_so_the_inverse_transform_is_real(n, d):
    from antialias.eval.subpixel import _ramp

    ramp = _ramp(n, torch.tensor([d], dtype=torch.float64))[0]  # (n,)
    mirrored = ramp[(-torch.arange(n)) % n]  # ramp[-k]
    torch.testing.assert_close(mirrored, ramp.conj(), rtol=0, atol=1e-12)
    x = torch.randn(1, 1, 1, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    spectrum = torch.fft.fft2(x) * ramp
    assert float(torch.fft.ifft2(spectrum).imag.abs().max()) < 1e-12
