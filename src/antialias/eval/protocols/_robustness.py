"""``antialias eval corruption|perturbation`` as functions: :func:`run_corruption`, :func:`run_perturbation`."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from antialias.eval._fields import Config
from antialias.eval._results import FORMAT
from antialias.eval.config import CorruptionConfig, PerturbationConfig
from antialias.eval.corruption import (
    CORRUPTIONS,
    evaluate_corruption_files,
    evaluate_corruptions,
    inspect_corruption_data,
)
from antialias.eval.perturbation import (
    GENERATED_PERTURBATIONS,
    evaluate_perturbation_files,
    evaluate_perturbations,
    inspect_perturbation_data,
)
from antialias.eval.protocols._setup import COMMON_DOC, Setup, data_key, finish, options_from, setup, split_kwargs

__all__ = ["run_corruption", "run_perturbation"]


def _reference(normaliser: Any) -> Any:
    """A results file of ours as a normaliser: its ``results`` (the metric's own ``to_dict()``)."""
    if isinstance(normaliser, (str, os.PathLike)) and str(normaliser).endswith(".json") and Path(normaliser).is_file():
        try:
            data = json.loads(Path(normaliser).read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError: name the file, not the parser
            raise ValueError(
                f"`eval`: `normaliser` must be a results JSON file of antialias eval, got {str(normaliser)!r}, which "
                f"is not valid JSON ({type(exc).__name__}: {exc})."
            ) from None
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return data["results"]
    return normaliser


def _unsharded(run: Setup, where: str) -> None:
    if run.dist.distributed:
        raise ValueError(f"`{where}`: runs in one process only for now, got {run.dist.world_size} under torchrun. "
                         "Run it without torchrun (batches still go through the model as one forward per item).")


def _config(cls: type[Config], config: Any, given: dict[str, Any], data: Any, where: str) -> Any:
    if config is not None and given:
        raise TypeError(f"`{where}`: `config` must not be combined with its fields, got both and {sorted(given)}.")
    return config if config is not None else cls.for_data(data, **given)


def run_corruption(model: Any = None, data: Any = "fashion-mnist", *, config: CorruptionConfig | None = None,
                   **kwargs: Any) -> dict[str, Any]:
    """ImageNet-C style corruption errors, CE and mCE, generated on the fly
    (:func:`~antialias.eval.corruption.evaluate_corruptions`; needs the ``corruptions`` extra).

    Args:
        config: Corruptions, severities, normaliser (``"alexnet"`` on ImageNet, or a reference
            model's results JSON path of ours, e.g. the baseline's), clean error, seed
            (:class:`~antialias.eval.config.CorruptionConfig`). Its fields may be given as keywords
            instead (``corruptions=["contrast"], severities=[1, 4]``).
        **kwargs: The common arguments below.

    Returns:
        The record; ``results`` is the :class:`~antialias.eval.corruption.CorruptionResult` as a dict
        (the command line also draws the errors, ``.png``).
    """
    given, common = split_kwargs(kwargs, CorruptionConfig)
    cfg: CorruptionConfig = _config(CorruptionConfig, config, given, data_key(data, common), "run_corruption")
    files = None if cfg.corruption_data is None else inspect_corruption_data(  # checked before any work
        cfg.corruption_data, cfg.corruption_format, cfg.corruptions, severities=cfg.severities, where="corruption")
    options, command = options_from(model, data, common)
    run = setup("corruption", options, command=command, outputs=())
    _unsharded(run, "corruption")
    names = tuple(cfg.corruptions or (CORRUPTIONS if files is None else files.names))
    normaliser = cfg.normaliser if cfg.normaliser is not None or files is None else files.default_normaliser
    if files is not None:
        files.check_data(run.record["data"]["image_shape"], options.data, "corruption")
    start = time.perf_counter()
    with run.autocast():
        if files is None:
            result = evaluate_corruptions(run.model, run.loader(0, len(run.dataset)), corruptions=names,
                                          severities=cfg.severities, normaliser=_reference(normaliser),
                                          clean=cfg.clean, seed=cfg.seed, preprocess=run.preprocess, device=run.device)
        else:
            result = evaluate_corruption_files(run.model, files, corruptions=names, severities=cfg.severities,
                                               normaliser=_reference(normaliser),
                                               clean=run.dataset if cfg.clean else None, batch_size=run.batch_size,
                                               limit=options.subset, preprocess=run.preprocess, device=run.device)
    recorded = {**dataclasses.asdict(cfg), "corruptions": list(names), "severities": list(cfg.severities),
                "normaliser": str(normaliser) if normaliser is not None else None, "batch_size": run.batch_size}
    if files is not None:
        recorded["corruption_format"] = files.format  # as detected
    record = {**run.record, "seed": cfg.seed, "config": recorded, "results": result.to_dict(),
              "seconds": time.perf_counter() - start}
    return finish(run, record, options)


def run_perturbation(model: Any = None, data: Any = "fashion-mnist", *, config: PerturbationConfig | None = None,
                     **kwargs: Any) -> dict[str, Any]:
    """ImageNet-P style flip probabilities, FR/mFR and T5D on sequences generated on the fly
    (:func:`~antialias.eval.perturbation.evaluate_perturbations`).

    Args:
        config: Perturbations, preset (``"auto"``, ``"imagenet"`` or ``"cifar"`` frame counts and
            ranges), frame step, normaliser (a reference model's results JSON path of ours), noise
            seed (:class:`~antialias.eval.config.PerturbationConfig`). Its fields may be given as
            keywords instead.
        **kwargs: The common arguments below.

    Returns:
        The record; ``results`` is the :class:`~antialias.eval.perturbation.PerturbationResult` as a
        dict (the command line also draws the flip probabilities, ``.png``).
    """
    given, common = split_kwargs(kwargs, PerturbationConfig)
    cfg: PerturbationConfig = _config(PerturbationConfig, config, given, data_key(data, common), "run_perturbation")
    files = None if cfg.perturbation_data is None else inspect_perturbation_data(  # checked before any work
        cfg.perturbation_data, cfg.perturbation_format, cfg.perturbations, where="perturbation")
    options, command = options_from(model, data, common)
    run = setup("perturbation", options, command=command, outputs=())
    _unsharded(run, "perturbation")
    names = tuple(cfg.perturbations or (GENERATED_PERTURBATIONS if files is None else files.names))
    if files is not None:
        files.check_data(run.record["data"]["image_shape"], options.data, "perturbation")
    start = time.perf_counter()
    with run.autocast():
        if files is None:
            result = evaluate_perturbations(run.model, run.loader(0, len(run.dataset)), perturbations=names,
                                            preset=cfg.preset, step=cfg.step, normaliser=_reference(cfg.normaliser),
                                            seed=cfg.seed, preprocess=run.preprocess, device=run.device)
        else:
            result = evaluate_perturbation_files(run.model, files, perturbations=names, step=cfg.step,
                                                 normaliser=_reference(cfg.normaliser), batch_size=run.batch_size,
                                                 limit=options.subset, preprocess=run.preprocess, device=run.device)
    recorded = {**dataclasses.asdict(cfg), "perturbations": list(names),
                "normaliser": str(cfg.normaliser) if cfg.normaliser is not None else None, "batch_size": run.batch_size}
    if files is not None:
        recorded["perturbation_format"] = files.format  # as detected
    record = {**run.record, "seed": cfg.seed, "config": recorded, "results": result.to_dict(),
              "seconds": time.perf_counter() - start}
    return finish(run, record, options)


run_corruption.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
run_perturbation.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
