"""The statistics of every evaluation: proportions, paired comparisons, and paired mean differences.

One module, so that every interval in a report comes from one implementation:

- :func:`wilson_interval` / :class:`Proportion`: a binomial proportion (accuracy, consistency) with
  the Wilson score interval (Wilson, JASA 1927).
- :func:`paired_proportion_difference`: two 0/1 outcomes on the same items (model A and model B on
  the same test images with the same random shifts), with Newcombe's hybrid score interval for
  paired data and the exact McNemar test.
- :func:`paired_mean_difference`: paired real values (error rate per image, distance per layer),
  with the Student-t interval and the paired t-test.
- :func:`pooled_seed_variance` and :func:`seed_aware_difference`: models trained several times
  (seeds): the difference of the means over trainings and images, with an interval that adds the
  variation between trainings to the variation between images, and the smallest effect the
  comparison could detect (:func:`detectable_effect`).
- :func:`bootstrap_mean_interval`: the mean of real values per image (the mean absolute change of
  the top-class probability), with the percentile bootstrap over images, seeded by
  :mod:`antialias.data.seeding`.

Quantiles and exact tests come from :mod:`scipy.stats`, a declared dependency: no fallback whose
result would depend on what is installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from antialias.data.seeding import BOOTSTRAP, numpy_seed

__all__ = [
    "Proportion",
    "bootstrap_mean_interval",
    "detectable_effect",
    "mcnemar_exact_p",
    "paired_mean_difference",
    "paired_proportion_difference",
    "paired_proportion_interval",
    "pooled_seed_variance",
    "seed_aware_difference",
    "wilson_interval",
]


def _check_confidence(where: str, confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"`{where}`: `confidence` must be a number in (0, 1), got {confidence!r}.")


def _z(confidence: float) -> float:
    """The two-sided standard-normal quantile, e.g. 1.959964 for 0.95."""
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: float, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / total`` (Wilson, JASA 1927).

    Better than the normal (Wald) interval near 0 and 1 (consistency is often above 0.9), and never
    outside ``[0, 1]``. ``successes`` may be fractional (``total`` times the mean of values bounded
    in ``[0, 1]``): such a mean has variance at most ``p (1 - p) / total``, so the interval is then
    conservative.

    Args:
        successes: Number of successes, ``0 <= successes <= total``.
        total: Number of trials (0 gives the uninformative ``(0, 1)``).
        confidence: Two-sided confidence level.

    Returns:
        ``(low, high)``; ``low`` is 0 when there are no successes, ``high`` 1 when all are.

    Raises:
        ValueError: Counts out of range, or ``confidence`` not in (0, 1).

    Examples:
        >>> tuple(round(v, 4) for v in wilson_interval(90, 100))
        (0.8256, 0.9448)
    """
    _check_confidence("wilson_interval", confidence)
    if total < 0 or not 0 <= successes <= total:
        raise ValueError(f"`wilson_interval`: `successes` must be in [0, total], got {successes!r} of {total!r}.")
    if total == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


@dataclass
class Proportion:
    """A measured proportion with its Wilson interval (a plain dataclass: torchmetrics walks it)."""

    value: float
    low: float
    high: float
    successes: int
    total: int
    confidence: float = 0.95

    @classmethod
    def from_counts(cls, successes: int, total: int, confidence: float = 0.95) -> Proportion:
        successes, total = int(successes), int(total)
        low, high = wilson_interval(successes, total, confidence)
        value = successes / total if total else float("nan")
        return cls(value, low, high, successes, total, confidence)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{100 * self.value:.2f}% [{100 * self.low:.2f}, {100 * self.high:.2f}] (n={self.total})"


# ----------------------------------------------------------------------------------- paired 0/1 outcomes


def mcnemar_exact_p(n10: int, n01: int) -> float:
    """Two-sided exact McNemar test: the ``n10 + n01`` discordant items split as Binomial(m, 1/2) under H0.

    Examples:
        >>> mcnemar_exact_p(7, 1)  # 2 * P(X <= 1) for X ~ Binomial(8, 1/2) = 2 * 9 / 256
        0.0703125
        >>> mcnemar_exact_p(0, 0)
        1.0
    """
    if n10 < 0 or n01 < 0:
        raise ValueError(f"`mcnemar_exact_p`: the discordant counts must be >= 0, got {n10!r} and {n01!r}.")
    m = n10 + n01
    if m == 0:
        return 1.0
    return float(stats.binomtest(int(n10), int(m), 0.5).pvalue)


def paired_proportion_interval(n11: int, n10: int, n01: int, n00: int,
                               confidence: float = 0.95) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval for ``p_B - p_A`` from the counts of a paired 2x2 table.

    Method 10 of Newcombe, *Improved confidence intervals for the difference between binomial
    proportions based on paired data*, Statistics in Medicine 17 (1998) 2635-2650: the Wilson
    intervals ``(l_B, u_B)`` and ``(l_A, u_A)`` of the two marginal proportions are combined with
    the phi correlation of the table,

        low  = d - sqrt((p_B - l_B)^2 - 2 phi (p_B - l_B)(u_A - p_A) + (u_A - p_A)^2)
        high = d + sqrt((u_B - p_B)^2 - 2 phi (u_B - p_B)(p_A - l_A) + (p_A - l_A)^2)

    (phi taken as 0 when a margin is empty). Unlike the Wald interval it stays inside ``[-1, 1]``
    and keeps close to nominal coverage for small or lopsided tables (Newcombe's and Fagerland,
    Lydersen and Laake's, Statistics in Medicine 33 (2014) 2850-2875, evaluations).

    Args:
        n11: Items where both outcomes are 1.
        n10: Items where only B is 1.
        n01: Items where only A is 1.
        n00: Items where both are 0.
        confidence: Two-sided confidence level.

    Returns:
        ``(diff, low, high)`` with ``diff = (n10 - n01) / n``.

    Examples:
        >>> [round(v, 4) for v in paired_proportion_interval(1, 7, 1, 12)]
        [0.2857, 0.0361, 0.5017]
    """
    _check_confidence("paired_proportion_interval", confidence)
    counts = (n11, n10, n01, n00)
    if any(c < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(f"`paired_proportion_interval`: the counts must be >= 0 with a positive sum, got {counts!r}.")
    n = n11 + n10 + n01 + n00
    b1, a1 = n11 + n10, n11 + n01  # items where B (A) is 1
    p_b, p_a = b1 / n, a1 / n
    l_b, u_b = wilson_interval(b1, n, confidence)
    l_a, u_a = wilson_interval(a1, n, confidence)
    margins = b1 * (n - b1) * a1 * (n - a1)
    phi = (n11 * n00 - n10 * n01) / math.sqrt(margins) if margins > 0 else 0.0
    diff = (n10 - n01) / n
    below = math.sqrt(max(0.0, (p_b - l_b) ** 2 - 2 * phi * (p_b - l_b) * (u_a - p_a) + (u_a - p_a) ** 2))
    above = math.sqrt(max(0.0, (u_b - p_b) ** 2 - 2 * phi * (u_b - p_b) * (p_a - l_a) + (p_a - l_a) ** 2))
    return diff, max(-1.0, diff - below), min(1.0, diff + above)


def _outcomes(where: str, name: str, x: str | Sequence[Any] | Any) -> np.ndarray:
    """0/1 outcomes as a bool vector: a string of ``0``/``1``, or a 1-D sequence, array or tensor of 0/1."""
    if isinstance(x, str):
        if set(x) - {"0", "1"}:
            raise ValueError(f"`{where}`: `{name}` must be a string of 0 and 1, got {x[:20]!r}.")
        return np.frombuffer(x.encode("ascii"), dtype=np.uint8) == ord("1")
    arr = np.asarray(x)
    if arr.ndim != 1 or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"`{where}`: `{name}` must be a 1-D sequence of 0/1 outcomes, got shape {arr.shape}.")
    return arr.astype(bool)


def paired_proportion_difference(a: str | Sequence[Any] | Any, b: str | Sequence[Any] | Any,
                                 confidence: float = 0.95) -> dict[str, Any]:
    """Difference ``mean(b) - mean(a)`` of two 0/1 outcomes on the same items, with a paired interval.

    The interval is Newcombe's hybrid score interval for paired proportions
    (:func:`paired_proportion_interval`); the p-value is the exact McNemar test on the discordant
    items (:func:`mcnemar_exact_p`).

    Args:
        a, b: Outcomes per item, as strings of ``0``/``1`` or 1-D sequences/arrays/tensors of 0/1.
        confidence: Two-sided confidence level.

    Returns:
        ``diff``, ``low``, ``high``, ``n``, ``n10`` (items where only ``b`` is 1), ``n01`` (only
        ``a``), ``p_value``, ``confidence`` and ``method``.

    Raises:
        ValueError: Outcomes of different lengths, empty, or not 0/1.

    Examples:
        >>> d = paired_proportion_difference("0011", "0111")
        >>> d["diff"], d["n10"], d["n01"], d["p_value"]
        (0.25, 1, 0, 1.0)
    """
    where = "paired_proportion_difference"
    _check_confidence(where, confidence)
    xa, xb = _outcomes(where, "a", a), _outcomes(where, "b", b)
    if xa.shape != xb.shape or xa.size == 0:
        raise ValueError(f"`{where}`: `a` and `b` must be non-empty and of equal length, got {xa.size} and {xb.size}.")
    n11, n10 = int((xa & xb).sum()), int((xb & ~xa).sum())
    n01, n00 = int((xa & ~xb).sum()), int((~xa & ~xb).sum())
    diff, low, high = paired_proportion_interval(n11, n10, n01, n00, confidence)
    return {"diff": diff, "low": low, "high": high, "n": xa.size, "n10": n10, "n01": n01,
            "p_value": mcnemar_exact_p(n10, n01), "confidence": confidence,
            "method": "Newcombe hybrid score interval (paired); exact McNemar test"}


# ----------------------------------------------------------------------------------- paired real values


def paired_mean_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean of ``b - a`` over paired values, with the Student-t interval and the paired t-test.

    Args:
        a, b: Values per unit (image, sequence, layer), paired by position.
        confidence: Two-sided confidence level.

    Returns:
        ``diff``, ``low``, ``high``, ``n``, ``p_value``, ``confidence`` and ``method``. One pair gives
        an infinite interval and a p-value of 1; differences all equal give a zero-width interval
        (and a p-value of 0 unless they are 0).

    Raises:
        ValueError: Sequences of different lengths, empty, or holding non-finite values.

    Examples:
        >>> d = paired_mean_difference([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
        >>> d["diff"], d["low"] == d["high"] == 1.0
        (1.0, True)
    """
    where = "paired_mean_difference"
    _check_confidence(where, confidence)
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != xb.shape or xa.size == 0:
        raise ValueError(f"`{where}`: `a` and `b` must be non-empty 1-D sequences of equal length, "
                         f"got shapes {xa.shape} and {xb.shape}.")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ValueError(f"`{where}`: `a` and `b` must hold finite values.")
    d = xb - xa
    n = int(d.size)
    mean = float(d.mean())
    out: dict[str, Any] = {"diff": mean, "n": n, "confidence": confidence, "method": "Student t (paired)"}
    if n < 2:
        return {**out, "low": -math.inf, "high": math.inf, "p_value": 1.0}
    sd = float(d.std(ddof=1))
    q = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    half = q * sd / math.sqrt(n)
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {**out, "low": mean - half, "high": mean + half, "p_value": p}


# ----------------------------------------------------------------------------------- several trainings


def detectable_effect(se: float, df: float = math.inf, confidence: float = 0.95, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at ``1 - confidence`` finds with probability ``power``.

    ``(t_{(1 + confidence) / 2} + t_{power}) * se`` with ``df`` degrees of freedom (normal when
    infinite): the usual minimum detectable effect of a comparison whose standard error is ``se``.

    Examples:
        >>> round(detectable_effect(1.0), 2)  # 1.96 + 0.84
        2.8
    """
    where = "detectable_effect"
    _check_confidence(where, confidence)
    if not (0.0 < power < 1.0):
        raise ValueError(f"`{where}`: `power` must be in (0, 1), got {power!r}.")
    if not (se >= 0.0 and math.isfinite(se)):
        return math.inf
    dist = stats.norm if math.isinf(df) else stats.t(df)
    return float((dist.ppf(0.5 + confidence / 2) + dist.ppf(power)) * se)


def _runs_matrix(where: str, name: str, runs: Sequence[Sequence[float]] | Any) -> np.ndarray:
    rows = [np.asarray(r, dtype=np.float64) for r in runs]
    arr = np.stack(rows) if rows and len({r.shape for r in rows}) == 1 else np.empty((0, 0))
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{where}`: `{name}` must be one non-empty sequence of per-unit values per training, all of "
                         f"one length, got {len(rows)} sequence(s) of shapes {sorted({r.shape for r in rows})}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{where}`: `{name}` must hold finite values.")
    return arr


def pooled_seed_variance(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The variance between trainings of one configuration, pooled over configurations.

    Args:
        groups: Per configuration, the mean of the metric of each of its trainings (a configuration
            trained once contributes nothing).

    Returns:
        ``(variance, degrees of freedom)``: the pooled sample variance ``sum SS / sum (n - 1)`` and
        ``sum (n - 1)``; ``(nan, 0)`` when no configuration was trained twice.

    Examples:
        >>> pooled_seed_variance([[1.0, 3.0], [5.0], [0.0, 2.0, 4.0]])  # (2 + 8) / (1 + 2)
        (3.3333333333333335, 3)
    """
    ss, df = 0.0, 0
    for g in groups:
        x = np.asarray(g, dtype=np.float64)
        if x.size >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += x.size - 1
    return (ss / df, df) if df else (math.nan, 0)


def seed_aware_difference(a: Sequence[Sequence[float]] | Any, b: Sequence[Sequence[float]] | Any, *,
                          seed_variance: float, seed_df: int, confidence: float = 0.95,
                          power: float = 0.8) -> dict[str, Any]:
    """Mean of model ``b`` minus mean of model ``a`` over their trainings and the same units (images).

    A two-level comparison for models trained several times and evaluated on the same units: the
    estimate is the difference of the grand means. Its variance is the sum of

    - the variation between units: ``var_i(d_i) / N`` with ``d_i`` the difference of the two models'
      values on unit ``i``, each averaged over its trainings (paired by unit, as in
      :func:`paired_mean_difference`);
    - the variation between trainings: ``seed_variance * (1 / n_a + 1 / n_b)``, where
      ``seed_variance`` is the variance of one training's mean metric (from
      :func:`pooled_seed_variance`: pooled over configurations, so a model trained once still
      carries it).

    The two parts overlap slightly (an image's outcome also varies between trainings), so the
    interval errs on the wide side. The interval is Student-t with Welch-Satterthwaite degrees of
    freedom; ``detectable`` is :func:`detectable_effect` of its standard error.

    Args:
        a, b: One sequence of per-unit values per training (0/1 outcomes or real values), all over
            the same units in the same order.
        seed_variance: Variance between trainings of the metric's mean (nan or 0: unknown/none).
        seed_df: Its degrees of freedom (0 when unknown: the unit-level interval alone).

    Returns:
        ``diff``, ``low``, ``high``, ``se``, ``df``, ``p_value``, ``detectable``, ``n`` (units),
        ``trainings`` (``[n_a, n_b]``), ``se_units``, ``se_seeds``, ``confidence``, ``method``.

    Examples:
        >>> d = seed_aware_difference([[0, 1, 1, 0]], [[1, 1, 1, 0]], seed_variance=0.0, seed_df=4)
        >>> d["diff"], d["trainings"]
        (0.25, [1, 1])
    """
    where = "seed_aware_difference"
    _check_confidence(where, confidence)
    xa, xb = _runs_matrix(where, "a", a), _runs_matrix(where, "b", b)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"`{where}`: `a` and `b` must cover the same units, got {xa.shape[1]} and {xb.shape[1]}.")
    d = xb.mean(0) - xa.mean(0)
    n = int(d.size)
    diff = float(d.mean())
    v_units = float(d.var(ddof=1)) / n if n >= 2 else math.inf
    known = seed_df > 0 and math.isfinite(seed_variance) and seed_variance >= 0.0
    v_seeds = seed_variance * (1 / xa.shape[0] + 1 / xb.shape[0]) if known else 0.0
    var = v_units + v_seeds
    if var == 0.0 or math.isinf(var):
        df = float(max(n - 1, 1))
    else:
        denominator = v_units**2 / max(n - 1, 1) + (v_seeds**2 / seed_df if known else 0.0)
        df = var**2 / denominator
    se = math.sqrt(var)
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    if se == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(diff) / se, df)) if math.isfinite(se) else 1.0
    return {"diff": diff, "low": diff - q * se, "high": diff + q * se, "se": se, "df": df, "p_value": p,
            "detectable": detectable_effect(se, df, confidence, power), "power": power, "n": n,
            "trainings": [int(xa.shape[0]), int(xb.shape[0])], "se_units": math.sqrt(v_units),
            "se_seeds": math.sqrt(v_seeds), "confidence": confidence,
            "method": ("two-level: units paired, trainings pooled (Student t, Welch-Satterthwaite df)" if known
                       else "units paired (Student t); variation between trainings unknown")}


# ----------------------------------------------------------------------------------- means over images


def bootstrap_mean_interval(values: Sequence[float] | Any, confidence: float = 0.95, *, resamples: int = 2000,
                            seed: int = 0) -> tuple[float, float, float]:
    """The mean of per-image values with its percentile bootstrap interval (images resampled with replacement).

    Each image is one unit: ``resamples`` samples of ``n`` images drawn with replacement from a NumPy
    generator seeded with ``numpy_seed(seed, BOOTSTRAP)`` (:mod:`antialias.data.seeding`), so the
    interval is a pure function of the values and ``seed``. The interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means (Efron's
    percentile interval), which needs no bound on the values and stays inside their range.

    Args:
        values: One finite value per image, 1-D.
        confidence: Two-sided confidence level.
        resamples: Number of bootstrap samples.
        seed: Seed of the resampling.

    Returns:
        ``(mean, low, high)``; ``(nan, nan, nan)`` for no values, ``(v, v, v)`` for one.

    Raises:
        ValueError: Values not 1-D or not finite, or ``resamples`` below 1.

    Examples:
        >>> bootstrap_mean_interval([0.0, 0.0, 0.0])
        (0.0, 0.0, 0.0)
        >>> mean, low, high = bootstrap_mean_interval([0.1, 0.4, 0.2, 0.3], seed=1)
        >>> round(mean, 2), 0.1 <= low < mean < high <= 0.4
        (0.25, True)
    """
    where = "bootstrap_mean_interval"
    _check_confidence(where, confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"`{where}`: `resamples` must be an int >= 1, got {resamples!r}.")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError(f"`{where}`: `values` must be a 1-D sequence of finite numbers, got shape {x.shape}.")
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, mean, mean
    rng = np.random.default_rng(numpy_seed(seed, BOOTSTRAP))
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # bounded memory: at most ~2M indices at once
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return mean, float(min(low, mean)), float(max(high, mean))
