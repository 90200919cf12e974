"""Classification consistency under shifts, and accuracy from the same pass.

Zhang (ICML 2019) measures how often two shifted copies of an image get the same top-1 class. Two
protocols:

- ``"crop"`` (the paper's): crops at random offsets. ImageNet: from the 256x256 centre crop, two
  224x224 crops at offsets uniform in ``{0..31}^2`` (``crop_size=224, max_shift=31``). Small images
  (``crop_size=None``): pad each side by ``max_shift`` (``pad_mode`` zeros or reflect), then crop
  the original size at offsets uniform in ``{0..2*max_shift}^2``, i.e. shifts in
  ``[-max_shift, max_shift]``. The paper's CIFAR protocol was not published: this is our choice.
- ``"circular"`` (as in the APS/LPS/AFC papers): ``torch.roll`` by shifts uniform in
  ``{-max_shift..max_shift}^2``.

Offsets are drawn per image, by default, as a pure function of ``(seed, pass, image index)``
(:func:`draw_offsets`, on :func:`antialias.data.seeding.index_uniforms`): the same image gets the
same shifts whatever the batch size, the sharding over ranks or the entry point (the CLI, the
Python API, ``antialias reproduce``). The reference draws one pair per mini-batch and sets no seed;
``per_batch=True`` reproduces its sharing (the offsets of a batch's first image are used for the
whole batch, so they do depend on the batch size). ``copies`` shifted copies per image are
classified in one forward; an image counts as consistent when all copies agree. ``accuracy`` is the
top-1 accuracy of the first (randomly shifted) copy; ``centre_accuracy`` that of the centre view (the
unshifted image; the centre crop under ``crop_size``), the number users compare with, classified once
per image in the same forward as the first pass's copies.

Intervals: the Wilson intervals count one outcome per image and pass. With several passes the
outcomes of one image are not independent (an image that flips once tends to flip again), so
:func:`by_image_interval` also gives a percentile bootstrap over images (each image with all its
passes resampled as one unit, seeded by :mod:`antialias.data.seeding`'s ``BOOTSTRAP`` tag).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from antialias.data.seeding import BOOTSTRAP, SHIFTS, derived_seed, index_uniforms, numpy_seed
from antialias.eval._fields import (
    PAD_MODES,
    PROTOCOLS,
    Config,
    boolean,
    check_choice,
    check_integer,
    fail,
    flag,
    is_imagenet,
)
from antialias.eval._forward import autocast, check_logits
from antialias.eval._shifts import crop_at, pad_images, roll_by
from antialias.eval._stats import Proportion

__all__ = [
    "ConsistencyConfig",
    "ShiftConsistency",
    "by_image_interval",
    "centre_view",
    "draw_offsets",
    "evaluate_consistency",
    "make_copies",
    "shift_consistency",
    "update_consistency",
]


# --------------------------------------------------------------------------- the metric


def _outcomes(logits: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Per image: whether all copies agree ``(N,)``; whether the first copy is correct ``(N,)`` (given ``target``)."""
    if not isinstance(logits, Tensor) or logits.ndim != 3 or logits.shape[0] < 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"`shift_consistency`: `logits` must have shape (copies >= 2, N, classes), got {shape}. "
            "Stack the copies' logits with torch.stack."
        )
    pred = logits.argmax(dim=-1)  # (K, N)
    agree = (pred == pred[:1]).all(dim=0)  # (N,)
    if target is None:
        return agree, None
    if target.shape != pred.shape[1:]:
        raise ValueError(
            f"`shift_consistency`: `target` must have shape ({pred.shape[1]},), got {tuple(target.shape)}."
        )
    return agree, pred[0] == target.to(pred.device)


def _counts(agree: Tensor, correct: Tensor | None, only_correct: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(agree, compared, correct, labelled) counts from per-image outcomes."""
    if correct is None:
        if only_correct:
            raise ValueError("`shift_consistency`: `only_correct=True` needs `target`.")
        zero = torch.zeros((), dtype=torch.long, device=agree.device)
        return agree.sum(), torch.tensor(agree.numel(), device=agree.device), zero, zero
    mask = correct if only_correct else torch.ones_like(correct)
    return (agree & mask).sum(), mask.sum(), correct.sum(), torch.tensor(correct.numel(), device=agree.device)


def _consistency_compute(
    agree: Tensor, compared: Tensor, correct: Tensor, labelled: Tensor, confidence: float,
    centre_correct: Tensor | None = None, centre_labelled: Tensor | None = None,
) -> dict[str, Proportion]:
    out = {"consistency": Proportion.from_counts(int(agree), int(compared), confidence)}
    if int(labelled):
        out["accuracy"] = Proportion.from_counts(int(correct), int(labelled), confidence)
    if centre_labelled is not None and centre_correct is not None and int(centre_labelled):
        out["centre_accuracy"] = Proportion.from_counts(int(centre_correct), int(centre_labelled), confidence)
    return out


def shift_consistency(
    logits: Tensor, target: Tensor | None = None, *, only_correct: bool = False, confidence: float = 0.95
) -> dict[str, Proportion]:
    """Consistency (and accuracy, given ``target``) of ``(K, N, classes)`` logits of K shifted copies.

    Examples:
        >>> logits = torch.tensor([[[1., 0.], [0., 1.]], [[1., 0.], [1., 0.]]])  # 2 copies, 2 images
        >>> shift_consistency(logits)["consistency"].value
        0.5
    """
    return _consistency_compute(*_counts(*_outcomes(logits, target), only_correct), confidence)


class ShiftConsistency(Metric):
    """Streaming :func:`shift_consistency` whose counts merge across DDP ranks (torchmetrics).

    ``update(logits, target, centre_logits=None)``: ``centre_logits`` ``(N, classes)`` of the centre views
    (with ``target``) count towards ``centre_accuracy``.

    Args:
        only_correct: Consistency over the images whose first copy is classified correctly.
        confidence: Level of the Wilson intervals.
        keep_outcomes: Also keep every image's outcomes (list states, concatenated across ranks
            in rank order), for paired comparisons of models on the same images: :meth:`outcomes`.
        **kwargs: torchmetrics' ``Metric`` arguments.

    Examples:
        >>> m = ShiftConsistency(keep_outcomes=True)
        >>> m.update(torch.tensor([[[1., 0.], [0., 1.]], [[1., 0.], [1., 0.]]]), torch.tensor([0, 0]))
        >>> m.outcomes()["consistent"].tolist(), m.compute()["accuracy"].value
        ([True, False], 0.5)
    """

    full_state_update = False
    agree: Tensor
    compared: Tensor
    correct: Tensor
    labelled: Tensor
    centre_correct: Tensor
    centre_labelled: Tensor
    consistent_each: list[Tensor]
    correct_each: list[Tensor]

    def __init__(self, *, only_correct: bool = False, confidence: float = 0.95, keep_outcomes: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.only_correct = only_correct
        self.confidence = confidence
        self.keep_outcomes = keep_outcomes
        for name in ("agree", "compared", "correct", "labelled", "centre_correct", "centre_labelled"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if keep_outcomes:
            self.add_state("consistent_each", default=[], dist_reduce_fx="cat")
            self.add_state("correct_each", default=[], dist_reduce_fx="cat")

    def update(self, logits: Tensor, target: Tensor | None = None, centre_logits: Tensor | None = None) -> None:
        agree_each, correct_each = _outcomes(logits, target)
        if centre_logits is not None and target is not None:
            if centre_logits.shape != logits.shape[1:]:
                raise ValueError(f"`shift_consistency`: `centre_logits` must have shape {tuple(logits.shape[1:])}, "
                                 f"got {tuple(centre_logits.shape)}.")
            self.centre_correct += (centre_logits.argmax(-1) == target.to(centre_logits.device)).sum()
            self.centre_labelled += target.numel()
        agree, compared, correct, labelled = _counts(agree_each, correct_each, self.only_correct)
        if self.keep_outcomes:
            self.consistent_each.append(agree_each)
            if correct_each is not None:
                self.correct_each.append(correct_each)
        self.agree += agree
        self.compared += compared
        self.correct += correct
        self.labelled += labelled

    def compute(self) -> dict[str, Proportion]:
        return _consistency_compute(self.agree, self.compared, self.correct, self.labelled, self.confidence,
                                    self.centre_correct, self.centre_labelled)

    def outcomes(self) -> dict[str, Tensor]:
        """Per image, in update order: ``"consistent"`` (all copies agree) and ``"correct"`` (first copy; labelled
        updates only), boolean ``(N,)`` on the CPU. Needs ``keep_outcomes=True``."""
        if not self.keep_outcomes:
            raise ValueError("`ShiftConsistency.outcomes`: `keep_outcomes` must be True, got False. "
                             "Create the metric with ShiftConsistency(keep_outcomes=True).")
        return {"consistent": _joined(self.consistent_each), "correct": _joined(self.correct_each)}


def _joined(state: list[Tensor] | Tensor) -> Tensor:
    # A list state is a list of per-update tensors, or one tensor once synced across ranks.
    if isinstance(state, Tensor):
        return state.bool().cpu()
    return torch.cat(state).bool().cpu() if state else torch.zeros(0, dtype=torch.bool)


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class ConsistencyConfig(Config):
    """How shifted copies are made and compared (see the module docstring).

    Args:
        protocol: crop (pad by max_shift and crop, or with crop_size crop from larger images as the
            paper's ImageNet protocol) or circular (torch.roll).
        max_shift: Largest shift in pixels (default 4; 31 for imagenet data, the paper's offsets 0..31).
        crop_size: Crop size of the crop protocol; none: pad and crop the image size (default none;
            224 for imagenet data, crops of 256x256 centre crops).
        pad_mode: Padding of the crop protocol without crop_size: zeros or reflect.
        copies: Shifted copies per image that must agree (at least 2).
        passes: Passes over the data, each with other offsets.
        per_batch: Share one offset per batch (the reference's behaviour) instead of one per image.
        only_correct: Consistency over the correctly classified images (first copy) only.
        seed: Seed of the offsets (and of the bootstrap over images).
        confidence: Level of the Wilson intervals.
        centre: Also classify each image's centre view (unshifted image, or centre crop) once, for
            centre_accuracy beside the random-crop accuracy.
        resamples: Bootstrap resamples of the intervals by image.
    """

    protocol: str = field(default="crop", metadata=flag(choices=PROTOCOLS))
    max_shift: int = field(default=4, metadata=flag(min=0))
    crop_size: int | None = field(default=None, metadata=flag(min=1, metavar="N|none"))
    pad_mode: str = field(default="zeros", metadata=flag(choices=PAD_MODES))
    copies: int = field(default=2, metadata=flag(min=1, metavar="K"))
    passes: int = field(default=1, metadata=flag(min=1))
    per_batch: bool = False
    only_correct: bool = False
    seed: int = field(default=0, metadata=flag(min=0))
    confidence: float = 0.95
    centre: bool = True
    resamples: int = field(default=2000, metadata=flag(min=1))

    def __post_init__(self) -> None:
        w = "ConsistencyConfig"
        boolean(w, "centre", self.centre)
        check_integer(w, "resamples", self.resamples, 1)
        check_choice(w, "protocol", self.protocol, PROTOCOLS)
        check_integer(w, "max_shift", self.max_shift, 0)
        check_integer(w, "crop_size", self.crop_size, 1, optional=True)
        check_choice(w, "pad_mode", self.pad_mode, PAD_MODES)
        check_integer(w, "copies", self.copies, 2)
        check_integer(w, "passes", self.passes, 1)
        boolean(w, "per_batch", self.per_batch)
        boolean(w, "only_correct", self.only_correct)
        check_integer(w, "seed", self.seed, 0)
        if (
            isinstance(self.confidence, bool)
            or not isinstance(self.confidence, (int, float))
            or not 0 < self.confidence < 1
        ):
            raise fail(w, "confidence", "a number in (0, 1)", self.confidence)

    @classmethod
    def for_data(cls, data: Any, **given: Any) -> ConsistencyConfig:
        """``imagenet`` data: the paper's protocol (crops of 224, offsets 0..31) for fields not given.

        Examples:
            >>> c = ConsistencyConfig.for_data("imagenet:/data")
            >>> c.crop_size, c.max_shift
            (224, 31)
        """
        given = {k: v for k, v in given.items() if not (k == "max_shift" and v is None)}
        if is_imagenet(data):
            given.setdefault("crop_size", 224)
            given.setdefault("max_shift", 31 if given["crop_size"] else 4)
        return cls.from_dict(given)


def offset_range(config: ConsistencyConfig) -> tuple[int, int]:
    """The inclusive range ``(low, high)`` of each offset coordinate under ``config``.

    Examples:
        >>> offset_range(ConsistencyConfig(max_shift=3))
        (0, 6)
        >>> offset_range(ConsistencyConfig(protocol="circular", max_shift=3))
        (-3, 3)
    """
    m = config.max_shift
    if config.protocol == "circular":
        return -m, m
    return (0, 2 * m) if config.crop_size is None else (0, m)


def draw_offsets(indices: Tensor, config: ConsistencyConfig, pass_index: int = 0) -> Tensor:
    """``(copies, N, 2)`` integer offsets of the images with data set positions ``indices`` ``(N,)``.

    Copy ``k`` of image ``i`` in pass ``p`` takes uniforms ``2k, 2k+1`` of
    ``index_uniforms(derived_seed(config.seed, SHIFTS, p), [i], 2 * copies)`` (see
    :mod:`antialias.data.seeding`) scaled to :func:`offset_range`: a pure function of ``(seed, p, i)``.
    With ``config.per_batch`` every image gets the offsets of ``indices[0]``.

    Examples:
        >>> cfg = ConsistencyConfig(max_shift=2, seed=1)
        >>> torch.equal(draw_offsets(torch.arange(4), cfg)[:, 3], draw_offsets(torch.tensor([3]), cfg)[:, 0])
        True
    """
    low, high = offset_range(config)
    keyed = indices[:1] if config.per_batch else indices
    u = index_uniforms(derived_seed(config.seed, SHIFTS, pass_index), keyed, 2 * config.copies)  # (n, 2K)
    span = high - low + 1
    offsets = (u * span).floor().long().clamp_(max=span - 1) + low  # (n, 2K) in {low..high}
    offsets = offsets.view(-1, config.copies, 2).transpose(0, 1)  # (K, n, 2)
    return offsets.expand(-1, len(indices), 2) if config.per_batch else offsets


def make_copies(images: Tensor, config: ConsistencyConfig, offsets: Tensor) -> Tensor:
    """``(K, N, C, h, w)`` shifted copies of ``images`` ``(N, C, H, W)`` at ``offsets`` ``(K, N, 2)``.

    ``offsets`` are shifts (circular) or crop corners (crop) in :func:`offset_range`, e.g. from
    :func:`draw_offsets`.
    """
    _, _, h, w = images.shape
    m = config.max_shift
    if config.protocol == "circular":
        if m >= min(h, w):
            raise ValueError(f"`consistency`: `max_shift` must be smaller than the images ({h}x{w}), got {m}.")
        return torch.stack([roll_by(images, shift) for shift in offsets])
    if config.crop_size is None:
        if config.pad_mode == "reflect" and m >= min(h, w):
            raise ValueError(
                f"`consistency`: `max_shift` must be smaller than the images ({h}x{w}) for reflect padding, got {m}."
            )
        source, size = pad_images(images, m, config.pad_mode), (h, w)
    else:
        size = (config.crop_size, config.crop_size)
        if config.crop_size + m > min(h, w):
            raise ValueError(
                f"`consistency`: crops of {config.crop_size} at offsets up to {m} need images of at least "
                f"{config.crop_size + m}x{config.crop_size + m}, got {h}x{w}. Resize the data first "
                "(ImageNet: resize 256, centre crop 256) or lower `crop_size`/`max_shift`."
            )
        source = images
    return torch.stack([crop_at(source, corner, size) for corner in offsets])


def centre_view(images: Tensor, config: ConsistencyConfig) -> Tensor:
    """``(N, C, h, w)``: the unshifted images, or under ``crop_size`` their centre crop (offset ``(H - h) // 2``).

    Examples:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> centre_view(x, ConsistencyConfig(crop_size=2, max_shift=2))[0, 0].tolist()
        [[5.0, 6.0], [9.0, 10.0]]
    """
    if config.protocol == "circular" or config.crop_size is None:
        return images
    h, w = images.shape[-2:]
    size = config.crop_size
    return crop_at(images, torch.tensor([[(h - size) // 2, (w - size) // 2]]).expand(images.shape[0], 2),
                   (size, size))


def by_image_interval(hits: Tensor, counted: Tensor, confidence: float = 0.95, *, resamples: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """A proportion over ``(passes, N)`` outcomes with a percentile bootstrap over the N images (clusters).

    Each resample draws N images with replacement and takes ``sum(hits) / sum(counted)`` over all their
    passes, so outcomes of one image move together (the Wilson interval of the pooled counts treats them
    as independent and is too narrow when flips cluster in a few images). The generator is seeded with
    ``numpy_seed(seed, BOOTSTRAP)``.

    Args:
        hits: ``(passes, N)`` booleans, e.g. consistent.
        counted: ``(passes, N)`` booleans: which outcomes count (all, or the correctly classified ones).

    Returns:
        ``{"value", "low", "high", "n" (images), "outcomes", "method"}``.

    Examples:
        >>> hits = torch.tensor([[True, True, False, True]] * 3)  # image 2 always flips
        >>> r = by_image_interval(hits, torch.ones_like(hits), seed=1)
        >>> r["value"], r["n"], r["low"] < 0.75 < r["high"]
        (0.75, 4, True)
    """
    h = hits.reshape(-1, hits.shape[-1]).double().sum(0).numpy()  # (N,)
    c = counted.reshape(-1, counted.shape[-1]).double().sum(0).numpy()
    n = int(h.size)
    total = float(c.sum())
    value = float(h.sum() / total) if total else float("nan")
    method = f"percentile bootstrap over images ({resamples} resamples, seed {seed})"
    if n < 2 or not total:
        return {"value": value, "low": value, "high": value, "n": n, "outcomes": int(total), "method": method}
    rng = np.random.default_rng(numpy_seed(seed, BOOTSTRAP))
    stats = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        den = c[idx].sum(1)
        stats[start:stop] = np.where(den > 0, h[idx].sum(1) / np.maximum(den, 1), value)
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"value": value, "low": float(min(low, value)), "high": float(max(high, value)), "n": n,
            "outcomes": int(total), "method": method}


def update_consistency(
    metric: ShiftConsistency,
    model: nn.Module,
    images: Tensor,
    labels: Tensor | None,
    indices: Tensor,
    config: ConsistencyConfig,
    *,
    pass_index: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
) -> None:
    """One batch of the protocol: shifted copies of ``images`` (data set positions ``indices``), one
    forward of all copies, then ``metric.update``. Call under ``torch.inference_mode()``.

    Shape:
        images ``(N, C, H, W)`` in [0, 1], labels and indices ``(N,)``.
    """
    copies = make_copies(images, config, draw_offsets(indices, config, pass_index))  # (K, N, C, h, w)
    k, n = copies.shape[:2]
    centre = config.centre and labels is not None and pass_index == 0  # deterministic: once per image
    if centre:
        copies = torch.cat([copies, centre_view(images, config)[None]])  # (K+1, N, C, h, w)
    rows = copies.shape[0] * n
    flat = copies.flatten(0, 1).to(device, non_blocking=True)  # (rows, C, h, w)
    if preprocess is not None:
        flat = preprocess(flat)
    with autocast(device, amp):
        logits = model(flat)
    check_logits(logits, rows, "consistency")
    logits = logits.float().view(copies.shape[0], n, -1)  # (K[+1], N, classes)
    metric.update(logits[:k], None if labels is None else labels.to(device), logits[k] if centre else None)


def evaluate_consistency(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    config: ConsistencyConfig = ConsistencyConfig(),
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
    metric: ShiftConsistency | None = None,
    first_index: int = 0,
) -> dict[str, Proportion]:
    """Run the consistency protocol over ``(images, labels)`` batches (images in [0, 1], unnormalised).

    The one implementation behind ``antialias eval consistency``, :func:`antialias.eval.run_consistency`
    and ``antialias reproduce``. Images are numbered from ``first_index`` in iteration order (a shard
    of a larger set passes the position of its first image), and each image's offsets depend only on
    ``(config.seed, pass, number)``: results do not depend on the batch size or the sharding (unless
    ``config.per_batch``). All copies of a batch go through the model in one forward, in inference
    mode, under ``amp`` autocast. ``preprocess`` (e.g. normalisation) is applied after shifting, so
    padding happens in pixel space. ``batches`` is iterated ``config.passes`` times.

    Args:
        model: Returns ``(N, classes)`` logits.
        batches: ``(images (N, C, H, W), labels (N,))`` pairs, the same order every time.
        config: The protocol.
        preprocess: Applied to the shifted images before the model.
        device: Where the model runs.
        amp: ``"none"``, ``"bf16"`` or ``"fp16"`` (CUDA).
        metric: A :class:`ShiftConsistency` to update (e.g. one that also keeps per-image outcomes);
            under a process group its ``compute`` sums every rank's counts.
        first_index: Number of the first image.

    Returns:
        ``metric.compute()``: ``{"consistency": Proportion, "accuracy": Proportion}``.
    """
    metric = (
        metric
        if metric is not None
        else ShiftConsistency(only_correct=config.only_correct, confidence=config.confidence)
    )
    metric = metric.to(device)
    model = model.to(device).eval()
    if config.passes > 1 and not isinstance(batches, (list, tuple)):
        batches = list(batches)
    with torch.inference_mode():
        for pass_index in range(config.passes):
            start = first_index
            for images, labels in batches:
                indices = torch.arange(start, start + images.shape[0])
                update_consistency(metric, model, images, labels, indices, config, pass_index=pass_index,
                                   preprocess=preprocess, device=device, amp=amp)
                start += images.shape[0]
    return metric.compute()
