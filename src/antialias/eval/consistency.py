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

Offsets are drawn per image by default, from a seeded generator (the reference draws one pair per
mini-batch and sets no seed; ``per_batch=True`` reproduces its sharing). ``copies`` shifted copies
per image are classified in one forward; an image counts as consistent when all copies agree.
Accuracy is the top-1 accuracy of the first copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from antialias.eval._shifts import crop_at, draw_offsets, pad_images, roll_by
from antialias.eval._stats import Proportion

__all__ = ["ConsistencyConfig", "ShiftConsistency", "evaluate_consistency", "shift_consistency"]

PROTOCOLS = ("crop", "circular")


# --------------------------------------------------------------------------- the metric


def _consistency_update(logits: Tensor, target: Tensor | None, only_correct: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Counts from ``logits`` of shape ``(K, N, classes)``: (agree, compared, correct, labelled)."""
    if not isinstance(logits, Tensor) or logits.ndim != 3 or logits.shape[0] < 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"shift_consistency: `logits` must have shape (copies >= 2, N, classes), got {shape}. "
            "Stack the copies' logits with torch.stack."
        )
    pred = logits.argmax(dim=-1)  # (K, N)
    agree = (pred == pred[:1]).all(dim=0)  # (N,)
    if target is None:
        if only_correct:
            raise ValueError("shift_consistency: `only_correct=True` needs `target`.")
        zero = torch.zeros((), dtype=torch.long, device=logits.device)
        return agree.sum(), torch.tensor(agree.numel(), device=logits.device), zero, zero
    if target.shape != pred.shape[1:]:
        raise ValueError(f"shift_consistency: `target` must have shape ({pred.shape[1]},), got {tuple(target.shape)}.")
    correct = pred[0] == target.to(pred.device)
    mask = correct if only_correct else torch.ones_like(correct)
    return (agree & mask).sum(), mask.sum(), correct.sum(), torch.tensor(correct.numel(), device=logits.device)


def _consistency_compute(agree, compared, correct, labelled, confidence: float) -> dict[str, Proportion]:
    out = {"consistency": Proportion.from_counts(int(agree), int(compared), confidence)}
    if int(labelled):
        out["accuracy"] = Proportion.from_counts(int(correct), int(labelled), confidence)
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
    return _consistency_compute(*_consistency_update(logits, target, only_correct), confidence)


class ShiftConsistency(Metric):
    """Streaming :func:`shift_consistency` whose counts merge across DDP ranks (torchmetrics)."""

    full_state_update = False

    def __init__(self, *, only_correct: bool = False, confidence: float = 0.95, **kwargs) -> None:
        super().__init__(**kwargs)
        self.only_correct = only_correct
        self.confidence = confidence
        for name in ("agree", "compared", "correct", "labelled"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor | None = None) -> None:
        agree, compared, correct, labelled = _consistency_update(logits, target, self.only_correct)
        self.agree += agree
        self.compared += compared
        self.correct += correct
        self.labelled += labelled

    def compute(self) -> dict[str, Proportion]:
        return _consistency_compute(self.agree, self.compared, self.correct, self.labelled, self.confidence)


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class ConsistencyConfig:
    """How shifted copies are made (see the module docstring)."""

    protocol: str = "crop"
    max_shift: int = 4
    crop_size: int | None = None
    pad_mode: str = "zeros"
    copies: int = 2
    passes: int = 1
    per_batch: bool = False
    only_correct: bool = False
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        where = "ConsistencyConfig"
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"{where}: `protocol` must be one of {PROTOCOLS}, got {self.protocol!r}.")
        if self.max_shift < 0:
            raise ValueError(f"{where}: `max_shift` must be >= 0, got {self.max_shift!r}.")
        if self.copies < 2:
            raise ValueError(f"{where}: `copies` must be >= 2, got {self.copies!r}.")
        if self.passes < 1:
            raise ValueError(f"{where}: `passes` must be >= 1, got {self.passes!r}.")
        if self.pad_mode not in ("zeros", "reflect"):
            raise ValueError(f"{where}: `pad_mode` must be 'zeros' or 'reflect', got {self.pad_mode!r}.")


def make_copies(images: Tensor, config: ConsistencyConfig, generator: torch.Generator) -> Tensor:
    """``(K, N, C, h, w)`` shifted copies of ``images`` ``(N, C, H, W)`` under ``config``."""
    n, _, h, w = images.shape
    m = config.max_shift
    if config.protocol == "circular":
        if m >= min(h, w):
            raise ValueError(f"consistency: `max_shift` {m} must be smaller than the image ({h}x{w}).")
        return torch.stack(
            [roll_by(images, draw_offsets(n, -m, m, generator, config.per_batch)) for _ in range(config.copies)]
        )
    if config.crop_size is None:
        if config.pad_mode == "reflect" and m >= min(h, w):
            raise ValueError(f"consistency: reflect padding by `max_shift` {m} needs images larger than {m}, got {h}x{w}.")
        source, size, high = pad_images(images, m, config.pad_mode), (h, w), 2 * m
    else:
        size = (config.crop_size, config.crop_size)
        if config.crop_size + m > min(h, w):
            raise ValueError(
                f"consistency: crops of {config.crop_size} at offsets up to {m} need images of at least "
                f"{config.crop_size + m}x{config.crop_size + m}, got {h}x{w}. Resize the data first "
                "(ImageNet: resize 256, centre crop 256) or lower `crop_size`/`max_shift`."
            )
        source, high = images, m
    return torch.stack(
        [crop_at(source, draw_offsets(n, 0, high, generator, config.per_batch), size) for _ in range(config.copies)]
    )


def evaluate_consistency(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    config: ConsistencyConfig = ConsistencyConfig(),
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    metric: ShiftConsistency | None = None,
) -> dict[str, Proportion]:
    """Run the consistency protocol over ``(images, labels)`` batches (images in [0, 1], unnormalised).

    All copies of a batch go through the model in one forward, in inference mode. ``preprocess``
    (e.g. normalisation) is applied after shifting, so padding happens in pixel space. Iterating
    ``batches`` must give the same order every time for the result to be reproducible.

    Returns:
        ``{"consistency": Proportion, "accuracy": Proportion}``.
    """
    metric = metric if metric is not None else ShiftConsistency(only_correct=config.only_correct, confidence=config.confidence)
    metric = metric.to(device)
    model = model.to(device).eval()
    batches = list(batches) if config.passes > 1 and not isinstance(batches, (list, tuple)) else batches
    with torch.inference_mode():
        for pass_index in range(config.passes):
            generator = torch.Generator().manual_seed(config.seed + 1_000_003 * pass_index)
            for images, labels in batches:
                copies = make_copies(images, config, generator)  # (K, N, C, h, w)
                k, n = copies.shape[:2]
                flat = copies.flatten(0, 1).to(device)
                if preprocess is not None:
                    flat = preprocess(flat)
                logits = model(flat)
                if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != k * n:
                    shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                    raise ValueError(
                        f"consistency: the model must return logits of shape (N, classes), got {shape} "
                        f"for a batch of {k * n}."
                    )
                metric.update(logits.view(k, n, -1), labels.to(device))
    return metric.compute()
