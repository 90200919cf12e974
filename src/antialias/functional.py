"""Stateless anti-aliased downsampling ops: all validation and all maths live here.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019): low-pass filter, then
subsample. ``blur_pool*`` pads each spatial axis by ``[floor((k-1)/2), ceil((k-1)/2)]`` and applies
the separable binomial filter at stride ``s``; this equals the reference formulation (pad, then a
depthwise convolution with the full outer-product kernel at stride ``s``) and gives ``ceil(L/s)``
outputs for every filter size. ``max_blur_pool*`` is a dense (stride-1) max followed by
``blur_pool*``, with exactly the output shape of the ``nn.MaxPool*d`` it replaces.

Padding modes: ``"reflect"`` (default, as the paper), ``"replicate"``, ``"zeros"``, ``"circular"``.
Deviation from the reference: where an axis is too short to reflect (``L <= ceil((k-1)/2)``, e.g.
the 1x1 and 2x2 maps at the end of CIFAR networks, where the reference crashes) that axis is padded
with ``"replicate"`` instead and a ``UserWarning`` is issued; circular padding wraps as many times
as needed on any length.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from antialias import _kernels
from antialias import filters as _filters
from antialias.filters import FilterSpec

__all__ = [
    "PADDING_MODES",
    "blur1d",
    "blur2d",
    "blur3d",
    "blur_pool1d",
    "blur_pool2d",
    "blur_pool3d",
    "max_blur_pool1d",
    "max_blur_pool2d",
    "max_blur_pool3d",
]

#: Accepted values of ``padding_mode``.
PADDING_MODES = ("reflect", "replicate", "zeros", "circular")

IntOrTuple = int | Sequence[int]
FilterArg = FilterSpec | Sequence[FilterSpec]


# --------------------------------------------------------------------------- validation helpers


def _tuple(value: IntOrTuple, nd: int, name: str, where: str, minimum: int) -> tuple[int, ...]:
    items = (value,) * nd if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) != nd
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in items)
    ):
        raise TypeError(f"{where}: `{name}` must be an int or a tuple of {nd} ints, got {value!r}.")
    if any(v < minimum for v in items):
        raise ValueError(f"{where}: `{name}` must be >= {minimum}, got {value!r}.")
    return tuple(items)


def _check_input(x: Tensor, nd: int, where: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: `input` must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim not in (nd + 1, nd + 2):
        shape = "(N, C, L)" if nd == 1 else "(N, C, H, W)" if nd == 2 else "(N, C, D, H, W)"
        raise ValueError(
            f"{where}: `input` must have {nd + 2} dims {shape} or {nd + 1} without the batch, "
            f"got shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{where}: `input` must be a floating-point tensor, got dtype {x.dtype}. "
            "Convert it first, e.g. x.float()."
        )


def _check_padding_mode(padding_mode: str, where: str) -> None:
    if padding_mode not in PADDING_MODES:
        close = difflib.get_close_matches(str(padding_mode), PADDING_MODES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: `padding_mode` must be one of {PADDING_MODES}, got {padding_mode!r}.{hint}")


def _rows(
    filter_size: FilterArg | None, filter: Sequence[Tensor] | None, nd: int, where: str, check_values: bool = True
) -> tuple[Tensor, ...]:
    """The blur rows: ``filter`` checked (its values too unless ``check_values`` is off, as for the
    layers' own buffers), else resolved from ``filter_size``."""
    if filter is not None:
        return _filters.check_rows(filter, nd, where=where, check_values=check_values)
    if filter_size is None:
        raise TypeError(f"{where}: `filter_size` must be given when `filter` is None, got None.")
    return _filters.filter_rows(filter_size, nd, where=where)


def _channels_last_format(x: Tensor, nd: int) -> torch.memory_format | None:
    """The channels-last format ``x`` is in (so the output keeps it), or None."""
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(nd)
    if fmt is not None and x.ndim == nd + 2 and x.is_contiguous(memory_format=fmt) and not x.is_contiguous():
        return fmt
    return None


# --------------------------------------------------------------------------- padding


def _axis_mode(length: int, before: int, after: int, mode: str) -> str:
    """The padding mode actually used on an axis of ``length``: ``mode``, except reflect on an axis
    too short for it, which becomes replicate with a warning."""
    if mode == "reflect" and max(before, after) >= length:
        warnings.warn(
            f"antialias: reflect padding of ({before}, {after}) needs an axis longer than "
            f"{max(before, after)}, got {length}; that axis is padded with 'replicate' instead.",
            UserWarning,
            stacklevel=4,
        )
        return "replicate"
    return mode


# --------------------------------------------------------------------------- generic ops


def _blur_pool(
    x: Tensor,
    nd: int,
    filter_size: FilterArg | None,
    stride: IntOrTuple,
    padding_mode: str,
    filter: Sequence[Tensor] | None,
    where: str,
    check_values: bool = True,
) -> Tensor:
    """``where`` is the public name as it starts error messages, in backticks (``"`blur_pool2d`"``);
    ``check_values=False`` skips the finiteness check of ``filter`` (the layers' own buffers)."""
    _check_input(x, nd, where)
    strides = _tuple(stride, nd, "stride", where, 1)
    _check_padding_mode(padding_mode, where)
    rows = _rows(filter_size, filter, nd, where, check_values)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    memory_format = _channels_last_format(x, nd)
    pads = [_filters.padding(row.numel()) for row in rows]
    modes = [_axis_mode(x.shape[2 + axis], *pads[axis], padding_mode) for axis in range(nd)]
    # Rows stay where they are (the kernels move them, memoising per device: no copy per call).
    # CPU: the antialias::blur_pool C++ op. Fallback, eager: banded matrix products; under
    # ONNX/jit tracing: pad + depthwise conv per axis.
    out = _kernels.blur_pool(x, rows, strides, pads, modes)
    if all(row.numel() == 1 for row in rows) and all(s == 1 for s in strides):
        out = out.clone()  # an identity op still returns a new tensor, as nn.MaxPool2d(1, 1) does
    if memory_format is not None:
        out = out.contiguous(memory_format=memory_format)
    return out.squeeze(0) if unbatched else out


def _max_blur_pool(
    x: Tensor,
    nd: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    ceil_mode: bool,
    filter_size: FilterArg | None,
    padding_mode: str,
    filter: Sequence[Tensor] | None,
    where: str,
    check_values: bool = True,
) -> Tensor:
    _check_input(x, nd, where)
    kernels = _tuple(kernel_size, nd, "kernel_size", where, 1)
    strides = kernels if stride is None or stride == [] else _tuple(stride, nd, "stride", where, 1)
    pads = _tuple(padding, nd, "padding", where, 0)
    dilations = _tuple(dilation, nd, "dilation", where, 1)
    _check_padding_mode(padding_mode, where)
    if any(p > k // 2 for p, k in zip(pads, kernels, strict=True)):
        raise ValueError(
            f"{where}: `padding` must be at most half of `kernel_size`, got padding={padding!r}, "
            f"kernel_size={kernel_size!r}."
        )
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    memory_format = _channels_last_format(x, nd)
    max_pads = []  # (before, after, circular) padding of the dense max, per axis
    for axis in range(nd):
        k, s, p, d = kernels[axis], strides[axis], pads[axis], dilations[axis]
        length = x.shape[2 + axis]
        span = d * (k - 1)
        dense_len = length + 2 * p - span
        if dense_len < 1 and padding_mode != "circular":  # a periodic axis wraps, any length works
            raise ValueError(
                f"{where}: `input` must be at least as large as the pooling window on spatial axis {axis} "
                f"(kernel_size={k}, dilation={d}, padding={p}), got size {length}."
            )
        if padding_mode == "circular":
            # A periodic signal has a periodic dense max: wrap instead of -inf padding, so the whole
            # op commutes with circular shifts by multiples of the stride (length stays L).
            max_pads.append((0, span, True))
            continue
        extra = 0
        if ceil_mode:
            # nn.MaxPool's ceil_mode output size, with its rule that the last window starts inside
            # the input or the left padding; windows past the end are clipped (-inf padded).
            out_len = -(-(dense_len - 1) // s) + 1
            if (out_len - 1) * s >= length + p:
                out_len -= 1
            extra = max(0, s * (out_len - 1) + 1 - dense_len)
        max_pads.append((p, p + extra, False))  # -inf cells
    # The blur runs on the dense max, whose length per axis is the padded length minus the window.
    dense_lengths = [
        x.shape[2 + axis] + max_pads[axis][0] + max_pads[axis][1] - dilations[axis] * (kernels[axis] - 1)
        for axis in range(nd)
    ]
    rows = _rows(filter_size, filter, nd, where, check_values)
    pads_blur = [_filters.padding(row.numel()) for row in rows]
    modes = [_axis_mode(dense_lengths[axis], *pads_blur[axis], padding_mode) for axis in range(nd)]
    # CPU: the antialias::max_blur_pool C++ op (the max padding folded into its index tables).
    # Fallback, eager: separable torch.maximum passes + banded blur in one autograd Function; under
    # ONNX/jit tracing: -inf/circular padding, F.max_pool at stride 1, pad + depthwise conv. All
    # give each window's gradient to its first maximum in raster order, as F.max_pool2d.
    out = _kernels.max_blur_pool(x, kernels, dilations, rows, strides, pads_blur, modes, max_pads=max_pads)
    if all(k == 1 for k in kernels) and all(row.numel() == 1 for row in rows) and all(s == 1 for s in strides):
        out = out.clone()  # an identity op still returns a new tensor
    if memory_format is not None:
        out = out.contiguous(memory_format=memory_format)
    return out.squeeze(0) if unbatched else out


# --------------------------------------------------------------------------- public ops


def blur_pool1d(
    input: Tensor,
    filter_size: FilterArg = 4,
    stride: IntOrTuple = 2,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Blur with a binomial filter, then subsample: the 1-D BlurPool of Zhang (ICML 2019).

    Args:
        input: ``(N, C, L)`` or ``(C, L)`` floating-point tensor.
        filter_size: Taps ``k`` of the binomial filter, a name (``"rect2"``, ``"tri3"``, ``"tri4"``,
            ``"bin5"``) or a custom 1-D tensor.
        stride: Subsampling factor ``s >= 1``.
        padding_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.
        filter: Precomputed rows (a 1-tuple of 1-D tensors) used instead of ``filter_size``; they
            are constants (no gradient flows into them).

    Shape:
        ``(N, C, L) -> (N, C, ceil(L / s))``.

    Examples:
        >>> blur_pool1d(torch.tensor([[[0., 0., 1., 1., 0., 0., 1., 1.]]]), "rect2", padding_mode="circular")
        tensor([[[0., 1., 0., 1.]]])
    """
    return _blur_pool(input, 1, filter_size, stride, padding_mode, filter, "`blur_pool1d`")


def blur_pool2d(
    input: Tensor,
    filter_size: FilterArg = 4,
    stride: IntOrTuple = 2,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Blur with a separable binomial filter, then subsample: BlurPool of Zhang (ICML 2019).

    Equals reflect-padding by ``[floor((k-1)/2), ceil((k-1)/2)]`` per axis and a depthwise
    convolution with the ``k x k`` outer-product kernel at stride ``s`` (the reference formulation).
    Also the anti-aliased replacement for ``avg_pool2d`` (which is ``filter_size="rect2"``).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)`` floating-point tensor; channels_last is kept.
        filter_size: Taps of the binomial filter, a name (``"rect2"``, ``"tri3"``, ``"tri4"``,
            ``"bin5"``), a custom 1-D tensor, or a pair of these for (H, W).
        stride: Subsampling factor, an int or ``(s_h, s_w)``.
        padding_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.
        filter: Precomputed rows ``(row_h, row_w)`` used instead of ``filter_size``; they are
            constants (no gradient flows into them).

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Raises:
        ValueError: wrong number of dims, stride < 1, unknown padding mode or filter.
        TypeError: a non-floating-point input.

    Examples:
        >>> blur_pool2d(torch.ones(1, 3, 7, 7), "bin5").shape
        torch.Size([1, 3, 4, 4])
    """
    return _blur_pool(input, 2, filter_size, stride, padding_mode, filter, "`blur_pool2d`")


def blur_pool3d(
    input: Tensor,
    filter_size: FilterArg = 4,
    stride: IntOrTuple = 2,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """The 3-D BlurPool (see :func:`blur_pool2d`).

    Shape:
        ``(N, C, D, H, W) -> (N, C, ceil(D / s_d), ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> blur_pool3d(torch.ones(1, 2, 5, 6, 7)).shape
        torch.Size([1, 2, 3, 3, 4])
    """
    return _blur_pool(input, 3, filter_size, stride, padding_mode, filter, "`blur_pool3d`")


def blur1d(
    input: Tensor,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Blur at stride 1 (same length out): :func:`blur_pool1d` with ``stride=1``."""
    return _blur_pool(input, 1, filter_size, 1, padding_mode, filter, "`blur1d`")


def blur2d(
    input: Tensor,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Blur at stride 1 (same size out): :func:`blur_pool2d` with ``stride=1``.

    Examples:
        >>> blur2d(torch.ones(1, 1, 5, 5)).shape
        torch.Size([1, 1, 5, 5])
    """
    return _blur_pool(input, 2, filter_size, 1, padding_mode, filter, "`blur2d`")


def blur3d(
    input: Tensor,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Blur at stride 1 (same size out): :func:`blur_pool3d` with ``stride=1``."""
    return _blur_pool(input, 3, filter_size, 1, padding_mode, filter, "`blur3d`")


def max_blur_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Anti-aliased ``max_pool1d``: dense max at stride 1, then :func:`blur_pool1d` at ``stride``.

    Arguments as :func:`max_blur_pool2d`. Shape: as ``F.max_pool1d`` with the same arguments.

    Examples:
        >>> x = torch.tensor([[[0., 0., 1., 1., 0., 0., 1., 1.]]])
        >>> max_blur_pool1d(x, 2, filter_size="tri3", padding_mode="circular")
        tensor([[[0.5000, 1.0000, 0.5000, 1.0000]]])
    """
    where = "`max_blur_pool1d`"
    return _max_blur_pool(
        input, 1, kernel_size, stride, padding, dilation, ceil_mode, filter_size, padding_mode, filter, where
    )


def max_blur_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Anti-aliased ``max_pool2d`` (MaxBlurPool, Zhang ICML 2019): dense max, blur, subsample.

    The max is taken over ``kernel_size`` windows at stride 1 (with ``padding`` and ``dilation`` as
    ``F.max_pool2d``; padded cells are ``-inf``), then :func:`blur_pool2d` subsamples by ``stride``.
    The output has the shape ``F.max_pool2d`` gives for the same arguments, ``ceil_mode`` included.

    With ``padding_mode="circular"`` the input is treated as periodic: the max wraps around too
    (``padding`` and ``ceil_mode`` do not apply), the output is ``ceil(H / s)`` (the max-pool's size
    whenever ``s`` divides ``H + 2p - d(k-1)`` rounding aside, e.g. ``k = s = 2`` on even sizes), and a
    circular shift of the input by a multiple ``s*m`` shifts the output by exactly ``m``.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)`` floating-point tensor.
        kernel_size: Max-pool window.
        stride: Subsampling factor; defaults to ``kernel_size`` as in ``F.max_pool2d``.
        padding: Implicit ``-inf`` padding of the max, at most ``kernel_size // 2``.
        dilation: Spacing of the max-pool window.
        ceil_mode: Use ceil instead of floor for the output size, as ``F.max_pool2d``.
        filter_size: Blur filter (see :func:`blur_pool2d`).
        padding_mode: Padding of the blur.
        filter: Precomputed blur rows ``(row_h, row_w)``.

    Shape:
        ``(N, C, H, W) -> (N, C, H_out, W_out)`` with
        ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`` (``ceil`` in ``ceil_mode``), as max-pool.

    Examples:
        >>> max_blur_pool2d(torch.randn(2, 3, 9, 9), 2).shape
        torch.Size([2, 3, 4, 4])
    """
    where = "`max_blur_pool2d`"
    return _max_blur_pool(
        input, 2, kernel_size, stride, padding, dilation, ceil_mode, filter_size, padding_mode, filter, where
    )


def max_blur_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    filter_size: FilterArg = 4,
    padding_mode: str = "reflect",
    *,
    filter: Sequence[Tensor] | None = None,
) -> Tensor:
    """Anti-aliased ``max_pool3d``; arguments and shape as :func:`max_blur_pool2d` in 3-D.

    Examples:
        >>> max_blur_pool3d(torch.randn(1, 2, 6, 6, 6), 2).shape
        torch.Size([1, 2, 3, 3, 3])
    """
    where = "`max_blur_pool3d`"
    return _max_blur_pool(
        input, 3, kernel_size, stride, padding, dilation, ceil_mode, filter_size, padding_mode, filter, where
    )
