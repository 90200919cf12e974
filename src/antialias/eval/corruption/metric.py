"""Corruption errors and the CE / mCE summaries (Hendrycks & Dietterich, ICLR 2019), as a metric.

From the top-1 errors ``E(s, c)`` of every corruption ``c`` and severity ``s`` of the same images
(all numbers the papers print as percentages are in percent here; the errors themselves are
:class:`~antialias.eval.Proportion` fractions with Wilson intervals):

- ``CE_c = sum_s E(s, c) / sum_s E_ref(s, c)`` and ``mCE`` = mean of ``CE_c`` over the 15 test
  corruptions (never the extra 4; ``None`` unless all 15 were evaluated at severities 1-5);
- relative ``CE_c = sum_s (E(s, c) - E_clean) / sum_s (E_ref(s, c) - E_ref,clean)``, relative mCE;
- unnormalised mCE = mean error over the 15 (the paper's ResNet-50 60.6).

The reference ``E_ref`` is AlexNet's published ImageNet-C errors (``normaliser="alexnet"``, keyed by
name) on ImageNet, or, on any other data, a reference model's result (e.g. the baseline's): a
:class:`CorruptionResult`, its JSON file, or a mapping ``{name: [E(1), ..., E(5)]}``.

Intervals: per-cell errors get Wilson intervals over images. CE, mCE and their relative forms are
means over images of bounded per-image values (every image is seen under every corruption), so they
get the conservative Wilson bound of :func:`~antialias.eval._robust_core.bounded_mean_interval`.
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

from antialias.eval._names import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES, check_names, check_severities
from antialias.eval._robust_core import Estimate, estimate
from antialias.eval._stats import Proportion
from antialias.eval.corruption._alexnet import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, ALEXNET_MEAN_ERRORS

__all__ = ["CorruptionError", "CorruptionNormaliser", "CorruptionResult", "corruption_error"]


# --------------------------------------------------------------------------- normalisers


@dataclass
class CorruptionNormaliser:
    """Reference errors for CE: per corruption ``{severity: error}``, optional means and clean error."""

    errors: dict[str, dict[int, float]]
    source: str
    clean_error: float | None = None
    means: dict[str, float] = field(default_factory=dict)

    def denominator(self, name: str, severities: Sequence[int]) -> float | None:
        """``sum_s E_ref(s, name)`` over ``severities``, or ``None`` when the reference lacks it."""
        per = self.errors.get(name, {})
        if all(s in per for s in severities):
            return float(sum(per[s] for s in severities))
        if name in self.means and tuple(sorted(severities)) == SEVERITIES:
            return 5.0 * self.means[name]
        return None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "errors": {k: {str(s): e for s, e in v.items()} for k, v in self.errors.items()},
            "means": dict(self.means),
            "clean_error": self.clean_error,
        }

    @classmethod
    def alexnet(cls) -> CorruptionNormaliser:
        """AlexNet's published ImageNet-C errors (per severity for the 15, means for all 19)."""
        return cls(
            {k: dict(zip(SEVERITIES, v, strict=True)) for k, v in ALEXNET_ERRORS.items()},
            "AlexNet, ImageNet-C (Hendrycks & Dietterich, ICLR 2019)",
            ALEXNET_CLEAN_ERROR,
            dict(ALEXNET_MEAN_ERRORS),
        )

    @classmethod
    def resolve(cls, normaliser: object, where: str = "corruption") -> CorruptionNormaliser | None:
        """From ``None``, ``"alexnet"``, a :class:`CorruptionResult`, its ``to_dict()``/JSON path, or a mapping."""
        if normaliser is None or isinstance(normaliser, CorruptionNormaliser):
            return normaliser
        if isinstance(normaliser, str) and normaliser.lower() == "alexnet":
            return cls.alexnet()
        if isinstance(normaliser, CorruptionResult):
            return normaliser.as_normaliser()
        if isinstance(normaliser, (str, os.PathLike)):
            return _normaliser_from_file(Path(normaliser), where)
        if isinstance(normaliser, Mapping):
            return _normaliser_from_mapping(normaliser, where)
        raise TypeError(
            f"`{where}`: `normaliser` must be None, 'alexnet', a CorruptionResult, a mapping or a JSON path, "
            f"got {type(normaliser).__name__}."
        )


def _normaliser_from_file(path: Path, where: str) -> CorruptionNormaliser:
    """A reference result's JSON file (a results file holding it under ``"corruption"``, or the result itself)."""
    if not path.is_file():
        raise ValueError(
            f"`{where}`: `normaliser` must be None, 'alexnet', a CorruptionResult, a mapping or the path "
            f"of a result JSON file, got {str(path)!r}, which is not a file."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data.get("corruption", data)
        return CorruptionResult.from_dict(data).as_normaliser(source=str(path))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or JSON of another shape
        raise ValueError(
            f"`{where}`: `normaliser` must be the path of a corruption result JSON file, got {str(path)!r}, which "
            f"cannot be read as one ({type(exc).__name__}: {exc})."
        ) from None


def _normaliser_from_mapping(normaliser: Mapping, where: str) -> CorruptionNormaliser:
    """A :meth:`CorruptionResult.to_dict`, or ``{name: [E(1), ..., E(5)], "clean": E_clean}``."""
    if "errors" in normaliser and "corruptions" in normaliser:  # a CorruptionResult.to_dict()
        return CorruptionResult.from_dict(normaliser).as_normaliser()
    errors: dict[str, dict[int, float]] = {}
    for name, values in normaliser.items():
        if name == "clean":
            continue
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise TypeError(
                f"`{where}`: `normaliser[{name!r}]` must be a list of errors for severities 1..5, got {values!r}."
            )
        errors[name] = {s: float(e) for s, e in zip(SEVERITIES, values, strict=False)}  # fewer values: first severities
    clean = normaliser.get("clean")
    return CorruptionNormaliser(errors, "user mapping", None if clean is None else float(clean))


# --------------------------------------------------------------------------- the result


@dataclass
class CorruptionResult:
    """Errors per corruption and severity and the CE/mCE summaries (see the module docstring)."""

    corruptions: list[str]
    severities: list[int]
    images: int
    errors: dict[str, dict[int, Proportion]]
    corruption_errors: dict[str, Proportion]
    clean_error: Proportion | None
    unnormalised_mce: Estimate | None
    ce: dict[str, Estimate]
    relative_ce: dict[str, Estimate]
    mce: Estimate | None
    relative_mce: Estimate | None
    normaliser: CorruptionNormaliser | None
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def as_normaliser(self, source: str | None = None) -> CorruptionNormaliser:
        """This result's errors as the reference for another model's CE."""
        return CorruptionNormaliser(
            {c: {s: p.value for s, p in per.items()} for c, per in self.errors.items()},
            source or f"reference model result ({self.config.get('model', 'unnamed')})",
            None if self.clean_error is None else self.clean_error.value,
        )

    def to_dict(self) -> dict:
        def opt(x: Proportion | Estimate | CorruptionNormaliser | None) -> dict | None:
            return None if x is None else x.to_dict()

        return {
            "corruptions": self.corruptions,
            "severities": self.severities,
            "images": self.images,
            "errors": {c: {str(s): p.to_dict() for s, p in per.items()} for c, per in self.errors.items()},
            "corruption_errors": {c: p.to_dict() for c, p in self.corruption_errors.items()},
            "clean_error": opt(self.clean_error),
            "unnormalised_mce": opt(self.unnormalised_mce),
            "ce": {c: e.to_dict() for c, e in self.ce.items()},
            "relative_ce": {c: e.to_dict() for c, e in self.relative_ce.items()},
            "mce": opt(self.mce),
            "relative_mce": opt(self.relative_mce),
            "normaliser": opt(self.normaliser),
            "units": "errors: fractions; ce, mce, relative_*, unnormalised_mce: percent",
            "notes": self.notes,
            "config": self.config,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> CorruptionResult:
        """Rebuild the parts needed to normalise another result (errors and clean error)."""
        errors = {c: {int(s): Proportion(**p) for s, p in per.items()} for c, per in data["errors"].items()}
        clean = data.get("clean_error")
        return cls(
            list(data["corruptions"]), [int(s) for s in data["severities"]], int(data.get("images", 0)), errors,
            {}, None if clean is None else Proportion(**clean), None, {}, {}, None, None, None,
            list(data.get("notes", [])), dict(data.get("config", {})),
        )  # fmt: skip


# --------------------------------------------------------------------------- update: counts from logits


def _corruption_update(
    logits: Tensor, target: Tensor, clean_logits: Tensor | None, cells: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Counts from ``logits (C, S, N, classes)``: wrong per cell ``(C, S)``, images, clean wrong, clean images."""
    where = "corruption_error"
    if not isinstance(logits, Tensor) or logits.ndim != 4 or tuple(logits.shape[:2]) != cells:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"`{where}`: `logits` must have shape (corruptions={cells[0]}, severities={cells[1]}, N, classes), "
            f"got {shape}. Stack the logits of every corruption and severity of the same images."
        )
    n = logits.shape[2]
    if not isinstance(target, Tensor) or tuple(target.shape) != (n,):
        raise ValueError(f"`{where}`: `target` must have shape ({n},), got {getattr(target, 'shape', target)!r}.")
    target = target.to(logits.device)
    wrong = (logits.argmax(-1) != target).sum(-1)  # (C, S)
    zero = torch.zeros((), dtype=torch.long, device=logits.device)
    if clean_logits is None:
        return wrong, torch.tensor(n, device=logits.device), zero, zero
    if not isinstance(clean_logits, Tensor) or clean_logits.ndim != 2 or clean_logits.shape[0] != n:
        raise ValueError(
            f"`{where}`: `clean_logits` must have shape ({n}, classes), "
            f"got {getattr(clean_logits, 'shape', clean_logits)!r}."
        )
    clean_wrong = (clean_logits.argmax(-1) != target.to(clean_logits.device)).sum().to(logits.device)
    return wrong, torch.tensor(n, device=logits.device), clean_wrong, torch.tensor(n, device=logits.device)


# --------------------------------------------------------------------------- compute: the summaries, step by step


def _mce_is_complete(corruptions: Sequence[str], severities: Sequence[int], notes: list[str]) -> bool:
    """Whether all 15 test corruptions at severities 1-5 were evaluated (else a note says what is missing)."""
    missing = [c for c in CORRUPTIONS if c not in corruptions]
    complete = not missing and tuple(severities) == SEVERITIES
    if not complete:
        notes.append(
            "mCE is the mean over all 15 test corruptions at severities 1-5; "
            + (f"missing {', '.join(missing)}" if missing else f"severities were {list(severities)}")
            + ": mce and unnormalised_mce are None."
        )
    return complete


def _normalised_ce(
    wrong: Tensor,
    n: int,
    corruptions: Sequence[str],
    severities: Sequence[int],
    normaliser: CorruptionNormaliser,
    clean: Proportion | None,
    confidence: float,
    notes: list[str],
) -> tuple[dict[str, Estimate], dict[str, Estimate]]:
    """CE and relative CE per corruption (relative only when ``clean`` covers every image)."""
    s_count = len(severities)
    ce: dict[str, Estimate] = {}
    rel: dict[str, Estimate] = {}
    e = {c: wrong[i].double() / n for i, c in enumerate(corruptions)}  # (S,) per corruption
    for c in corruptions:
        den = normaliser.denominator(c, severities)
        if den is None or den <= 0:
            notes.append(f"the normaliser has no errors for {c} at severities {list(severities)}: no CE.")
            continue
        ce[c] = estimate(float(e[c].sum()) / den, n, 0.0, s_count / den, confidence)
        if clean is not None and normaliser.clean_error is not None:
            rden = den - s_count * normaliser.clean_error
            if rden > 0:
                rnum = float(e[c].sum()) - s_count * clean.value
                rel[c] = estimate(rnum / rden, n, -s_count / rden, s_count / rden, confidence)
    if clean is not None and normaliser.clean_error is None:
        notes.append("the normaliser has no clean error: relative CE is not computed.")
    return ce, rel


def _mean_ce(
    ce: dict[str, Estimate],
    rel: dict[str, Estimate],
    n: int,
    s_count: int,
    denominators: dict[str, float],
    clean_error: float | None,
    confidence: float,
) -> tuple[Estimate | None, Estimate | None]:
    """mCE and relative mCE over the 15 test corruptions, ``None`` where a CE is missing."""
    if not all(c in ce for c in CORRUPTIONS):
        return None, None
    # Per image, the mCE term is a mean over corruptions of (wrong severities) / den_c: in [0, bound].
    bound = sum(s_count / denominators[c] for c in CORRUPTIONS) / len(CORRUPTIONS)
    mce = estimate(sum(ce[c].value for c in CORRUPTIONS) / 100 / len(CORRUPTIONS), n, 0.0, bound, confidence)
    if clean_error is None or not all(c in rel for c in CORRUPTIONS):
        return mce, None
    rb = sum(s_count / (denominators[c] - s_count * clean_error) for c in CORRUPTIONS) / len(CORRUPTIONS)
    rmce = estimate(sum(rel[c].value for c in CORRUPTIONS) / 100 / len(CORRUPTIONS), n, -rb, rb, confidence)
    return mce, rmce


def _corruption_compute(
    wrong: Tensor,
    images: int,
    clean_wrong: int,
    clean_images: int,
    corruptions: Sequence[str],
    severities: Sequence[int],
    normaliser: CorruptionNormaliser | None,
    confidence: float,
) -> CorruptionResult:
    wrong = wrong.detach().cpu().long()
    n, s_count = int(images), len(severities)
    notes: list[str] = []
    errors = {c: {s: Proportion.from_counts(int(wrong[i, j]), n, confidence) for j, s in enumerate(severities)}
              for i, c in enumerate(corruptions)}  # fmt: skip
    pooled = {
        c: Proportion.from_counts(int(wrong[i].sum()), n * s_count, confidence) for i, c in enumerate(corruptions)
    }
    clean = Proportion.from_counts(int(clean_wrong), int(clean_images), confidence) if int(clean_images) else None
    has_clean = clean is not None and int(clean_images) == n
    if clean is not None and not has_clean:
        notes.append("clean images were not given with every batch: relative CE is not computed.")
    complete = _mce_is_complete(corruptions, severities, notes)
    unnorm = None
    if complete and n:
        unnorm = estimate(float(sum(pooled[c].value for c in CORRUPTIONS)) / len(CORRUPTIONS), n, 0.0, 1.0, confidence)
    ce: dict[str, Estimate] = {}
    rel: dict[str, Estimate] = {}
    if normaliser is not None and n:
        clean_for_rel = clean if has_clean else None
        ce, rel = _normalised_ce(wrong, n, corruptions, severities, normaliser, clean_for_rel, confidence, notes)
    mce = rmce = None
    if complete and normaliser is not None:
        denominators = {c: d for c in ce if (d := normaliser.denominator(c, severities)) is not None}
        mce, rmce = _mean_ce(ce, rel, n, s_count, denominators, normaliser.clean_error, confidence)
    return CorruptionResult(
        list(corruptions), list(severities), n, errors, pooled, clean, unnorm, ce, rel, mce, rmce, normaliser, notes,
        {"confidence": confidence},
    )  # fmt: skip


# --------------------------------------------------------------------------- function and class


def corruption_error(
    logits: Tensor,
    target: Tensor,
    *,
    clean_logits: Tensor | None = None,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = None,
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors, CE and mCE from the logits of every corruption and severity of the same ``N`` images.

    Args:
        logits: ``(len(corruptions), len(severities), N, classes)``.
        target: ``(N,)`` class indices.
        clean_logits: ``(N, classes)`` on the uncorrupted images (needed for relative CE).
        corruptions: names, in the order of ``logits``' first axis.
        severities: severities, in the order of the second axis.
        normaliser: ``None`` (no CE), ``"alexnet"`` (ImageNet), a reference :class:`CorruptionResult`,
            its JSON path, or ``{name: [E(1), ..., E(5)], "clean": E_clean}``.
        confidence: of the intervals.

    Examples:
        >>> logits = torch.zeros(1, 5, 4, 3); logits[..., 0] = 1  # always predicts class 0
        >>> r = corruption_error(logits, torch.tensor([0, 0, 1, 2]), corruptions=["fog"])
        >>> r.errors["fog"][1].value, r.mce is None
        (0.5, True)
    """
    corruptions = check_names("corruption_error", "corruptions", list(corruptions), ALL_CORRUPTIONS)
    severities = check_severities("corruption_error", severities)
    wrong, images, clean_wrong, clean_images = _corruption_update(
        logits, target, clean_logits, (len(corruptions), len(severities))
    )
    norm = CorruptionNormaliser.resolve(normaliser, "corruption_error")
    return _corruption_compute(
        wrong, int(images), int(clean_wrong), int(clean_images), corruptions, severities, norm, confidence
    )


class CorruptionError(Metric):
    """Streaming :func:`corruption_error` whose counts merge across DDP ranks (torchmetrics)."""

    full_state_update = False
    wrong: Tensor
    images: Tensor
    clean_wrong: Tensor
    clean_images: Tensor

    def __init__(
        self,
        corruptions: Sequence[str] = CORRUPTIONS,
        severities: Sequence[int] = SEVERITIES,
        *,
        normaliser: object = None,
        confidence: float = 0.95,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.corruptions = check_names("CorruptionError", "corruptions", list(corruptions), ALL_CORRUPTIONS)
        self.severities = check_severities("CorruptionError", severities)
        self.normaliser = CorruptionNormaliser.resolve(normaliser, "CorruptionError")
        self.confidence = confidence
        cells = (len(self.corruptions), len(self.severities))
        self.add_state("wrong", default=torch.zeros(cells, dtype=torch.long), dist_reduce_fx="sum")
        for name in ("images", "clean_wrong", "clean_images"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor, clean_logits: Tensor | None = None) -> None:
        cells = (len(self.corruptions), len(self.severities))
        wrong, images, clean_wrong, clean_images = _corruption_update(logits, target, clean_logits, cells)
        self.wrong += wrong.to(self.wrong.device)
        self.images += images.to(self.images.device)
        self.clean_wrong += clean_wrong.to(self.images.device)
        self.clean_images += clean_images.to(self.images.device)

    def compute(self) -> CorruptionResult:
        return _corruption_compute(
            self.wrong, int(self.images), int(self.clean_wrong), int(self.clean_images),
            self.corruptions, self.severities, self.normaliser, self.confidence,
        )  # fmt: skip
