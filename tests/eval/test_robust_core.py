"""The interval every corruption and perturbation summary carries: bounded means, Wilson-based."""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from antialias.eval._robust_core import bounded_mean_interval, estimate
from antialias.eval._stats import wilson_interval


@given(
    fraction=st.floats(0, 1),
    n=st.integers(1, 10_000),
    low=st.floats(-50, 50),
    width=st.floats(0.01, 100),
    confidence=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_interval_holds_the_mean_inside_the_bounds(fraction, n, low, width, confidence):
    high = low + width
    mean = low + fraction * width
    lo, hi = bounded_mean_interval(mean, n, low, high, confidence)
    tol = 1e-9 * max(1.0, abs(low), abs(high))
    assert low - tol <= lo <= mean + tol and mean - tol <= hi <= high + tol


@given(successes=st.integers(0, 200), extra=st.integers(0, 200))
def test_zero_one_values_give_the_wilson_interval(successes, extra):
    n = successes + extra
    assume(n > 0)
    assert bounded_mean_interval(successes / n, n, 0.0, 1.0, 0.95) == pytest.approx(wilson_interval(successes, n))


def test_more_images_narrow_the_interval_and_scale_applies_to_all():
    assert all(math.isnan(v) for v in bounded_mean_interval(0.0, 0, 0.0, 1.0, 0.95))  # no images: no interval
    widths = [(lambda lo, hi: hi - lo)(*bounded_mean_interval(0.3, n, 0.0, 2.0, 0.95)) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2] > 0
    e = estimate(0.25, 40, 0.0, 1.0, 0.95)
    lo, hi = bounded_mean_interval(0.25, 40, 0.0, 1.0, 0.95)
    assert (e.value, e.low, e.high, e.n) == pytest.approx((25.0, 100 * lo, 100 * hi, 40))
