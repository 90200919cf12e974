"""``antialias eval consistency`` as a function: :func:`run_consistency`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from antialias.eval._fields import is_imagenet
from antialias.eval.consistency import ConsistencyConfig, ShiftConsistency, by_image_interval, evaluate_consistency
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
from antialias.runs import distributed as D

__all__ = ["run_consistency"]


def run_consistency(model: Any = None, data: Any = "fashion-mnist", *, config: ConsistencyConfig | None = None,
                    **kwargs: Any) -> dict[str, Any]:
    """Classification consistency under shifts (and accuracy from the same pass), with 95% intervals.

    Runs :func:`~antialias.eval.consistency.evaluate_consistency` on the data (on this rank's share
    of whole batches under torchrun, images numbered by their position in the data set, so the
    offsets and the summed counts do not depend on the number of processes or the batch size).

    Args:
        config: The protocol (default :meth:`ConsistencyConfig.for_data`: for ``imagenet`` data the
            paper's crop protocol, ``crop_size=224, max_shift=31`` on 256x256 centre crops). Its
            fields may be given as keywords instead (``max_shift=3``).
        **kwargs: The common arguments below.

    Returns:
        The record: ``results`` holds ``consistency``, ``accuracy`` (first random copy) and
        ``centre_accuracy`` (the centre view) as proportions with Wilson intervals (one outcome per
        image and pass), and ``consistency_by_image`` / ``accuracy_by_image``: the same proportions
        with a bootstrap interval over images (the right one when ``passes > 1``).
    """
    given, common = split_kwargs(kwargs, ConsistencyConfig)
    if config is not None and given:
        raise TypeError(
            f"`run_consistency`: `config` must not be combined with its fields, got both and {sorted(given)}."
        )
    if config is None:
        config = ConsistencyConfig.for_data(data_key(data, common), **given)
    options, command = options_from(model, data, common)
    paper = is_imagenet(data_key(data, common))
    if options.resize is None and config.protocol == "crop" and config.crop_size and paper:
        options = dataclasses.replace(options, resize=256, center_crop=256)  # the paper: 256, then 224 crops
    run = setup("consistency", options, command=command, outputs=())
    check_shift(config.max_shift, config.crop_size, run, "consistency")
    start = time.perf_counter()
    lo, hi, _ = run.shard()
    metric = ShiftConsistency(only_correct=config.only_correct, confidence=config.confidence, keep_outcomes=True)
    results = evaluate_consistency(run.model, run.loader(lo, hi), config, preprocess=run.preprocess, device=run.device,
                                   amp=run.amp, first_index=lo, metric=metric)  # compute() sums every rank's counts
    summary: dict[str, Any] = {k: v.to_dict() for k, v in results.items()}
    summary.update(_by_image(run, metric, config, hi - lo))
    if "centre_accuracy" in summary:
        check_accuracy(summary["centre_accuracy"], run.record, "consistency")
    record = {**run.record, "seed": config.seed,
              "config": {**dataclasses.asdict(config), "batch_size": run.batch_size},
              "results": summary,
              "seconds": time.perf_counter() - start}
    return finish(run, record, options)


def _by_image(run: Setup, metric: ShiftConsistency, config: ConsistencyConfig, n: int) -> dict[str, Any]:
    """Consistency and random-crop accuracy with intervals by image (bootstrap over images, every rank's)."""
    out = metric.outcomes()  # this rank's, pass-major: (passes * n,)
    consistent = out["consistent"].view(config.passes, n)
    correct = out["correct"].view(config.passes, n) if out["correct"].numel() else None
    parts = D.gather_objects((consistent, correct), run.dist)  # rank order = image order
    consistent = torch.cat([p[0] for p in parts], dim=1)  # (passes, N)
    correct = torch.cat([p[1] for p in parts], dim=1) if correct is not None else None
    kw: dict[str, Any] = {"confidence": config.confidence, "resamples": config.resamples, "seed": config.seed}
    counted = correct if (config.only_correct and correct is not None) else torch.ones_like(consistent)
    summary = {"consistency_by_image": by_image_interval(consistent & counted, counted, **kw)}
    if correct is not None:
        summary["accuracy_by_image"] = by_image_interval(correct, torch.ones_like(correct), **kw)
    return summary


run_consistency.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
