"""``antialias eval consistency`` as a function: :func:`run_consistency`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from antialias.eval._fields import is_imagenet
from antialias.eval.consistency import ConsistencyConfig, evaluate_consistency
from antialias.eval.protocols._setup import COMMON_DOC, check_shift, finish, options_from, setup, split_kwargs

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
        The record: ``results`` holds ``consistency`` and ``accuracy`` as proportions with intervals.
    """
    given, common = split_kwargs(kwargs, ConsistencyConfig)
    if config is not None and given:
        raise TypeError(
            f"`run_consistency`: `config` must not be combined with its fields, got both and {sorted(given)}."
        )
    if config is None:
        config = ConsistencyConfig.for_data(data, **given)
    options, command = options_from(model, data, common)
    if options.resize is None and config.protocol == "crop" and config.crop_size and is_imagenet(data):
        options = dataclasses.replace(options, resize=256, center_crop=256)  # the paper: 256, then 224 crops
    run = setup("consistency", options, command=command, outputs=())
    check_shift(config.max_shift, config.crop_size, run, "consistency")
    start = time.perf_counter()
    lo, hi, _ = run.shard()
    results = evaluate_consistency(run.model, run.loader(lo, hi), config, preprocess=run.preprocess, device=run.device,
                                   amp=run.amp, first_index=lo)  # compute() sums every rank's counts
    record = {**run.record, "seed": config.seed,
              "config": {**dataclasses.asdict(config), "batch_size": run.batch_size},
              "results": {k: v.to_dict() for k, v in results.items()},
              "seconds": time.perf_counter() - start}
    return finish(run, record, options)


run_consistency.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
