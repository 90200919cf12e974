"""Perturbation stability, ImageNet-P style (Hendrycks & Dietterich, ICLR 2019), on any data set.

Each image becomes a sequence of ``T`` frames under a slowly growing perturbation; a stable model
keeps its prediction along the sequence. Sources: sequences generated on the fly with torch ops
(:func:`perturbation_sequence`, :func:`evaluate_perturbations`) or the released CIFAR-10-P files
(:func:`read_cifar10p`, :func:`evaluate_cifar10p`).

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
:func:`~antialias.eval._imagenet_c.bounded_mean_interval` (pairs within a sequence are not independent).

Sequences (``preset="imagenet"`` for ImageNet-P at 224 px, ``"cifar"`` as CIFAR-10-P at 32 px,
``"auto"``: ``"imagenet"`` when the shorter side is at least 128 px):

========== ====== ==================================================================================
name       frames frame ``t``
========== ====== ==================================================================================
translate  41/16  horizontal shift by ``-20..+20`` px (cifar: ``-7..+8``), 1 px per frame, zero fill
rotate     31     rotation by ``-15..+15`` degrees about the centre (bilinear, zero fill)
scale      31     zoom by ``0.40..1.15`` (0.025 per frame) about the centre (bilinear, zero fill)
brightness 31     HSV value ``+ (-0.30..+0.30)`` in 0.02 steps, clipped (hue and saturation kept)
gaussian_  31     frame 0 clean; ``clip(x + 0.03 N(0, 1))``
noise
shot_noise 31     frame 0 clean; ``clip(Poisson(300 x) / 300)``
zoom_blur  31     mean of the image zoomed by ``1, 1.01, .., 1 + 0.01 t`` (frame 0 clean)
motion_blur 31    a centred line blur of length ``max(3, odd(15 * side / 224))`` px at angle
                  ``-45 + 3 t`` degrees (replicate padding)
========== ====== ==================================================================================

Deviations, stated once: ImageNet-P translates the 256 px image and centre-crops 224 (so the fill is
mostly real content); here the given image is shifted with zero fill. Frame counts and ranges other
than translate's are ImageNet-P's at difficulty 1 for both presets (CIFAR-10-P's were not confirmed).
The zoom and motion blur parameters are our choice (ImageNet-P's were not confirmed). Snow, tilt
and the validation perturbations are not generated (they are read from CIFAR-10-P files).
Noise is seeded per image from ``(seed, perturbation, position in the stream)``.
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

from antialias.eval._imagenet_c import NOISE_PERTURBATIONS, PERTURBATIONS, VALIDATION_PERTURBATIONS, check_names
from antialias.eval.corruption import Estimate, _estimate, _forward

__all__ = [
    "GENERATED_PERTURBATIONS",
    "PerturbationResult",
    "PerturbationStability",
    "evaluate_cifar10p",
    "evaluate_perturbations",
    "flip_probability",
    "perturbation_sequence",
    "perturbation_stability",
    "read_cifar10p",
    "sequence_length",
    "top5_distance",
]

#: Perturbations :func:`perturbation_sequence` generates.
GENERATED_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "brightness", "translate", "rotate", "scale",
)  # fmt: skip
#: Names the metric accepts: ImageNet-P's test and validation sets and CIFAR-10-P's noise difficulty files.
KNOWN_PERTURBATIONS: tuple[str, ...] = (
    PERTURBATIONS + VALIDATION_PERTURBATIONS + tuple(f"{n}_{d}" for n in NOISE_PERTURBATIONS for d in (2, 3))
)
PRESETS = ("auto", "imagenet", "cifar")


def is_noise(name: str) -> bool:
    """Whether frames of ``name`` are compared with the clean first frame."""
    return name in NOISE_PERTURBATIONS or name.rsplit("_", 1)[0] in NOISE_PERTURBATIONS


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
        raise ValueError(f"`{where}`: sequences of {t} frames are too short for `step` {step}; need at least {step + 1}.")
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
        def each(d):
            return {k: v.to_dict() for k, v in d.items()}

        def opt(x):
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


def resolve_perturbation_normaliser(normaliser: object, where: str) -> dict | None:
    """``{"source", "flip_probability": {name: fp}, "t5d": {name: t5d}}`` from the accepted forms."""
    if normaliser is None:
        return None
    if isinstance(normaliser, PerturbationResult):
        return normaliser.as_normaliser()
    if isinstance(normaliser, (str, os.PathLike)):
        path = Path(normaliser)
        if not path.is_file():
            raise ValueError(
                f"`{where}`: `normaliser` must be None, a PerturbationResult, a mapping or the path of a result "
                f"JSON file, got {str(normaliser)!r}, which is not a file."
            )
        data = json.loads(path.read_text())
        data = data.get("perturbation", data)
        return {
            "source": str(path),
            "flip_probability": {p: e["value"] for p, e in data["flip_probability"].items()},
            "t5d": {p: e["value"] for p, e in data.get("t5d", {}).items()},
        }
    if isinstance(normaliser, Mapping):
        if "flip_probability" in normaliser:
            fp = {p: (v["value"] if isinstance(v, Mapping) else float(v)) for p, v in normaliser["flip_probability"].items()}
            t5 = {p: (v["value"] if isinstance(v, Mapping) else float(v)) for p, v in normaliser.get("t5d", {}).items()}
            return {"source": normaliser.get("source", "user mapping"), "flip_probability": fp, "t5d": t5}
        return {"source": "user mapping", "flip_probability": {p: float(v) for p, v in normaliser.items()}, "t5d": {}}
    raise TypeError(
        f"`{where}`: `normaliser` must be None, a PerturbationResult, a mapping or a JSON path, got {type(normaliser).__name__}."
    )


def _stability_compute(flips, t5d, pairs, sequences, names, step, normaliser, confidence) -> PerturbationResult:
    flips, t5d, pairs, sequences = (x.detach().cpu().long() for x in (flips, t5d, pairs, sequences))
    done = [i for i in range(len(names)) if int(pairs[i]) > 0]
    fp, dist, fr, dn = {}, {}, {}, {}
    notes: list[str] = []
    for i in done:
        name, n = names[i], int(sequences[i])
        m = float(flips[i]) / float(pairs[i])
        fp[name] = _estimate(m, n, 0.0, 1.0, confidence, scale=1.0)
        d = float(t5d[i]) / float(pairs[i])
        dist[name] = _estimate(d / 15.0, n, 0.0, 1.0, confidence, scale=15.0)
        if normaliser is not None:
            ref = normaliser["flip_probability"].get(name)
            if ref:
                fr[name] = _estimate(m / ref, n, 0.0, 1.0 / ref, confidence)
            else:
                notes.append(f"the normaliser has no (or a zero) flip probability for {name}: no FR.")
            ref = normaliser["t5d"].get(name)
            if ref:
                dn[name] = _estimate(d / ref, n, 0.0, 15.0 / ref, confidence)
    evaluated = [names[i] for i in done]
    n_min = min((int(sequences[i]) for i in done), default=0)
    unnorm = mfr = mt5d = None
    if evaluated:
        unnorm = _estimate(sum(fp[p].value for p in evaluated) / len(evaluated), n_min, 0.0, 1.0, confidence)
        missing = [p for p in PERTURBATIONS if p not in evaluated]
        if missing:
            notes.append(
                f"mFR and mT5D are means over the evaluated perturbations ({', '.join(evaluated)}); ImageNet-P's "
                f"are over its 10 test perturbations (missing here: {', '.join(missing)})."
            )
    if normaliser is not None and evaluated and all(p in fr for p in evaluated):
        bound = sum(1.0 / normaliser["flip_probability"][p] for p in evaluated) / len(evaluated)
        mfr = _estimate(sum(fr[p].value for p in evaluated) / 100 / len(evaluated), n_min, 0.0, bound, confidence)
    if normaliser is not None and evaluated and all(p in dn for p in evaluated):
        bound = sum(15.0 / normaliser["t5d"][p] for p in evaluated) / len(evaluated)
        mt5d = _estimate(sum(dn[p].value for p in evaluated) / 100 / len(evaluated), n_min, 0.0, bound, confidence)
    return PerturbationResult(
        evaluated, {names[i]: int(sequences[i]) for i in done}, fp, dist, fr, dn, unnorm, mfr, mt5d,
        normaliser, step, notes, {"confidence": confidence},
    )  # fmt: skip


class PerturbationStability(Metric):
    """Flip probability and top-5 distance per perturbation; counts merge across DDP ranks (torchmetrics).

    ``update(logits, perturbation)`` takes the ``(N, T, classes)`` logits of ``N`` sequences of one
    perturbation; :func:`perturbation_stability` is the one-shot form.
    """

    full_state_update = False

    def __init__(
        self,
        perturbations: Sequence[str] = GENERATED_PERTURBATIONS,
        *,
        step: int = 1,
        normaliser: object = None,
        confidence: float = 0.95,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.perturbations = check_names("PerturbationStability", "perturbations", list(perturbations), KNOWN_PERTURBATIONS)
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
        for state, value in zip((self.flips, self.t5d, self.pairs, self.sequences), counts):
            state[i] += value.to(state.device)

    def compute(self) -> PerturbationResult:
        return _stability_compute(
            self.flips, self.t5d, self.pairs, self.sequences, self.perturbations, self.step, self.normaliser, self.confidence
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
    stacked = [torch.stack([c[j].cpu() for c in counts]) for j in range(4)]
    norm = resolve_perturbation_normaliser(normaliser, "perturbation_stability")
    return _stability_compute(*stacked, names, step, norm, confidence)



# --------------------------------------------------------------------------- generating sequences


def _resolve_preset(preset: str, h: int, w: int, where: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"`{where}`: `preset` must be one of {PRESETS}, got {preset!r}.")
    if preset == "auto":
        return "imagenet" if min(h, w) >= 128 else "cifar"
    return preset


def _affine(images: Tensor, thetas: Tensor) -> Tensor:
    """Warp every image by every ``(T, 2, 3)`` theta: ``(N, C, H, W)`` -> ``(N, T, C, H, W)``, zero fill."""
    n, c, h, w = images.shape
    t = thetas.shape[0]
    grid = F.affine_grid(thetas.to(images), [t, c, h, w], align_corners=False)  # (T, H, W, 2)
    src = images.unsqueeze(1).expand(n, t, c, h, w).reshape(n * t, c, h, w)
    out = F.grid_sample(src, grid.repeat(n, 1, 1, 1), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, t, c, h, w)


def _zoom_thetas(factors: Tensor) -> Tensor:
    theta = torch.zeros(len(factors), 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factors
    return theta


def _translate(images: Tensor, shifts: Sequence[int]) -> Tensor:
    # out[..., x] = in[..., x - d] with zeros outside: exact integer shifts, no resampling.
    w = images.shape[-1]
    p = max(abs(d) for d in shifts)
    padded = F.pad(images, (p, p))
    return torch.stack([padded[..., p - d : p - d + w] for d in shifts], 1)


def _brightness(images: Tensor, offsets: Tensor) -> Tensor:
    # Adding to the HSV value V = max over channels keeps hue and saturation: every channel scales by
    # V'/V; a black pixel (V = 0, no hue) becomes grey V'.
    v = images.amax(1, keepdim=True).unsqueeze(1)  # (N, 1, 1, H, W)
    new_v = (v + offsets.view(1, -1, 1, 1, 1).to(images)).clamp(0, 1)  # (N, T, 1, H, W)
    x = images.unsqueeze(1)
    ratio = torch.where(v > 0, new_v / v.clamp_min(1e-12), torch.zeros_like(new_v))
    return torch.where(v > 0, x * ratio, new_v.expand(-1, -1, images.shape[1], -1, -1)).clamp(0, 1)


def _line_kernels(length: int, angles_deg: Tensor) -> Tensor:
    """``(T, 1, k, k)`` normalised line kernels of ``length`` px through the centre, bilinear-splatted."""
    k = length
    c = (k - 1) / 2
    kernels = torch.zeros(len(angles_deg), k, k, dtype=torch.float64)
    steps = torch.linspace(-c, c, 4 * k, dtype=torch.float64)
    for i, a in enumerate(angles_deg.tolist()):
        ys, xs = c - steps * math.sin(math.radians(a)), c + steps * math.cos(math.radians(a))
        y0, x0 = ys.floor().long(), xs.floor().long()
        fy, fx = ys - y0, xs - x0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = (y0 + dy).clamp(0, k - 1), (x0 + dx).clamp(0, k - 1)
                kernels[i].index_put_((yy, xx), wy * wx, accumulate=True)
    return (kernels / kernels.sum((1, 2), keepdim=True)).unsqueeze(1)


def _motion_blur(images: Tensor, length: int, angles: Tensor) -> Tensor:
    n, c, h, w = images.shape
    kernels = _line_kernels(length, angles).to(images)  # (T, 1, k, k)
    p = length // 2
    x = F.pad(images.reshape(n * c, 1, h, w), (p, p, p, p), mode="replicate")
    return F.conv2d(x, kernels).view(n, c, -1, h, w).transpose(1, 2)  # (N, T, C, H, W)


def _noise(images: Tensor, name: str, frames: int, seed: int, first_index: int) -> Tensor:
    code = GENERATED_PERTURBATIONS.index(name)
    out = []
    for i, image in enumerate(images):
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, code, first_index + i]).generate_state(1)[0]))
        x = image.detach().float().cpu().unsqueeze(0).expand(frames - 1, *image.shape)
        if name == "gaussian_noise":
            noisy = x + 0.03 * torch.randn(x.shape, generator=g)
        else:
            noisy = torch.poisson(x * 300.0, generator=g) / 300.0
        out.append(torch.cat([image.detach().float().cpu()[None], noisy.clamp(0, 1)]))
    return torch.stack(out).to(images.device, images.dtype)


def perturbation_sequence(
    images: Tensor, perturbation: str, *, preset: str = "auto", seed: int = 0, first_index: int = 0
) -> Tensor:
    """The frames of ``perturbation`` for every image (the table in the module docstring).

    Args:
        images: ``(N, C, H, W)`` floats in ``[0, 1]``.
        perturbation: one of :data:`GENERATED_PERTURBATIONS`.
        preset: ``"imagenet"``, ``"cifar"`` or ``"auto"`` (by image size).
        seed: noise seed; image ``i`` draws from ``(seed, perturbation, first_index + i)``.
        first_index: position of the first image in the stream.

    Shape:
        ``(N, C, H, W)`` -> ``(N, T, C, H, W)`` with ``T`` the perturbation's frame count.

    Examples:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> tuple(perturbation_sequence(x, "translate").shape), tuple(perturbation_sequence(x, "rotate").shape)
        ((2, 16, 3, 32, 32), (2, 31, 3, 32, 32))
    """
    where = "perturbation_sequence"
    check_names(where, "perturbation", [perturbation], GENERATED_PERTURBATIONS)
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"`{where}`: `images` must be a float (N, C, H, W) tensor, got {getattr(images, 'shape', images)!r}.")
    h, w = images.shape[-2:]
    preset = _resolve_preset(preset, h, w, where)
    frames = sequence_length(perturbation, preset)
    if perturbation == "translate":
        shifts = range(-20, 21) if preset == "imagenet" else range(-7, 9)
        if max(abs(s) for s in shifts) >= w:
            raise ValueError(f"`{where}`: translate shifts up to {max(abs(s) for s in shifts)} px need images wider than that, got {w}.")
        return _translate(images, list(shifts))
    if perturbation == "rotate":
        rad = torch.deg2rad(torch.linspace(-15, 15, frames, dtype=torch.float64))
        theta = torch.zeros(frames, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = theta[:, 1, 1] = rad.cos()
        theta[:, 0, 1] = -rad.sin() * h / w  # normalised coordinates: keep angles true for H != W
        theta[:, 1, 0] = rad.sin() * w / h
        return _affine(images, theta)
    if perturbation == "scale":
        return _affine(images, _zoom_thetas(torch.linspace(0.40, 1.15, frames, dtype=torch.float64)))
    if perturbation == "brightness":
        return _brightness(images, torch.linspace(-0.30, 0.30, frames, dtype=torch.float64))
    if perturbation == "zoom_blur":
        zoomed = _affine(images, _zoom_thetas(1 + 0.01 * torch.arange(frames, dtype=torch.float64)))
        counts = torch.arange(1, frames + 1, dtype=images.dtype, device=images.device).view(1, -1, 1, 1, 1)
        return zoomed.cumsum(1) / counts
    if perturbation == "motion_blur":
        length = max(3, 2 * round(15 * min(h, w) / 224 / 2) + 1)
        return _motion_blur(images, length, -45 + 3 * torch.arange(frames, dtype=torch.float64))
    return _noise(images, perturbation, frames, seed, first_index)


def sequence_length(perturbation: str, preset: str) -> int:
    """Frames of a generated sequence: translate 41 (imagenet) or 16 (cifar), the others 31."""
    if perturbation == "translate":
        return 41 if preset == "imagenet" else 16
    return 31



# --------------------------------------------------------------------------- protocols


def _run(model, items: Iterable[tuple[str, Tensor]], metric, preprocess, device, where, config) -> PerturbationResult:
    model = model.to(device).eval()
    metric = metric.to(device)
    with torch.inference_mode():
        for name, frames in items:  # frames (N, T, C, H, W)
            n, t = frames.shape[:2]
            logits = _forward(model, frames.flatten(0, 1), preprocess, device, where)
            metric.update(logits.view(n, t, -1), name)
    if int(metric.sequences.sum()) == 0:
        raise ValueError(f"`{where}`: there were no sequences to evaluate.")
    result = metric.compute()
    result.config.update(config)
    return result


def evaluate_perturbations(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]] | Iterable[Tensor],
    *,
    perturbations: Sequence[str] = GENERATED_PERTURBATIONS,
    preset: str = "auto",
    step: int = 1,
    normaliser: object = None,
    seed: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> PerturbationResult:
    """Generate every perturbation sequence of every image on the fly and measure FP, FR and T5D.

    Args:
        model: any classifier returning ``(N, classes)`` logits.
        batches: ``(images, labels)`` (labels are unused) or plain image batches, images
            ``(N, C, H, W)`` floats in ``[0, 1]``.
        perturbations: names from :data:`GENERATED_PERTURBATIONS` (default all eight).
        preset: frame counts and ranges (see the module docstring).
        step: frame distance of compared pairs (ImageNet-P's difficulty), ignored for noise.
        normaliser: reference model's flip probabilities (a :class:`PerturbationResult`, its JSON,
            or ``{name: fp}``) for FR/mFR and mT5D.
        seed: noise seed.
        preprocess: applied after perturbing (e.g. normalisation).
        device: where the model runs; a batch's ``N * T`` frames of one perturbation go in one forward.
        confidence: of the intervals.
    """
    where = "evaluate_perturbations"
    names = check_names(where, "perturbations", list(perturbations), GENERATED_PERTURBATIONS)
    metric = PerturbationStability(names, step=step, normaliser=normaliser, confidence=confidence)
    _resolve_preset(preset, 256, 256, where)

    def items() -> Iterator[tuple[str, Tensor]]:
        start = 0
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for name in names:
                yield name, perturbation_sequence(images, name, preset=preset, seed=seed, first_index=start)
            start += images.shape[0]

    config = {"source": "generated", "preset": preset, "seed": seed}
    return _run(model, items(), metric, preprocess, device, where, config)


def read_cifar10p(path: str | os.PathLike, *, batch_size: int = 100, limit: int | None = None) -> Iterator[Tensor]:
    """Read one released CIFAR-10-P file ``(n, T, H, W, 3)`` uint8 in batches of ``(B, T, 3, H, W)`` floats in [0, 1]."""
    where = "read_cifar10p"
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"`{where}`: `path` must be a CIFAR-10-P .npy file, got {str(path)!r}, which does not exist.")
    array = np.load(path, mmap_mode="r")
    if array.ndim != 5 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[1] < 2:
        raise ValueError(f"`{where}`: {path} must hold (n, frames >= 2, H, W, 3) uint8 sequences, got {array.shape} {array.dtype}.")
    stop = len(array) if limit is None else min(len(array), int(limit))
    for a in range(0, stop, batch_size):
        chunk = np.array(array[a : min(stop, a + batch_size)])  # a writable copy of the memory map
        yield torch.from_numpy(chunk).permute(0, 1, 4, 2, 3).float().div_(255)


def evaluate_cifar10p(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    perturbations: Sequence[str] | None = None,
    step: int = 1,
    normaliser: object = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> PerturbationResult:
    """FP, FR and T5D on the released CIFAR-10-P files ``<root>/<perturbation>.npy`` (default: all present)."""
    where = "evaluate_cifar10p"
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"`{where}`: `root` must be the CIFAR-10-P folder (<perturbation>.npy files), got {str(root)!r}.")
    if perturbations is None:
        names = tuple(p for p in KNOWN_PERTURBATIONS if (root / f"{p}.npy").is_file())
        if not names:
            raise ValueError(f"`{where}`: {root} must hold <perturbation>.npy files (e.g. translate.npy), found none.")
    else:
        names = check_names(where, "perturbations", list(perturbations), KNOWN_PERTURBATIONS)
    metric = PerturbationStability(names, step=step, normaliser=normaliser, confidence=confidence)

    def items() -> Iterator[tuple[str, Tensor]]:
        for name in names:
            for frames in read_cifar10p(root / f"{name}.npy", batch_size=batch_size, limit=limit):
                yield name, frames

    config = {"source": f"CIFAR-10-P files at {root}", "limit": limit}
    return _run(model, items(), metric, preprocess, device, where, config)
