"""Python side of the ``antialias::*`` custom operators (schemas and CPU kernels in ``csrc/``).

Four ops, all on batched 2-D maps ``(N, C, H, W)`` (1-D maps run as ``H = 1``; 3-D maps use the
pure-PyTorch kernels):

* ``blur_pool(x, rows, stride, pad_before, pad_after, padding_mode)``: per axis pad, correlate
  with ``rows[i]``, keep every ``stride[i]``-th output.
* ``max_blur_pool(x, kernel, dilation, max_pad_before, max_pad_after, rows, stride, pad_before,
  pad_after, padding_mode)``: the dense (stride-1) max over ``kernel`` windows with ``dilation``,
  ``-inf`` padding ``max_pad_*`` (``ceil_mode`` is folded into ``max_pad_after``; with
  ``"circular"`` the max wraps instead), then ``blur_pool`` of it.
* ``blur_pool_backward`` and ``max_blur_pool_backward``: their input gradients, ops of their own
  so that ``torch.compile`` keeps the backward graph opaque too. Max-blur's recomputes each
  window's first maximum in raster order from the saved input (``F.max_pool2d``'s rule).

``padding_mode`` is the user's mode: an axis too short to reflect is padded with ``"replicate"``,
decided inside the kernel by the same rule as :mod:`antialias.functional`. Filter rows are
constants: no gradient flows into them.

Here: the fake (meta) kernels, the autograd formulas, and thin call wrappers for
:mod:`antialias._kernels`, and the traceable (plain ATen) path they share with it. :func:`backend`
loads the library through :mod:`antialias._ext` and then runs :func:`register`, once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias import _ext

_ONE = torch.ones(1, dtype=torch.float64)  # the identity filter of the dummy H axis of 1-D maps


#: Per-axis arguments: one filter row, stride, ``(before, after)`` padding and padding mode per axis.
Rows = Sequence[Tensor]
Pads = Sequence[tuple[int, int]]


def _ops() -> Any:  # torch.ops.antialias: a namespace whose ops exist only once the library is loaded
    return torch.ops.antialias


# --------------------------------------------------------------------------- shapes (fake kernels)


def _blur_len(length: int, k: int, before: int, after: int, stride: int) -> int:
    return (length + before + after - k) // stride + 1


def _empty_like_layout(x: Tensor, shape: Sequence[int]) -> Tensor:
    """An output in the layout the C++ kernels produce: channels_last iff ``x`` is channels_last
    and not also plainly contiguous; contiguous otherwise."""
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _fake_blur_pool(
    x: Tensor, rows: Rows, stride: Sequence[int], pad_before: Sequence[int], pad_after: Sequence[int], padding_mode: str
) -> Tensor:
    shape = [
        x.shape[0],
        x.shape[1],
        *(_blur_len(x.shape[2 + a], rows[a].numel(), pad_before[a], pad_after[a], stride[a]) for a in range(2)),
    ]
    return _empty_like_layout(x, shape)


def _fake_blur_pool_backward(
    grad: Tensor,
    rows: Rows,
    input_size: Sequence[int],
    stride: Sequence[int],
    pad_before: Sequence[int],
    pad_after: Sequence[int],
    padding_mode: str,
) -> Tensor:
    return _empty_like_layout(grad, [grad.shape[0], grad.shape[1], *input_size])


def _dense_len(length: int, kernel: int, dilation: int, before: int, after: int) -> int:
    return length + before + after - dilation * (kernel - 1)


def _fake_max_blur_pool(
    x: Tensor,
    kernel: Sequence[int],
    dilation: Sequence[int],
    max_pad_before: Sequence[int],
    max_pad_after: Sequence[int],
    rows: Rows,
    stride: Sequence[int],
    pad_before: Sequence[int],
    pad_after: Sequence[int],
    padding_mode: str,
) -> Tensor:
    shape = [x.shape[0], x.shape[1]]
    for a in range(2):
        dense = _dense_len(x.shape[2 + a], kernel[a], dilation[a], max_pad_before[a], max_pad_after[a])
        shape.append(_blur_len(dense, rows[a].numel(), pad_before[a], pad_after[a], stride[a]))
    return _empty_like_layout(x, shape)


def _fake_max_blur_pool_backward(grad: Tensor, x: Tensor, *args: Any) -> Tensor:
    return _empty_like_layout(x, list(x.shape))


# --------------------------------------------------------------------------- traceable path
#
# Plain ATen ops (pad + depthwise conv, F.max_pool at stride 1): the fallback of every path and the
# ops' double backward; :mod:`antialias._kernels` re-uses them.

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def pad_index(length: int, before: int, after: int, mode: str, device: torch.device | None = None) -> Tensor:
    """Source index of every cell of an axis of ``length`` padded by ``(before, after)``.

    ``-1`` marks a zero cell (``mode="zeros"``). ``"reflect"`` needs ``max(before, after) < length``
    (the caller substitutes ``"replicate"`` otherwise); ``"circular"`` wraps any number of times.
    """
    index = torch.arange(-before, length + after, device=device)
    if mode == "circular":
        return index % length
    if mode == "replicate":
        return index.clamp(0, length - 1)
    if mode == "reflect":
        index = index.abs()
        return torch.where(index > length - 1, 2 * (length - 1) - index, index)
    if mode == "zeros":
        return torch.where((index < 0) | (index >= length), -1, index)
    raise ValueError(f"pad_index: unknown mode {mode!r}")


def blur_axis(x: Tensor, row: Tensor, dim: int, stride: int) -> Tensor:
    """Traceable path: correlate the (already padded) axis ``dim`` with ``row``, keeping every
    ``stride``-th output. Output length along ``dim``: ``floor((L - k) / stride) + 1``.
    """
    k = row.numel()
    if k == 1:
        index = [slice(None)] * x.ndim
        index[dim] = slice(None, None, stride)
        return x[tuple(index)]
    nd = x.ndim - 2
    channels = x.shape[1]
    shape = [1] * nd
    shape[dim - 2] = k
    strides = [1] * nd
    strides[dim - 2] = stride
    weight = row.to(dtype=x.dtype, device=x.device).reshape(1, 1, *shape).expand(channels, 1, *shape)
    return _CONV[nd](x, weight, stride=strides, groups=channels)


def pad_axis(x: Tensor, dim: int, before: int, after: int, mode: str, value: float = 0.0) -> Tensor:
    """Pad one spatial ``dim`` with ``mode`` (a padding mode, or ``"constant"`` with ``value``).

    Circular padding wraps any number of times, unlike ``F.pad``'s circular mode.
    """
    if before == 0 and after == 0:
        return x
    if mode == "circular":
        index = pad_index(x.shape[dim], before, after, mode, x.device)
        return x.index_select(dim, index)
    # F.pad takes pairs from the last axis backwards; its reflect/replicate modes want one per spatial axis.
    pad = [0, 0] * (x.ndim - 2)
    pad[2 * (x.ndim - 1 - dim)] = before
    pad[2 * (x.ndim - 1 - dim) + 1] = after
    if mode in ("zeros", "constant"):
        return F.pad(x, pad, mode="constant", value=value)
    return F.pad(x, pad, mode=mode)


def blur_pool_traceable(x: Tensor, rows: Rows, strides: Sequence[int], pads: Pads, modes: Sequence[str]) -> Tensor:
    """Pad + depthwise convolution per axis (plain ATen ops; see :mod:`antialias._kernels`)."""
    out = x
    for axis, (row, stride, (before, after), mode) in enumerate(zip(rows, strides, pads, modes, strict=True)):
        out = pad_axis(out, 2 + axis, before, after, mode)
        out = blur_axis(out, row, 2 + axis, stride)
    return out


def dense_max_traceable(x: Tensor, kernels: Sequence[int], dilations: Sequence[int]) -> Tensor:
    """``F.max_pool{1,2,3}d`` at stride 1 (routes gradients to the first maximum in raster order)."""
    if all(k == 1 for k in kernels):
        return x
    return _MAX_POOL[len(kernels)](x, list(kernels), stride=1, dilation=list(dilations))


def pad_for_max(x: Tensor, max_pads: Sequence[tuple[int, int, bool]]) -> Tensor:
    """Pad each spatial axis by ``max_pads[i] = (before, after, circular)`` for the dense max:
    ``-inf`` cells, or wrapped ones when ``circular``."""
    for axis, (before, after, circular) in enumerate(max_pads):
        if circular:
            x = pad_axis(x, 2 + axis, before, after, "circular")
        elif before or after:
            x = pad_axis(x, 2 + axis, before, after, "constant", value=float("-inf"))
    return x


def max_blur_pool_reference(
    x: Tensor,
    kernel: Sequence[int],
    dilation: Sequence[int],
    max_pad_before: Sequence[int],
    max_pad_after: Sequence[int],
    rows: Rows,
    stride: Sequence[int],
    pad_before: Sequence[int],
    pad_after: Sequence[int],
    padding_mode: str,
) -> Tensor:
    """``antialias::max_blur_pool`` (4-D, the op's arguments) by the traceable path: its autograd
    gives the ops' double backward."""
    circular = padding_mode == "circular"
    dense = pad_for_max(x, [(b, a, circular) for b, a in zip(max_pad_before, max_pad_after, strict=True)])
    dense = dense_max_traceable(dense, kernel, dilation)
    pads = list(zip(pad_before, pad_after, strict=True))
    modes = [
        "replicate" if padding_mode == "reflect" and max(pads[a]) >= dense.shape[2 + a] else padding_mode
        for a in range(len(kernel))
    ]
    return blur_pool_traceable(dense, rows, stride, pads, modes)


# --------------------------------------------------------------------------- autograd


def _blur_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, rows, stride, pad_before, pad_after, padding_mode = inputs
    # The rows are constant filter buffers, not activations: nothing input-sized is kept.
    ctx.args = (rows, [int(s) for s in x.shape[2:]], stride, pad_before, pad_after, padding_mode)


def _blur_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    rows, size, stride, pad_before, pad_after, mode = ctx.args
    grad_in = _ops().blur_pool_backward(grad, rows, size, stride, pad_before, pad_after, mode)
    return grad_in, [None] * len(rows), None, None, None, None


def _blur_backward_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    _grad, rows, _input_size, stride, pad_before, pad_after, padding_mode = inputs
    ctx.args = (rows, stride, pad_before, pad_after, padding_mode)


def _blur_backward_backward(ctx: Any, grad_grad: Tensor) -> tuple[Any, ...]:
    # The blur is linear: the derivative of its vector-Jacobian product is the blur itself.
    rows, stride, pad_before, pad_after, mode = ctx.args
    grad = _ops().blur_pool(grad_grad, rows, stride, pad_before, pad_after, mode)
    return grad, [None] * len(rows), None, None, None, None, None


def _no_grads(args: Sequence[Any]) -> tuple[Any, ...]:
    """``None`` for every argument, shaped like them (a list of rows gets a list of ``None``)."""
    return tuple(
        [None] * len(a) if isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor) else None for a in args
    )


def _max_blur_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, *args = inputs
    ctx.save_for_backward(x)
    ctx.args = args


def _max_blur_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    (x,) = ctx.saved_tensors
    grad_in = _ops().max_blur_pool_backward(grad, x, *ctx.args)
    return (grad_in, *_no_grads(ctx.args))


def _max_blur_backward_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    grad, x, *args = inputs
    ctx.save_for_backward(x)
    ctx.args = args
    ctx.grad_shape = grad.shape


def _max_blur_backward_backward(ctx: Any, grad_grad: Tensor) -> tuple[Any, ...]:
    """Double backward. The input gradient is linear in ``grad`` and locally constant in ``x``
    (which element is each window's maximum does not change under small perturbations), so only
    ``grad`` gets a gradient: the pure-PyTorch path's, by differentiating its own backward."""
    (x,) = ctx.saved_tensors
    with torch.enable_grad():
        leaf = x.detach().requires_grad_()
        out = max_blur_pool_reference(leaf, *ctx.args)
        probe = torch.zeros(ctx.grad_shape, dtype=out.dtype, device=out.device, requires_grad=True)
        (gx,) = torch.autograd.grad(out, leaf, probe, create_graph=True)
        (gg,) = torch.autograd.grad(gx, probe, grad_grad, create_graph=torch.is_grad_enabled())
    return (gg, None, *_no_grads(ctx.args))


def backend() -> _ext.Backend:
    """:func:`antialias._ext.backend` (building or loading the library once), with the ops'
    fake kernels and autograd formulas registered when it loaded."""
    active = _ext.backend()
    if active.compiled:
        register()
    return active


def description() -> str:
    """Which kernels run on CPU, in one line, without building anything (:func:`antialias._ext.description`)."""
    return _ext.description()


@functools.cache
def register() -> None:
    """Register fake kernels and autograd formulas (once; the library must be loaded)."""
    lib = torch.library
    lib.register_fake("antialias::blur_pool", _fake_blur_pool)
    lib.register_fake("antialias::blur_pool_backward", _fake_blur_pool_backward)
    lib.register_fake("antialias::max_blur_pool", _fake_max_blur_pool)
    lib.register_fake("antialias::max_blur_pool_backward", _fake_max_blur_pool_backward)
    lib.register_autograd("antialias::blur_pool", _blur_backward, setup_context=_blur_setup)
    lib.register_autograd(
        "antialias::blur_pool_backward", _blur_backward_backward, setup_context=_blur_backward_setup
    )
    lib.register_autograd("antialias::max_blur_pool", _max_blur_backward, setup_context=_max_blur_setup)
    lib.register_autograd(
        "antialias::max_blur_pool_backward", _max_blur_backward_backward, setup_context=_max_blur_backward_setup
    )


# --------------------------------------------------------------------------- call wrappers


def _mode(modes: Sequence[str]) -> str:
    """The user's padding mode from the per-axis modes (only reflect is ever substituted)."""
    return "reflect" if "reflect" in modes else modes[0]


def _as_2d(
    x: Tensor, rows: Rows, strides: Sequence[int], pads: Pads
) -> tuple[Tensor, list[Tensor], list[int], list[int], list[int]]:
    """1-D maps as ``(N, C, 1, L)`` with the identity filter on the dummy axis."""
    if x.ndim == 4:
        return x, list(rows), list(strides), [p[0] for p in pads], [p[1] for p in pads]
    return x.unsqueeze(2), [_ONE, rows[0]], [1, strides[0]], [0, pads[0][0]], [0, pads[0][1]]


def blur_pool(x: Tensor, rows: Rows, strides: Sequence[int], pads: Pads, modes: Sequence[str]) -> Tensor:
    """``antialias::blur_pool`` on a batched 1-D or 2-D map (arguments as :func:`antialias._kernels.blur_pool`)."""
    x4, rows4, strides4, before, after = _as_2d(x, rows, strides, pads)
    out = _ops().blur_pool(x4, rows4, strides4, before, after, _mode(modes))
    return out.squeeze(2) if x.ndim == 3 else out


def max_blur_pool(
    x: Tensor,
    kernels: Sequence[int],
    dilations: Sequence[int],
    max_pads: Pads,
    rows: Rows,
    strides: Sequence[int],
    pads: Pads,
    modes: Sequence[str],
) -> Tensor:
    """``antialias::max_blur_pool`` on a batched 1-D or 2-D map (the input not padded for the max)."""
    x4, rows4, strides4, before, after = _as_2d(x, rows, strides, pads)
    if x.ndim == 3:
        kernels, dilations, max_pads = [1, kernels[0]], [1, dilations[0]], [(0, 0), max_pads[0]]
    out = _ops().max_blur_pool(
        x4,
        list(kernels),
        list(dilations),
        [p[0] for p in max_pads],
        [p[1] for p in max_pads],
        rows4,
        strides4,
        before,
        after,
        _mode(modes),
    )
    return out.squeeze(2) if x.ndim == 3 else out
