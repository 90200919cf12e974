"""What the corruption and perturbation packages share: a number with its interval, and a checked forward.

Both report means over images (or sequences) of bounded per-unit values; :func:`bounded_mean_interval`
gives them a conservative Wilson interval and :class:`Estimate` carries it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from antialias.eval._forward import check_logits
from antialias.eval._stats import wilson_interval

__all__ = ["Estimate", "bounded_mean_interval", "estimate", "forward_logits"]


@dataclass
class Estimate:
    """A number (in percent for CE/mCE/FR) with a confidence interval and the images behind it."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "confidence": self.confidence}

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}] (n={self.n})"


def bounded_mean_interval(mean: float, n: int, low: float, high: float, confidence: float) -> tuple[float, float]:
    """Conservative interval for the mean of ``n`` independent per-image values bounded in ``[low, high]``.

    Rescales to ``[0, 1]`` and applies :func:`~antialias.eval._stats.wilson_interval` with the
    fractional success count ``p n``: a variable in ``[0, 1]`` with mean ``p`` has variance at most
    ``p (1 - p)``, so this is at least as wide as the normal interval over images (it is exact
    Wilson for 0/1 values).

    Examples:
        >>> tuple(round(v, 4) for v in bounded_mean_interval(0.9, 100, 0.0, 1.0, 0.95))
        (0.8256, 0.9448)
    """
    if n <= 0 or not math.isfinite(mean) or high <= low:
        return float("nan"), float("nan")
    p = min(1.0, max(0.0, (mean - low) / (high - low)))
    lo, hi = wilson_interval(p * n, n, confidence)  # fractional successes: see its docstring
    return low + lo * (high - low), low + hi * (high - low)


def estimate(mean: float, n: int, low: float, high: float, confidence: float, scale: float = 100.0) -> Estimate:
    """``mean`` of ``n`` values in ``[low, high]`` with its :func:`bounded_mean_interval`, all times ``scale``."""
    lo, hi = bounded_mean_interval(mean, n, low, high, confidence)
    return Estimate(scale * mean, scale * lo, scale * hi, int(n), confidence)


def forward_logits(
    model: nn.Module,
    x: Tensor,
    preprocess: Callable[[Tensor], Tensor] | None,
    device: torch.device | str,
    where: str,
) -> Tensor:
    """``model(preprocess(x))`` on ``device``, checked to be ``(N, classes)`` logits.

    The check is :func:`~antialias.eval._forward.check_logits`, shared with every other protocol.
    """
    x = x.to(device)
    if preprocess is not None:
        x = preprocess(x)
    logits = model(x)
    check_logits(logits, x.shape[0], where)  # the one check every protocol's forward applies
    return logits
