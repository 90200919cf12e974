"""antialias.filters: binomial rows, names and aliases, custom rows, kernels, padding (issue 2 item 2)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from antialias import filters


def pascal(n: int) -> list[float]:
    taps = [math.comb(n - 1, i) for i in range(n)]
    return [t / sum(taps) for t in taps]


# --------------------------------------------------------------------------- binomial rows


@pytest.mark.parametrize("n", range(1, 21))
def test_binomial_is_normalised_pascal_row(n):
    row = filters.binomial(n)
    assert row.dtype == torch.float64
    assert row.shape == (n,)
    torch.testing.assert_close(row, torch.tensor(pascal(n), dtype=torch.float64), rtol=0, atol=1e-15)
    assert math.isclose(row.sum().item(), 1.0, abs_tol=1e-12)


@pytest.mark.parametrize("n", [0, -1])
def test_binomial_rejects_size_below_one(n):
    with pytest.raises(ValueError, match=rf"`n` must be between 1 and \d+, got {n}"):
        filters.binomial(n)


@pytest.mark.parametrize("n", [2.0, "3", True])
def test_binomial_rejects_non_int(n):
    with pytest.raises(TypeError, match="`n` must be an int"):
        filters.binomial(n)


# --------------------------------------------------------------------------- names and aliases


@pytest.mark.parametrize(
    ("spec", "n"),
    [
        ("rect2", 2), ("tri3", 3), ("tri4", 4), ("bin5", 5),
        ("Rect-2", 2), ("Tri-3", 3), ("Tri-4", 4), ("Bin-5", 5),
        ("RECT2", 2), ("BIN_5", 5), ("tri 4", 4), ("tri_3", 3),
        ("1", 1), ("4", 4), ("7", 7),
        (1, 1), (6, 6),
    ],
)
def test_filter_row_names_aliases_and_sizes(spec, n):
    torch.testing.assert_close(filters.filter_row(spec), torch.tensor(pascal(n), dtype=torch.float64))


def test_filter_names_table_matches_paper():
    assert filters.FILTER_NAMES == {"rect2": 2, "tri3": 3, "tri4": 4, "bin5": 5}


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [("tri5", "tri4"), ("rect", "rect2"), ("bin4", "bin5"), ("Tri-44", "tri4")],
)
def test_unknown_name_suggests_close_match(spec, suggestion):
    with pytest.raises(ValueError, match=rf"got '{spec}'\. Did you mean '{suggestion}'\?"):
        filters.filter_row(spec, where="`BlurPool2d`")


def test_unknown_name_lists_accepted_names_and_where():
    with pytest.raises(
        ValueError,
        match=r"^`blur_pool2d`: `filter_size` must be an int or one of "
        r"\['bin5', 'rect2', 'tri3', 'tri4'\], got 'gaussian'",
    ):
        filters.filter_row("gaussian", where="`blur_pool2d`")


@pytest.mark.parametrize("spec", [0, -3, "0"])
def test_filter_size_below_one_rejected(spec):
    with pytest.raises(ValueError, match=r"`filter_size` must be >= 1, got (0|-3)\. Use 1 for no blur"):
        filters.filter_row(spec)


@pytest.mark.parametrize("spec", [2.5, None, True, [1.0, 2.0, 1.0]])
def test_filter_row_bad_type(spec):
    with pytest.raises(TypeError, match="`filter_size` must be an int, a filter name or a 1-D tensor"):
        filters.filter_row(spec)


# --------------------------------------------------------------------------- custom rows


@pytest.mark.parametrize(
    "taps", [[1.0, 2.0, 1.0], [3.0], [1.0, -0.5, 2.0], [0.2, 0.3], [-1.0, -3.0]]
)
@pytest.mark.parametrize("kind", ["tensor", "numpy", "tensor32"])
def test_custom_filter_normalised(taps, kind):
    if kind == "tensor":
        spec = torch.tensor(taps, dtype=torch.float64)
    elif kind == "tensor32":
        spec = torch.tensor(taps, dtype=torch.float32)
    else:
        spec = np.asarray(taps)
    row = filters.filter_row(spec)
    expected = torch.tensor([t / sum(taps) for t in taps], dtype=torch.float64)
    assert row.dtype == torch.float64
    torch.testing.assert_close(row, expected, rtol=1e-6, atol=1e-7)


def test_custom_filter_not_modified_in_place():
    spec = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    filters.filter_row(spec)
    assert spec.tolist() == [1.0, 2.0, 1.0]


def test_custom_filter_requires_grad_is_detached():
    spec = torch.tensor([1.0, 2.0, 1.0], requires_grad=True)
    assert not filters.filter_row(spec).requires_grad


@pytest.mark.parametrize(
    ("taps", "message"),
    [
        ([1.0, float("nan"), 1.0], "a custom filter must be finite"),
        ([1.0, float("inf")], "a custom filter must be finite"),
        ([float("-inf"), 1.0], "a custom filter must be finite"),
        ([1.0, -1.0], "a custom filter must have a non-zero sum"),
        ([0.0, 0.0, 0.0], "a custom filter must have a non-zero sum"),
        ([1.0, -2.0, 1.0], "a custom filter must have a non-zero sum"),
    ],
)
@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_custom_filter_bad_values_rejected(taps, message, kind):
    spec = torch.tensor(taps) if kind == "tensor" else np.asarray(taps)
    with pytest.raises(ValueError, match=rf"^`BlurPool2d`: {message}.*got \["):
        filters.filter_row(spec, where="`BlurPool2d`")


@pytest.mark.parametrize("shape", [(0,), (2, 2), (1, 3), ()])
def test_custom_filter_wrong_shape_rejected(shape):
    spec = torch.ones(shape)
    with pytest.raises(
        ValueError, match=rf"a custom filter must be a non-empty 1-D tensor, got shape {re.escape(str(shape))}"
    ):
        filters.filter_row(spec)


# --------------------------------------------------------------------------- per-axis rows


def test_filter_rows_isotropic():
    rows = filters.filter_rows("tri3", 3)
    assert len(rows) == 3
    for row in rows:
        torch.testing.assert_close(row, torch.tensor(pascal(3), dtype=torch.float64))


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [(("rect2", 3), (2, 3)), ((1, "bin5"), (1, 5)), ([4, "Tri-3"], (4, 3)), ((2, 3, 5), (2, 3, 5))],
)
def test_filter_rows_anisotropic(spec, sizes):
    rows = filters.filter_rows(spec, len(sizes))
    assert [r.numel() for r in rows] == list(sizes)
    for row, n in zip(rows, sizes, strict=True):
        torch.testing.assert_close(row, torch.tensor(pascal(n), dtype=torch.float64))


def test_filter_rows_anisotropic_custom():
    rows = filters.filter_rows((torch.tensor([1.0, 3.0]), 3), 2)
    torch.testing.assert_close(rows[0], torch.tensor([0.25, 0.75], dtype=torch.float64))
    torch.testing.assert_close(rows[1], torch.tensor(pascal(3), dtype=torch.float64))


@pytest.mark.parametrize(("spec", "ndim"), [((2, 3), 1), ((2, 3), 3), ((2,), 2)])
def test_filter_rows_wrong_length(spec, ndim):
    with pytest.raises(ValueError, match=rf"must hold one filter per axis \({ndim}\), got"):
        filters.filter_rows(spec, ndim)


# --------------------------------------------------------------------------- kernel, padding


@pytest.mark.parametrize(("a", "b"), [(2, 2), (3, 5), (1, 4), (4, 1), (5, 5)])
def test_kernel_2d_is_outer_product(a, b):
    k = filters.kernel([filters.binomial(a), filters.binomial(b)])
    pa, pb = pascal(a), pascal(b)
    expected = torch.tensor([[u * v for v in pb] for u in pa], dtype=torch.float64)
    assert k.shape == (a, b)
    torch.testing.assert_close(k, expected)
    assert math.isclose(k.sum().item(), 1.0, abs_tol=1e-12)


def test_kernel_3d_is_outer_product():
    rows = [filters.binomial(2), filters.binomial(3), filters.binomial(4)]
    k = filters.kernel(rows)
    p2, p3, p4 = pascal(2), pascal(3), pascal(4)
    expected = torch.tensor([[[a * b * c for c in p4] for b in p3] for a in p2], dtype=torch.float64)
    assert k.shape == (2, 3, 4)
    torch.testing.assert_close(k, expected)


def test_kernel_1d_is_row():
    row = filters.binomial(5)
    torch.testing.assert_close(filters.kernel([row]), row)


@pytest.mark.parametrize("k", range(1, 12))
def test_padding_split(k):
    before, after = filters.padding(k)
    assert before == math.floor((k - 1) / 2)
    assert after == math.ceil((k - 1) / 2)
    assert before + after == k - 1
    assert before <= after
