"""Blur-filter maths: binomial rows, the paper's named filters, custom rows and padding arithmetic.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019) low-pass filters a feature
map before subsampling it. The filters are binomial rows (rows of Pascal's triangle): Rect-2 [1, 1],
Tri-3 [1, 2, 1], Tri-4 [1, 3, 3, 1] (added by the reference implementation in 2020) and Bin-5
[1, 4, 6, 4, 1]. An n-D kernel is the outer product of one row per axis, normalised to sum 1; rows
may differ per axis (anisotropic blur).

Everything here works in float64 on the CPU; callers cast to the dtype and device they need.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor

__all__ = [
    "FILTER_NAMES",
    "FilterSpec",
    "binomial",
    "check_rows",
    "filter_row",
    "filter_rows",
    "kernel",
    "padding",
]

#: The paper's filter names and the binomial size each stands for.
FILTER_NAMES: dict[str, int] = {"rect2": 2, "tri3": 3, "tri4": 4, "bin5": 5}

#: One axis: a binomial size, a filter name, or a custom 1-D row as a tensor or array.
FilterSpec = int | str | Tensor

_MAX_SIZE = 64  # binomial rows past this lose float64 precision and make no sense as a blur


def binomial(n: int) -> Tensor:
    """Row ``n - 1`` of Pascal's triangle, normalised to sum 1.

    Args:
        n: Number of taps, at least 1. ``n=1`` is the identity filter ``[1.]``.

    Returns:
        A float64 tensor of shape ``(n,)``.

    Examples:
        >>> binomial(4)
        tensor([0.1250, 0.3750, 0.3750, 0.1250], dtype=torch.float64)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"`binomial`: `n` must be an int, got {n!r}.")
    if not 1 <= n <= _MAX_SIZE:
        raise ValueError(f"`binomial`: `n` must be between 1 and {_MAX_SIZE}, got {n!r}.")
    row = torch.tensor([math.comb(n - 1, i) for i in range(n)], dtype=torch.float64)
    return row / row.sum()


# A number with a sign, a decimal point or an exponent (the only numbers filter_row reads are plain digits).
_SIGNED_NUMBER = re.compile(r"[+-]?\s*(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\s*(inf|nan|infinity)", re.IGNORECASE)


def _canonical_name(name: str) -> str:
    # "Tri-4", "TRI_4", "tri 4" -> "tri4"
    return re.sub(r"[\s_\-]", "", name).lower()


def filter_row(spec: FilterSpec, *, where: str = "`filter_row`") -> Tensor:
    """Resolve one axis's filter to a normalised float64 row.

    Args:
        spec: An int ``n >= 1`` (binomial row of ``n`` taps), one of the paper's names
            (``"rect2"``, ``"tri3"``, ``"tri4"``, ``"bin5"``; case, ``-``, ``_`` and spaces are
            ignored, so ``"Tri-4"`` works) or a custom 1-D row as a tensor or NumPy array (non-empty,
            finite, non-zero sum; it is normalised to sum 1).
        where: The public name that starts error messages, as it should appear (``"`convert`"``).

    Returns:
        A float64 tensor of shape ``(k,)`` summing to 1.

    Raises:
        ValueError: unknown name, size < 1, or a custom row that is empty, not 1-D, not finite or
            sums to zero.
        TypeError: anything else.

    Examples:
        >>> filter_row("Tri-3")
        tensor([0.2500, 0.5000, 0.2500], dtype=torch.float64)
    """
    if isinstance(spec, bool):
        raise TypeError(f"{where}: `filter_size` must be an int, a filter name or a 1-D tensor, got {spec!r}.")
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"{where}: `filter_size` must be >= 1, got {spec!r}. Use 1 for no blur.")
        return binomial(spec)
    if isinstance(spec, str):
        text = spec.strip()
        if text.isascii() and text.isdigit():  # "3": a tap count, nothing else is read as a number
            return filter_row(int(text), where=where)
        if _SIGNED_NUMBER.fullmatch(text):  # "-3", "+3", "3.0": never silently read as 3
            raise ValueError(
                f"{where}: `filter_size` must be a positive whole number of taps or one of "
                f"{sorted(FILTER_NAMES)}, got {spec!r}. Use e.g. 3 or 'tri3'."
            )
        key = _canonical_name(text)
        if key in FILTER_NAMES and text[:1].isalpha():
            return binomial(FILTER_NAMES[key])
        close = difflib.get_close_matches(key, FILTER_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{where}: `filter_size` must be an int or one of {sorted(FILTER_NAMES)}, got {spec!r}.{hint}"
        )
    if hasattr(spec, "__array__") and not isinstance(spec, Tensor):
        spec = torch.as_tensor(spec)
    if isinstance(spec, Tensor):
        row = spec.detach().to("cpu", torch.float64)
        if row.ndim != 1 or row.numel() == 0:
            raise ValueError(
                f"{where}: a custom filter must be a non-empty 1-D tensor, got shape {tuple(row.shape)}."
            )
        if not torch.isfinite(row).all():
            raise ValueError(f"{where}: a custom filter must be finite, got {spec.tolist()!r}.")
        total = row.sum()
        if total.abs() <= 1e-12 * row.abs().sum().clamp_min(1e-300):
            raise ValueError(
                f"{where}: a custom filter must have a non-zero sum (it is normalised to sum 1), "
                f"got {spec.tolist()!r}."
            )
        return row / total
    raise TypeError(
        f"{where}: `filter_size` must be an int, a filter name or a 1-D tensor, got {spec!r}. "
        "For a custom filter pass a tensor, e.g. torch.tensor([1., 2., 1.])."
    )


def filter_rows(
    spec: FilterSpec | Sequence[FilterSpec], ndim: int, *, where: str = "`filter_rows`"
) -> tuple[Tensor, ...]:
    """Resolve a filter spec to one normalised float64 row per spatial axis.

    Args:
        spec: One axis spec (see :func:`filter_row`) used for every axis, or a tuple/list of
            ``ndim`` of them, outermost axis first (``(filter_h, filter_w)`` in 2-D). A custom
            row is always a tensor or array; a list is read as one spec per axis.
        ndim: Number of spatial axes (1, 2 or 3).
        where: The public name that starts error messages, as it should appear (``"`convert`"``).

    Returns:
        A tuple of ``ndim`` float64 rows.

    Examples:
        >>> [r.tolist() for r in filter_rows(("rect2", 3), 2)]
        [[0.5, 0.5], [0.25, 0.5, 0.25]]
    """
    if isinstance(spec, (list, tuple)):
        if len(spec) != ndim:
            raise ValueError(
                f"{where}: `filter_size` as a sequence must hold one filter per axis ({ndim}), got "
                f"{spec!r}. For a custom filter pass a tensor, e.g. torch.tensor([1., 2., 1.])."
            )
        return tuple(filter_row(s, where=where) for s in spec)
    row = filter_row(
        cast("int | str | Tensor", spec), where=where
    )  # a sequence other than list/tuple: filter_row rejects it
    return (row,) * ndim


def check_rows(
    rows: object, ndim: int, *, where: str = "`check_rows`", check_values: bool = True
) -> tuple[Tensor, ...]:
    """Check precomputed blur rows (the ``filter=`` argument of :mod:`antialias.functional`).

    The rows are used as given (not normalised): a tuple or list of ``ndim`` non-empty 1-D
    floating-point tensors. Their values are checked to be finite too, except on the meta device
    and while tracing or compiling (no values exist there, and reading them would break the graph).

    Args:
        rows: The rows, outermost axis first.
        ndim: Number of spatial axes.
        where: The public name that starts error messages.
        check_values: Also check that the values are finite (one reduction per row; callers whose
            rows come from :func:`filter_rows`, such as the layers' buffers, skip it).

    Returns:
        The rows as a tuple.

    Raises:
        TypeError: not a tuple/list of ``ndim`` tensors (a list of lists names the fix).
        ValueError: a row that is empty, not 1-D, not floating point, or not finite.

    Examples:
        >>> check_rows((torch.tensor([0.5, 0.5]),) * 2, 2)[0]
        tensor([0.5000, 0.5000])
        >>> check_rows([[0.5, 0.5], [0.5, 0.5]], 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: `check_rows`: `filter` must be a tuple of 2 1-D tensors ... torch.tensor([0.5, 0.5])...
    """
    if not isinstance(rows, (tuple, list)) or len(rows) != ndim or not all(isinstance(r, Tensor) for r in rows):
        example = ", ".join(["torch.tensor([0.5, 0.5])"] * ndim)
        raise TypeError(
            f"{where}: `filter` must be a tuple of {ndim} 1-D tensors (one row per axis), got {rows!r:.120}. "
            f"Pass e.g. filter=({example}{',' if ndim == 1 else ''}), or use filter_size= for a named filter."
        )
    for axis, row in enumerate(rows):
        if row.ndim != 1 or row.numel() == 0 or not row.is_floating_point():
            raise ValueError(
                f"{where}: `filter` rows must be non-empty 1-D floating-point tensors, got row {axis} with shape "
                f"{tuple(row.shape)} and dtype {row.dtype}."
            )
    if check_values and not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
        for axis, row in enumerate(rows):
            if row.device.type == "meta" or isinstance(row, torch._subclasses.FakeTensor):
                continue
            if not bool(torch.isfinite(row).all()):
                raise ValueError(f"{where}: `filter` rows must be finite, got row {axis} = {row.tolist()!r}.")
    return tuple(rows)


def kernel(rows: Sequence[Tensor]) -> Tensor:
    """The n-D kernel: outer product of the per-axis rows (sums to 1 if each row does).

    Examples:
        >>> kernel([binomial(2), binomial(2)])
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]], dtype=torch.float64)
    """
    out = rows[0]
    for row in rows[1:]:
        out = out[..., None] * row
    return out


def padding(k: int) -> tuple[int, int]:
    """Padding ``(before, after)`` for a ``k``-tap filter: ``(floor((k-1)/2), ceil((k-1)/2))``.

    The smaller side comes first (top/left), so blurring then subsampling by ``s`` gives
    ``ceil(L / s)`` outputs for every ``k``, even or odd.

    Examples:
        >>> padding(4), padding(5)
        ((1, 2), (2, 2))
    """
    return (k - 1) // 2, k // 2
