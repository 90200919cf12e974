"""The comparisons behind the verdicts: one model against another, over their trainings and the same items.

A reproduction trains some configurations (filter, augmentation) several times (seeds). Every
metric a claim compares is a vector of per-unit values per training (0/1 per image for accuracy and
consistency, error rate per image, flip probability per sequence, change of consistency with
augmentation per image). :class:`Comparer` turns two configurations into one comparison:

- every configuration trained once (no variation between trainings measured): the paired interval
  over units of :mod:`antialias.eval._stats` (Newcombe's for 0/1 outcomes, Student t otherwise);
- some configuration trained at least twice: :func:`antialias.eval._stats.seed_aware_difference`,
  with the variance between trainings of that metric pooled over every configuration trained more
  than once (assumed the same for all configurations, so a configuration trained once carries it too).

Every comparison carries its standard error and the smallest effect it could detect (80% power at
the 5% level), so an interval that includes 0 reads as "could detect X; the paper reports Y".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from antialias.eval._stats import (
    paired_mean_difference,
    paired_proportion_difference,
    pooled_seed_variance,
    seed_aware_difference,
)

__all__ = ["Comparer", "Key", "RunsBy", "direction", "runs_by"]

#: A configuration: (filter size or None for the baseline, augmentation).
Key = tuple[str | None, bool]
#: Every configuration's trainings, first training first.
RunsBy = Mapping[Key, Sequence[Mapping[str, Any]]]
#: Per-unit values of one training (a run record) for one metric.
Extract = Callable[[Mapping[str, Any]], Sequence[float]]


def runs_by(results: Mapping[str, Any]) -> dict[Key, list[Mapping[str, Any]]]:
    """The runs of ``results`` grouped by configuration, ordered by training (``replicate``)."""
    out: dict[Key, list[Mapping[str, Any]]] = {}
    for r in results["runs"].values():
        out.setdefault((r["filter_size"], bool(r["augment"])), []).append(r)
    for group in out.values():
        group.sort(key=lambda r: int(r.get("replicate", 0)))
    return out


def direction(d: Mapping[str, float]) -> str:
    """``up`` when the interval lies above 0, ``down`` below, ``flat`` otherwise."""
    if d["low"] > 0:
        return "up"
    if d["high"] < 0:
        return "down"
    return "flat"


def _bits(text: str) -> list[float]:
    return [1.0 if c == "1" else 0.0 for c in text]


class Comparer:
    """Comparisons of the configurations of one reproduction, for any metric (see the module doc)."""

    def __init__(self, runs: RunsBy) -> None:
        self.runs = runs
        self.several = any(len(group) > 1 for group in runs.values())

    def values(self, key: Key, extract: Extract) -> list[list[float]]:
        """Per training of ``key``: the metric's per-unit values."""
        return [list(extract(r)) for r in self.runs[key]]

    def seed_variance(self, extract: Extract, keys: Sequence[Key] | None = None) -> tuple[float, int]:
        """Variance between trainings of the metric's mean, pooled over the configurations trained twice or more."""
        groups = [[float(np.mean(v)) for v in self.values(k, extract)] for k in (keys or list(self.runs))]
        return pooled_seed_variance(groups)

    def compare(self, reference: Key, model: Key, extract: Extract, *, binary: bool) -> dict[str, Any]:
        """``model`` minus ``reference`` on the metric: diff, interval, direction, se, detectable, method."""
        a, b = self.values(reference, extract), self.values(model, extract)
        var, df = self.seed_variance(extract)
        two_level = seed_aware_difference(a, b, seed_variance=var, seed_df=df)
        if self.several:
            d = two_level
        elif binary:  # the exact paired test for 0/1 outcomes of single trainings
            d = {**paired_proportion_difference(a[0], b[0]), **{k: two_level[k] for k in ("se", "detectable")}}
        else:
            d = {**paired_mean_difference(a[0], b[0]), **{k: two_level[k] for k in ("se", "detectable")}}
        d["trainings"] = [len(a), len(b)]
        d["seed_variance"] = None if df == 0 else var
        d["direction"] = direction(d)
        return d

    def mean(self, key: Key, extract: Extract) -> float:
        """The metric's mean over the trainings of ``key`` and their units."""
        return float(np.mean([np.mean(v) for v in self.values(key, extract)]))

    def per_training(self, key: Key, extract: Extract) -> list[float]:
        return [float(np.mean(v)) for v in self.values(key, extract)]


def clean(r: Mapping[str, Any]) -> list[float]:
    """Per image: 1 when the top-1 prediction is right."""
    return _bits(r["eval"]["clean"]["per_image"])


def consistency(protocol: str) -> Extract:
    """Per image: 1 when the two shifted copies get the same class (``protocol``: crop or circular)."""

    def extract(r: Mapping[str, Any]) -> list[float]:
        return _bits(r["eval"]["consistency"][protocol]["per_image"])

    return extract


def robustness(part: str) -> Extract:
    """Per unit of ``part`` (corruption: error rate per image; perturbation: flip probability per sequence)."""

    def extract(r: Mapping[str, Any]) -> list[float]:
        return [float(v) for v in r["eval"][part]["per_unit"]]

    return extract
