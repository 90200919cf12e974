"""Worst-case, k-way and random sub-pixel consistency, and the mean absolute change (MAC) of the top-class probability.

Random-shift consistency (:mod:`antialias.eval.consistency`, Zhang 2019) asks whether two random
shifts agree. The evaluations of the later papers ask more (Chaman & Dokmanic, CVPR 2021;
Michaeli et al., *Alias-Free Convnets*, CVPR 2023):

- **worst-case consistency**: the fraction of images whose prediction is unchanged under *every*
  shift of a grid, per family of shifts: ``"circular"`` (``torch.roll`` by every ``(dy, dx)`` in
  ``{-m..m}^2``, reduced modulo the image size, so ``m >= H/2`` is every circular shift),
  ``"crop"`` (zero- or reflect-pad by ``m`` and crop the image size at every offset in
  ``{0..2m}^2``) and ``"subpixel"`` (band-limited Fourier shifts, :func:`antialias.eval.subpixel.fourier_shift`,
  by every ``(dy, dx)`` on the grid ``{j * step : |j * step| <= s}^2``, by default the 1/4 and
  1/2 pixel shifts), and over all families together (``"all"``);
- **MAC**: the mean over images of the mean absolute change of the probability of the original
  top class, ``|p_c(shift(x)) - p_c(x)|`` with ``c = argmax p(x)``, over the shifts of the grid;
- **k-way consistency**: ``k`` random circular shifts per image, consistent when all ``k``
  predictions are equal (``k = 2`` is the usual consistency);
- **random sub-pixel consistency**: two random real-valued shifts uniform in ``[-r, r]^2`` per
  image, applied by Fourier interpolation, consistent when both predictions agree.

Each image is one unit of every interval: Wilson intervals (:func:`antialias.eval._stats.wilson_interval`)
for the per-image 0/1 outcomes, the percentile bootstrap over images with a fixed seed
(:func:`antialias.eval._stats.bootstrap_mean_interval`) for MAC. Random shifts are pure functions of
``(seed, image position)`` through :func:`antialias.data.seeding.index_uniforms`, so results do not
depend on the batch size or the sharding. The metrics are torchmetrics ``Metric`` objects whose
states merge across DDP ranks, each with a function of the same stem that shares its update and
compute code.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from antialias.data.seeding import SHIFTS, derived_seed, index_uniforms
from antialias.eval._fields import PAD_MODES, Config, check_choice, check_integer, fail, flag
from antialias.eval._forward import autocast, check_logits
from antialias.eval._robust_core import Estimate
from antialias.eval._shifts import crop_at, pad_images, roll_by
from antialias.eval._stats import Proportion, bootstrap_mean_interval
from antialias.eval.subpixel import fourier_shift

__all__ = [
    "FAMILIES",
    "KWayConsistency",
    "MeanAbsoluteChange",
    "WorstCaseConfig",
    "WorstCaseConsistency",
    "WorstCaseMetrics",
    "evaluate_worst_case",
    "k_way_consistency",
    "mean_absolute_change",
    "shift_grid",
    "update_worst_case",
    "worst_case_consistency",
]

#: Families of the worst-case grid.
FAMILIES = ("circular", "crop", "subpixel")

# Stream coordinates of the random shifts: (seed, SHIFTS, pass, _K_WAY or _SUBPIXEL); the consistency
# protocol's are (seed, SHIFTS, pass), so the streams never share numbers.
_K_WAY, _SUBPIXEL = 1, 2


# --------------------------------------------------------------------------- shared update/compute code


def _checked(logits: Any, where: str, copies: int | None = None) -> Tensor:
    if not isinstance(logits, Tensor) or logits.ndim != 3 or logits.shape[0] < 2 or logits.shape[-1] < 1:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"`{where}`: `logits` must have shape (copies >= 2, N, classes), got {shape}. "
                         "Stack the logits of the reference (first) and the shifted copies with torch.stack.")
    if copies is not None and logits.shape[0] != copies:
        raise ValueError(f"`{where}`: `logits` must hold k = {copies} copies, got {logits.shape[0]}.")
    return logits


def _unchanged(logits: Tensor) -> Tensor:
    """``(N,)``: every copy's top-1 class equals the first copy's."""
    pred = logits.argmax(dim=-1)  # (G, N)
    return (pred == pred[:1]).all(dim=0)


def _abs_change(logits: Tensor) -> Tensor:
    """``(N,)``: mean over copies ``1..G-1`` of ``|p_c(copy) - p_c(first)|``, ``c`` the first copy's top class."""
    probs = logits.double().softmax(dim=-1)  # (G, N, classes)
    top = probs[0].argmax(dim=-1)  # (N,)
    p = probs.gather(2, top.view(1, -1, 1).expand(probs.shape[0], -1, 1)).squeeze(2)  # (G, N)
    return (p[1:] - p[:1]).abs().mean(dim=0)


def _joined(state: list[Tensor] | Tensor, dtype: torch.dtype) -> Tensor:
    # A list state is a list of per-update tensors, or one tensor once synced across ranks.
    if isinstance(state, Tensor):
        return state.to(dtype).cpu()
    return torch.cat(state).to(dtype).cpu() if state else torch.zeros(0, dtype=dtype)


class _Agreement(Metric):
    """Counts of images whose copies all agree (summed across ranks), and the per-image outcomes (gathered)."""

    full_state_update = False
    higher_is_better = True
    consistent: Tensor
    total: Tensor
    outcomes_each: list[Tensor]
    _where = "agreement"

    def __init__(self, *, confidence: float = 0.95, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.confidence = confidence
        self.add_state("consistent", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("outcomes_each", default=[], dist_reduce_fx="cat")

    def _copies(self) -> int | None:
        return None

    def update(self, logits: Tensor) -> None:
        ok = _unchanged(_checked(logits, self._where, self._copies()))
        self.outcomes_each.append(ok)
        self.consistent += ok.sum()
        self.total += ok.numel()

    def compute(self) -> Proportion:
        return Proportion.from_counts(int(self.consistent), int(self.total), self.confidence)

    def outcomes(self) -> Tensor:
        """Per image, in update order (rank order across ranks): boolean ``(N,)`` on the CPU."""
        return _joined(self.outcomes_each, torch.bool)


# --------------------------------------------------------------------------- the metrics


def worst_case_consistency(logits: Tensor, *, confidence: float = 0.95) -> Proportion:
    """Fraction of images whose top-1 class is the same for the reference and *every* shifted copy.

    Args:
        logits: ``(G, N, classes)``: copy 0 is the reference (the unshifted image), copies
            ``1..G-1`` the shifts of the grid.
        confidence: Level of the Wilson interval.

    Examples:
        >>> ref = torch.tensor([[1., 0.], [0., 1.]])  # 2 images
        >>> worst_case_consistency(torch.stack([ref, ref, ref.flip(0)])).value  # image 1 flips once
        0.0
        >>> worst_case_consistency(torch.stack([ref, ref])).value
        1.0
    """
    ok = _unchanged(_checked(logits, "worst_case_consistency"))
    return Proportion.from_counts(int(ok.sum()), ok.numel(), confidence)


class WorstCaseConsistency(_Agreement):
    """Streaming :func:`worst_case_consistency` (torchmetrics; counts summed and outcomes gathered across ranks).

    Args:
        confidence: Level of the Wilson interval.
        **kwargs: torchmetrics' ``Metric`` arguments.

    Examples:
        >>> m = WorstCaseConsistency()
        >>> m.update(torch.tensor([[[1., 0.]], [[0., 1.]]]))  # one image, its shifted copy flips
        >>> m.update(torch.tensor([[[1., 0.]], [[2., 0.]]]))
        >>> m.compute().value, m.outcomes().tolist()
        (0.5, [False, True])
    """

    _where = "WorstCaseConsistency"


def k_way_consistency(logits: Tensor, *, confidence: float = 0.95) -> Proportion:
    """Fraction of images whose ``k`` shifted copies all get the same top-1 class.

    Args:
        logits: ``(k, N, classes)``, ``k >= 2`` copies at random shifts.
        confidence: Level of the Wilson interval.

    Examples:
        >>> a, b = torch.tensor([[1., 0.]]), torch.tensor([[0., 1.]])
        >>> k_way_consistency(torch.stack([a, a, b])).value, k_way_consistency(torch.stack([a, a, a])).value
        (0.0, 1.0)
    """
    ok = _unchanged(_checked(logits, "k_way_consistency"))
    return Proportion.from_counts(int(ok.sum()), ok.numel(), confidence)


class KWayConsistency(_Agreement):
    """Streaming :func:`k_way_consistency` for a fixed ``k`` (each update must hold ``k`` copies).

    Args:
        k: Copies per image (at least 2).
        confidence: Level of the Wilson interval.
        **kwargs: torchmetrics' ``Metric`` arguments.

    Examples:
        >>> m = KWayConsistency(k=3)
        >>> m.update(torch.tensor([[[1., 0.]], [[1., 0.]], [[1., 2.]]]))
        >>> m.compute().value
        0.0
    """

    _where = "KWayConsistency"

    def __init__(self, k: int, *, confidence: float = 0.95, **kwargs: Any) -> None:
        check_integer("KWayConsistency", "k", k, 2)
        super().__init__(confidence=confidence, **kwargs)
        self.k = k

    def _copies(self) -> int | None:
        return self.k


def _mac_compute(values: Tensor, confidence: float, resamples: int, seed: int) -> Estimate:
    mean, low, high = bootstrap_mean_interval(values.double().numpy(), confidence, resamples=resamples, seed=seed)
    return Estimate(mean, low, high, int(values.numel()), confidence)


def mean_absolute_change(logits: Tensor, *, confidence: float = 0.95, resamples: int = 2000,
                         seed: int = 0) -> Estimate:
    """MAC: mean over images of the mean absolute change of the original top class's probability.

    For image ``n`` with probabilities ``p_g = softmax(logits[g, n])`` and the reference's top class
    ``c = argmax p_0``, its value is the mean over ``g = 1..G-1`` of ``|p_g[c] - p_0[c]|`` (in
    ``[0, 1]``; 0 for a shift-invariant model). The interval is the bootstrap over images
    (:func:`~antialias.eval._stats.bootstrap_mean_interval` with ``seed``).

    Args:
        logits: ``(G, N, classes)``: copy 0 the reference, copies ``1..G-1`` the shifts.
        confidence: Level of the interval.
        resamples: Bootstrap samples.
        seed: Seed of the bootstrap.

    Returns:
        An :class:`~antialias.eval._robust_core.Estimate` (``value``, ``low``, ``high``, ``n`` images).

    Examples:
        >>> ref = torch.tensor([[0., 0.]])  # p = (0.5, 0.5), top class 0
        >>> round(mean_absolute_change(torch.stack([ref, torch.tensor([[math.log(3), 0.]])])).value, 6)
        0.25
    """
    values = _abs_change(_checked(logits, "mean_absolute_change")).cpu()
    return _mac_compute(values, confidence, resamples, seed)


class MeanAbsoluteChange(Metric):
    """Streaming :func:`mean_absolute_change`: per-image values gathered across ranks, bootstrapped at ``compute``.

    Args:
        confidence: Level of the interval.
        resamples: Bootstrap samples.
        seed: Seed of the bootstrap.
        **kwargs: torchmetrics' ``Metric`` arguments.

    Examples:
        >>> m = MeanAbsoluteChange()
        >>> m.update(torch.zeros(3, 4, 10))  # identical copies: no change
        >>> m.compute().value, m.values().shape
        (0.0, torch.Size([4]))
    """

    full_state_update = False
    higher_is_better = False
    values_each: list[Tensor]

    def __init__(self, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.confidence, self.resamples, self.seed = confidence, resamples, seed
        self.add_state("values_each", default=[], dist_reduce_fx="cat")

    def update(self, logits: Tensor) -> None:
        self.values_each.append(_abs_change(_checked(logits, "MeanAbsoluteChange")))

    def values(self) -> Tensor:
        """Per-image values ``(N,)`` (float64, CPU), in update order."""
        return _joined(self.values_each, torch.float64)

    def compute(self) -> Estimate:
        return _mac_compute(self.values(), self.confidence, self.resamples, self.seed)


# --------------------------------------------------------------------------- the protocol


@dataclasses.dataclass(frozen=True)
class WorstCaseConfig(Config):
    """Grids and random shifts of ``antialias eval worst-case`` (see :mod:`antialias.eval.worst_case`).

    Args:
        families: Shift families of the worst-case grid and MAC: circular, crop and/or subpixel.
        max_shift: Integer grid: circular shifts in -m..m (modulo the size; m >= H/2: every shift),
            crop offsets 0..2m of the image padded by m.
        pad_mode: Padding of the crop family: zeros or reflect.
        subpixel_step: Spacing of the sub-pixel grid in pixels (0.25: quarter-pixel shifts).
        subpixel_max_shift: Largest sub-pixel shift of the grid (0.5: the 1/4 and 1/2 pixel shifts).
        k: Random circular shifts per image that must all agree (k-way consistency).
        random_shift: Random shifts (k-way: integers, random sub-pixel: reals) lie in -r..r.
        seed: Seed of the random shifts and of the bootstrap.
        resamples: Bootstrap samples of the MAC intervals.
        confidence: Level of the intervals.
    """

    families: tuple[str, ...] = dataclasses.field(default=FAMILIES, metadata=flag(metavar="FAMILY"))
    max_shift: int = dataclasses.field(default=2, metadata=flag(min=0))
    pad_mode: str = dataclasses.field(default="zeros", metadata=flag(choices=PAD_MODES))
    subpixel_step: float = 0.25
    subpixel_max_shift: float = 0.5
    k: int = dataclasses.field(default=5, metadata=flag(min=2))
    random_shift: int = dataclasses.field(default=4, metadata=flag(min=0))
    seed: int = dataclasses.field(default=0, metadata=flag(min=0))
    resamples: int = dataclasses.field(default=2000, metadata=flag(min=1))
    confidence: float = 0.95

    def __post_init__(self) -> None:
        w = "WorstCaseConfig"
        if isinstance(self.families, str) or not self.families:
            raise fail(w, "families", f"a non-empty list of {', '.join(FAMILIES)}", self.families)
        object.__setattr__(self, "families", tuple(self.families))
        for family in self.families:
            check_choice(w, "families", family, FAMILIES)
        if len(set(self.families)) != len(self.families):
            raise fail(w, "families", "a list without repeats", self.families)
        check_integer(w, "max_shift", self.max_shift, 0)
        check_choice(w, "pad_mode", self.pad_mode, PAD_MODES)
        for name in ("subpixel_step", "subpixel_max_shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise fail(w, name, "a positive number", value)
        check_integer(w, "k", self.k, 2)
        check_integer(w, "random_shift", self.random_shift, 0)
        check_integer(w, "seed", self.seed, 0)
        check_integer(w, "resamples", self.resamples, 1)
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0 < self.confidence < 1:
            raise fail(w, "confidence", "a number in (0, 1)", self.confidence)


def shift_grid(family: str, config: WorstCaseConfig, size: tuple[int, int]) -> Tensor:
    """The shifts of one family's grid for images of ``size`` ``(H, W)``, without the identity.

    Returns:
        ``(G, 2)``: circular shifts (int64), crop corners of the image padded by ``max_shift``
        (int64; the centre ``(m, m)``, the image itself, is left out), or sub-pixel shifts (float64).

    Examples:
        >>> cfg = WorstCaseConfig(max_shift=1)
        >>> shift_grid("circular", cfg, (32, 32)).shape[0], shift_grid("subpixel", cfg, (32, 32)).shape[0]
        (8, 24)
        >>> shift_grid("circular", WorstCaseConfig(max_shift=16), (4, 4)).shape[0]  # every circular shift
        15
    """
    h, w = size
    m = config.max_shift
    if family == "circular":
        pairs = {(dy % h, dx % w) for dy, dx in itertools.product(range(-m, m + 1), repeat=2)} - {(0, 0)}
        return torch.tensor(sorted(pairs), dtype=torch.long).view(-1, 2)
    if family == "crop":
        corners = [(r, c) for r, c in itertools.product(range(2 * m + 1), repeat=2) if (r, c) != (m, m)]
        return torch.tensor(corners, dtype=torch.long).view(-1, 2)
    if family == "subpixel":
        j = math.floor(config.subpixel_max_shift / config.subpixel_step + 1e-9)
        steps = [i * config.subpixel_step for i in range(-j, j + 1)]
        pairs_f = [(dy, dx) for dy, dx in itertools.product(steps, repeat=2) if (dy, dx) != (0.0, 0.0)]
        return torch.tensor(pairs_f, dtype=torch.float64).view(-1, 2)
    raise fail("shift_grid", "family", f"one of {', '.join(map(repr, FAMILIES))}", family)


def _shifted(images: Tensor, family: str, shift: Tensor, config: WorstCaseConfig) -> Tensor:
    """``images`` ``(N, C, H, W)`` moved by one ``shift`` (a pair) or per-image shifts ``(N, 2)``."""
    n, _, h, w = images.shape
    per_image = shift.expand(n, 2) if shift.ndim == 1 else shift
    if family == "circular":
        return roll_by(images, per_image)
    if family == "crop":
        return crop_at(pad_images(images, config.max_shift, config.pad_mode), per_image, (h, w))
    return fourier_shift(images, per_image)


@dataclasses.dataclass
class WorstCaseMetrics:
    """The metric objects of one evaluation (per-image outcomes available after it, for paired comparisons)."""

    worst_case: dict[str, WorstCaseConsistency]
    mac: dict[str, MeanAbsoluteChange]
    k_way: KWayConsistency
    random_subpixel: KWayConsistency
    correct_each: list[Tensor] = dataclasses.field(default_factory=list)

    @classmethod
    def for_config(cls, config: WorstCaseConfig) -> WorstCaseMetrics:
        keys = (*config.families, "all") if len(config.families) > 1 else config.families
        c = config.confidence
        return cls(
            worst_case={f: WorstCaseConsistency(confidence=c) for f in keys},
            mac={f: MeanAbsoluteChange(confidence=c, resamples=config.resamples, seed=config.seed) for f in keys},
            k_way=KWayConsistency(config.k, confidence=c),
            random_subpixel=KWayConsistency(2, confidence=c),
        )

    def to(self, device: torch.device | str) -> WorstCaseMetrics:
        for m in self._all():
            m.to(device)
        return self

    def _all(self) -> list[Metric]:
        return [*self.worst_case.values(), *self.mac.values(), self.k_way, self.random_subpixel]

    def compute(self) -> dict[str, Any]:
        """``worst_case`` and ``mac`` by family (and ``all``), ``k_way``, ``random_subpixel``, ``accuracy``."""
        correct = _joined(self.correct_each, torch.bool)
        out: dict[str, Any] = {
            "worst_case": {f: m.compute() for f, m in self.worst_case.items()},
            "mac": {f: m.compute() for f, m in self.mac.items()},
            "k_way": self.k_way.compute(),
            "random_subpixel": self.random_subpixel.compute(),
        }
        if correct.numel():
            out["accuracy"] = Proportion.from_counts(int(correct.sum()), correct.numel(), self.k_way.confidence)
        return out

    def per_image(self) -> dict[str, Tensor]:
        """Per-image outcomes (bool) and MAC values (float64), in data order (one process)."""
        out = {f"worst_case_{f}": m.outcomes() for f, m in self.worst_case.items()}
        out.update({f"mac_{f}": m.values() for f, m in self.mac.items()})
        out["k_way"], out["random_subpixel"] = self.k_way.outcomes(), self.random_subpixel.outcomes()
        out["correct"] = _joined(self.correct_each, torch.bool)
        return out


def _random_shifts(indices: Tensor, config: WorstCaseConfig, stream: int, copies: int, integer: bool) -> Tensor:
    """``(copies, N, 2)`` per-image random shifts in ``[-r, r]`` (integers, or reals), from ``(seed, index)``."""
    r = config.random_shift
    u = index_uniforms(derived_seed(config.seed, SHIFTS, 0, stream), indices, 2 * copies)  # (N, 2K) float64
    if integer:
        span = 2 * r + 1
        shifts = (u * span).floor().long().clamp_(max=span - 1) - r
    else:
        shifts = (2 * u - 1) * r
    return shifts.view(-1, copies, 2).transpose(0, 1)  # (K, N, 2)


def update_worst_case(metrics: WorstCaseMetrics, model: nn.Module, images: Tensor, labels: Tensor | None,
                      indices: Tensor, config: WorstCaseConfig, *,
                      preprocess: Callable[[Tensor], Tensor] | None = None, device: torch.device | str = "cpu",
                      amp: str = "none") -> None:
    """One batch: the reference, every grid shift of every family, the random copies; one forward per shift.

    Shape:
        images ``(N, C, H, W)`` in [0, 1] (unnormalised: shifts pad in pixel space), labels and
        indices ``(N,)``.
    """
    n, _, h, w = images.shape
    if config.max_shift >= min(h, w) and "crop" in config.families and config.pad_mode == "reflect":
        raise ValueError(f"`worst_case`: `max_shift` must be smaller than the images ({h}x{w}) for reflect "
                         f"padding, got {config.max_shift}.")
    images = images.to(device)

    def forward(x: Tensor) -> Tensor:  # (N, C, H, W) -> (N, classes) float32
        x = preprocess(x) if preprocess is not None else x
        with autocast(device, amp):
            logits = model(x)
        check_logits(logits, n, "worst_case")
        return logits.float()

    reference = forward(images)  # (N, classes)
    if labels is not None:
        metrics.correct_each.append((reference.argmax(1) == labels.to(reference.device)).cpu())
    every = [reference]
    for family in config.families:
        grid = shift_grid(family, config, (h, w)).to(device)
        copies = [forward(_shifted(images, family, shift, config)) for shift in grid]  # G x (N, classes)
        every += copies
        stacked = torch.stack([reference, *copies])  # (1 + G, N, classes)
        metrics.worst_case[family].update(stacked)
        metrics.mac[family].update(stacked)
    if "all" in metrics.worst_case:
        stacked = torch.stack(every)
        metrics.worst_case["all"].update(stacked)
        metrics.mac["all"].update(stacked)
    k_shifts = _random_shifts(indices, config, _K_WAY, config.k, integer=True).to(device)  # (k, N, 2)
    metrics.k_way.update(torch.stack([forward(roll_by(images, s)) for s in k_shifts]))
    sub_shifts = _random_shifts(indices, config, _SUBPIXEL, 2, integer=False).to(device)  # (2, N, 2)
    metrics.random_subpixel.update(torch.stack([forward(fourier_shift(images, s)) for s in sub_shifts]))


def evaluate_worst_case(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    config: WorstCaseConfig = WorstCaseConfig(),
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
    metrics: WorstCaseMetrics | None = None,
    first_index: int = 0,
) -> dict[str, Any]:
    """Worst-case consistency and MAC per family, k-way and random sub-pixel consistency, and accuracy.

    Images are numbered from ``first_index`` in iteration order (a shard passes the position of its
    first image); random shifts depend only on ``(config.seed, number)``. Every forward runs in
    inference mode under ``amp`` autocast; ``preprocess`` (e.g. normalisation) is applied after
    shifting.

    Args:
        model: Returns ``(N, classes)`` logits.
        batches: ``(images (N, C, H, W) in [0, 1], labels (N,))`` pairs.
        config: Grids and random shifts.
        preprocess: Applied to every (shifted) image batch before the model.
        device: Where the model runs.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` (CUDA).
        metrics: A :class:`WorstCaseMetrics` to update (to read per-image outcomes afterwards).
        first_index: Number of the first image.

    Returns:
        ``{"worst_case": {family: Proportion}, "mac": {family: Estimate}, "k_way": Proportion,
        "random_subpixel": Proportion, "accuracy": Proportion}``; ``"all"`` joins the families when
        there are several.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # circular-invariant
        >>> x = torch.rand(4, 1, 8, 8)
        >>> cfg = WorstCaseConfig(families=("circular",))
        >>> r = evaluate_worst_case(net, [(x, torch.zeros(4, dtype=torch.long))], cfg)
        >>> r["worst_case"]["circular"].value, r["mac"]["circular"].value < 1e-6
        (1.0, True)
    """
    metrics = (metrics if metrics is not None else WorstCaseMetrics.for_config(config)).to(device)
    model = model.to(device).eval()
    start = first_index
    with torch.inference_mode():
        for images, labels in batches:
            indices = torch.arange(start, start + images.shape[0])
            update_worst_case(metrics, model, images, labels, indices, config, preprocess=preprocess, device=device,
                              amp=amp)
            start += images.shape[0]
    return metrics.compute()
