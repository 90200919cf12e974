"""Stride-aware blur filters of :func:`antialias.convert` (``filter_size="auto"``, the default).

Subsampling by ``s`` folds every frequency above ``pi / s`` onto a lower one, so the blur before it
must pass little above ``pi / s``, and a filter good for ``s = 2`` is far too wide in frequency for a
patch-embedding stem (ConvNeXt's ``k4 s4``, ViT's ``k16 s16``): the paper's tri4 still passes 57% of
the amplitude at ``1.5 pi / 4``.

**Rule.** For stride ``s`` the default row is the box filter of ``s`` taps convolved with itself
three times (a discrete quadratic B-spline stretched by ``s``): ``3s - 2`` taps, normalised to sum 1.

- ``s = 2`` gives ``[1, 3, 3, 1] / 8``: the paper's tri4, the library's default, unchanged;
- ``s = 1`` gives ``[1]`` (no blur); ``s = 4`` 10 taps; ``s = 16`` 46 taps;
- its response ``|sin(s w / 2) / (s sin(w / 2))|**3`` has a triple zero at every alias centre
  ``2 pi k / s`` (``k = 1 .. s-1``): what would fold onto the output's DC is removed;
- its -6 dB point lies between ``0.73 pi / s`` and ``0.84 pi / s`` for every ``s >= 2``, its gain at
  ``pi / s`` is at most ``cos(pi/4)**3 = 0.354`` (``s = 2``) and tends to ``(2/pi)**3 = 0.258``, and
  beyond ``1.5 pi / s`` it stays below 0.06 (tests/convert/test_convert_stride_filters.py checks all
  of these numerically for s = 2 .. 32).

A binomial row would need about ``0.56 s**2`` taps for the same cut-off (its bandwidth shrinks as
the square root of its length), 145 taps at ``s = 16``; the B-spline grows linearly.

Overrides: any explicit ``filter_size`` (an int, a name, a tensor, or one per axis) is used at every
stride, as before; a mapping ``{stride: filter}`` chooses per stride, and the rule fills the strides
it does not name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from antialias import filters as _filters
from antialias.filters import FilterSpec

__all__ = ["AUTO", "resolve", "stride_filter"]

#: The default ``filter_size`` of :func:`antialias.convert.convert`: the stride-aware rule.
AUTO = "auto"


def stride_filter(stride: int) -> Tensor:
    """The default blur row for subsampling by ``stride``: box(``stride``) convolved three times.

    Args:
        stride: The subsampling factor, at least 1.

    Returns:
        A float64 row of ``3 * stride - 2`` taps summing to 1 (``[1.]`` for stride 1).

    Raises:
        ValueError: ``stride < 1``.

    Examples:
        >>> stride_filter(2) * 8
        tensor([1., 3., 3., 1.], dtype=torch.float64)
        >>> stride_filter(4).numel()
        10
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"`antialias.convert.stride_filter`: `stride` must be an int >= 1, got {stride!r}.")
    box = torch.ones(1, 1, stride, dtype=torch.float64)
    row = torch.ones(1, 1, 1, dtype=torch.float64)
    for _ in range(3):
        row = torch.nn.functional.conv1d(row, box, padding=stride - 1)  # full convolution
    row = row.flatten()
    return row / row.sum()


def _taps(stride: int) -> Tensor:
    """The rule's row as integer-valued taps (a shorter repr in layers; BlurPool normalises it)."""
    return torch.round(stride_filter(stride) * stride**3)


def resolve(spec: Any, stride: int) -> FilterSpec:
    """The filter for one axis subsampled by ``stride`` (1: no subsampling, no blur) under ``spec``.

    ``"auto"`` follows the rule (stride 2 stays the int ``4``, i.e. tri4); a mapping picks its entry for
    ``stride`` or falls back to the rule; anything else is the user's filter, used at every stride.
    """
    if stride <= 1:
        return 1
    if isinstance(spec, Mapping):
        if stride in spec:
            return spec[stride]
        spec = AUTO
    if isinstance(spec, str) and spec == AUTO:
        return 4 if stride == 2 else _taps(stride)
    return spec


def axis_filters(spec: Any, strides: Sequence[int]) -> FilterSpec | tuple[FilterSpec, ...]:
    """One filter per axis for ``strides`` (an axis kept at stride 1 gets ``1``), or one for all axes.

    A tuple/list ``spec`` already names one filter per axis and is returned as given (strides ignored).
    """
    if isinstance(spec, (tuple, list)):
        return tuple(spec)
    auto = isinstance(spec, Mapping) or (isinstance(spec, str) and spec == AUTO)
    if not auto and all(s > 1 for s in strides):
        return spec  # the user's one filter for every subsampled axis
    rows = [resolve(spec, s) if s > 1 else 1 for s in strides]
    if len(set(strides)) == 1 and all(s > 1 for s in strides):
        return rows[0]
    return tuple(rows)


def describe(spec: Any, strides: Sequence[int]) -> str:
    """A short text of the filter used at ``strides`` for the report, e.g. ``"10 taps (box4^3)"``."""
    parts = []
    for s in sorted({int(v) for v in strides if v > 1}):
        row = resolve(spec, s)
        taps = _filters.filter_row(row).numel()
        rule = (isinstance(spec, Mapping) and s not in spec) or (isinstance(spec, str) and spec == AUTO)
        name = (f" (box{s}^3)" if s > 2 else " (tri4)") if rule else ""
        parts.append(f"stride {s}: {taps} taps{name}")
    return "; ".join(parts)


def check(spec: Any, where: str) -> None:
    """Validates a ``filter_size`` that may be ``"auto"`` or a ``{stride: filter}`` mapping."""
    if isinstance(spec, str) and spec == AUTO:
        return
    if isinstance(spec, Mapping):
        for stride, entry in spec.items():
            if isinstance(stride, bool) or not isinstance(stride, int) or stride < 2:
                raise ValueError(
                    f"{where}: `filter_size` as a mapping must have int strides >= 2 as keys, got {stride!r}. "
                    "Example: filter_size={2: 'tri4', 4: 10}."
                )
            _filters.filter_row(entry, where=where)
        return
    if isinstance(spec, (tuple, list)):
        for entry in spec:
            _filters.filter_row(entry, where=where)
        return
    _filters.filter_row(spec, where=where)
