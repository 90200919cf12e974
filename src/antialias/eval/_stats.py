"""Proportions with confidence intervals (Wilson score interval)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

__all__ = ["Proportion", "wilson_interval"]


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / total``.

    Better than the normal approximation near 0 and 1 (consistency is often above 0.9).

    Examples:
        >>> tuple(round(v, 4) for v in wilson_interval(90, 100))
        (0.8256, 0.9448)
    """
    if total < 0 or not 0 <= successes <= total:
        raise ValueError(f"wilson_interval: need 0 <= successes <= total, got {successes!r} of {total!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"wilson_interval: `confidence` must be in (0, 1), got {confidence!r}.")
    if total == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
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
