"""``nn.Module`` wrappers of :mod:`antialias.functional` (Zhang, ICML 2019).

Each layer builds its blur rows once, as non-persistent buffers (``filter_l`` in 1-D; ``filter_h``,
``filter_w`` in 2-D; ``filter_d``, ``filter_h``, ``filter_w`` in 3-D): they follow ``.to()`` and
``.half()``, stay out of ``state_dict`` (baseline checkpoints load with ``strict=True``), and a
checkpoint in the reference layout, whose persistent ``<prefix>.filt`` holds the ``(C, 1, k, k)``
kernel, loads too: the entry is checked against this layer's filter and dropped.

The public ops are registered with ``torch.fx.wrap``, so ``torch.fx.symbolic_trace`` records each
layer's op as one call instead of tracing into its input checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.fx
from torch import Tensor, nn

from antialias import filters as _filters
from antialias import functional as _F
from antialias.filters import FilterSpec

__all__ = [
    "BlurConv2d",
    "BlurPool1d",
    "BlurPool2d",
    "BlurPool3d",
    "ConvBlurPool2d",
    "MaxBlurPool1d",
    "MaxBlurPool2d",
    "MaxBlurPool3d",
]

_AXES = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}

#: ``padding_mode`` of an ``nn.Conv2d``.
ConvPaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def _check_channels(x: Tensor, nd: int, channels: int | None, where: str) -> None:
    if channels is not None and isinstance(x, Tensor) and x.ndim in (nd + 1, nd + 2):
        got = x.shape[x.ndim - nd - 1]
        if got != channels:
            raise ValueError(
                f"{where}: `input` must have {channels} channels, got shape {tuple(x.shape)} "
                f"({got} channels). Build the layer with channels={got} or channels=None."
            )


def _blur_pool_forward(
    x: Tensor,
    nd: int,
    channels: int | None,
    stride: tuple[int, ...],
    padding_mode: str,
    rows: tuple[Tensor, ...],
    where: str,
) -> Tensor:
    _check_channels(x, nd, channels, where)
    # The layer's own rows (from filter_rows, finite by construction): no per-forward value check.
    return _F._blur_pool(x, nd, None, stride, padding_mode, rows, where, check_values=False)


def _max_blur_pool_forward(
    x: Tensor,
    nd: int,
    channels: int | None,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    ceil_mode: bool,
    padding_mode: str,
    rows: tuple[Tensor, ...],
    where: str,
) -> Tensor:
    _check_channels(x, nd, channels, where)
    return _F._max_blur_pool(
        x, nd, kernel_size, stride, padding, dilation, ceil_mode, None, padding_mode, rows, where, check_values=False
    )


# fx records these as leaf calls (their checks branch on shapes, which symbolic tracing cannot).
torch.fx.wrap("_blur_pool_forward")
torch.fx.wrap("_max_blur_pool_forward")


class _Filtered(nn.Module):
    """Holds the blur rows as buffers, the channel count, and the reference-checkpoint load hook."""

    _nd: int

    def __init__(
        self,
        channels: int | None,
        filter_size: FilterSpec | Sequence[FilterSpec],
        padding_mode: str,
        *,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        where = self._where
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
            raise ValueError(f"{where}: `channels` must be a positive int or None, got {channels!r}.")
        _F._check_padding_mode(padding_mode, where)
        self.channels = channels
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        rows = _filters.filter_rows(filter_size, self._nd, where=where)
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        for axis, row in zip(_AXES[self._nd], rows, strict=True):
            self.register_buffer(f"filter_{axis}", row.to(device=device, dtype=dtype), persistent=False)

    @property
    def _where(self) -> str:
        """The class name as error messages start with it (``"`BlurPool2d`"``)."""
        return f"`{type(self).__name__}`"

    @property
    def filter(self) -> tuple[Tensor, ...]:
        """The blur rows, one per spatial axis (outermost first)."""
        return tuple(getattr(self, f"filter_{axis}") for axis in _AXES[self._nd])

    @property
    def kernel(self) -> Tensor:
        """The full blur kernel: outer product of :attr:`filter`."""
        return _filters.kernel(self.filter)

    def reset_parameters(self) -> None:
        """Refill the filter buffers (after ``to_empty()`` from the meta device, say)."""
        rows = _filters.filter_rows(self.filter_size, self._nd, where=self._where)
        with torch.no_grad():
            for buf, row in zip(self.filter, rows, strict=True):
                buf.copy_(row)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "filt"
        if key in state_dict:
            # The reference stores the (C, 1, k, k) kernel; accept it if it is ours, then drop it.
            stored = state_dict.pop(key)
            mine = self.kernel.detach().to("cpu", torch.float64)
            ok = (
                isinstance(stored, Tensor)
                and stored.ndim == self._nd + 2
                and tuple(stored.shape[2:]) == tuple(mine.shape)
                and (self.channels is None or stored.shape[0] == self.channels)
                and torch.allclose(stored.detach().to("cpu", torch.float64), mine.expand_as(stored), atol=1e-4)
            )
            if not ok:
                shape = tuple(stored.shape) if isinstance(stored, Tensor) else type(stored).__name__
                error_msgs.append(
                    f"{key}: the checkpoint's blur filter (shape {shape}) is not this layer's "
                    f"filter_size={self.filter_size!r} (kernel {tuple(mine.shape)}, channels={self.channels}). "
                    "Build the model with the checkpoint's filter size."
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class _BlurPoolNd(_Filtered):
    def __init__(
        self,
        channels: int | None = None,
        filter_size: FilterSpec | Sequence[FilterSpec] = 4,
        stride: int | Sequence[int] = 2,
        padding_mode: str = "reflect",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(channels, filter_size, padding_mode, device=device, dtype=dtype)
        self.stride = _F._tuple(stride, self._nd, "stride", self._where, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _blur_pool_forward(x, self._nd, self.channels, self.stride, self.padding_mode, self.filter, self._where)

    def extra_repr(self) -> str:
        channels = "" if self.channels is None else f"{self.channels}, "
        return f"{channels}filter_size={self.filter_size!r}, stride={self.stride}, padding_mode={self.padding_mode!r}"


class BlurPool1d(_BlurPoolNd):
    """Blur with a binomial filter, then subsample (1-D). See :class:`BlurPool2d`.

    Shape:
        ``(N, C, L) -> (N, C, ceil(L / stride))``.
    """

    _nd = 1


class BlurPool2d(_BlurPoolNd):
    """Anti-aliased subsampling, BlurPool of Zhang (ICML 2019): binomial blur, then stride.

    Replaces ``nn.AvgPool2d(k, s)`` (avg-pool is the box filter ``rect2``) and follows stride-1
    max-pools and convolutions in the anti-aliased networks. See :func:`antialias.functional.blur_pool2d`.

    Args:
        channels: Expected input channels (checked), or None to accept any.
        filter_size: Binomial taps (1..), a name (``"rect2"``, ``"tri3"``, ``"tri4"``, ``"bin5"``), a
            custom 1-D tensor, or a pair of these for (H, W).
        stride: Subsampling factor, an int or ``(s_h, s_w)``.
        padding_mode: ``"reflect"`` (default), ``"replicate"``, ``"zeros"`` or ``"circular"``.
        device: Device of the filter buffers.
        dtype: Dtype of the filter buffers (default: the default float dtype).

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> pool = BlurPool2d(64, filter_size="tri4")
        >>> pool(torch.randn(2, 64, 57, 56)).shape
        torch.Size([2, 64, 29, 28])
    """

    _nd = 2


class BlurPool3d(_BlurPoolNd):
    """Blur with a binomial filter, then subsample (3-D). See :class:`BlurPool2d`.

    Shape:
        ``(N, C, D, H, W) -> (N, C, ceil(D / s_d), ceil(H / s_h), ceil(W / s_w))``.
    """

    _nd = 3


class _MaxBlurPoolNd(_Filtered):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        ceil_mode: bool = False,
        *,
        channels: int | None = None,
        filter_size: FilterSpec | Sequence[FilterSpec] = 4,
        padding_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(channels, filter_size, padding_mode, device=device, dtype=dtype)
        where = self._where
        nd = self._nd
        self.kernel_size = _F._tuple(kernel_size, nd, "kernel_size", where, 1)
        self.stride = self.kernel_size if stride is None else _F._tuple(stride, nd, "stride", where, 1)
        self.padding = _F._tuple(padding, nd, "padding", where, 0)
        self.dilation = _F._tuple(dilation, nd, "dilation", where, 1)
        self.ceil_mode = bool(ceil_mode)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{where}: `padding` must be at most half of `kernel_size`, got padding={padding!r}, "
                f"kernel_size={kernel_size!r}."
            )

    def forward(self, x: Tensor) -> Tensor:
        return _max_blur_pool_forward(
            x, self._nd, self.channels, self.kernel_size, self.stride, self.padding, self.dilation,
            self.ceil_mode, self.padding_mode, self.filter, self._where,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, filter_size={self.filter_size!r}, "
            f"padding_mode={self.padding_mode!r}"
        )


class MaxBlurPool1d(_MaxBlurPoolNd):
    """Anti-aliased drop-in for ``nn.MaxPool1d``. See :class:`MaxBlurPool2d`."""

    _nd = 1


class MaxBlurPool2d(_MaxBlurPoolNd):
    """Anti-aliased drop-in for ``nn.MaxPool2d`` (MaxBlurPool of Zhang, ICML 2019).

    Max over ``kernel_size`` windows at stride 1, then blur and subsample by ``stride``; the
    arguments mean what they mean to ``nn.MaxPool2d`` and the output has its shape.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode: As ``nn.MaxPool2d``.
        channels: Expected input channels (checked), or None.
        filter_size: Blur filter (see :class:`BlurPool2d`).
        padding_mode: Padding of the blur.
        device, dtype: Of the filter buffers.

    Shape:
        As ``nn.MaxPool2d``: ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`` (ceil in ``ceil_mode``).

    Examples:
        >>> MaxBlurPool2d(2)(torch.randn(1, 8, 31, 32)).shape
        torch.Size([1, 8, 15, 16])
    """

    _nd = 2


class MaxBlurPool3d(_MaxBlurPoolNd):
    """Anti-aliased drop-in for ``nn.MaxPool3d``. See :class:`MaxBlurPool2d`."""

    _nd = 3


class ConvBlurPool2d(nn.Module):
    """Anti-aliased strided convolution, the paper's placement: conv at stride 1, norm, activation, BlurPool.

    Zhang (ICML 2019) blurs after the nonlinearity: ``Conv(s) -> ReLU`` becomes
    ``Conv(1) -> ReLU -> BlurPool(s)``. Costs ``s**2`` times the conv FLOPs of the strided conv.

    Args:
        in_channels, out_channels, kernel_size, padding, dilation, groups, bias: As ``nn.Conv2d``.
        stride: Subsampling of the BlurPool (the conv runs at stride 1).
        conv_padding_mode: ``padding_mode`` of the conv.
        norm_layer: Called with ``out_channels`` (e.g. ``nn.BatchNorm2d``), or None for none.
        act_layer: Called with no arguments (e.g. ``nn.ReLU`` or ``functools.partial(nn.ReLU, inplace=True)``),
            or None for none.
        filter_size, padding_mode: Of the BlurPool.
        device, dtype: Of all parameters and buffers.

    Shape:
        As the strided ``nn.Conv2d``: ``ceil((H + 2p - d(k-1)) / s)`` per axis.

    Examples:
        >>> layer = ConvBlurPool2d(3, 16, 3, stride=2, padding=1, norm_layer=nn.BatchNorm2d)
        >>> layer(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | Sequence[int] = 2,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        conv_padding_mode: ConvPaddingMode = "zeros",
        *,
        norm_layer: Callable[[int], nn.Module] | None = None,
        act_layer: Callable[[], nn.Module] | None = nn.ReLU,
        filter_size: FilterSpec | Sequence[FilterSpec] = 4,
        padding_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, 1, padding, dilation, groups, bias, conv_padding_mode, **factory
        )
        self.norm = nn.Identity() if norm_layer is None else norm_layer(out_channels, **factory)
        self.act = nn.Identity() if act_layer is None else act_layer()
        self.blur = BlurPool2d(out_channels, filter_size, stride, padding_mode, **factory)

    def forward(self, x: Tensor) -> Tensor:
        return self.blur(self.act(self.norm(self.conv(x))))


class BlurConv2d(nn.Module):
    """Blur at stride 1, then the strided convolution: the cheap blur-first variant.

    Deviation from the paper, which blurs after the nonlinearity (:class:`ConvBlurPool2d`): the
    convolution keeps its stride (no ``s**2`` FLOPs) and sees a low-passed input. For a 1x1 conv it
    equals BlurPool then the conv at stride 1 (both are linear and commute); for larger kernels it
    is a different, cheaper network.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: As ``nn.Conv2d``.
        conv_padding_mode: ``padding_mode`` of the conv.
        filter_size, padding_mode: Of the blur.
        device, dtype: Of all parameters and buffers.

    Shape:
        As ``nn.Conv2d`` with the same arguments.

    Examples:
        >>> BlurConv2d(3, 8, 3, stride=2, padding=1)(torch.randn(1, 3, 15, 15)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 2,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        conv_padding_mode: ConvPaddingMode = "zeros",
        *,
        filter_size: FilterSpec | Sequence[FilterSpec] = 4,
        padding_mode: str = "reflect",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.blur = BlurPool2d(in_channels, filter_size, 1, padding_mode, **factory)
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, conv_padding_mode,
            **factory,
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.blur(x))
