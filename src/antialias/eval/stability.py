"""Stability along diagonal shifts (the paper's Figure 1).

Each image is shifted by ``(d, d)`` for ``d = 0..max_shift`` and classified: the probability of the
correct class and the prediction per shift, per image and on average, plus the mean absolute change
of the top-class probability per 1-px step. Shifts are crops at ``(d, d)``: of a ``crop_size`` crop
of the image (ImageNet: 224 from the 256 centre crop, ``d = 0..32``) or, with ``crop_size=None``,
of the image padded by ``max_shift`` on the bottom and right (``pad_mode``); ``protocol="circular"``
rolls instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.eval._shifts import crop_at, roll_by

__all__ = ["StabilityResult", "diagonal_stability"]


@dataclass
class StabilityResult:
    """Per-image arrays ``(N, D+1)`` over shifts ``d = 0..D``."""

    shifts: list[int]
    prob_correct: Tensor
    top_prob: Tensor
    prediction: Tensor
    correct: Tensor

    @property
    def mean_prob_correct(self) -> Tensor:
        return self.prob_correct.mean(0)

    @property
    def accuracy(self) -> Tensor:
        return self.correct.float().mean(0)

    @property
    def mean_abs_step_change(self) -> float:
        """Mean over images and 1-px steps of ``|p_top(d+1) - p_top(d)|``."""
        return float(self.top_prob.diff(dim=1).abs().mean()) if self.top_prob.shape[1] > 1 else 0.0

    @property
    def prediction_changes(self) -> float:
        """Mean number of top-1 changes along the diagonal per image."""
        return float((self.prediction.diff(dim=1) != 0).sum(1).float().mean())

    def to_dict(self) -> dict:
        return {
            "shifts": self.shifts,
            "mean_prob_correct": self.mean_prob_correct.tolist(),
            "accuracy": self.accuracy.tolist(),
            "mean_abs_step_change": self.mean_abs_step_change,
            "prediction_changes": self.prediction_changes,
            "prob_correct": self.prob_correct.tolist(),
        }


def diagonal_stability(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    max_shift: int = 8,
    protocol: str = "crop",
    crop_size: int | None = None,
    pad_mode: str = "zeros",
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> StabilityResult:
    """Classify every image at diagonal shifts ``0..max_shift`` (all shifts of a batch in one forward)."""
    if protocol not in ("crop", "circular"):
        raise ValueError(f"`diagonal_stability`: `protocol` must be 'crop' or 'circular', got {protocol!r}.")
    if pad_mode not in ("zeros", "reflect"):
        raise ValueError(f"`diagonal_stability`: `pad_mode` must be 'zeros' or 'reflect', got {pad_mode!r}.")
    model = model.to(device).eval()
    shifts = list(range(max_shift + 1))
    rows: dict[str, list[Tensor]] = {"prob_correct": [], "top_prob": [], "prediction": [], "correct": []}
    with torch.inference_mode():
        for images, labels in batches:
            n, _, h, w = images.shape
            if protocol == "circular":
                copies = [roll_by(images, torch.tensor([[d, d]]).expand(n, 2)) for d in shifts]
            else:
                if crop_size is None:
                    size = (h, w)
                    mode = "constant" if pad_mode == "zeros" else "reflect"
                    if mode == "reflect" and max_shift >= min(h, w):
                        raise ValueError(
                            f"`diagonal_stability`: reflect padding by {max_shift} needs images larger than that, "
                            f"got {h}x{w}."
                        )
                    source = F.pad(images, (0, max_shift, 0, max_shift), mode=mode)
                else:
                    if crop_size + max_shift > min(h, w):
                        raise ValueError(
                            f"`diagonal_stability`: crops of {crop_size} shifted up to {max_shift} need images of at "
                            f"least {crop_size + max_shift}x{crop_size + max_shift}, got {h}x{w}."
                        )
                    size, source = (crop_size, crop_size), images
                # Crop at (d, d) shows the content moved up-left by d.
                copies = [crop_at(source, torch.tensor([[d, d]]).expand(n, 2), size) for d in shifts]
            flat = torch.stack(copies, 1).flatten(0, 1).to(device)  # (N * (D+1), C, h, w)
            if preprocess is not None:
                flat = preprocess(flat)
            logits = model(flat)
            if logits.ndim != 2 or logits.shape[0] != flat.shape[0]:
                raise ValueError(
                    f"`diagonal_stability`: the model must return (N, classes) logits, got {tuple(logits.shape)}."
                )
            probs = logits.float().softmax(-1).view(n, len(shifts), -1).cpu()
            labels = labels.cpu()
            pred = probs.argmax(-1)
            rows["prob_correct"].append(probs.gather(2, labels.view(n, 1, 1).expand(n, len(shifts), 1)).squeeze(2))
            rows["top_prob"].append(probs.max(-1).values)
            rows["prediction"].append(pred)
            rows["correct"].append(pred == labels.view(n, 1))
    if not rows["prediction"]:
        raise ValueError("`diagonal_stability`: no batches to evaluate.")
    return StabilityResult(shifts, *(torch.cat(rows[k]) for k in ("prob_correct", "top_prob", "prediction", "correct")))
