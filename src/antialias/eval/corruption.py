"""Corruption robustness, ImageNet-C style (Hendrycks & Dietterich, ICLR 2019), on any data set.

Top-1 error ``E(s, c)`` of a model for every corruption ``c`` and severity ``s`` (the 15 test
corruptions, optionally the 4 extra ones, severities 1-5), from three sources of corrupted images:

- generated on the fly from any ``(images, labels)`` batches (:func:`evaluate_corruptions`), with
  the ``imagecorruptions`` library (optional extra: ``pip install "antialias[corruptions]"``);
- the released ImageNet-C folders ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``
  (:func:`evaluate_imagenet_c`);
- the released CIFAR-10-C ``.npy`` files (:func:`evaluate_cifar10c`, reader :func:`read_cifar10c`).

From the errors (all numbers the papers print as percentages are in percent here; the errors
themselves are :class:`~antialias.eval.Proportion` fractions with Wilson intervals):

- ``CE_c = sum_s E(s, c) / sum_s E_ref(s, c)`` and ``mCE`` = mean of ``CE_c`` over the 15 test
  corruptions (never the extra 4; ``None`` unless all 15 were evaluated);
- relative ``CE_c = sum_s (E(s, c) - E_clean) / sum_s (E_ref(s, c) - E_ref,clean)``, relative mCE;
- unnormalised mCE = mean error over the 15 (the paper's ResNet-50 60.6).

The reference ``E_ref`` is AlexNet's published ImageNet-C errors (``normaliser="alexnet"``, keyed by
name) on ImageNet, or, on any other data, a reference model's result (e.g. the baseline's): a
:class:`CorruptionResult`, its JSON file, or a mapping ``{name: [E(1), ..., E(5)]}``.

Intervals: per-cell errors get Wilson intervals over images. CE, mCE and their relative forms are
means over images of bounded per-image values (every image is seen under every corruption), so they
get the conservative Wilson bound of :func:`~antialias.eval._imagenet_c.bounded_mean_interval`.

Deviations from ImageNet-C, stated once: on-the-fly corruptions use the library's ImageNet-C
parameters at any image size (CIFAR-10-C used milder, re-tuned parameters: use the released files
to compare with published CIFAR numbers); they are not JPEG-compressed afterwards (the released
ImageNet-C is, at quality 85). The library needs ``HxWx3`` uint8 images of at least 32x32: grey
images are replicated to 3 channels and mapped back by the channel mean; images with a side under
16 px are first enlarged by nearest-neighbour repetition (integer factor ``ceil(32 / min side)``)
and mapped back by average pooling; sides in 16..31 px are reflect-padded to 32 and cropped back.
Random corruptions are seeded per image from ``(seed, corruption, severity, position in the
stream)``, so results do not depend on the batch size; the global NumPy state is restored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from antialias.data.folder import ImageFolder
from antialias.eval._imagenet_c import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    ALEXNET_MEAN_ERRORS,
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    bounded_mean_interval,
    check_names,
)
from antialias.eval._stats import Proportion

__all__ = [
    "CorruptionError",
    "CorruptionNormaliser",
    "CorruptionResult",
    "Estimate",
    "corrupt_images",
    "corruption_error",
    "evaluate_cifar10c",
    "evaluate_corruptions",
    "evaluate_imagenet_c",
    "read_cifar10c",
]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
INSTALL_HINT = 'pip install "antialias[corruptions]"'


# --------------------------------------------------------------------------- small result types


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


def _estimate(mean: float, n: int, low: float, high: float, confidence: float, scale: float = 100.0) -> Estimate:
    lo, hi = bounded_mean_interval(mean, n, low, high, confidence)
    return Estimate(scale * mean, scale * lo, scale * hi, int(n), confidence)


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
    def resolve(cls, normaliser: object, where: str = "corruption") -> CorruptionNormaliser | None:
        """From ``None``, ``"alexnet"``, a :class:`CorruptionResult`, its ``to_dict()``/JSON path, or a mapping."""
        if normaliser is None or isinstance(normaliser, CorruptionNormaliser):
            return normaliser
        if isinstance(normaliser, str) and normaliser.lower() == "alexnet":
            return cls(
                {k: dict(zip(SEVERITIES, v)) for k, v in ALEXNET_ERRORS.items()},
                "AlexNet, ImageNet-C (Hendrycks & Dietterich, ICLR 2019)",
                ALEXNET_CLEAN_ERROR,
                dict(ALEXNET_MEAN_ERRORS),
            )
        if isinstance(normaliser, CorruptionResult):
            return normaliser.as_normaliser()
        if isinstance(normaliser, (str, os.PathLike)):
            path = Path(normaliser)
            if not path.is_file():
                raise ValueError(
                    f"`{where}`: `normaliser` must be None, 'alexnet', a CorruptionResult, a mapping or the path "
                    f"of a result JSON file, got {str(normaliser)!r}, which is not a file."
                )
            data = json.loads(path.read_text())
            data = data.get("corruption", data)
            return CorruptionResult.from_dict(data).as_normaliser(source=str(path))
        if isinstance(normaliser, Mapping):
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
                errors[name] = {s: float(e) for s, e in zip(SEVERITIES, values)}
            clean = normaliser.get("clean")
            return cls(errors, "user mapping", None if clean is None else float(clean))
        raise TypeError(
            f"`{where}`: `normaliser` must be None, 'alexnet', a CorruptionResult, a mapping or a JSON path, "
            f"got {type(normaliser).__name__}."
        )


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
        def opt(x):
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


# --------------------------------------------------------------------------- the metric


def _corruption_update(logits: Tensor, target: Tensor, clean_logits: Tensor | None, cells: tuple[int, int]):
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
            f"`{where}`: `clean_logits` must have shape ({n}, classes), got {getattr(clean_logits, 'shape', clean_logits)!r}."
        )
    clean_wrong = (clean_logits.argmax(-1) != target.to(clean_logits.device)).sum().to(logits.device)
    return wrong, torch.tensor(n, device=logits.device), clean_wrong, torch.tensor(n, device=logits.device)


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
    pooled = {c: Proportion.from_counts(int(wrong[i].sum()), n * s_count, confidence) for i, c in enumerate(corruptions)}
    clean = Proportion.from_counts(int(clean_wrong), int(clean_images), confidence) if int(clean_images) else None
    has_clean = clean is not None and int(clean_images) == n
    if clean is not None and not has_clean:
        notes.append("clean images were not given with every batch: relative CE is not computed.")
    test = [c for c in CORRUPTIONS if c in corruptions]
    missing = [c for c in CORRUPTIONS if c not in corruptions]
    complete = not missing and tuple(severities) == SEVERITIES
    if not complete:
        notes.append(
            "mCE is the mean over all 15 test corruptions at severities 1-5; "
            + (f"missing {', '.join(missing)}" if missing else f"severities were {list(severities)}")
            + ": mce and unnormalised_mce are None."
        )
    unnorm = None
    if complete and n:
        mean = float(sum(pooled[c].value for c in test)) / len(test)
        unnorm = _estimate(mean, n, 0.0, 1.0, confidence)
    ce: dict[str, Estimate] = {}
    rel: dict[str, Estimate] = {}
    if normaliser is not None and n:
        e = {c: wrong[i].double() / n for i, c in enumerate(corruptions)}  # (S,) per corruption
        for c in corruptions:
            den = normaliser.denominator(c, severities)
            if den is None or den <= 0:
                notes.append(f"the normaliser has no errors for {c} at severities {list(severities)}: no CE.")
                continue
            ce[c] = _estimate(float(e[c].sum()) / den, n, 0.0, s_count / den, confidence)
            if has_clean and normaliser.clean_error is not None:
                rden = den - s_count * normaliser.clean_error
                if rden > 0:
                    rnum = float(e[c].sum()) - s_count * clean.value
                    rel[c] = _estimate(rnum / rden, n, -s_count / rden, s_count / rden, confidence)
        if has_clean and normaliser.clean_error is None:
            notes.append("the normaliser has no clean error: relative CE is not computed.")
    mce = rmce = None
    if complete and all(c in ce for c in test):
        # Per image, the mCE term is a mean over corruptions of (wrong severities) / den_c: in [0, bound].
        bound = sum(s_count / normaliser.denominator(c, severities) for c in test) / len(test)
        mce = _estimate(sum(ce[c].value for c in test) / 100 / len(test), n, 0.0, bound, confidence)
        if all(c in rel for c in test):
            rb = sum(s_count / (normaliser.denominator(c, severities) - s_count * normaliser.clean_error) for c in test)
            rb /= len(test)
            rmce = _estimate(sum(rel[c].value for c in test) / 100 / len(test), n, -rb, rb, confidence)
    return CorruptionResult(
        list(corruptions), list(severities), n, errors, pooled, clean, unnorm, ce, rel, mce, rmce, normaliser, notes,
        {"confidence": confidence},
    )  # fmt: skip


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
    severities = _check_severities("corruption_error", severities)
    counts = _corruption_update(logits, target, clean_logits, (len(corruptions), len(severities)))
    norm = CorruptionNormaliser.resolve(normaliser, "corruption_error")
    return _corruption_compute(*counts, corruptions, severities, norm, confidence)


class CorruptionError(Metric):
    """Streaming :func:`corruption_error` whose counts merge across DDP ranks (torchmetrics)."""

    full_state_update = False

    def __init__(
        self,
        corruptions: Sequence[str] = CORRUPTIONS,
        severities: Sequence[int] = SEVERITIES,
        *,
        normaliser: object = None,
        confidence: float = 0.95,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.corruptions = check_names("CorruptionError", "corruptions", list(corruptions), ALL_CORRUPTIONS)
        self.severities = _check_severities("CorruptionError", severities)
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


def _check_severities(where: str, severities: object) -> tuple[int, ...]:
    if isinstance(severities, int) or not isinstance(severities, Sequence) or not severities:
        raise TypeError(f"`{where}`: `severities` must be a non-empty list of ints in 1..5, got {severities!r}.")
    out = tuple(severities)
    if any(isinstance(s, bool) or s not in SEVERITIES for s in out) or len(set(out)) != len(out):
        raise ValueError(f"`{where}`: `severities` must be distinct ints in 1..5, got {severities!r}.")
    return out


# --------------------------------------------------------------------------- corrupting images


def _library():
    try:
        import imagecorruptions
    except ImportError as exc:
        raise ImportError(
            "Generating corruptions on the fly needs the optional `imagecorruptions` library (the maintained "
            f"`imagecorruptions-imaug` fork): {INSTALL_HINT}. Pre-made sets (ImageNet-C folders, CIFAR-10-C "
            "files) do not need it."
        ) from exc
    return imagecorruptions


def _to_library(images: Tensor) -> tuple[np.ndarray, tuple]:
    """``(N, C, H, W)`` floats -> ``(N, H', W', 3)`` uint8 of at least 32x32, and how to map back."""
    n, c, h, w = images.shape
    x = images.detach().float().cpu().clamp(0, 1)
    if c == 1:
        x = x.expand(n, 3, h, w)
    f = 1 if min(h, w) >= 16 else math.ceil(32 / min(h, w))
    if f > 1:
        x = x.repeat_interleave(f, 2).repeat_interleave(f, 3)  # (N, 3, fH, fW)
    ph, pw = max(0, 32 - h * f), max(0, 32 - w * f)
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph or pw:
        x = F.pad(x, pads, mode="reflect")  # (N, 3, >=32, >=32)
    array = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return array, (c, f, pads)


def _from_library(array: np.ndarray, layout: tuple) -> Tensor:
    c, f, (left, right, top, bottom) = layout
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float().div_(255)
    x = x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]
    if f > 1:
        x = F.avg_pool2d(x, f)
    return x.mean(1, keepdim=True) if c == 1 else x


def corrupt_images(
    images: Tensor, corruption: str, severity: int, *, seed: int = 0, first_index: int = 0
) -> Tensor:
    """Corrupt a batch with an ImageNet-C corruption (needs ``pip install "antialias[corruptions]"``).

    Args:
        images: ``(N, C, H, W)`` floats in ``[0, 1]``, ``C`` in {1, 3}, any size (see the module
            docstring for images under 32x32 and grey images).
        corruption: one of the 19 names (:data:`~antialias.eval._imagenet_c.ALL_CORRUPTIONS`).
        severity: 1..5.
        seed: run seed; image ``i`` is seeded from ``(seed, corruption, severity, first_index + i)``.
        first_index: position of the first image in the whole stream.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)`` float32 in ``[0, 1]`` (quantised to 1/255 steps).
    """
    where = "corrupt_images"
    check_names(where, "corruption", [corruption], ALL_CORRUPTIONS)
    _check_severities(where, [severity])
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"`{where}`: `images` must be a (N, C, H, W) tensor with C in {{1, 3}}, got {getattr(images, 'shape', images)!r}."
        )
    lib = _library()
    array, layout = _to_library(images)
    out = np.empty_like(array)
    code = ALL_CORRUPTIONS.index(corruption)
    state = np.random.get_state()
    try:
        for i in range(array.shape[0]):
            image_seed = int(np.random.SeedSequence([seed, code, severity, first_index + i]).generate_state(1)[0])
            np.random.seed(image_seed)
            kwargs = {"seed": image_seed} if corruption in ("glass_blur", "impulse_noise") else {}
            out[i] = lib.corrupt(array[i], severity=severity, corruption_name=corruption, **kwargs)
    finally:
        np.random.set_state(state)
    return _from_library(out, layout).to(images.device)


# --------------------------------------------------------------------------- protocols


def _forward(model: nn.Module, x: Tensor, preprocess, device, where: str) -> Tensor:
    x = x.to(device)
    if preprocess is not None:
        x = preprocess(x)
    logits = model(x)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"`{where}`: the model must return logits of shape (N, classes), got {shape} for a batch of {x.shape[0]}.")
    return logits


# A grid item: (labels (N,), clean images (N, C, H, W) or None, get(corruption index) -> (S, N, C, H, W)).
_GridItem = tuple[Tensor, "Tensor | None", Callable[[int], Tensor]]


def _run_grid(model, grid: Iterable[_GridItem], metric: CorruptionError, preprocess, device, where: str, config: dict):
    model = model.to(device).eval()
    metric = metric.to(device)
    with torch.inference_mode():
        for labels, clean, get in grid:
            rows = []
            for ci in range(len(metric.corruptions)):
                stack = get(ci)  # (S, N, C, H, W)
                s, n = stack.shape[:2]
                rows.append(_forward(model, stack.flatten(0, 1), preprocess, device, where).view(s, n, -1))
            clean_logits = None if clean is None else _forward(model, clean, preprocess, device, where)
            metric.update(torch.stack(rows), labels.to(device), clean_logits)
    if int(metric.images) == 0:
        raise ValueError(f"`{where}`: there were no images to evaluate.")
    result = metric.compute()
    result.config.update(config)
    return result


def evaluate_corruptions(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = None,
    clean: bool = True,
    seed: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Corrupt every batch on the fly with every corruption and severity and measure the errors.

    Args:
        model: any classifier returning ``(N, classes)`` logits.
        batches: ``(images, labels)``, images ``(N, C, H, W)`` floats in ``[0, 1]`` (unnormalised).
        corruptions: names (default the 15 test corruptions; add
            :data:`~antialias.eval._imagenet_c.EXTRA_CORRUPTIONS` for all 19).
        severities: default 1..5.
        normaliser: reference errors for CE (``"alexnet"`` only makes sense on ImageNet at 224 px).
        clean: also classify the clean images (clean error, relative CE).
        seed: corruption seed (see :func:`corrupt_images`).
        preprocess: applied after corrupting (e.g. normalisation).
        device: where the model runs; the ``S * N`` copies of one corruption go in one forward.
        confidence: of the intervals.

    Raises:
        ImportError: the ``corruptions`` extra is missing (the message says how to install it).
    """
    where = "evaluate_corruptions"
    metric = CorruptionError(corruptions, severities, normaliser=normaliser, confidence=confidence)
    _library()

    def grid() -> Iterator[_GridItem]:
        start = 0
        for images, labels in batches:
            if not isinstance(images, Tensor) or images.ndim != 4:
                raise ValueError(f"`{where}`: images must be (N, C, H, W) tensors, got {getattr(images, 'shape', images)!r}.")

            def get(ci: int, images=images, start=start) -> Tensor:
                name = metric.corruptions[ci]
                return torch.stack([corrupt_images(images, name, s, seed=seed, first_index=start) for s in metric.severities])

            yield labels, (images if clean else None), get
            start += images.shape[0]

    config = {"source": "on the fly (imagecorruptions)", "seed": seed, "clean": clean}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)


def read_cifar10c(
    root: str | os.PathLike,
    corruptions: Sequence[str] | None = None,
    *,
    severities: Sequence[int] = SEVERITIES,
    batch_size: int = 100,
    limit: int | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Read the released CIFAR-10-C files as aligned grids.

    Each ``<root>/<corruption>.npy`` holds ``(5 * n, H, W, 3)`` uint8 images, severity-major (rows
    ``(s - 1) * n .. s * n - 1`` are severity ``s``), with ``<root>/labels.npy`` ``(5 * n,)``.

    Args:
        root: the CIFAR-10-C folder.
        corruptions: names to read (default: every known name with a file, in canonical order).
        severities: which severities.
        batch_size: images per grid.
        limit: read only the first ``limit`` images of each severity.

    Yields:
        ``(grid, labels)``: grid ``(C, S, B, 3, H, W)`` float32 in ``[0, 1]``, labels ``(B,)`` int64.
    """
    names, arrays, labels, n = _open_cifar10c(root, corruptions, "read_cifar10c")
    severities = _check_severities("read_cifar10c", severities)
    stop = n if limit is None else min(n, int(limit))
    for a in range(0, stop, batch_size):
        b = min(stop, a + batch_size)
        grid = np.stack([np.stack([arr[(s - 1) * n + a : (s - 1) * n + b] for s in severities]) for arr in arrays])
        yield torch.from_numpy(grid).permute(0, 1, 2, 5, 3, 4).float().div_(255), torch.from_numpy(labels[a:b].astype(np.int64))


def _open_cifar10c(root, corruptions, where):
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"`{where}`: `root` must be the CIFAR-10-C folder (<corruption>.npy, labels.npy), got {str(root)!r}.")
    if corruptions is None:
        names = tuple(c for c in ALL_CORRUPTIONS if (root / f"{c}.npy").is_file())
        if not names:
            raise ValueError(f"`{where}`: {root} must hold <corruption>.npy files (e.g. gaussian_noise.npy), found none.")
    else:
        names = check_names(where, "corruptions", list(corruptions), ALL_CORRUPTIONS)
    label_path = root / "labels.npy"
    if not label_path.is_file():
        raise ValueError(f"`{where}`: {root} must hold labels.npy (the labels of every row), found none.")
    labels = np.load(label_path, mmap_mode="r")
    arrays = []
    for name in names:
        path = root / f"{name}.npy"
        if not path.is_file():
            raise ValueError(f"`{where}`: {root} has no {name}.npy; available: {[p.stem for p in sorted(root.glob('*.npy'))]}.")
        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] % 5 or arr.shape[0] != len(labels):
            raise ValueError(
                f"`{where}`: {path} must be (5 * n, H, W, 3) uint8 with as many rows as labels.npy ({len(labels)}), "
                f"got {arr.shape} {arr.dtype}."
            )
        arrays.append(arr)
    n = len(labels) // 5
    first = np.asarray(labels[:n])
    for s in range(1, 5):
        if not np.array_equal(first, labels[s * n : (s + 1) * n]):
            raise ValueError(f"`{where}`: labels.npy must repeat the same {n} labels for every severity; block {s + 1} differs.")
    return names, arrays, first, n


def evaluate_cifar10c(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = None,
    clean_batches: Iterable[tuple[Tensor, Tensor]] | None = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors on the released CIFAR-10-C files (see :func:`read_cifar10c`).

    ``clean_batches`` (optional): the clean CIFAR-10 test images in the files' order, in batches of
    ``batch_size``; their labels must match. Other arguments as :func:`evaluate_corruptions`.
    """
    where = "evaluate_cifar10c"
    names = _open_cifar10c(root, corruptions, where)[0]
    metric = CorruptionError(names, severities, normaliser=normaliser, confidence=confidence)
    clean_iter = iter(clean_batches) if clean_batches is not None else None

    def grid() -> Iterator[_GridItem]:
        for stack, labels in read_cifar10c(root, names, severities=severities, batch_size=batch_size, limit=limit):
            clean = None
            if clean_iter is not None:
                clean, clean_labels = next(clean_iter)
                if not torch.equal(clean_labels.cpu().long(), labels):
                    raise ValueError(f"`{where}`: `clean_batches` must follow the files' order in batches of {batch_size}; labels differ.")
            yield labels, clean, (lambda ci, stack=stack: stack[ci])

    config = {"source": f"CIFAR-10-C files at {Path(root)}", "limit": limit}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)


def evaluate_imagenet_c(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = "alexnet",
    clean_root: str | os.PathLike | None = None,
    clean_transform: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors on the released ImageNet-C folders ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``.

    Every ``<corruption>/<severity>`` folder must hold the same class folders and file names (the
    released set does); labels are the sorted class folder names' indices. ``clean_root`` (optional)
    is the ImageNet validation folder with the same file names, read through ``clean_transform``
    (e.g. ``antialias.data.transforms.ResizeCenterCrop(256, 224)``). ``limit`` evaluates only the
    first ``limit`` files (in sorted order). Other arguments as :func:`evaluate_corruptions`.
    """
    where = "evaluate_imagenet_c"
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"`{where}`: `root` must be the ImageNet-C folder (<corruption>/<severity>/<wnid>/*.JPEG), got {str(root)!r}.")
    severities = _check_severities(where, severities)
    if corruptions is None:
        names = tuple(c for c in ALL_CORRUPTIONS if (root / c).is_dir())
        if not names:
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise ValueError(f"`{where}`: {root} must hold corruption folders (e.g. gaussian_noise/1/...), found {found}.")
    else:
        names = check_names(where, "corruptions", list(corruptions), ALL_CORRUPTIONS)
    folders = [[ImageFolder(root / c / str(s)) for s in severities] for c in names]
    reference = folders[0][0]
    keys = [(p.relative_to(reference.root).with_suffix("").as_posix(), t) for p, t in reference.samples]
    for row in folders:
        for ds in row:
            if [(p.relative_to(ds.root).with_suffix("").as_posix(), t) for p, t in ds.samples] != keys or ds.classes != reference.classes:
                raise ValueError(
                    f"`{where}`: every <corruption>/<severity> folder must hold the same class folders and files; "
                    f"{ds.root} differs from {reference.root}."
                )
    clean_ds = None
    if clean_root is not None:
        clean_ds = ImageFolder(clean_root, transform=clean_transform)
        clean_keys = [(p.relative_to(clean_ds.root).with_suffix("").as_posix(), t) for p, t in clean_ds.samples]
        if clean_keys != keys:
            raise ValueError(f"`{where}`: `clean_root` must hold the same class folders and file names as {reference.root}.")
    stop = len(keys) if limit is None else min(len(keys), int(limit))
    metric = CorruptionError(names, severities, normaliser=normaliser, confidence=confidence)

    def grid() -> Iterator[_GridItem]:
        for a in range(0, stop, batch_size):
            idx = range(a, min(stop, a + batch_size))
            labels = reference.targets[list(idx)]
            clean = None if clean_ds is None else torch.stack([clean_ds[i][0] for i in idx])

            def get(ci: int, idx=idx) -> Tensor:
                return torch.stack([torch.stack([ds[i][0] for i in idx]) for ds in folders[ci]])

            yield labels, clean, get

    config = {"source": f"ImageNet-C folders at {root}", "limit": limit}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)
