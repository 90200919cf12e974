"""``antialias eval worst-case`` as a function: :func:`run_worst_case`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from antialias.eval.protocols._setup import COMMON_DOC, check_shift, data_key, finish, options_from, setup, split_kwargs
from antialias.eval.worst_case import WorstCaseConfig, evaluate_worst_case, shift_grid

__all__ = ["run_worst_case"]


def run_worst_case(model: Any = None, data: Any = "fashion-mnist", *, config: WorstCaseConfig | None = None,
                   **kwargs: Any) -> dict[str, Any]:
    """Worst-case consistency and MAC per shift family, k-way and random sub-pixel consistency, with intervals.

    Runs :func:`~antialias.eval.worst_case.evaluate_worst_case` on the data (on this rank's share of
    whole batches under torchrun; images numbered by their position in the data set, so the random
    shifts and the merged states do not depend on the number of processes or the batch size).

    Args:
        config: Grids and random shifts (default :class:`WorstCaseConfig`); its fields may be given
            as keywords instead (``max_shift=3``).
        **kwargs: The common arguments below.

    Returns:
        The record: ``results`` holds ``worst_case`` and ``mac`` by family (``all``: every family
        together), ``k_way``, ``random_subpixel`` and ``accuracy``, each with its interval (Wilson
        for the proportions, the bootstrap over images for MAC), and ``grid_sizes``.
    """
    given, common = split_kwargs(kwargs, WorstCaseConfig)
    if config is not None and given:
        raise TypeError(f"`run_worst_case`: `config` must not be combined with its fields, got both and "
                        f"{sorted(given)}.")
    if config is None:
        config = WorstCaseConfig.for_data(data_key(data, common), **given)
    options, command = options_from(model, data, common)
    run = setup("worst-case", options, command=command, outputs=())
    if "crop" in config.families:  # circular shifts wrap (m >= H/2: every shift); crops must fit
        check_shift(config.max_shift, None, run, "worst-case")
    start = time.perf_counter()
    lo, hi, _ = run.shard()
    results = evaluate_worst_case(run.model, run.loader(lo, hi), config, preprocess=run.preprocess, device=run.device,
                                  amp=run.amp, first_index=lo)  # compute() merges every rank's states
    h, w = run.record["data"]["image_shape"][1:]
    summary: dict[str, Any] = {
        "worst_case": {k: v.to_dict() for k, v in results["worst_case"].items()},
        "mac": {k: v.to_dict() for k, v in results["mac"].items()},
    }
    summary.update({k: results[k].to_dict() for k in ("k_way", "random_subpixel", "accuracy") if k in results})
    summary["grid_sizes"] = {f: int(shift_grid(f, config, (h, w)).shape[0]) for f in config.families}
    summary["intervals"] = ("Wilson 95% for proportions (one unit per image); percentile bootstrap over images "
                            f"({config.resamples} resamples, seed {config.seed}) for MAC")
    record = {**run.record, "seed": config.seed,
              "config": {**dataclasses.asdict(config), "batch_size": run.batch_size},
              "results": summary, "seconds": time.perf_counter() - start}
    return finish(run, record, options)


run_worst_case.__doc__ += COMMON_DOC  # type: ignore[operator]
