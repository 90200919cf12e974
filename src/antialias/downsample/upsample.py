"""Anti-aliased upsampling: zero-insertion followed by a low-pass (interpolation) filter, and its
polyphase counterpart that puts features back at the phase an APS/LPS layer kept.

Upsampling by ``s`` inserts ``s - 1`` zeros between samples, which creates spectral images of the
signal; nearest-neighbour upsampling (``nn.Upsample(mode="nearest")``) is zero-insertion followed by a
box filter, a poor low-pass, and a transposed conv learns whatever filter. Here:

- :class:`BlurUpsample2d` (replaces ``nn.Upsample(nearest)``): zeros inserted, then a separable filter
  ``rect_s * row`` (``row`` from ``filter_size``; default ``rect_s``, i.e. the triangle of linear
  interpolation) with gain ``s`` per axis. Convolving with ``rect_s`` makes every polyphase class of
  the filter sum to ``1/s``, so with the gain a constant stays that constant.
- :class:`BlurConvTranspose2d` (replaces ``nn.ConvTranspose2d``, same keys): the transposed conv, then
  the same filter normalised to sum 1 at stride 1 (it already upsampled).
- :class:`PolyphaseUpsample2d` (for encoder-decoders with APS/LPS; Chaman & Dokmanic's adaptive
  polyphase upsampling): the input is placed at the phase its linked downsampler kept, zeros elsewhere,
  cropped to the size the downsampler saw, then filtered as above. With circular padding the decoder
  then moves with the input exactly, and a U-Net of such layers is shift-equivariant.

The filters run as sums of shifted copies (one multiply-add per tap and axis, the same order at every
position), so with circular padding a circular shift commutes with them bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from antialias import filters as _filters
from antialias.downsample import _common as _c
from antialias.filters import FilterSpec

__all__ = [
    "BlurConvTranspose2d",
    "BlurUpsample2d",
    "PolyphaseUpsample2d",
    "blur_upsample2d",
    "polyphase_upsample2d",
    "upsample_filter",
]


def upsample_filter(stride: int, filter_size: FilterSpec | None = None) -> Tensor:
    """The interpolation row for upsampling by ``stride``: ``rect_stride * row``, summing to 1 (float64).

    ``filter_size`` None gives ``rect * rect`` (linear interpolation); every polyphase class of the result
    sums to ``1 / stride``.

    Examples:
        >>> upsample_filter(2).tolist()
        [0.25, 0.5, 0.25]
    """
    rect = torch.full((stride,), 1.0 / stride, dtype=torch.float64)
    row = rect if filter_size is None else _filters.filter_row(filter_size, where="`upsample_filter`").double()
    out = torch.nn.functional.conv1d(rect.view(1, 1, -1), row.flip(0).view(1, 1, -1), padding=row.numel() - 1)
    return out.flatten() / out.sum()


def _insert(x: Tensor, stride: tuple[int, int], index: Tensor | None, weights: Tensor | None) -> Tensor:
    """Zero-insertion: ``(N, C, h, w) -> (N, C, h*s_h, w*s_w)``, each sample at its phase (default 0)."""
    n, c, h, w = x.shape
    sh, sw = stride
    if weights is not None:  # LPS training: every phase, weighted (one-hot forward when straight-through)
        wv = weights.to(x.dtype).view(n, 1, 1, sh, 1, sw)
        out = x.view(n, c, h, 1, w, 1) * wv  # (N, C, h, s_h, w, s_w)
        return out.reshape(n, c, h * sh, w * sw)
    out = x.new_zeros(n, c, h, sh, w, sw)
    if index is None:
        out[:, :, :, 0, :, 0] = x
    else:
        a = torch.div(index, sw, rounding_mode="floor")
        b = index - a * sw
        out[torch.arange(n, device=x.device), :, :, a, :, b] = x
    return out.view(n, c, h * sh, w * sw)


def _gain_rows(stride: tuple[int, int], filter_size: FilterSpec | None, gain: bool) -> tuple[Tensor, Tensor]:
    rh, rw = upsample_filter(stride[0], filter_size), upsample_filter(stride[1], filter_size)
    return (rh * stride[0], rw * stride[1]) if gain else (rh, rw)


def blur_upsample2d(
    input: Tensor,
    stride: int | tuple[int, int] = 2,
    *,
    filter_size: FilterSpec | None = None,
    padding_mode: str = "circular",
) -> Tensor:
    """Upsample by zero-insertion, then the interpolation filter ``rect_s * row`` with gain ``s`` per axis.

    Args:
        input: ``(N, C, h, w)``.
        stride: Upsampling factor ``s`` or ``(s_h, s_w)``.
        filter_size: ``row`` (default: ``rect_s``, linear interpolation).
        padding_mode: Padding of the filter.

    Shape:
        ``(N, C, h, w) -> (N, C, h * s_h, w * s_w)``.

    Examples:
        >>> blur_upsample2d(torch.tensor([[[[0.0, 2.0]]]]), (1, 2))
        tensor([[[[0., 1., 2., 1.]]]])
    """
    where = "`blur_upsample2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _c.check_padding_mode(padding_mode, where)
    fmt = _c.memory_format(input)
    rows = _gain_rows(s, filter_size, True)
    return _c.tap_blur2d(_insert(input, s, None, None), rows, padding_mode).contiguous(memory_format=fmt)


def polyphase_upsample2d(
    input: Tensor,
    index: Tensor,
    stride: int | tuple[int, int] = 2,
    *,
    size: tuple[int, int] | None = None,
    filter_size: FilterSpec | None = None,
    padding_mode: str = "circular",
) -> Tensor:
    """Place sample ``n`` at flat phase ``index[n]`` (``a * s_w + b``), zeros elsewhere, crop to ``size``,
    then filter as :func:`blur_upsample2d` (``filter_size=1``: no filter, a pure unpool).

    Shape:
        ``(N, C, h, w), (N,) -> (N, C, H, W)``, ``(H, W) = size`` (default ``(h * s_h, w * s_w)``).

    Examples:
        >>> polyphase_upsample2d(torch.ones(1, 1, 1, 2), torch.tensor([1]), (1, 2), filter_size=1)
        tensor([[[[0., 1., 0., 1.]]]])
    """
    where = "`polyphase_upsample2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _c.check_padding_mode(padding_mode, where)
    if not isinstance(index, Tensor) or index.shape != (input.shape[0],) or index.is_floating_point():
        raise ValueError(f"{where}: `index` must be an integer tensor of shape ({input.shape[0]},), got {index!r}.")
    full = (input.shape[2] * s[0], input.shape[3] * s[1])
    if size is not None and not (full[0] - s[0] < size[0] <= full[0] and full[1] - s[1] < size[1] <= full[1]):
        raise ValueError(f"{where}: `size` must round up to {full} at stride {s}, got {size!r}.")
    return _polyphase_up(input, s, index, None, size or full, filter_size, padding_mode)


def _polyphase_up(
    x: Tensor,
    s: tuple[int, int],
    index: Tensor | None,
    weights: Tensor | None,
    size: tuple[int, int],
    filter_size: FilterSpec | None,
    padding_mode: str,
) -> Tensor:
    fmt = _c.memory_format(x)
    up = _insert(x, s, index, weights)[:, :, : size[0], : size[1]]
    if _is_identity(filter_size):
        return up.contiguous(memory_format=fmt)
    return _c.tap_blur2d(up, _gain_rows(s, filter_size, True), padding_mode).contiguous(memory_format=fmt)


def _is_identity(filter_size: FilterSpec | None) -> bool:
    return filter_size is not None and _filters.filter_row(filter_size).numel() == 1


class BlurUpsample2d(nn.Module):
    """Anti-aliased replacement of ``nn.Upsample(scale_factor=s, mode="nearest")``: zero-insertion and
    the interpolation filter (see :func:`blur_upsample2d`); no parameters.

    Shape:
        ``(N, C, h, w) -> (N, C, h * s_h, w * s_w)``.

    Examples:
        >>> up = BlurUpsample2d(2)
        >>> torch.equal(up(torch.full((1, 1, 3, 3), 5.0)), torch.full((1, 1, 6, 6), 5.0))
        True
    """

    filter_h: Tensor
    filter_w: Tensor

    def __init__(
        self,
        stride: int | tuple[int, int] = 2,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "circular",
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`BlurUpsample2d`"
        self.stride = _c.pair(stride, "stride", where)
        _c.check_padding_mode(padding_mode, where)
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        rows = _gain_rows(self.stride, filter_size, True)
        factory = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        self.register_buffer("filter_h", rows[0].to(**factory), persistent=False)
        self.register_buffer("filter_w", rows[1].to(**factory), persistent=False)
        self._taps = rows  # float64 on the CPU: read as Python floats, no device sync per forward

    def forward(self, x: Tensor) -> Tensor:
        _c.check_input(x, "`BlurUpsample2d`")
        fmt = _c.memory_format(x)
        up = _insert(x, self.stride, None, None)
        return _c.tap_blur2d(up, self._taps, self.padding_mode).contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r}"


class PolyphaseUpsample2d(nn.Module):
    """Adaptive polyphase upsampling: put features back at the phase the linked APS/LPS layer kept
    (see :func:`polyphase_upsample2d`); no parameters.

    Args:
        link: The encoder downsampler's ``link`` (:class:`~antialias.downsample.PhaseLink`); that layer
            must run earlier in the same forward, on a map of the size this layer restores. None:
            phase 0 at ``stride`` (then the layer equals :class:`BlurUpsample2d`).
        filter_size: Interpolation ``row`` (default ``rect_s``); 1: a pure unpool.
        padding_mode: Padding of the filter.
        stride: The factor when ``link`` is None (else the link's).

    Shape:
        ``(N, C, h, w) -> (N, C, H, W)``, ``(H, W)`` the size the linked downsampler saw.

    Examples:
        >>> from antialias.downsample import APS2d
        >>> down = APS2d(stride=2); up = PolyphaseUpsample2d(down.link, filter_size=1)
        >>> x = torch.randn(1, 2, 5, 6)
        >>> y = up(down(x))  # the kept samples back where they were, zeros elsewhere
        >>> y.shape, bool(((y == x) | (y == 0)).all())
        (torch.Size([1, 2, 5, 6]), True)
    """

    def __init__(
        self,
        link: _c.PhaseLink | None,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "circular",
        *,
        stride: int | tuple[int, int] | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`PolyphaseUpsample2d`"
        if link is not None and not isinstance(link, _c.PhaseLink):
            raise TypeError(
                f"{where}: `link` must be a PhaseLink (a downsampler's `.link`), got {type(link).__name__}."
            )
        if link is None and stride is None:
            raise ValueError(f"{where}: without a `link`, pass `stride` (it then upsamples at phase 0).")
        _c.check_padding_mode(padding_mode, where)
        self.link = link
        self.stride = link.stride if link is not None else _c.pair(stride, "stride", where)
        self.filter_size = filter_size
        self.padding_mode = padding_mode

    def forward(self, x: Tensor) -> Tensor:
        where = "`PolyphaseUpsample2d`"
        _c.check_input(x, where)
        if self.link is None:  # unlinked: phase 0, full size (BlurUpsample2d's behaviour)
            full = (x.shape[2] * self.stride[0], x.shape[3] * self.stride[1])
            return _polyphase_up(x, self.stride, None, None, full, self.filter_size, self.padding_mode)
        self.link.check(where, x.shape[0], None)
        size = self.link.size
        if size is None:  # unreachable after check(); narrows the type for mypy
            raise RuntimeError(f"{where}: no phase recorded yet.")
        if _c.out_size(size, self.stride) != tuple(x.shape[-2:]):
            raise RuntimeError(
                f"{where}: the linked downsampler produced {_c.out_size(size, self.stride)} maps from {size}, "
                f"this layer got {tuple(x.shape[-2:])}; it is linked to the wrong downsampler."
            )
        return _polyphase_up(
            x, self.stride, self.link.index, self.link.weights, size, self.filter_size, self.padding_mode
        )

    def extra_repr(self) -> str:
        return f"stride={self.stride}, filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r}"


class BlurConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` followed by its child ``blur``: the interpolation filter normalised to sum 1
    (installed by :func:`antialias.convert` with ``upsample=True``; ``state_dict`` keys unchanged).

    Examples:
        >>> up = BlurConvTranspose2d(4, 4, 2, stride=2)
        >>> up(torch.randn(1, 4, 5, 5)).shape
        torch.Size([1, 4, 10, 10])
    """

    blur: nn.Module

    def __init__(self, *args: Any, filter_size: FilterSpec | None = None, blur_padding_mode: str = "circular",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_module("blur", _UpBlur(self.stride, filter_size, blur_padding_mode))

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return self.blur(super().forward(input, output_size))


class _UpBlur(nn.Module):
    """The stride-1 interpolation filter that follows a transposed conv (no persistent state)."""

    filter_h: Tensor
    filter_w: Tensor

    def __init__(self, stride: tuple[int, ...], filter_size: FilterSpec | None, padding_mode: str) -> None:
        super().__init__()
        s = (int(stride[0]), int(stride[1]))
        self.stride = s
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        rows = _gain_rows(s, filter_size, False)
        self.register_buffer("filter_h", rows[0].to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("filter_w", rows[1].to(torch.get_default_dtype()), persistent=False)
        self._taps = rows  # float64 on the CPU: read as Python floats, no device sync per forward

    def forward(self, x: Tensor) -> Tensor:
        fmt = _c.memory_format(x)
        return _c.tap_blur2d(x, self._taps, self.padding_mode).contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r}"


def to_blur_conv_transpose(conv: nn.ConvTranspose2d, filter_size: FilterSpec | None, padding_mode: str) -> nn.Module:
    """Turn a plain ``nn.ConvTranspose2d`` into a :class:`BlurConvTranspose2d` in place (same keys)."""
    ref = conv.weight
    conv.__class__ = BlurConvTranspose2d
    conv.add_module("blur", _UpBlur(conv.stride, filter_size, padding_mode).to(device=ref.device))
    return conv
