"""Comparisons of models trained several times: pooled variance between trainings, the two-level
interval (its coverage when trainings vary), and the detectable effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antialias.eval._stats import (
    detectable_effect,
    paired_mean_difference,
    pooled_seed_variance,
    seed_aware_difference,
)

values = st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=30)


@settings(max_examples=40, deadline=None)
@given(values, st.data())
def test_one_training_each_and_no_seed_variance_is_the_paired_t_interval(a: list[float], data: st.DataObject) -> None:
    b = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=len(a), max_size=len(a)))
    two = seed_aware_difference([a], [b], seed_variance=math.nan, seed_df=0)
    one = paired_mean_difference(a, b)
    for key in ("diff", "low", "high"):
        assert two[key] == pytest.approx(one[key], rel=1e-9, abs=1e-9)
    assert two["se_seeds"] == 0.0 and "unknown" in two["method"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.floats(0, 2), st.integers(0, 2**31 - 1))
def test_swapping_the_models_mirrors_the_interval(na: int, nb: int, seed_var: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(na, 20)), rng.normal(size=(nb, 20))
    ab = seed_aware_difference(a, b, seed_variance=seed_var, seed_df=3)
    ba = seed_aware_difference(b, a, seed_variance=seed_var, seed_df=3)
    assert ab["diff"] == pytest.approx(-ba["diff"])
    assert ab["low"] == pytest.approx(-ba["high"]) and ab["high"] == pytest.approx(-ba["low"])
    assert ab["low"] <= ab["diff"] <= ab["high"]


def test_more_trainings_and_more_seed_variance_move_the_interval_the_right_way() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 100)), rng.normal(0.3, size=(3, 100))
    narrow = seed_aware_difference(a, b, seed_variance=0.01, seed_df=4)
    wide = seed_aware_difference(a, b, seed_variance=0.1, seed_df=4)
    fewer = seed_aware_difference(a[:1], b[:1], seed_variance=0.1, seed_df=4)
    assert narrow["high"] - narrow["low"] < wide["high"] - wide["low"]
    assert wide["se_seeds"] < fewer["se_seeds"]
    assert wide["se_seeds"] == pytest.approx(math.sqrt(0.1 * (1 / 3 + 1 / 3)))


def _simulate(rng: np.random.Generator, trainings: int, units: int, sd_train: float, effect: float) -> tuple:
    """Two models with a true mean difference ``effect``: every training shifts all units by its own offset."""
    image = rng.normal(size=units)  # what makes images easy or hard, shared by both models

    def model(shift: float) -> np.ndarray:
        offsets = rng.normal(0, sd_train, size=(trainings, 1))
        return shift + image + offsets + rng.normal(0, 0.5, size=(trainings, units))

    return model(0.0), model(effect)


def test_the_interval_covers_the_true_difference_when_trainings_vary() -> None:
    """95% coverage under between-training variation; the units-only interval misses far more often."""
    rng = np.random.default_rng(1)
    hits, naive_hits, sims = 0, 0, 400
    for _ in range(sims):
        a, b = _simulate(rng, trainings=3, units=300, sd_train=0.3, effect=0.2)
        var, df = pooled_seed_variance([a.mean(1), b.mean(1)])
        d = seed_aware_difference(a, b, seed_variance=var, seed_df=df)
        hits += d["low"] <= 0.2 <= d["high"]
        naive = seed_aware_difference(a, b, seed_variance=math.nan, seed_df=0)
        naive_hits += naive["low"] <= 0.2 <= naive["high"]
    assert 0.92 <= hits / sims <= 0.995
    assert naive_hits / sims < 0.6


def test_an_effect_of_the_detectable_size_is_found_about_80_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    found, sims = 0, 400
    for _ in range(sims):
        a, b = _simulate(rng, trainings=3, units=200, sd_train=0.0, effect=0.0)
        d0 = seed_aware_difference(a, b, seed_variance=0.0, seed_df=4)
        b = b + d0["detectable"]
        d = seed_aware_difference(a, b, seed_variance=0.0, seed_df=4)
        found += d["low"] > 0
    assert 0.7 <= found / sims <= 0.9


def test_detectable_effect_and_pooled_variance() -> None:
    assert detectable_effect(1.0) == pytest.approx(1.959964 + 0.841621, rel=1e-5)
    assert detectable_effect(1.0, df=4) > detectable_effect(1.0)  # heavier tails, fewer degrees of freedom
    assert detectable_effect(2.0) == pytest.approx(2 * detectable_effect(1.0))
    assert detectable_effect(math.inf) == math.inf
    with pytest.raises(ValueError, match="power"):
        detectable_effect(1.0, power=1.0)
    assert pooled_seed_variance([[1.0], [2.0]]) == (pytest.approx(math.nan, nan_ok=True), 0)
    var, df = pooled_seed_variance([[1.0, 2.0, 3.0], [10.0, 14.0]])
    assert (var, df) == (pytest.approx((2.0 + 8.0) / 3), 3)


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="same units"):
        seed_aware_difference([[0, 1]], [[0, 1, 1]], seed_variance=0.0, seed_df=1)
    with pytest.raises(ValueError, match="finite"):
        seed_aware_difference([[0, math.nan]], [[0, 1]], seed_variance=0.0, seed_df=1)
    with pytest.raises(ValueError, match="one length"):
        seed_aware_difference([[0, 1], [1]], [[0, 1]], seed_variance=0.0, seed_df=1)
