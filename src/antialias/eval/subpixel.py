"""Band-limited (Fourier) sub-pixel shifts of image batches.

A real-valued shift ``(dy, dx)`` of an ``H x W`` image is applied in the Fourier domain: the 2-D DFT
is multiplied by the phase ramp ``exp(-2 pi i (k_y dy / H + k_x dx / W))`` and transformed back, which
is the circular shift of the trigonometric interpolant of the image (Whittaker-Shannon interpolation
for periodic signals), the sub-pixel shift of the alias-free ConvNet evaluations (Michaeli et al.,
CVPR 2023).

The Nyquist bin of an even size (``k = N/2``, where ``+N/2`` and ``-N/2`` are one bin) is multiplied
by ``cos(pi d)``, the real part of its ramp: splitting that bin evenly between ``+N/2`` and ``-N/2``
keeps the spectrum Hermitian, so the result is real for every shift, and for an integer ``d``,
``cos(pi d) = (-1)^d`` is the ramp itself, so an integer shift is exactly :func:`torch.roll` (up to
floating-point rounding of the FFT). (Keeping only the real part of the inverse transform would
apply the same factor implicitly; the explicit one keeps the imaginary part at rounding level.)
The price, inherent to real interpolants of even sizes: shifts do not compose on the Nyquist bin
(two shifts of 1/2 multiply it by ``cos(pi/2)^2 = 0``, a shift of 1 by ``-1``), so
``shift(shift(x, 1/2), 1/2) == shift(x, 1)`` holds exactly for odd sizes and for images without
energy at the Nyquist frequency, not in general.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["fourier_shift"]


def _ramp(size: int, shifts: Tensor) -> Tensor:
    """``(N, size)`` complex factors of one axis for shifts ``(N,)`` (float64)."""
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64, device=shifts.device)  # (size,) integers
    angle = -2 * math.pi * shifts[:, None] * k[None, :] / size  # (N, size)
    ramp = torch.polar(torch.ones_like(angle), angle)
    if size % 2 == 0:  # the Nyquist bin: real part only, so the spectrum stays Hermitian
        ramp[:, size // 2] = torch.cos(math.pi * shifts).to(ramp.dtype)
    return ramp


def fourier_shift(images: Tensor, shifts: Tensor | tuple[float, float] | list[float]) -> Tensor:
    """Circularly shift each image by a real ``(dy, dx)`` with band-limited (Fourier) interpolation.

    ``out[y, x] = interp(in)[y - dy, x - dx]`` (the direction of :func:`torch.roll`), where
    ``interp`` is the image's trigonometric interpolant; see the module docstring for the Nyquist
    bin of even sizes.

    Args:
        images: ``(N, C, H, W)`` real images (any float dtype; half types are computed in float32).
        shifts: One ``(dy, dx)`` pair for every image, or ``(N, 2)`` pairs, one per image, in pixels.

    Shape:
        images ``(N, C, H, W)``, shifts ``(2,)`` or ``(N, 2)`` -> ``(N, C, H, W)``, the dtype of ``images``.

    Returns:
        The shifted images.

    Raises:
        ValueError: ``images`` not 4-D floating point, or ``shifts`` of another shape or not finite.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> torch.allclose(fourier_shift(x, (1, -2)), torch.roll(x, (1, -2), dims=(2, 3)), atol=1e-5)
        True
        >>> alternating = torch.tensor([[[[0.0, 1.0, 0.0, 1.0]]]])  # all at the Nyquist frequency, plus the mean
        >>> fourier_shift(alternating, (0, 0.5)).squeeze().round(decimals=6).tolist()
        [0.5, 0.5, 0.5, 0.5]
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = (tuple(images.shape), images.dtype) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"`fourier_shift`: `images` must be a floating-point (N, C, H, W) tensor, got {got!r}.")
    n, _, h, w = images.shape
    s = torch.as_tensor(shifts, dtype=torch.float64, device=images.device)
    if s.shape == (2,):
        s = s.expand(n, 2)
    if s.shape != (n, 2) or not bool(torch.isfinite(s).all()):
        raise ValueError(f"`fourier_shift`: `shifts` must be a finite (dy, dx) pair or ({n}, 2) pairs, "
                         f"got shape {tuple(s.shape)}.")
    work = torch.float64 if images.dtype == torch.float64 else torch.float32
    cdtype = torch.complex128 if work == torch.float64 else torch.complex64
    factor = _ramp(h, s[:, 0])[:, :, None] * _ramp(w, s[:, 1])[:, None, :]  # (N, H, W)
    spectrum = torch.fft.fft2(images.to(work))  # (N, C, H, W) complex
    out = torch.fft.ifft2(spectrum * factor.to(cdtype)[:, None]).real  # imaginary part is rounding only
    return out.to(images.dtype)
