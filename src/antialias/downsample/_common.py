"""Shared pieces of the downsamplers: argument checks, phase-aligned padding, polyphase views, and
the :class:`PhaseLink` through which layers share the phase a polyphase layer chose.

Private: :mod:`antialias.downsample` is the public face.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias import filters as _filters
from antialias import functional as _F

PADDING_MODES = _F.PADDING_MODES


def pair(value: Any, name: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` as ``(h, w)`` ints >= ``minimum`` (the library's wording on a bad value)."""
    h, w = _F._tuple(value, 2, name, where, minimum)
    return h, w


def check_input(x: Tensor, where: str) -> None:
    """``x`` must be a floating-point ``(N, C, H, W)`` tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: `input` must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != 4:
        raise ValueError(f"{where}: `input` must have 4 dims (N, C, H, W), got shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise TypeError(
            f"{where}: `input` must be a floating-point tensor, got dtype {x.dtype}. Convert it first, e.g. x.float()."
        )


def check_padding_mode(padding_mode: Any, where: str) -> None:
    _F._check_padding_mode(padding_mode, where)


def memory_format(x: Tensor) -> torch.memory_format:
    """``torch.channels_last`` when ``x`` is stored that way (so outputs keep it), else contiguous."""
    return _F._channels_last_format(x, 2) or torch.contiguous_format


def out_size(size: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
    """``(ceil(H / s_h), ceil(W / s_w))``: the output size of every downsampler here (BlurPool's)."""
    return math.ceil(size[0] / stride[0]), math.ceil(size[1] / stride[1])


def pad_to_multiple(x: Tensor, stride: tuple[int, int], padding_mode: str) -> Tensor:
    """Pad the end of H and W so each is a multiple of its stride (all phases then have equal size).

    ``padding_mode`` fills the added rows/columns: ``"circular"`` wraps, ``"zeros"`` adds zeros,
    ``"reflect"``/``"replicate"`` mirror or repeat the last ones (reflect falls back to replicate on
    an axis shorter than the pad, with the library's warning). Sizes already multiples pass through
    untouched (no copy).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride[0], (-w) % stride[1]
    if ph == 0 and pw == 0:
        return x
    if padding_mode == "zeros":
        return F.pad(x, (0, pw, 0, ph))
    if padding_mode == "circular":
        return _wrap_end(_wrap_end(x, 3, pw), 2, ph)
    # reflect/replicate: one axis at a time, so a too-short axis degrades on its own
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode=_F._axis_mode(w, 0, pw, padding_mode))
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode=_F._axis_mode(h, 0, ph, padding_mode))
    return x


def _wrap_end(x: Tensor, axis: int, pad: int) -> Tensor:
    """Circular padding of ``pad`` at the end of ``axis``, wrapping as often as needed (``F.pad`` wraps once)."""
    if pad == 0:
        return x
    length = x.shape[axis]
    reps = -(-(length + pad) // length)
    return torch.cat([x] * reps, dim=axis).narrow(axis, 0, length + pad)


def polyphase_view(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """``(N, C, H, W)`` with ``H = h*s_h``, ``W = w*s_w`` -> view ``(N, C, h, s_h, w, s_w)`` (no copy).

    Phase ``(a, b)``, i.e. ``x[:, :, a::s_h, b::s_w]``, is ``view[:, :, :, a, :, b]``; its flat index
    is ``a * s_w + b``.
    """
    hh, ww = x.shape[-2:]
    # splitting a dim is a view for any strides, so channels_last inputs are not copied either
    return x.unflatten(3, (ww // stride[1], stride[1])).unflatten(2, (hh // stride[0], stride[0]))


def components(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """All polyphase components as ``(N, P, C, h, w)``, ``P = s_h * s_w``, in flat phase order (a copy)."""
    n, c = x.shape[:2]
    v = polyphase_view(x, stride)  # (N, C, h, s_h, w, s_w)
    return v.permute(0, 3, 5, 1, 2, 4).reshape(n, stride[0] * stride[1], c, v.shape[2], v.shape[4])


def gather_phase(x: Tensor, index: Tensor, stride: tuple[int, int]) -> Tensor:
    """Phase ``index[n]`` (flat) of sample ``n``: ``(N, C, H, W)`` (multiples of the stride) -> ``(N, C, h, w)``.

    Exact: the values are copied, never combined, so equal inputs give bit-equal outputs.
    """
    v = polyphase_view(x, stride)  # (N, C, h, s_h, w, s_w)
    rows = torch.arange(x.shape[0], device=x.device)
    a = torch.div(index, stride[1], rounding_mode="floor")
    b = index - a * stride[1]
    # advanced indices on dims 0, 3, 5 (not adjacent): the indexed dim (N) comes first -> (N, C, h, w)
    return v[rows, :, :, a, :, b]


def mix_phases(x: Tensor, weights: Tensor, stride: tuple[int, int]) -> Tensor:
    """``sum_p weights[n, p] * phase_p(x[n])``: the differentiable selection LPS trains with.

    ``x``: ``(N, C, H, W)`` (multiples of the stride); ``weights``: ``(N, P)`` -> ``(N, C, h, w)``.
    """
    v = polyphase_view(x, stride)  # (N, C, h, s_h, w, s_w)
    w = weights.to(x.dtype).view(x.shape[0], 1, 1, stride[0], 1, stride[1])
    return (v * w).sum(dim=(3, 5))


def tap_blur2d(x: Tensor, rows: tuple[Tensor, Tensor], padding_mode: str) -> Tensor:
    """Separable same-size filtering as a sum of shifted copies (exact under circular shifts).

    The filter is centred as BlurPool's (``filters.padding``: the smaller pad first).
    """
    for axis, row in ((3, rows[1]), (2, rows[0])):
        k = row.numel()
        if k == 1:
            x = x * float(row[0]) if float(row[0]) != 1.0 else x
            continue
        before, after = _filters.padding(k)
        length = x.shape[axis]
        pad = (before, after, 0, 0) if axis == 3 else (0, 0, before, after)
        if padding_mode == "zeros":
            xp = F.pad(x, pad)
        else:
            mode = padding_mode if padding_mode == "circular" else _F._axis_mode(length, before, after, padding_mode)
            xp = F.pad(x, pad, mode=mode)
        taps = row.tolist()  # Python floats (float64 rows on the CPU: no device sync)
        out = xp.narrow(axis, 0, length) * taps[0]
        for t in range(1, k):
            out = out + xp.narrow(axis, t, length) * taps[t]
        x = out
    return x


class PhaseLink:
    """The phase a polyphase downsampler chose on its last forward, for layers that must reuse it.

    A leader (:class:`~antialias.downsample.APS2d` or :class:`~antialias.downsample.LPS2d`) records,
    on every forward, the flat phase index per sample (``index``, shape ``(N,)``) or, when LPS trains,
    the (straight-through) selection weights (``weights``, ``(N, P)``), together with the size of the
    map it selected from. Followers (a residual shortcut's :class:`~antialias.downsample.PhaseFollow2d`,
    a decoder's :class:`~antialias.downsample.PolyphaseUpsample2d`) read it later **in the same
    forward**.

    Limits: it is plain Python state, not a buffer. One forward at a time per model: two threads
    running the same module concurrently, or ``nn.DataParallel`` replicas (which share this object),
    race; use one process per device (DDP) instead. A follower must run after its leader in the
    forward; the size check catches most wrong wirings, not a stale phase of the previous batch with
    the same shape.
    """

    def __init__(self, stride: tuple[int, int]) -> None:
        self.stride = stride
        self.index: Tensor | None = None
        self.weights: Tensor | None = None
        self.size: tuple[int, int] | None = None
        self.batch: int | None = None

    def record(self, size: tuple[int, int], index: Tensor | None, weights: Tensor | None) -> None:
        self.size = size
        self.index = index
        self.weights = weights
        self.batch = int(index.shape[0] if index is not None else weights.shape[0])  # type: ignore[union-attr]

    def check(self, where: str, batch: int, size: tuple[int, int] | None) -> None:
        """Raise unless a phase was recorded for this batch (and, if given, this input size)."""
        if self.size is None:
            raise RuntimeError(
                f"{where}: no phase recorded yet; the leading polyphase downsampler must run before this layer "
                "in the same forward."
            )
        if batch != self.batch or (size is not None and size != self.size):
            raise RuntimeError(
                f"{where}: the linked downsampler last saw a batch of {self.batch} maps of size {self.size}, "
                f"this layer got {batch} of size {size}; it is linked to the wrong layer, or runs in another "
                "forward than its leader."
            )

    def __getstate__(self) -> dict[str, Any]:
        # copies and pickles start empty: the recorded phase belongs to one forward (and, while LPS
        # trains, holds an autograd graph that deepcopy refuses)
        return {"stride": self.stride}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["stride"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"PhaseLink(stride={self.stride})"
