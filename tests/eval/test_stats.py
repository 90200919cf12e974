"""Tests of antialias.eval._stats: every interval against hand-computed values, then properties.

Hand computations write the published formulas out again here (they share no code with the
module), with the two-sided 95% normal quantile 1.959963984540054 and Student's t(0.975, 3) =
3.182446 from the tables.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from antialias.eval._stats import (
    Proportion,
    mcnemar_exact_p,
    paired_mean_difference,
    paired_proportion_difference,
    paired_proportion_interval,
    wilson_interval,
)

Z95 = 1.959963984540054


def hand_wilson(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927): the roots of (p - k/n)^2 = z^2 p (1 - p) / n, written out."""
    p = k / n
    centre = (2 * k + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(n * p * (1 - p) + z * z / 4) / (n + z * z)
    return centre - half, centre + half


# ----------------------------------------------------------------------------------- Wilson


def test_wilson_matches_hand_computation():
    assert wilson_interval(90, 100) == pytest.approx(hand_wilson(90, 100), abs=1e-12)
    assert wilson_interval(90, 100) == pytest.approx((0.8256, 0.9448), abs=1e-4)  # the usual textbook value
    # no successes: low is 0 and high is z^2 / (n + z^2)
    assert wilson_interval(0, 10) == pytest.approx((0.0, Z95**2 / (10 + Z95**2)), abs=1e-12)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(2.5, 10) == pytest.approx(hand_wilson(2.5, 10), abs=1e-12)  # fractional successes


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError, match=r"`wilson_interval`: `successes` must be in \[0, total\], got 11 of 10"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match=r"`wilson_interval`: `confidence` must be a number in \(0, 1\), got 1.5"):
        wilson_interval(1, 10, 1.5)


@given(k=st.integers(0, 500), extra=st.integers(0, 500))
def test_wilson_contains_the_estimate_and_narrows_with_n(k, extra):
    n = k + extra
    assume(n > 0)
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    low4, high4 = wilson_interval(4 * k, 4 * n)
    assert high4 - low4 < high - low


def test_proportion_from_counts():
    p = Proportion.from_counts(9, 10)
    assert (p.value, p.successes, p.total) == (0.9, 9, 10)
    assert (p.low, p.high) == wilson_interval(9, 10)
    assert str(p).startswith("90.00% [")


# ----------------------------------------------------------------------------------- McNemar


def test_mcnemar_exact_matches_hand_computed_binomial_tails():
    assert mcnemar_exact_p(7, 1) == pytest.approx(2 * (1 + 8) / 2**8)  # 2 P(X <= 1), X ~ Bin(8, 1/2)
    assert mcnemar_exact_p(0, 5) == pytest.approx(2 / 2**5)
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact_p(3, 3) == 1.0 and mcnemar_exact_p(0, 0) == 1.0
    with pytest.raises(ValueError, match=r"`mcnemar_exact_p`: the discordant counts must be >= 0"):
        mcnemar_exact_p(-1, 2)


@given(n10=st.integers(0, 300), n01=st.integers(0, 300))
def test_mcnemar_is_symmetric_and_a_probability(n10, n01):
    p = mcnemar_exact_p(n10, n01)
    assert 0.0 <= p <= 1.0 and p == pytest.approx(mcnemar_exact_p(n01, n10))


# ----------------------------------------------------------------------------------- paired proportions


def hand_newcombe(n11: int, n10: int, n01: int, n00: int) -> tuple[float, float, float]:
    """Newcombe (1998), method 10, written out for p_B - p_A with B = (n11 + n10) / n."""
    n = n11 + n10 + n01 + n00
    pb, pa = (n11 + n10) / n, (n11 + n01) / n
    lb, ub = hand_wilson(n11 + n10, n)
    la, ua = hand_wilson(n11 + n01, n)
    phi = (n11 * n00 - n10 * n01) / math.sqrt((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    d = pb - pa
    return (d, d - math.sqrt((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2),
            d + math.sqrt((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))


def test_newcombe_matches_hand_computation_on_a_published_table():
    # Fagerland, Lydersen & Laake (2014)'s example: airway hyper-responsiveness before (A) and after (B)
    # stem cell transplantation in 21 children: 1 both, 7 after only, 1 before only, 12 neither
    # (p_A = 2/21 = 0.0952, p_B = 8/21 = 0.381, phi = 5 / sqrt(3952) = 0.0795, as published).
    diff, low, high = paired_proportion_interval(1, 7, 1, 12)
    assert diff == pytest.approx(6 / 21)
    assert (diff, low, high) == pytest.approx(hand_newcombe(1, 7, 1, 12), abs=1e-12)
    assert (low, high) == pytest.approx((0.0361, 0.5017), abs=1e-4)
    assert mcnemar_exact_p(7, 1) == pytest.approx(0.0703125)


def test_paired_difference_from_outcomes_counts_the_table():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(500, generator=g) < 0.7
    b = torch.where(torch.rand(500, generator=g) < 0.2, ~a, a)
    d = paired_proportion_difference(a, b)
    n11, n10 = int((a & b).sum()), int((b & ~a).sum())
    n01, n00 = int((a & ~b).sum()), int((~a & ~b).sum())
    assert (d["n10"], d["n01"], d["n"]) == (n10, n01, 500)
    assert d["diff"] == pytest.approx(float(b.double().mean() - a.double().mean()))
    assert (d["diff"], d["low"], d["high"]) == pytest.approx(hand_newcombe(n11, n10, n01, n00), abs=1e-12)
    assert d["p_value"] == pytest.approx(scipy.stats.binomtest(n10, n10 + n01, 0.5).pvalue)
    bits_a, bits_b = "".join("1" if v else "0" for v in a.tolist()), "".join("1" if v else "0" for v in b.tolist())
    assert paired_proportion_difference(bits_a, bits_b) == d  # strings of 0/1, as results.json keeps them
    assert paired_proportion_difference(a.tolist(), b.numpy()) == d


def test_paired_difference_rejects_bad_input():
    with pytest.raises(
        ValueError, match=r"`paired_proportion_difference`: `a` and `b` must be non-empty and of equal length"
    ):
        paired_proportion_difference("0101", "011")
    with pytest.raises(ValueError, match=r"`paired_proportion_difference`: `b` must be a string of 0 and 1"):
        paired_proportion_difference("01", "0x")
    with pytest.raises(ValueError, match=r"`paired_proportion_difference`: `a` must be a 1-D sequence of 0/1"):
        paired_proportion_difference([0, 2], [0, 1])
    with pytest.raises(ValueError, match=r"`paired_proportion_interval`: the counts must be >= 0 with a positive sum"):
        paired_proportion_interval(0, 0, 0, 0)


counts = st.tuples(*(st.integers(0, 120) for _ in range(4))).filter(lambda c: sum(c) > 0)


@given(c=counts)
def test_newcombe_contains_the_estimate_within_bounds_and_is_antisymmetric(c):
    n11, n10, n01, n00 = c
    diff, low, high = paired_proportion_interval(*c)
    assert -1.0 <= low <= diff <= high <= 1.0
    swapped = paired_proportion_interval(n11, n01, n10, n00)  # A and B exchanged
    assert swapped == pytest.approx((-diff, -high, -low), abs=1e-12)


@given(c=counts)
def test_newcombe_narrows_with_n(c):
    _, low, high = paired_proportion_interval(*c)
    _, low4, high4 = paired_proportion_interval(*(4 * k for k in c))
    assert high4 - low4 < high - low


def test_newcombe_coverage_on_simulated_pairs():
    """95% intervals cover the true difference in about 95% of 2,000 simulated tables (fixed seed)."""
    rng = np.random.default_rng(0)
    probs = [0.5, 0.2, 0.1, 0.2]  # n11, n10, n01, n00: true difference 0.1
    tables = rng.multinomial(60, probs, size=2000)
    covered = [low <= 0.1 <= high for _, low, high in (paired_proportion_interval(*map(int, t)) for t in tables)]
    assert 0.93 <= np.mean(covered) <= 0.975


# ----------------------------------------------------------------------------------- paired means


def test_paired_mean_difference_matches_student_t_by_hand():
    d = paired_mean_difference([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0])
    sd = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)  # 1.290994
    assert d["diff"] == 2.5 and d["n"] == 4
    assert (d["low"], d["high"]) == pytest.approx((2.5 - 3.182446 * sd / 2, 2.5 + 3.182446 * sd / 2), rel=1e-6)
    assert d["p_value"] == pytest.approx(scipy.stats.ttest_rel([1.0, 2.0, 3.0, 4.0], [0.0] * 4).pvalue)


def test_paired_mean_difference_edge_cases_and_errors():
    one = paired_mean_difference([1.0], [3.0])
    assert one["diff"] == 2.0 and one["low"] == -math.inf and one["high"] == math.inf and one["p_value"] == 1.0
    same = paired_mean_difference([1.0, 2.0], [1.0, 2.0])
    assert same["low"] == same["high"] == 0.0 and same["p_value"] == 1.0
    with pytest.raises(
        ValueError, match=r"`paired_mean_difference`: `a` and `b` must be non-empty 1-D sequences of equal length"
    ):
        paired_mean_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"`paired_mean_difference`: `a` and `b` must hold finite values"):
        paired_mean_difference([1.0, math.nan], [1.0, 2.0])


values = st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=40)


@given(a=values, shift=st.floats(-3, 3), noise=st.lists(st.floats(-1, 1), min_size=40, max_size=40))
def test_paired_mean_contains_the_estimate_and_narrows_with_n(a, shift, noise):
    b = [x + shift + e for x, e in zip(a, noise, strict=False)]
    d = paired_mean_difference(a, b)
    assert d["low"] <= d["diff"] <= d["high"]
    d4 = paired_mean_difference(a * 4, b * 4)  # the same pairs four times
    assert d4["diff"] == pytest.approx(d["diff"])
    assert d4["high"] - d4["low"] <= d["high"] - d["low"]


def test_paired_mean_coverage_on_simulated_data():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        a = rng.normal(0.0, 1.0, 8)
        b = a + rng.normal(0.3, 0.5, 8)  # true mean difference 0.3
        d = paired_mean_difference(a, b)
        covered += d["low"] <= 0.3 <= d["high"]
    assert 0.93 <= covered / 2000 <= 0.97
