"""Robustness stage of ``antialias reproduce``: corruptions (mCE) and perturbations (mFR), Table 2's layout.

Uses :mod:`antialias.eval.corruption` and :mod:`antialias.eval.perturbation`. The corrupted images
are generated once (the ``imagecorruptions`` extra; the slow part) and shared by every model; each
model's predictions are cached per run. Normalised numbers divide by the baseline trained the same
way (there are no AlexNet numbers for these data), so the baseline is 100 by construction; the
unnormalised numbers are mean errors / flip probabilities in percent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from antialias.eval._names import GENERATED_PERTURBATIONS
from antialias.eval.corruption import (
    CORRUPTIONS,
    INSTALL_HINT,
    SEVERITIES,
    CorruptionResult,
    corrupt_images,
    corruption_error,
    load_imagecorruptions,
)
from antialias.eval.perturbation import flip_probability, is_noise, perturbation_sequence, perturbation_stability

__all__ = ["PERTURBATIONS", "CorruptionInputs", "corruption_available", "corruption_predictions",
           "perturbation_predictions", "summarise"]

#: ImageNet-P's ten test perturbations, all generated (the mFR is their mean).
PERTURBATIONS = GENERATED_PERTURBATIONS


def corruption_available() -> tuple[bool, str]:
    """Whether corruptions can be generated here, and the reason when not (with the install command)."""
    try:
        load_imagecorruptions()
    except ImportError:
        return False, (f"the optional corruption library is not installed; install it with "
                       f"`{INSTALL_HINT}` (or `pip install imagecorruptions-imaug`) and run again")
    return True, ""


class CorruptionInputs:
    """The 15 test corruptions x 5 severities of the first ``n`` images, generated once, held as uint8."""

    def __init__(self, images: Tensor, labels: Tensor, seed: int) -> None:
        self.labels = labels
        self.clean = images
        self.corruptions, self.severities = list(CORRUPTIONS), list(SEVERITIES)
        stacks = []
        for name in self.corruptions:
            per = [corrupt_images(images, name, s, seed=seed) for s in self.severities]  # (N, C, H, W) each
            stacks.append((torch.stack(per) * 255).round().to(torch.uint8))  # exact: outputs are 1/255 steps
        self.stack = torch.stack(stacks)  # (Cor, S, N, C, H, W)


def _predict(model: nn.Module, x: Tensor, preprocess: Callable[[Tensor], Tensor], batch: int) -> Tensor:
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(preprocess(x[i : i + batch])).argmax(1))
    return torch.cat(out)


def corruption_predictions(
    model: nn.Module, inputs: CorruptionInputs, preprocess: Callable[[Tensor], Tensor], batch: int = 500
) -> dict[str, Any]:
    """Top-1 predictions ``(Cor, S, N)`` and on the clean images ``(N,)``, as lists (cached per run)."""
    c, s, n = inputs.stack.shape[:3]
    flat = inputs.stack.flatten(0, 2).float() / 255.0
    pred = _predict(model, flat, preprocess, batch).view(c, s, n)
    clean = _predict(model, inputs.clean, preprocess, batch)
    return {"pred": pred.tolist(), "clean_pred": clean.tolist(), "corruptions": inputs.corruptions,
            "severities": inputs.severities}


def perturbation_predictions(
    model: nn.Module, images: Tensor, preprocess: Callable[[Tensor], Tensor], seed: int, batch: int = 500
) -> dict[str, Any]:
    """Per perturbation: predictions ``(N, T)`` and the raw result (FP and top-5 distance from logits)."""
    preds, logits = {}, {}
    for name in PERTURBATIONS:
        frames = perturbation_sequence(images, name, preset="auto", seed=seed)  # (N, T, C, H, W)
        n, t = frames.shape[:2]
        out = []
        with torch.inference_mode():
            flat = frames.flatten(0, 1)
            for i in range(0, len(flat), batch):
                out.append(model(preprocess(flat[i : i + batch])).float())
        logits[name] = torch.cat(out).view(n, t, -1)
        preds[name] = logits[name].argmax(-1).tolist()
    raw = perturbation_stability(logits).to_dict()
    return {"pred": preds, "raw": raw, "num_classes": int(next(iter(logits.values())).shape[-1])}


def _onehot(pred: Any, k: int) -> Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(pred, dtype=torch.long), k).float()


def _corruption_summary(record: dict[str, Any], base: dict[str, Any], labels: Tensor, k: int) -> dict[str, Any]:
    def result(rec: dict[str, Any], normaliser: object = None) -> CorruptionResult:
        return corruption_error(_onehot(rec["pred"], k), labels, clean_logits=_onehot(rec["clean_pred"], k),
                                corruptions=rec["corruptions"], severities=rec["severities"], normaliser=normaliser)

    raw = result(record)
    normalised = result(record, normaliser=result(base))
    pred = torch.as_tensor(record["pred"])  # (Cor, S, N)
    per_image_error = (pred != labels.view(1, 1, -1)).float().mean((0, 1))  # (N,)
    return {
        "mce": raw.unnormalised_mce.to_dict() if raw.unnormalised_mce else None,  # percent
        "mce_normalised": normalised.mce.to_dict() if normalised.mce else None,  # percent, baseline = 100
        "relative_mce_normalised": normalised.relative_mce.to_dict() if normalised.relative_mce else None,
        "clean_error": raw.clean_error.to_dict() if raw.clean_error else None,
        "corruption_errors": {c: p.to_dict() for c, p in raw.corruption_errors.items()},
        "per_unit": per_image_error.tolist(),
        "units": "mce, mce_normalised: percent; per_unit: error rate per image over all corruptions and severities",
        "images": raw.images,
    }


def _perturbation_summary(record: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    k = record["num_classes"]
    onehot = {p: _onehot(v, k) for p, v in record["pred"].items()}
    normalised = perturbation_stability(onehot, normaliser={
        "source": "the baseline trained the same way",
        "flip_probability": {p: e["value"] for p, e in base["raw"]["flip_probability"].items()},
    })
    per_sequence = [flip_probability(x[i : i + 1], noise=is_noise(p)) for p, x in onehot.items() for i in range(len(x))]
    raw = record["raw"]
    return {
        "mfr": raw["unnormalised_mfr"],  # percent
        "mfr_normalised": normalised.mfr.to_dict() if normalised.mfr else None,  # percent, baseline = 100
        "flip_probability": raw["flip_probability"],
        "t5d": raw["t5d"],
        "per_unit": per_sequence,
        "units": "mfr, mfr_normalised: percent; per_unit: flip probability per sequence",
        "sequences": raw["sequences"],
    }


def summarise(part: str, records: dict[str, dict[str, Any]], baselines: dict[str, str], labels: Tensor | None,
              num_classes: int) -> dict[str, dict[str, Any]]:
    """Per run: the Table 2 numbers of ``part`` ("corruption" or "perturbation"), normalised by its baseline.

    Args:
        records: Run name -> cached predictions.
        baselines: Run name -> the name of the baseline run it is normalised by.
    """
    out = {}
    for name, rec in records.items():
        base = records[baselines[name]]
        if part != "corruption":
            out[name] = _perturbation_summary(rec, base)
        elif labels is None:
            raise ValueError("`summarise`: `labels` must be the test labels for part='corruption', got None.")
        else:
            out[name] = _corruption_summary(rec, base, labels, num_classes)
    return out
