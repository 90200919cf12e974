"""Perturbation stability, ImageNet-P style (Hendrycks & Dietterich, ICLR 2019): flip probability and top-5 distance.

Measures, per perturbation ``p`` (frame pairs: ``(t, t + step)`` for ``t = 0..T-1-step``; for the
noise sequences, ``(0, t)`` for ``t = 1..T-1``, every frame against the clean first frame):

- flip probability ``FP_p``: fraction of pairs whose top-1 differs, per sequence then over
  sequences (pooled over pairs, which is the same when all sequences have ``T`` frames);
- ``FR_p = FP_p / FP_p(reference)`` (percent) and ``mFR`` = their mean; unnormalised mFR = mean FP;
- top-5 distance. With ``r_a(k)`` the 0-based rank of class ``k`` in frame ``a`` (logits sorted
  descending, ties by class index) and ``top5(a)`` the 5 best classes of frame ``a``::

      T5D(a, b) = sum over k in top5(a) of | min(r_b(k), 5) - r_a(k) |

  i.e. how far each of frame ``a``'s top 5 moved in frame ``b``'s ranking, a class that leaves the
  top 5 counting as moved to rank 5 (so ``0 <= T5D <= 15``). This is Hendrycks & Dietterich's
  ``d(sigma) = sum_{i=1..5} sum_{j=min(i, sigma(i))+1..max(i, sigma(i))} 1(1 <= j - 1 <= 5)``
  written out (1-based ``i``, ``sigma(i)``); with fewer than 5 classes, 5 becomes the class count.
  ``T5D_p`` is its mean over pairs and sequences, normalised like FR into mT5D.

There are no published AlexNet ImageNet-P flip probabilities we can use: normalisers come from a
reference model's result (:class:`PerturbationResult`, its JSON, or a mapping) and are stored with
the results. Intervals are the conservative Wilson bound over sequences of
:func:`~antialias.eval._robust_core.bounded_mean_interval` (pairs within a sequence are not independent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics import Metric

from antialias.eval._names import GENERATED_PERTURBATIONS, KNOWN_PERTURBATIONS, PERTURBATIONS, check_names, is_noise
from antialias.eval._robust_core import Estimate, estimate

__all__ = [
    "PerturbationResult",
    "PerturbationStability",
    "flip_probability",
    "perturbation_stability",
    "resolve_perturbation_normaliser",
    "top5_distance",
]

# --------------------------------------------------------------------------- the maths


def _pairs(frames: int, noise: bool, step: int) -> tuple[Tensor, Tensor]:
    if noise:
        return torch.zeros(frames - 1, dtype=torch.long), torch.arange(1, frames)
    return torch.arange(0, frames - step), torch.arange(step, frames)


def _stability_update(logits: Tensor, noise: bool, step: int, where: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Counts from ``logits (N, T, classes)``: flips, summed top-5 distance, pairs, sequences."""
    if not isinstance(logits, Tensor) or logits.ndim != 3:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"`{where}`: `logits` must have shape (N, frames, classes), got {shape}.")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`{where}`: `step` must be an int >= 1, got {step!r}.")
    n, t, k = logits.shape
    if t < 2 or (not noise and step >= t):
        raise ValueError(
            f"`{where}`: sequences of {t} frames are too short for `step` {step}; need at least {step + 1}."
        )
    a, b = _pairs(t, noise, step)
    a, b = a.to(logits.device), b.to(logits.device)
    order = torch.argsort(logits, dim=-1, descending=True, stable=True)  # (N, T, K): classes best first
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(k, device=logits.device).expand_as(order))
    pred = order[..., 0]  # (N, T)
    flips = (pred[:, a] != pred[:, b]).sum()
    top = min(5, k)
    top_a = order[:, a, :top]  # (N, P, top)
    moved = rank[:, b].gather(-1, top_a).clamp(max=top)  # (N, P, top): new ranks, capped
    t5d = (moved - torch.arange(top, device=logits.device)).abs().sum()
    pairs = torch.tensor(n * a.numel(), device=logits.device)
    return flips, t5d, pairs, torch.tensor(n, device=logits.device)


def flip_probability(logits: Tensor, *, noise: bool = False, step: int = 1) -> float:
    """Flip probability of ``(N, T, classes)`` logits of ``N`` sequences (see the module docstring).

    Examples:
        >>> logits = torch.tensor([[[1., 0.], [0., 1.], [0., 1.]]])  # predictions 0, 1, 1
        >>> flip_probability(logits), flip_probability(logits, noise=True)
        (0.5, 1.0)
    """
    flips, _, pairs, _ = _stability_update(logits, noise, step, "flip_probability")
    return float(flips) / float(pairs)


def top5_distance(logits: Tensor, *, noise: bool = False, step: int = 1) -> float:
    """Mean top-5 distance of ``(N, T, classes)`` logits over frame pairs (see the module docstring).

    Examples:
        >>> a = torch.tensor([9., 8, 7, 6, 5, 4, 3]); b = torch.tensor([8., 9, 7, 6, 5, 4, 3])
        >>> top5_distance(torch.stack([a, b])[None])  # classes 0 and 1 swap: 1 + 1
        2.0
    """
    _, t5d, pairs, _ = _stability_update(logits, noise, step, "top5_distance")
    return float(t5d) / float(pairs)


# --------------------------------------------------------------------------- result and normaliser


@dataclass
class PerturbationResult:
    """Per perturbation FP (fraction), T5D (mean distance), FR and normalised T5D (percent); means."""

    perturbations: list[str]
    sequences: dict[str, int]
    flip_probability: dict[str, Estimate]
    t5d: dict[str, Estimate]
    fr: dict[str, Estimate]
    t5d_normalised: dict[str, Estimate]
    unnormalised_mfr: Estimate | None
    mfr: Estimate | None
    mt5d: Estimate | None
    normaliser: dict | None
    step: int = 1
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def as_normaliser(self) -> dict:
        """This result's FP and T5D as the reference for another model's FR and mT5D."""
        return {
            "source": f"reference model result ({self.config.get('model', 'unnamed')})",
            "flip_probability": {p: e.value for p, e in self.flip_probability.items()},
            "t5d": {p: e.value for p, e in self.t5d.items()},
        }

    def to_dict(self) -> dict:
        def each(d: dict[str, Estimate]) -> dict[str, dict]:
            return {k: v.to_dict() for k, v in d.items()}

        def opt(x: Estimate | None) -> dict | None:
            return None if x is None else x.to_dict()

        return {
            "perturbations": self.perturbations,
            "step": self.step,
            "sequences": self.sequences,
            "flip_probability": each(self.flip_probability),
            "t5d": each(self.t5d),
            "fr": each(self.fr),
            "t5d_normalised": each(self.t5d_normalised),
            "unnormalised_mfr": opt(self.unnormalised_mfr),
            "mfr": opt(self.mfr),
            "mt5d": opt(self.mt5d),
            "normaliser": self.normaliser,
            "units": "flip_probability: fraction; t5d: mean distance in 0..15; fr, t5d_normalised, mfr, mt5d, "
            "unnormalised_mfr: percent",
            "notes": self.notes,
            "config": self.config,
        }


def _normaliser_from_file(path: Path, where: str) -> dict:
    """A reference result's JSON file (a results file holding it under ``"perturbation"``, or the result itself)."""
    if not path.is_file():
        raise ValueError(
            f"`{where}`: `normaliser` must be None, a PerturbationResult, a mapping or the path of a result "
            f"JSON file, got {str(path)!r}, which is not a file."
        )
    data = json.loads(path.read_text())
    data = data.get("perturbation", data)
    return {
        "source": str(path),
        "flip_probability": {p: e["value"] for p, e in data["flip_probability"].items()},
        "t5d": {p: e["value"] for p, e in data.get("t5d", {}).items()},
    }


def _normaliser_from_mapping(normaliser: Mapping) -> dict:
    """``{"flip_probability": {...}, "t5d": {...}}`` (values or estimate dicts), or ``{name: fp}``."""
    if "flip_probability" in normaliser:
        fp = {
            p: (v["value"] if isinstance(v, Mapping) else float(v)) for p, v in normaliser["flip_probability"].items()
        }
        t5 = {p: (v["value"] if isinstance(v, Mapping) else float(v)) for p, v in normaliser.get("t5d", {}).items()}
        return {"source": normaliser.get("source", "user mapping"), "flip_probability": fp, "t5d": t5}
    return {"source": "user mapping", "flip_probability": {p: float(v) for p, v in normaliser.items()}, "t5d": {}}


def resolve_perturbation_normaliser(normaliser: object, where: str) -> dict | None:
    """``{"source", "flip_probability": {name: fp}, "t5d": {name: t5d}}`` from the accepted forms."""
    if normaliser is None:
        return None
    if isinstance(normaliser, PerturbationResult):
        return normaliser.as_normaliser()
    if isinstance(normaliser, (str, os.PathLike)):
        return _normaliser_from_file(Path(normaliser), where)
    if isinstance(normaliser, Mapping):
        return _normaliser_from_mapping(normaliser)
    raise TypeError(
        f"`{where}`: `normaliser` must be None, a PerturbationResult, a mapping or a JSON path, "
        f"got {type(normaliser).__name__}."
    )


# --------------------------------------------------------------------------- compute: the summaries, step by step

_Estimates = dict[str, Estimate]


def _per_perturbation(
    counts: tuple[Tensor, Tensor, Tensor, Tensor],
    names: Sequence[str],
    done: list[int],
    normaliser: dict | None,
    confidence: float,
    notes: list[str],
) -> tuple[_Estimates, _Estimates, _Estimates, _Estimates]:
    """FP, T5D, FR and normalised T5D of every evaluated perturbation."""
    flips, t5d, pairs, sequences = counts
    fp: _Estimates = {}
    dist: _Estimates = {}
    fr: _Estimates = {}
    dn: _Estimates = {}
    for i in done:
        name, n = names[i], int(sequences[i])
        m = float(flips[i]) / float(pairs[i])
        fp[name] = estimate(m, n, 0.0, 1.0, confidence, scale=1.0)
        d = float(t5d[i]) / float(pairs[i])
        dist[name] = estimate(d / 15.0, n, 0.0, 1.0, confidence, scale=15.0)
        if normaliser is not None:
            ref = normaliser["flip_probability"].get(name)
            if ref:
                fr[name] = estimate(m / ref, n, 0.0, 1.0 / ref, confidence)
            else:
                notes.append(f"the normaliser has no (or a zero) flip probability for {name}: no FR.")
            ref = normaliser["t5d"].get(name)
            if ref:
                dn[name] = estimate(d / ref, n, 0.0, 15.0 / ref, confidence)
    return fp, dist, fr, dn


def _means(
    fp: _Estimates,
    fr: _Estimates,
    dn: _Estimates,
    evaluated: list[str],
    n_min: int,
    normaliser: dict | None,
    confidence: float,
    notes: list[str],
) -> tuple[Estimate | None, Estimate | None, Estimate | None]:
    """Unnormalised mFR, mFR and mT5D over the evaluated perturbations (``None`` where undefined)."""
    if not evaluated:
        return None, None, None
    unnorm = estimate(sum(fp[p].value for p in evaluated) / len(evaluated), n_min, 0.0, 1.0, confidence)
    missing = [p for p in PERTURBATIONS if p not in evaluated]
    if missing:
        notes.append(
            f"mFR and mT5D are means over the evaluated perturbations ({', '.join(evaluated)}); ImageNet-P's "
            f"are over its 10 test perturbations (missing here: {', '.join(missing)})."
        )
    mfr = mt5d = None
    if normaliser is not None and all(p in fr for p in evaluated):
        bound = sum(1.0 / normaliser["flip_probability"][p] for p in evaluated) / len(evaluated)
        mfr = estimate(sum(fr[p].value for p in evaluated) / 100 / len(evaluated), n_min, 0.0, bound, confidence)
    if normaliser is not None and all(p in dn for p in evaluated):
        bound = sum(15.0 / normaliser["t5d"][p] for p in evaluated) / len(evaluated)
        mt5d = estimate(sum(dn[p].value for p in evaluated) / 100 / len(evaluated), n_min, 0.0, bound, confidence)
    return unnorm, mfr, mt5d


def _stability_compute(
    flips: Tensor,
    t5d: Tensor,
    pairs: Tensor,
    sequences: Tensor,
    names: Sequence[str],
    step: int,
    normaliser: dict | None,
    confidence: float,
) -> PerturbationResult:
    flips, t5d, pairs, sequences = (x.detach().cpu().long() for x in (flips, t5d, pairs, sequences))
    done = [i for i in range(len(names)) if int(pairs[i]) > 0]
    notes: list[str] = []
    fp, dist, fr, dn = _per_perturbation((flips, t5d, pairs, sequences), names, done, normaliser, confidence, notes)
    evaluated = [names[i] for i in done]
    n_min = min((int(sequences[i]) for i in done), default=0)
    unnorm, mfr, mt5d = _means(fp, fr, dn, evaluated, n_min, normaliser, confidence, notes)
    return PerturbationResult(
        evaluated, {names[i]: int(sequences[i]) for i in done}, fp, dist, fr, dn, unnorm, mfr, mt5d,
        normaliser, step, notes, {"confidence": confidence},
    )  # fmt: skip


# --------------------------------------------------------------------------- function and class


class PerturbationStability(Metric):
    """Flip probability and top-5 distance per perturbation; counts merge across DDP ranks (torchmetrics).

    ``update(logits, perturbation)`` takes the ``(N, T, classes)`` logits of ``N`` sequences of one
    perturbation; :func:`perturbation_stability` is the one-shot form.
    """

    full_state_update = False
    flips: Tensor
    t5d: Tensor
    pairs: Tensor
    sequences: Tensor

    def __init__(
        self,
        perturbations: Sequence[str] = GENERATED_PERTURBATIONS,
        *,
        step: int = 1,
        normaliser: object = None,
        confidence: float = 0.95,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.perturbations = check_names(
            "PerturbationStability", "perturbations", list(perturbations), KNOWN_PERTURBATIONS
        )
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"`PerturbationStability`: `step` must be an int >= 1, got {step!r}.")
        self.step = step
        self.normaliser = resolve_perturbation_normaliser(normaliser, "PerturbationStability")
        self.confidence = confidence
        for name in ("flips", "t5d", "pairs", "sequences"):
            self.add_state(name, default=torch.zeros(len(self.perturbations), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, perturbation: str) -> None:
        check_names("PerturbationStability.update", "perturbation", [perturbation], self.perturbations)
        i = self.perturbations.index(perturbation)
        counts = _stability_update(logits, is_noise(perturbation), self.step, "PerturbationStability.update")
        for state, value in zip((self.flips, self.t5d, self.pairs, self.sequences), counts, strict=True):
            state[i] += value.to(state.device)

    def compute(self) -> PerturbationResult:
        return _stability_compute(
            self.flips,
            self.t5d,
            self.pairs,
            self.sequences,
            self.perturbations,
            self.step,
            self.normaliser,
            self.confidence,
        )


def perturbation_stability(
    logits: Mapping[str, Tensor], *, step: int = 1, normaliser: object = None, confidence: float = 0.95
) -> PerturbationResult:
    """One-shot :class:`PerturbationStability` from ``{perturbation: (N, T, classes) logits}``.

    Examples:
        >>> r = perturbation_stability({"rotate": torch.zeros(4, 31, 10)})  # constant logits never flip
        >>> r.flip_probability["rotate"].value, r.t5d["rotate"].value
        (0.0, 0.0)
    """
    names = check_names("perturbation_stability", "logits", list(logits), KNOWN_PERTURBATIONS)
    counts = [_stability_update(logits[p], is_noise(p), step, "perturbation_stability") for p in names]
    flips, t5d, pairs, sequences = (torch.stack([c[j].cpu() for c in counts]) for j in range(4))
    norm = resolve_perturbation_normaliser(normaliser, "perturbation_stability")
    return _stability_compute(flips, t5d, pairs, sequences, names, step, norm, confidence)
