"""Ideal (Fourier) low-pass downsampling: zero every frequency at or above the new Nyquist frequency,
then subsample, so nothing aliases (as in FLC pooling, Grabinski, Jung, Keuper & Keuper, ECCV 2022,
and the alias-free ConvNets of Michaeli, Michaeli & Soudry, CVPR 2023).

For an axis of length ``L`` and stride ``s > 1`` the kept frequencies are the integers ``k`` with
``|k| < L / (2 s)`` (cycles per ``L`` samples), i.e. a cutoff of ``1/s`` of the input's Nyquist
frequency, per axis, for any ``L`` (square or not, even or odd); an axis at stride 1 is left as it
is. The bin exactly at ``L / (2 s)`` is
dropped too: after subsampling it would fold onto itself and its real part alone is not shift
equivariant. The FFT treats the map as periodic (circular boundary), so a circular shift of the input
by a multiple of ``s`` shifts the output exactly (up to float round-off).

Two backends compute the same operator. ``matmul`` (the default up to 64 pixels per axis, typical
CNN maps) applies it as one dense ``(ceil(L / s), L)`` matrix per axis, built once per size from the
FFT and cached: two GEMMs forward and backward. ``fft``: when ``L`` is a multiple of ``s`` the
low-pass and the subsampling are done at once: the kept block of
the spectrum is inverse-transformed at the output size (FLC's crop; cheaper than masking and
subsampling). Otherwise the spectrum is masked, transformed back at the input size and subsampled at
phase 0. Output size ``ceil(H / s_h) x ceil(W / s_w)`` either way.
"""

from __future__ import annotations

import functools
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


#: Largest axis length the ``"auto"`` backend handles with dense matrices (``fft`` above it).
MATMUL_MAX = 64

#: Backends of :func:`ideal_downsample2d`.
BACKENDS = ("auto", "fft", "matmul")


@functools.lru_cache(maxsize=64)
def _operator(length: int, stride: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The ``(ceil(L / s), L)`` real matrix of one axis: ideal low-pass, then the rows at phase 0.

    ``lowpass = Re(IDFT diag(mask) DFT)`` built in float64 (the mask is symmetric, so it is real), rows
    ``0, s, 2s, ...`` kept; cached per size, stride, dtype and device (a few KiB each).
    """
    eye = torch.eye(length, dtype=torch.float64)
    mask = _kept(length, stride, torch.device("cpu"), onesided=True)
    lowpass = torch.fft.irfft(torch.fft.rfft(eye, dim=0) * mask[:, None], n=length, dim=0)  # (L, L), column j = Lp e_j
    return lowpass[::stride].to(dtype=dtype, device=device).contiguous()


def _matmul(x: Tensor, s: tuple[int, int]) -> Tensor:
    """``M_h @ x @ M_w^T`` per map: W first (halving the data), then H; exact up to float round-off."""
    fmt = _c.memory_format(x)
    dtype = _compute_dtype(x)
    # while tracing (compile/export) build afresh: a cached matrix must never be a fake tensor
    build = _operator.__wrapped__ if torch.compiler.is_compiling() else _operator
    mh = build(x.shape[-2], s[0], dtype, x.device)  # (Ho, H)
    mw = build(x.shape[-1], s[1], dtype, x.device)  # (Wo, W)
    n, c, h, w = x.shape
    if fmt == torch.channels_last:  # work on the (N, H, W, C) storage directly: no layout copies
        nhwc = x.to(dtype).permute(0, 2, 3, 1)  # (N, H, W, C), contiguous
        cols = torch.matmul(mw, nhwc.reshape(n * h, w, c))  # (N*H, Wo, C)
        out_nhwc = torch.matmul(mh, cols.view(n, h, -1))  # (N, Ho, Wo*C)
        out = out_nhwc.view(n, mh.shape[0], mw.shape[0], c).permute(0, 3, 1, 2)  # channels_last view
        return out.to(x.dtype).contiguous(memory_format=fmt)
    rows = x.to(dtype).reshape(n * c * h, w) @ mw.t()  # one large GEMM over W: (N*C*H, Wo)
    out = torch.matmul(mh, rows.view(n * c, h, -1))  # batched over N*C: (N*C, Ho, Wo)
    return out.view(n, c, mh.shape[0], mw.shape[0]).to(x.dtype).contiguous(memory_format=fmt)


def _check_backend(backend: str, where: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"{where}: `backend` must be one of {BACKENDS}, got {backend!r}.")


def _dispatch(x: Tensor, s: tuple[int, int], real: bool, backend: str) -> Tensor:
    if backend == "matmul" or (backend == "auto" and max(x.shape[-2:]) <= MATMUL_MAX):
        return _matmul(x, s)
    return _downsample(x, s, real)


def ideal_downsample2d(
    input: Tensor, stride: int | tuple[int, int] = 2, *, real: bool = True, backend: str = "auto"
) -> Tensor:
    """Ideal low-pass at cutoff ``1/s`` (see :func:`ideal_lowpass2d`), then subsampling at phase 0.

    Alias-free: when ``H, W`` are multiples of the stride, the output's spectrum is the input's low
    band divided by ``s_h * s_w``, and nothing else.

    Args:
        input: ``(N, C, H, W)`` floating point, any size.
        stride: ``s`` or ``(s_h, s_w)``, each >= 1.
        real: Real FFTs (default) or complex ones (the ``fft`` backend).
        backend: ``"fft"`` (spectrum crop, or mask and subsample), ``"matmul"`` (the same operator as
            two dense ``(out, in)`` matrices per axis, cached: faster on small maps) or ``"auto"``
            (matmul up to :data:`MATMUL_MAX` pixels per axis, FFT above). All agree to float round-off.

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
    _check_backend(backend, where)
    return _dispatch(input, s, real, backend)


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
        backend: ``"auto"``, ``"fft"`` or ``"matmul"`` (see :func:`ideal_downsample2d`).

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
        backend: str = "auto",
        *,
        device: Any = None,  # accepted like every layer's; nothing to allocate
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.stride = _c.pair(stride, "stride", "`IdealDownsample2d`")
        self.real = bool(real)
        _check_backend(backend, "`IdealDownsample2d`")
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        _c.check_input(x, "`IdealDownsample2d`")
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(
                f"`IdealDownsample2d`: expected {self.channels} channels, got input of shape {tuple(x.shape)}. "
                f"Build the layer with channels={x.shape[1]} or channels=None."
            )
        return _dispatch(x, self.stride, self.real, self.backend)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}, real={self.real}, backend={self.backend!r}"
