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
:mod:`antialias._kernels`. :func:`register` runs once, after :mod:`antialias._ext` loaded the library.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

_ONE = torch.ones(1, dtype=torch.float64)  # the identity filter of the dummy H axis of 1-D maps


def _ops():
    return torch.ops.antialias


# --------------------------------------------------------------------------- shapes (fake kernels)


def _blur_len(length, k: int, before: int, after: int, stride: int):
    return (length + before + after - k) // stride + 1


def _empty_like_layout(x: Tensor, shape) -> Tensor:
    """An output in the layout the C++ kernels produce: channels_last iff ``x`` is channels_last
    and not also plainly contiguous; contiguous otherwise."""
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _fake_blur_pool(x, rows, stride, pad_before, pad_after, padding_mode):
    shape = [x.shape[0], x.shape[1]] + [
        _blur_len(x.shape[2 + a], rows[a].numel(), pad_before[a], pad_after[a], stride[a]) for a in range(2)
    ]
    return _empty_like_layout(x, shape)


def _fake_blur_pool_backward(grad, rows, input_size, stride, pad_before, pad_after, padding_mode):
    return _empty_like_layout(grad, [grad.shape[0], grad.shape[1], *input_size])


def _dense_len(length, kernel, dilation, before, after):
    return length + before + after - dilation * (kernel - 1)


def _fake_max_blur_pool(x, kernel, dilation, max_pad_before, max_pad_after, rows, stride, pad_before, pad_after, padding_mode):
    shape = [x.shape[0], x.shape[1]]
    for a in range(2):
        dense = _dense_len(x.shape[2 + a], kernel[a], dilation[a], max_pad_before[a], max_pad_after[a])
        shape.append(_blur_len(dense, rows[a].numel(), pad_before[a], pad_after[a], stride[a]))
    return _empty_like_layout(x, shape)


def _fake_max_blur_pool_backward(grad, x, *args):
    return _empty_like_layout(x, list(x.shape))


# --------------------------------------------------------------------------- autograd


def _blur_setup(ctx, inputs, output):
    x, rows, stride, pad_before, pad_after, padding_mode = inputs
    # The rows are constant filter buffers, not activations: nothing input-sized is kept.
    ctx.args = (rows, [int(s) for s in x.shape[2:]], stride, pad_before, pad_after, padding_mode)


def _blur_backward(ctx, grad):
    rows, size, stride, pad_before, pad_after, mode = ctx.args
    grad_in = _ops().blur_pool_backward(grad, rows, size, stride, pad_before, pad_after, mode)
    return grad_in, [None] * len(rows), None, None, None, None


def _blur_backward_setup(ctx, inputs, output):
    grad, rows, input_size, stride, pad_before, pad_after, padding_mode = inputs
    ctx.args = (rows, stride, pad_before, pad_after, padding_mode)


def _blur_backward_backward(ctx, grad_grad):
    # The blur is linear: the derivative of its vector-Jacobian product is the blur itself.
    rows, stride, pad_before, pad_after, mode = ctx.args
    grad = _ops().blur_pool(grad_grad, rows, stride, pad_before, pad_after, mode)
    return grad, [None] * len(rows), None, None, None, None, None


def _no_grads(args) -> tuple:
    """``None`` for every argument, shaped like them (a list of rows gets a list of ``None``)."""
    return tuple([None] * len(a) if isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor) else None for a in args)


def _max_blur_setup(ctx, inputs, output):
    x, *args = inputs
    ctx.save_for_backward(x)
    ctx.args = args


def _max_blur_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    grad_in = _ops().max_blur_pool_backward(grad, x, *ctx.args)
    return (grad_in,) + _no_grads(ctx.args)


def _max_blur_backward_setup(ctx, inputs, output):
    grad, x, *args = inputs
    ctx.save_for_backward(x)
    ctx.args = args
    ctx.grad_shape = grad.shape


def _max_blur_backward_backward(ctx, grad_grad):
    """Double backward. The input gradient is linear in ``grad`` and locally constant in ``x``
    (which element is each window's maximum does not change under small perturbations), so only
    ``grad`` gets a gradient: the pure-PyTorch path's, by differentiating its own backward."""
    from antialias import _kernels

    (x,) = ctx.saved_tensors
    with torch.enable_grad():
        leaf = x.detach().requires_grad_()
        out = _kernels.max_blur_pool_reference(leaf, *ctx.args)
        probe = torch.zeros(ctx.grad_shape, dtype=out.dtype, device=out.device, requires_grad=True)
        (gx,) = torch.autograd.grad(out, leaf, probe, create_graph=True)
        (gg,) = torch.autograd.grad(gx, probe, grad_grad, create_graph=torch.is_grad_enabled())
    return (gg, None) + _no_grads(ctx.args)


@functools.cache
def register() -> None:
    """Register fake kernels and autograd formulas (once; the library must be loaded)."""
    lib = torch.library
    lib.register_fake("antialias::blur_pool", _fake_blur_pool)
    lib.register_fake("antialias::blur_pool_backward", _fake_blur_pool_backward)
    lib.register_fake("antialias::max_blur_pool", _fake_max_blur_pool)
    lib.register_fake("antialias::max_blur_pool_backward", _fake_max_blur_pool_backward)
    lib.register_autograd("antialias::blur_pool", _blur_backward, setup_context=_blur_setup)
    lib.register_autograd("antialias::blur_pool_backward", _blur_backward_backward, setup_context=_blur_backward_setup)
    lib.register_autograd("antialias::max_blur_pool", _max_blur_backward, setup_context=_max_blur_setup)
    lib.register_autograd(
        "antialias::max_blur_pool_backward", _max_blur_backward_backward, setup_context=_max_blur_backward_setup
    )


# --------------------------------------------------------------------------- call wrappers


def _mode(modes) -> str:
    """The user's padding mode from the per-axis modes (only reflect is ever substituted)."""
    return "reflect" if "reflect" in modes else modes[0]


def _as_2d(x: Tensor, rows, strides, pads):
    """1-D maps as ``(N, C, 1, L)`` with the identity filter on the dummy axis."""
    if x.ndim == 4:
        return x, list(rows), list(strides), [p[0] for p in pads], [p[1] for p in pads]
    return x.unsqueeze(2), [_ONE, rows[0]], [1, strides[0]], [0, pads[0][0]], [0, pads[0][1]]


def blur_pool(x: Tensor, rows, strides, pads, modes) -> Tensor:
    """``antialias::blur_pool`` on a batched 1-D or 2-D map (arguments as :func:`antialias._kernels.blur_pool`)."""
    x4, rows4, strides4, before, after = _as_2d(x, rows, strides, pads)
    out = _ops().blur_pool(x4, rows4, strides4, before, after, _mode(modes))
    return out.squeeze(2) if x.ndim == 3 else out


def max_blur_pool(x: Tensor, kernels, dilations, max_pads, rows, strides, pads, modes) -> Tensor:
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
