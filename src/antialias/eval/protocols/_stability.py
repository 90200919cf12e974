"""``antialias eval stability`` as a function: :func:`run_stability`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import Tensor

from antialias.eval._fields import is_imagenet
from antialias.eval._stats import Proportion
from antialias.eval.config import StabilityConfig
from antialias.eval.protocols._setup import (
    COMMON_DOC,
    Setup,
    check_accuracy,
    check_shift,
    data_key,
    finish,
    options_from,
    setup,
    split_kwargs,
)
from antialias.eval.stability import diagonal_stability
from antialias.runs import distributed as D

__all__ = ["run_stability"]


def run_stability(model: Any = None, data: Any = "fashion-mnist", *, config: StabilityConfig | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """Probability of the correct class and accuracy along diagonal shifts ``0..max_shift`` (Figure 1).

    Args:
        config: The shifts (default :meth:`StabilityConfig.for_data`: ``max_shift`` 8, crop protocol
            on the zero-padded image; for ``imagenet`` data crops of 224 shifted up to 32). Its
            fields may be given as keywords instead (``max_shift=3, protocol="circular"``).
        **kwargs: The common arguments below.

    Returns:
        The record; ``results`` holds accuracy per shift (proportions), the mean probability of the
        correct class per shift, the mean absolute change of the top-class probability per 1-px step,
        the share of images whose prediction never changes, and agreement with the unshifted
        prediction per shift. Given ``out``, the per-image arrays go to the ``.npz`` (the command
        line also draws the curves, ``.png``, with :func:`antialias.report.eval_figures.stability_curves`).
    """
    given, common = split_kwargs(kwargs, StabilityConfig)
    if config is not None and given:
        raise TypeError(
            f"`run_stability`: `config` must not be combined with its fields, got both and {sorted(given)}."
        )
    if config is None:
        config = StabilityConfig.for_data(data_key(data, common), **given)
    options, command = options_from(model, data, common)
    paper = is_imagenet(data_key(data, common))
    if paper and config.protocol == "crop" and config.crop_size and options.resize is None:
        options = dataclasses.replace(options, resize=256, center_crop=256)
    run = setup("stability", options, command=command, outputs=("npz",))
    check_shift(config.max_shift, config.crop_size, run, "stability")
    start = time.perf_counter()
    lo, hi, _ = run.shard()
    with run.autocast():
        res = diagonal_stability(run.model, run.loader(lo, hi), max_shift=config.max_shift, protocol=config.protocol,
                                 crop_size=config.crop_size, pad_mode=config.pad_mode, preprocess=run.preprocess,
                                 device=run.device)
    arrays = _gathered(run, {"shifts": torch.tensor(res.shifts), "prob_correct": res.prob_correct,
                             "top_prob": res.top_prob, "prediction": res.prediction, "correct": res.correct})
    record = {**run.record, "seed": None, "config": {**dataclasses.asdict(config), "batch_size": run.batch_size},
              "results": _summary(res.shifts, arrays), "seconds": time.perf_counter() - start}
    check_accuracy(record["results"]["accuracy"][0], run.record, "stability")
    return finish(run, record, options, arrays=arrays)


def _gathered(run: Setup, arrays: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every rank's per-image arrays, concatenated in rank order (= image order)."""
    if not run.dist.distributed:
        return arrays
    parts = D.gather_objects({k: v.cpu() for k, v in arrays.items()}, run.dist)
    return {k: (parts[0][k] if k == "shifts" else torch.cat([p[k] for p in parts])) for k in arrays}


def _summary(shifts: list[int], arrays: dict[str, Tensor]) -> dict[str, Any]:
    n = arrays["correct"].shape[0]
    pred, correct, top = arrays["prediction"], arrays["correct"], arrays["top_prob"]
    unchanged = (pred == pred[:, :1])  # (N, D+1)
    return {
        "shifts": shifts,
        "accuracy": [Proportion.from_counts(int(c), n).to_dict() for c in correct.sum(0)],
        "mean_prob_correct": arrays["prob_correct"].mean(0).tolist(),
        "mean_abs_step_change": float(top.diff(dim=1).abs().mean()) if top.shape[1] > 1 else 0.0,
        "prediction_changes": float((pred.diff(dim=1) != 0).sum(1).float().mean()),
        "unchanged_prediction": Proportion.from_counts(int(unchanged.all(1).sum()), n).to_dict(),
        "agreement_with_unshifted": [Proportion.from_counts(int(c), n).to_dict() for c in unchanged.sum(0)],
    }


run_stability.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
