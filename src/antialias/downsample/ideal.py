"""Ideal (Fourier) low-pass downsampling: zero every frequency at or above the new Nyquist frequency,
then subsample, so nothing aliases (as in FLC pooling, Grabinski, Jung, Keuper & Keuper, ECCV 2022,
and the alias-free ConvNets of Michaeli, Michaeli & Soudry, CVPR 2023).

For an axis of length ``L`` and stride ``s > 1`` the kept frequencies are the integers ``k`` with
``|k| < L / (2 s)`` (cycles per ``L`` samples), i.e. a cutoff of ``1/s`` of the input's Nyquist
frequency, per axis, for any ``L`` (square or not, even or odd); an axis at stride 1 is left as it is. The bin exactly at ``L / (2 s)`` is
dropped too: after subsampling it would fold onto itself and its real part alone is not shift
equivariant. The FFT treats the map as periodic (circular boundary), so a circular shift of the input
by a multiple of ``s`` shifts the output exactly (up to float round-off).

When ``L`` is a multiple of ``s`` the low-pass and the subsampling are done at once: the kept block of
the spectrum is inverse-transformed at the output size (FLC's crop; cheaper than masking and
subsampling). Otherwise the spectrum is masked, transformed back at the input size and subsampled at
phase 0. Output size ``ceil(H / s_h) x ceil(W / s_w)`` either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from antialias.downsample import _common as _c

__all__ = ["IdealDownsample2d", "ideal_downsample2d", "ideal_lowpass2d"]


def _kept(length: int, stride: int, device: torch.device, onesided: bool = False) -> Tensor:
    """Mask of the FFT bins of an axis of ``length`` with ``|k| < length / (2 * stride)`` (all at stride 1)."""
    k = torch.fft.rfftfreq(length, d=1.0 / length, device=device) if onesided else torch.fft.fftfreq(
        length, d=1.0 / length, device=device
    )
    if stride == 1:  # nothing is subsampled on this axis: nothing to remove
        return torch.ones_like(k, dtype=torch.bool)
    return k.abs() * (2 * stride) < length  # integers, exact


def _compute_dtype(x: Tensor) -> torch.dtype:
    # FFTs of half precision need power-of-two sizes on GPU and are inaccurate: compute in float32
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def ideal_lowpass2d(input: Tensor, stride: int | tuple[int, int] = 2, *, real: bool = True) -> Tensor:
    """Zero every frequency ``|k| >= L / (2 s)`` of each axis (the ideal low-pass at cutoff ``1/s``), same size.

    Args:
        input: ``(N, C, H, W)`` floating point.
        stride: ``s`` or ``(s_h, s_w)`` whose new Nyquist frequency is the cutoff.
        real: Use the real FFT (``rfft2``; half the work); False uses the complex FFT (same result).

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.

    Examples:
        >>> x = torch.tensor([[[[1.0, -1.0, 1.0, -1.0]]]])  # only the Nyquist frequency
        >>> ideal_lowpass2d(x, (1, 2)).abs().max().item() < 1e-6
        True
    """
    where = "`ideal_lowpass2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    return _lowpass(input, s, real)


def _lowpass(x: Tensor, s: tuple[int, int], real: bool) -> Tensor:
    dtype = x.dtype
    xf = x.to(_compute_dtype(x))
    h, w = x.shape[-2:]
    mask_h = _kept(h, s[0], x.device)
    if real:
        mask = mask_h[:, None] & _kept(w, s[1], x.device, onesided=True)[None, :]
        spec = torch.fft.rfft2(xf)  # (N, C, H, W//2+1)
        return torch.fft.irfft2(spec * mask, s=(h, w)).to(dtype)
    mask = mask_h[:, None] & _kept(w, s[1], x.device)[None, :]
    return torch.fft.ifft2(torch.fft.fft2(xf) * mask).real.to(dtype)


def _crop_index(length: int, out: int, stride: int, device: torch.device) -> Tensor:
    """Indices (into a full FFT axis of ``length``) of the kept bins, laid out as an ``out``-point FFT axis.

    Bin ``k`` (signed) of the output holds input bin ``k``; the output's own Nyquist bin (``out`` even)
    receives nothing (masked by the caller through ``_kept``).
    """
    k = torch.fft.fftfreq(out, d=1.0 / out, device=device).round().long()  # signed output frequencies
    return k % length


def ideal_downsample2d(input: Tensor, stride: int | tuple[int, int] = 2, *, real: bool = True) -> Tensor:
    """Ideal low-pass at cutoff ``1/s`` (see :func:`ideal_lowpass2d`), then subsampling at phase 0.

    Alias-free: when ``H, W`` are multiples of the stride, the output's spectrum is the input's low
    band divided by ``s_h * s_w``, and nothing else.

    Args:
        input: ``(N, C, H, W)`` floating point, any size.
        stride: ``s`` or ``(s_h, s_w)``, each >= 1.
        real: Real FFTs (default) or complex ones.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> ideal_downsample2d(torch.ones(1, 2, 7, 10)).shape
        torch.Size([1, 2, 4, 5])
        >>> torch.allclose(ideal_downsample2d(torch.ones(1, 1, 8, 8)), torch.ones(1, 1, 4, 4))
        True
    """
    where = "`ideal_downsample2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    return _downsample(input, s, real)


def _downsample(x: Tensor, s: tuple[int, int], real: bool) -> Tensor:
    fmt = _c.memory_format(x)
    h, w = x.shape[-2:]
    if s == (1, 1):
        return x.clone(memory_format=fmt)
    if h % s[0] or w % s[1]:
        return _lowpass(x, s, real)[:, :, :: s[0], :: s[1]].contiguous(memory_format=fmt)
    ho, wo = h // s[0], w // s[1]
    dtype = x.dtype
    xf = x.to(_compute_dtype(x))
    rows = _crop_index(h, ho, s[0], x.device)
    keep_h = _kept(h, s[0], x.device)[rows]  # (ho,) also drops the output's Nyquist row
    scale = 1.0 / (s[0] * s[1])
    if real:
        spec = torch.fft.rfft2(xf)  # (N, C, H, W//2+1)
        keep_w = _kept(w, s[1], x.device, onesided=True)[: wo // 2 + 1]
        mask = keep_h[:, None] & keep_w[None, :]
        small = spec.index_select(-2, rows)[..., : wo // 2 + 1] * (mask * scale)  # (N, C, ho, wo//2+1)
        out = torch.fft.irfft2(small, s=(ho, wo))
    else:
        spec = torch.fft.fft2(xf)
        cols = _crop_index(w, wo, s[1], x.device)
        mask = keep_h[:, None] & _kept(w, s[1], x.device)[cols][None, :]
        small = spec.index_select(-2, rows).index_select(-1, cols) * (mask * scale)
        out = torch.fft.ifft2(small).real
    return out.to(dtype).contiguous(memory_format=fmt)


class IdealDownsample2d(nn.Module):
    """Ideal (Fourier) low-pass downsampling as a layer (see :func:`ideal_downsample2d`); no parameters.

    Args:
        channels: Expected input channels (checked), or None.
        stride: ``s`` or ``(s_h, s_w)``.
        real: Real FFTs (default) or complex ones.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> IdealDownsample2d(3, stride=2)(torch.randn(1, 3, 6, 9)).shape
        torch.Size([1, 3, 3, 5])
    """

    def __init__(
        self,
        channels: int | None = None,
        stride: int | tuple[int, int] = 2,
        real: bool = True,
        *,
        device: Any = None,  # accepted like every layer's; nothing to allocate
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.stride = _c.pair(stride, "stride", "`IdealDownsample2d`")
        self.real = bool(real)

    def forward(self, x: Tensor) -> Tensor:
        _c.check_input(x, "`IdealDownsample2d`")
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(
                f"`IdealDownsample2d`: expected {self.channels} channels, got input of shape {tuple(x.shape)}. "
                f"Build the layer with channels={x.shape[1]} or channels=None."
            )
        return _downsample(x, self.stride, self.real)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}, real={self.real}"
