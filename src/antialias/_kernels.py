"""Compute kernels behind :mod:`antialias.functional`: no validation, batched ``(N, C, *spatial)``.

Three implementations of the same maths, chosen per call:

* **C++ custom ops** (``torch.ops.antialias.*``, :mod:`antialias._ops`, sources in ``csrc/``) on CPU
  for 1-D and 2-D maps, whenever :mod:`antialias._ext` could build them (once per machine) and
  :func:`use_custom_op` allows: eagerly and under ``torch.compile``/``torch.export`` (one opaque op
  each, forward and backward), but not under ONNX export or ``torch.jit`` tracing/scripting, which
  get the traceable path. ``ANTIALIAS_PURE=1`` turns them off.

The pure-PyTorch fallback (CUDA, 3-D maps, no compiler, ``ANTIALIAS_PURE=1``), chosen by
:func:`use_fast_path`:

* **Fast (eager) path.** Padding, the 1-D filter and the subsampling along one axis are one linear
  map, a small banded ``(L_out, L)`` matrix (:func:`band_matrix`; the padding mode is folded in by
  index arithmetic, so no padded copy is ever made and only the kept outputs are computed). The blur
  is one matrix product per axis in the tensor's own memory order (NCHW and channels_last alike, no
  layout conversion). :class:`_BandedBlur` is its autograd Function: backward multiplies by the
  transposed matrices (a gather, not a scatter) and saves nothing but those matrices. The dense
  (stride-1) max of max-blur pooling is part of :class:`_MaxBlur`: separable ``torch.maximum`` passes, last
  axis first, each one contiguous 1-D op on the flat buffer (see "dense max" below), which never
  calls ATen's stride-1 ``max_pool`` (slow in NCHW on CPU, and it stores int64 indices); its
  backward recomputes the max from the saved input instead of storing indices.
* **Traceable path.** Explicit padding + depthwise convolution per axis (:func:`blur_axis`) and
  ``F.max_pool{1,2,3}d`` at stride 1: plain ATen ops that ``torch.compile(fullgraph=True)``,
  ``torch.export``, ONNX export and TorchScript tracing handle. It is used automatically while any
  of them is tracing (and for tensor subclasses), and gives the same numbers.

Gradients of the max. Both paths give each window's gradient to one element, the first maximum in
row-major (raster) order, exactly as ``F.max_pool2d``'s backward (and so the reference formulation)
does, also on ties (common after a ReLU). ``torch.maximum``'s own autograd would split tied gradients
evenly instead; we do not use it. The separable passes, last axis first with the earlier tap winning
ties, pick that same element: the first row holding the window's maximum, and its leftmost maximum.

Non-finite values. A matrix product would turn ``0 * inf`` into NaN along a whole row, so when the
fast path's output (or input gradient) is not finite it is recomputed by the traceable path, whose
non-finite values stay local exactly as in the reference formulation.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias import _ops
from antialias._ops import (
    blur_pool_traceable,
    dense_max_traceable,
    pad_for_max,
    pad_index,
)
from antialias._ops import max_blur_pool_reference as max_blur_pool_reference  # re-exported
from antialias._ops import pad_axis as pad_axis  # re-exported (antialias.convert uses it)

#: One banded matrix per spatial axis, ``None`` for the identity.
Matrices = tuple[Tensor | None, ...]
Rows = Sequence[Tensor]
Pads = Sequence[tuple[int, int]]

#: Axes longer than this are blurred by the traceable path: the banded matrix does ``L_out * L``
#: multiply-adds per axis where the stencil does ``L_out * k``, which stops paying off for long axes.
MAX_BAND_LENGTH = 512


# --------------------------------------------------------------------------- dispatch


def use_fast_path(x: Tensor) -> bool:
    """Whether the eager fast path may run on ``x``: a plain tensor, with no tracer active.

    ``torch.compile``/``torch.export`` (dynamo and non-strict, which runs on tensor subclasses),
    ``torch.jit`` tracing and scripting, ``torch.fx`` proxies and meta tensors (shapes only, like
    ``nn.MaxPool2d``) all get the traceable path.
    """
    if type(x) is not Tensor:  # FakeTensor, FunctionalTensor, fx Proxy, Parameter, ...
        return False
    if x.device.type == "meta":  # no values: the fast path's finiteness check would read them
        return False
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return False
    return not _compiler_tracing()


def _compiler_tracing() -> bool:
    compiler = getattr(torch, "compiler", None)
    if compiler is None:
        return False
    return compiler.is_compiling() or getattr(compiler, "is_exporting", lambda: False)()


def _custom_ops_loaded() -> bool:
    return _ops.backend().compiled


# Under torch.compile dynamo runs this once at trace time and bakes in the answer (the build and
# the file lock are not traceable, and the answer cannot change within a process).
if hasattr(torch.compiler, "assume_constant_result"):
    _custom_ops_loaded = torch.compiler.assume_constant_result(_custom_ops_loaded)


def backend_description() -> str:
    """One line saying which kernels run on CPU (C++ ops or pure PyTorch); builds nothing."""
    return _ops.description()


def use_custom_op(x: Tensor, nd: int) -> bool:
    """Whether the C++ op runs on ``x``: a CPU tensor with 1 or 2 spatial dims, eager or under
    ``torch.compile``/``torch.export``, not under ONNX export or ``torch.jit``, and the library
    built (:func:`antialias._ext.backend`; the first call may compile it)."""
    if type(x) not in (Tensor, torch.nn.Parameter) and not _compiler_tracing():
        return False  # fx proxies and other tensor subclasses: the traceable path
    if nd not in (1, 2) or x.device.type != "cpu":
        return False
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    return _custom_ops_loaded()


# --------------------------------------------------------------------------- padding as indices


def band_matrix(
    row: Tensor, length: int, before: int, after: int, mode: str, stride: int, dtype: torch.dtype
) -> Tensor:
    """The ``(L_out, L)`` matrix of pad-by-``(before, after)``, correlate with ``row``, keep every
    ``stride``-th output, along one axis of ``length`` cells; ``L_out = (L + before + after - k) // stride + 1``.
    """
    k = row.numel()
    device = row.device
    out_len = (length + before + after - k) // stride + 1
    source = pad_index(length, before, after, mode, device)  # (L + before + after,)
    taps = stride * torch.arange(out_len, device=device).unsqueeze(1) + torch.arange(k, device=device)  # (L_out, k)
    cols = source[taps]
    vals = row.detach().to(torch.float64).expand(out_len, k)
    if mode == "zeros":
        vals = vals * (cols >= 0)
        cols = cols.clamp(min=0)
    # float64 so that taps folded onto one cell (reflect/replicate borders) are summed exactly once.
    matrix = torch.zeros(out_len, length, dtype=torch.float64, device=device)
    matrix.scatter_add_(1, cols, vals)
    return matrix.to(dtype)


# --------------------------------------------------------------------------- memory order helpers


def _memory_order(x: Tensor) -> tuple[Tensor, list[int]]:
    """``(z, perm)`` with ``z = x.permute(perm)`` contiguous: the dims in memory order, outermost
    first (NCHW stays NCHW, channels_last becomes NHWC), copying only if ``x`` is not dense."""
    strides = x.stride()
    perm = sorted(range(x.ndim), key=lambda d: (-strides[d], d))
    z = x.permute(perm)
    if not z.is_contiguous():
        perm = list(range(x.ndim))
        z = x.contiguous()
    return z, perm


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _matmul_axis(z: Tensor, matrix: Tensor, dim: int, buffer: Tensor | None = None) -> Tensor:
    """Apply ``matrix`` (``(L_out, L)``) along ``dim`` of the contiguous ``z``, as one GEMM or a
    batched GEMM over the dims before ``dim`` (no transposition of ``z`` in memory). With
    ``buffer`` (a flat tensor of at least the output's size, not overlapping ``z``), the result
    is written into its front instead of a fresh allocation."""
    shape = z.shape
    length = shape[dim]
    outer = math.prod(shape[:dim])
    inner = math.prod(shape[dim + 1 :])
    out_shape = (*shape[:dim], matrix.shape[0], *shape[dim + 1 :])
    kw = {}
    if buffer is not None:
        rows_out = matrix.shape[0]
        kw["out"] = buffer[: math.prod(out_shape)].view(
            (outer, rows_out) if inner == 1 else (rows_out, inner) if outer == 1 else (outer, rows_out, inner)
        )
    if inner == 1:
        out = torch.mm(z.reshape(outer, length), matrix.t(), **kw)  # (outer, L_out)
    elif outer == 1:
        out = torch.mm(matrix, z.reshape(length, inner), **kw)  # (L_out, inner)
    else:
        out = torch.matmul(matrix, z.reshape(outer, length, inner), **kw)  # (outer, L_out, inner)
    return out.reshape(out_shape)


# --------------------------------------------------------------------------- blur


def _finite(t: Tensor) -> bool:
    """Whether every element of ``t`` is finite, in one reduction pass (a sum is non-finite if any
    term is; an overflowing sum only sends us down the exact, slower path)."""
    return math.isfinite(float(t.sum()))


def _apply_matrices(t: Tensor, matrices: Matrices, transpose: bool = False) -> Tensor:
    """Multiply ``t`` by one matrix per spatial axis in its own memory order (``None`` = identity);
    with ``transpose``, by the transposes in reverse order (the vector-Jacobian product)."""
    z, perm = _memory_order(t)
    inv = _inverse(perm)
    present = [(a, m) for a, m in enumerate(matrices) if m is not None]
    for axis, m in reversed(present) if transpose else present:
        z = _matmul_axis(z, m.t() if transpose else m, inv[2 + axis])
    return z.permute(inv)


class _BandedBlur(torch.autograd.Function):
    """``y = x`` times one banded matrix per spatial axis; backward applies the transposes."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, matrices: Matrices, fallback: Callable[[Tensor], Tensor]) -> Tensor:
        out = _apply_matrices(x, matrices)
        if not _finite(out):
            out = fallback(x)
        ctx.matrices = matrices
        ctx.fallback = fallback
        ctx.input_shape = x.shape
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        if torch.is_grad_enabled() or not _finite(grad):  # double backward, or non-finite values
            return _traceable_vjp(ctx, grad), None, None
        return _apply_matrices(grad, ctx.matrices, transpose=True), None, None


def _traceable_vjp(ctx: Any, grad: Tensor) -> Tensor:
    """Input gradient through the traceable path (non-finite values stay local there). The op is
    linear, so its vector-Jacobian product does not depend on the input's values."""
    create_graph = torch.is_grad_enabled()
    x = torch.zeros(ctx.input_shape, dtype=grad.dtype, device=grad.device)
    with torch.enable_grad():
        x.requires_grad_()
        (g,) = torch.autograd.grad(ctx.fallback(x), x, grad, create_graph=create_graph)
    return g


def blur_pool(x: Tensor, rows: Rows, strides: Sequence[int], pads: Pads, modes: Sequence[str]) -> Tensor:
    """Blur-pool of the batched ``x``: per axis pad ``pads[i]`` in ``modes[i]``, correlate with
    ``rows[i]``, keep every ``strides[i]``-th output. The C++ op or the fast path when allowed."""
    if use_custom_op(x, len(rows)):
        return _ops.blur_pool(x, rows, strides, pads, modes)
    if not use_fast_path(x) or any(x.shape[2 + a] > MAX_BAND_LENGTH for a in range(len(rows))):
        return blur_pool_traceable(x, rows, strides, pads, modes)
    matrices = _matrices(rows, x.shape[2:], strides, pads, modes, x.dtype, x.device)

    def fallback(t: Tensor) -> Tensor:
        return blur_pool_traceable(t, rows, strides, pads, modes)

    return _BandedBlur.apply(x, matrices, fallback)


# --------------------------------------------------------------------------- dense max
#
# The dense (stride-1) max works on the flat buffer of the input in memory order. A window of k
# taps spaced d apart along an axis whose memory stride is s reads the flat elements p, p + d*s,
# ..., p + (k-1)*d*s: every tap is one contiguous 1-D slice of the whole buffer, whatever the
# layout (NCHW, channels_last, 1d/3d), so each pass is a single fully vectorised elementwise op
# with no strided views (measured 1.2-1.5x faster than the per-axis narrow() views it replaced).
# The price: the last (k-1)*d cells along each pooled axis become "overhang" cells, maxima of
# windows that run off the axis into the next row/plane (or past the end of the buffer, where they
# are set to 0). The blur matrices get zero columns for them, so they never reach the output (a
# non-finite overhang value would make 0 * inf = NaN, which the finiteness check sends to the
# traceable path), and their gradient is exactly 0, so routing it adds exact zeros.


def _flat_max(src: Tensor, shift: int, kernel_size: int) -> Tensor:
    """``out[p] = max_j src[p + j*shift]`` over the flat ``src``; the last ``(k-1)*shift`` cells 0."""
    n = src.numel()
    length = n - (kernel_size - 1) * shift
    out = torch.empty_like(src)
    torch.maximum(src[:length], src[shift : shift + length], out=out[:length])
    for j in range(2, kernel_size):
        torch.maximum(out[:length], src[j * shift : j * shift + length], out=out[:length])
    out[length:].zero_()
    return out


def _flat_max_backward(src: Tensor, out: Tensor | None, grad: Tensor, shift: int, kernel_size: int) -> Tensor:
    """Route the gradient of :func:`_flat_max` to each window's first maximum (earliest tap on ties).

    ``grad`` (flat, zero on overhang cells) is consumed: it is overwritten. Masks are 0/1 floats
    applied by in-place multiplication (``torch.where`` on a bool mask measured 4-6x slower on
    CPU, in-place binary ops ~2-3x faster than out-of-place ones). ``grad`` must be finite
    (``0 * inf`` would be NaN); callers check.
    """
    n = src.numel()
    length = n - (kernel_size - 1) * shift
    if kernel_size == 2:
        # g_in = P + shift(g - P), P = g * [src[p] >= src[p + shift]]: 1 compare + 3 in-place passes.
        grad_in = torch.empty_like(src)
        torch.ge(src[:length], src[shift:], out=grad_in[:length])
        grad_in[length:].zero_()
        grad_in.mul_(grad)  # P
        grad.sub_(grad_in)  # g - P (zero on the overhang tail, so the shift below drops nothing)
        grad_in[shift:].add_(grad[:length])
        return grad_in
    if out is None:  # only the 2-tap branch above goes without the pass' output
        raise ValueError(f"`_flat_max_backward`: `out` must be the pass' output (k={kernel_size}), got None.")
    grad_in = torch.zeros_like(src)
    rest = grad[:length]  # gradient not yet given to an earlier tap
    for j in range(kernel_size - 1):
        part = torch.empty_like(rest)
        torch.eq(src[j * shift : j * shift + length], out[:length], out=part)
        part.mul_(rest)
        rest.sub_(part)
        grad_in[j * shift : j * shift + length].add_(part)
    grad_in[(kernel_size - 1) * shift :].add_(rest)
    return grad_in


def _max_plan(z: Tensor, inv: list[int], kernels: Sequence[int], dilations: Sequence[int]) -> list[tuple[int, int]]:
    """``(shift, kernel_size)`` of each max pass over the flat ``z``, last spatial axis first (the
    order whose earlier-tap-wins rule picks the first maximum in raster order)."""
    return [
        (dilations[a] * z.stride(inv[2 + a]), kernels[a]) for a in reversed(range(len(kernels))) if kernels[a] > 1
    ]


class _MaxBlur(torch.autograd.Function):
    """Dense max then banded blur, fused: saves only the input; backward recomputes the max.

    ``matrices`` act on the full input lengths (zero columns on the overhang cells, see above).
    Full-size buffers are reused once dead (GEMM results written into them): on CPU each fresh
    input-sized buffer costs its page faults on first touch, measured comparable to a full pass.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        kernels: tuple[int, ...],
        dilations: tuple[int, ...],
        matrices: Matrices,
        fallback: Callable[[Tensor], Tensor],
    ) -> Tensor:
        z, perm = _memory_order(x)
        inv = _inverse(perm)
        dense, spare = z.reshape(-1), None
        for shift, k in _max_plan(z, inv, kernels, dilations):
            new = _flat_max(dense, shift, k)
            spare, dense = (dense if dense.data_ptr() != z.data_ptr() else spare), new
        out = _blur_memory_order(dense.view(z.shape), inv, matrices, spare)
        if not _finite(out):
            out = fallback(x)
        ctx.save_for_backward(x)
        ctx.kernels, ctx.dilations, ctx.matrices, ctx.fallback = kernels, dilations, matrices, fallback
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        (x,) = ctx.saved_tensors
        if torch.is_grad_enabled() or not _finite(grad):
            # Double backward (create_graph=True) or non-finite values: the traceable path's
            # autograd. Its gradient depends on ``x`` only through which element is the maximum,
            # which is locally constant, so detaching ``x`` loses nothing.
            create_graph = torch.is_grad_enabled()
            with torch.enable_grad():
                leaf = x.detach().requires_grad_()
                (g,) = torch.autograd.grad(ctx.fallback(leaf), leaf, grad, create_graph=create_graph)
            return g, None, None, None, None
        z, perm = _memory_order(x)
        inv = _inverse(perm)
        plan = _max_plan(z, inv, ctx.kernels, ctx.dilations)
        chain = [z.reshape(-1)]  # the input of each max pass (and its output when k > 2 needs it)
        for i, (shift, k) in enumerate(plan):
            if i + 1 < len(plan) or k > 2:
                chain.append(_flat_max(chain[-1], shift, k))
        spare = None
        mask = None
        if plan and plan[-1][1] == 2:
            # The last pass' mask first, so its input (an input-sized buffer) can take the GEMM.
            mask = _ge_mask(chain[len(plan) - 1], plan[-1][0], None)
            if len(plan) > 1 and plan[-2][1] == 2:  # else the previous pass still needs it
                spare = chain.pop()
        # (N, C, *full) in x's memory order; zero on overhang cells (zero matrix columns).
        g = _blur_memory_order(grad.permute(perm), inv, ctx.matrices, None, transpose=True, last_buffer=spare)
        g = g.reshape(-1)
        for i in reversed(range(len(plan))):
            shift, k = plan[i]
            if k == 2:
                if mask is None:
                    mask = _ge_mask(chain[i], shift, spare)
                g, spare = _route2(mask, g, shift), g
                mask = None
            else:
                g = _flat_max_backward(chain[i], chain[i + 1], g, shift, k)
            del chain[i + 1 :]
        return g.view(z.shape).permute(inv), None, None, None, None


def _ge_mask(src: Tensor, shift: int, buffer: Tensor | None) -> Tensor:
    """0/1 float ``src[p] >= src[p + shift]`` over the flat ``src``, 0 on the last ``shift`` cells."""
    length = src.numel() - shift
    mask = torch.empty_like(src) if buffer is None else buffer
    torch.ge(src[:length], src[shift:], out=mask[:length])
    mask[length:].zero_()
    return mask


def _route2(mask: Tensor, grad: Tensor, shift: int) -> Tensor:
    """Gradient of a 2-tap max pass from its mask (overwritten with the result; ``grad`` consumed):
    ``g_in = P + shift(g - P)``, ``P = g * mask``, three in-place passes."""
    length = grad.numel() - shift
    mask.mul_(grad)  # P
    grad.sub_(mask)  # g - P (zero on the overhang tail, so the shift below drops nothing)
    mask[shift:].add_(grad[:length])
    return mask


def _blur_memory_order(
    z: Tensor,
    inv: list[int],
    matrices: Matrices,
    buffer: Tensor | None,
    transpose: bool = False,
    last_buffer: Tensor | None = None,
) -> Tensor:
    """:func:`_apply_matrices` on ``z``, already in memory order (``z.permute(inv)`` is the NCHW
    view; made contiguous here). ``buffer`` may take the first GEMM's result, ``last_buffer``
    the last one's; with ``transpose`` the result stays in memory order, else it is permuted back."""
    z = z.contiguous()
    present = [(a, m) for a, m in enumerate(matrices) if m is not None]
    if transpose:
        present = present[::-1]
    for i, (axis, m) in enumerate(present):
        matrix = m.t() if transpose else m
        buf = last_buffer if i == len(present) - 1 else buffer if i == 0 else None
        if buf is not None and buf.numel() < z.numel() // z.shape[inv[2 + axis]] * matrix.shape[0]:
            buf = None
        z = _matmul_axis(z, matrix, inv[2 + axis], buf)
    return z if transpose else z.permute(inv)


def max_blur_pool(
    x: Tensor,
    kernels: Sequence[int],
    dilations: Sequence[int],
    rows: Rows,
    strides: Sequence[int],
    pads: Pads,
    modes: Sequence[str],
    max_pads: Sequence[tuple[int, int, bool]] | None = None,
) -> Tensor:
    """Dense max over windows of ``kernels[i]`` taps spaced ``dilations[i]`` apart (stride 1), then
    :func:`blur_pool` of the result. ``x`` is padded for the max by ``max_pads`` (see
    :func:`pad_for_max`; ``None``: already padded). The C++ op or the fast path when allowed."""
    if max_pads is not None:
        circular = modes[0] == "circular"
        if use_custom_op(x, len(rows)) and all(c == circular for _, _, c in max_pads):
            max_pads_2 = [(before, after) for before, after, _ in max_pads]
            return _ops.max_blur_pool(x, kernels, dilations, max_pads_2, rows, strides, pads, modes)
        x = pad_for_max(x, max_pads)
    dense_shape = [x.shape[2 + a] - dilations[a] * (kernels[a] - 1) for a in range(len(kernels))]

    def fallback(t: Tensor) -> Tensor:
        return blur_pool_traceable(dense_max_traceable(t, kernels, dilations), rows, strides, pads, modes)

    if not use_fast_path(x) or max(dense_shape) > MAX_BAND_LENGTH:
        return fallback(x)
    matrices = _matrices(rows, dense_shape, strides, pads, modes, x.dtype, x.device, full_lengths=x.shape[2:])
    return _MaxBlur.apply(x, tuple(kernels), tuple(dilations), matrices, fallback)


def _matrices(
    rows: Rows,
    lengths: Sequence[int],
    strides: Sequence[int],
    pads: Pads,
    modes: Sequence[str],
    dtype: torch.dtype,
    device: torch.device,
    full_lengths: Sequence[int] | None = None,
) -> Matrices:
    """One banded matrix per axis (``None`` = identity); with ``full_lengths``, zero columns are
    appended up to those lengths (the dense max's overhang cells)."""
    out: list[Tensor | None] = []
    geometry = zip(rows, lengths, strides, pads, modes, strict=True)
    for axis, (row, length, stride, (before, after), mode) in enumerate(geometry):
        full = length if full_lengths is None else full_lengths[axis]
        if row.numel() == 1 and stride == 1 and full == length:
            out.append(None)  # identity
        else:
            out.append(_band_matrix_cached(row, length, before, after, mode, stride, dtype, full, device=device))
    return tuple(out)


@functools.lru_cache(maxsize=128)
def _band_matrix_key(
    taps: tuple[float, ...],
    device: torch.device,
    length: int,
    before: int,
    after: int,
    mode: str,
    stride: int,
    dtype: torch.dtype,
    full: int,
) -> Tensor:
    row = torch.tensor(taps, dtype=torch.float64)
    matrix = band_matrix(row, length, before, after, mode, stride, dtype)
    if full > length:
        matrix = F.pad(matrix, [0, full - length])  # (L_out, full): zero columns for the overhang
    return matrix.to(device)


def _band_matrix_cached(
    row: Tensor,
    length: int,
    before: int,
    after: int,
    mode: str,
    stride: int,
    dtype: torch.dtype,
    full: int,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """:func:`band_matrix` on ``device`` (default: the row's), memoised per device: building it
    costs a few small index ops (~1 ms per call measured on a 2-core CPU, ~4 % of a BlurPool step).

    A CPU row is keyed on its values (a re-initialised filter buffer gets a new matrix). A row on
    another device (a layer's buffer after ``.cuda()``) is keyed on its identity and version
    counter instead, because reading its values would synchronise the device; an in-place edit
    bumps the version, so it also gets a new matrix. Cached matrices are never mutated.
    """
    target = row.device if device is None else torch.device(device)
    if row.device.type == "cpu":
        taps = tuple(row.detach().to(torch.float64).tolist())
        return _band_matrix_key(taps, target, length, before, after, mode, stride, dtype, full)
    key = (id(row), row._version, target, length, before, after, mode, stride, dtype, full)
    hit = _DEVICE_ROW_MATRICES.get(key)
    if hit is not None and hit[0]() is row:
        return hit[1]
    matrix = band_matrix(row.to(target), length, before, after, mode, stride, dtype)
    if full > length:
        matrix = F.pad(matrix, [0, full - length])
    while len(_DEVICE_ROW_MATRICES) >= 128:  # oldest first (dicts keep insertion order)
        _DEVICE_ROW_MATRICES.pop(next(iter(_DEVICE_ROW_MATRICES)))
    _DEVICE_ROW_MATRICES[key] = (weakref.ref(row), matrix)
    return matrix


#: ``(id, version, device, geometry) -> (weakref to the row, matrix)`` for rows not on the CPU.
_DEVICE_ROW_MATRICES: dict[tuple[Any, ...], tuple[weakref.ref[Tensor], Tensor]] = {}
