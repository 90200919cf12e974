"""``antialias eval equivariance`` as a function: :func:`run_equivariance`."""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.eval.config import EquivarianceConfig
from antialias.eval.equivariance import EquivarianceResult, default_layers, feature_distance_maps
from antialias.eval.protocols._setup import COMMON_DOC, Setup, data_key, finish, options_from, setup, split_kwargs
from antialias.runs import distributed as D

__all__ = ["pad_to_multiple", "run_equivariance"]


def pad_to_multiple(images: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``(N, C, H, W)`` images up to the next multiple of ``multiple``, split evenly (extra at the end).

    Examples:
        >>> pad_to_multiple(torch.ones(1, 1, 28, 28), 32)[0].shape, pad_to_multiple(torch.ones(1, 1, 28, 28), 32)[1]
        (torch.Size([1, 1, 32, 32]), (2, 2, 2, 2))
    """
    h, w = images.shape[-2:]
    th, tw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    top, left = (th - h) // 2, (tw - w) // 2
    pads = (left, tw - w - left, top, th - h - top)  # F.pad order: left, right, top, bottom
    return (F.pad(images, pads) if any(pads) else images), pads


def _check_layers(model: nn.Module, layers: Sequence[str]) -> None:
    """Unknown layer names: suggest close names, else list the layers that can be measured."""
    names = [n for n, _ in model.named_modules() if n]
    modules = dict(model.named_modules())
    for layer in layers:
        if layer in modules:
            continue
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        if close:
            hint = f"Did you mean {' or '.join(map(repr, close))}?"
        else:
            listed = [f"{n} ({type(modules[n]).__name__})" for n in default_layers(model)]
            more = f", ... ({len(listed) - 12} more)" if len(listed) > 12 else ""
            hint = f"Layers that can be measured: {', '.join(listed[:12])}{more}."
        raise ValueError(f"`equivariance`: `layers` must name modules of the model, got {layer!r}. {hint}")


def run_equivariance(model: Any = None, data: Any = "fashion-mnist", *, config: EquivarianceConfig | None = None,
                     **kwargs: Any) -> dict[str, Any]:
    """Internal shift-equivariance maps: per layer, the distance between Shift(F(X)) and F(Shift(X)).

    Images are zero-padded (in pixel space, before normalisation) up to a multiple of ``pad_to``
    (default 32: Fashion-MNIST's 28x28 becomes 32x32 with 2 black pixels on each side), so that
    every feature map of a network that halves the resolution up to 5 times upsamples exactly to the
    input size by the author's 2x circular interpolation. ``pad_to=None`` or 0 leaves them as they are.
    Under torchrun each rank measures a share of the images and the maps are averaged weighted by
    each rank's image count.

    Args:
        config: The grid and layers (:class:`~antialias.eval.config.EquivarianceConfig`). Its fields
            may be given as keywords instead (``layers=["0"], step=4``).
        **kwargs: The common arguments below.

    Returns:
        The record; ``results`` holds the per-layer mean distances. Given ``out``, the maps go to the
        ``.npz`` (the command line also draws the heatmaps, ``.png``).
    """
    given, common = split_kwargs(kwargs, EquivarianceConfig)
    if config is not None and given:
        raise TypeError(
            f"`run_equivariance`: `config` must not be combined with its fields, got both and {sorted(given)}."
        )
    config = config if config is not None else EquivarianceConfig.for_data(data_key(data, common), **given)
    options, command = options_from(model, data, common)
    options = dataclasses.replace(options, subset=min(config.num_images, options.subset or config.num_images))
    run = setup("equivariance", options, command=command, outputs=("npz",))
    images, first, pads = _images(run, config.pad_to)
    if config.layers is not None:
        _check_layers(run.model, config.layers)
    h, w = first.shape[-2:]
    step = config.step if config.step is not None else (1 if max(h, w) <= 32 else math.ceil(max(h, w) / 32))
    start = time.perf_counter()
    result = None
    progress = sys.stderr.isatty() if config.progress is None else config.progress
    plan: list[str] = []

    def log(line: str) -> None:
        plan.append(line)
        if config.progress is not False and run.dist.is_main:
            print(f"equivariance: {line}", file=sys.stderr, flush=True)

    if images is not None:
        x = images.to(run.device)
        x = run.preprocess(x) if run.preprocess else x
        with run.autocast():
            result = feature_distance_maps(run.model, x, layers=config.layers, step=step, distance=config.distance,
                                           shifts_per_batch=config.shifts_per_batch, split_max=config.split_max,
                                           device=run.device, max_memory_gib=config.max_memory_gib,
                                           progress=progress and run.dist.is_main, log=log)
    seconds = time.perf_counter() - start
    layer_names, maps, total, shifts_h, shifts_w = _merged(run, result)
    results = {
        "layers": layer_names,
        "means": {name: float(m.mean()) for name, m in zip(layer_names, maps, strict=True)},
        "shifts_h": shifts_h,
        "shifts_w": shifts_w,
        "distance": config.distance,
        "num_images": total,
        "max_map_value": float(maps.max()) if maps.numel() else 0.0,
        "shifted_images_per_second": total * len(shifts_h) * len(shifts_w) / seconds if seconds > 0 else None,
        "step": step,
        "plan": plan[0] if plan else None,
        "peak_rss_gib": _peak_rss_gib(),
    }
    recorded = {"layers": list(config.layers) if config.layers is not None else None, "step": step,
                "distance": config.distance, "num_images": config.num_images, "pad_to": config.pad_to,
                "padding_ltrb": [pads[0], pads[2], pads[1], pads[3]], "input_size": [h, w],
                "shifts_per_batch": config.shifts_per_batch, "split_max": config.split_max,
                "max_memory_gib": config.max_memory_gib}
    record = {**run.record, "seed": None, "config": recorded, "results": results, "seconds": seconds}
    arrays = {"maps": maps, "layers": list(layer_names), "shifts_h": shifts_h, "shifts_w": shifts_w}
    return finish(run, record, options, arrays=arrays)


def _peak_rss_gib() -> float | None:
    """Peak resident memory of this process so far, GiB (None where the platform does not say)."""
    try:
        import resource  # POSIX only: imported here so that Windows can still import this module
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def _images(run: Setup, pad_to: int | None) -> tuple[Tensor | None, Tensor, tuple[int, int, int, int]]:
    """This rank's share of the images (None if it has none), the first image, and the padding, all padded."""
    n = len(run.dataset)
    lo, hi = n * run.dist.rank // run.dist.world_size, n * (run.dist.rank + 1) // run.dist.world_size
    images = torch.stack([run.dataset[i][0] for i in range(lo, hi)]) if hi > lo else None  # (M, C, H, W)
    first = torch.stack([run.dataset[0][0]])
    pads = (0, 0, 0, 0)
    if pad_to:
        first, pads = pad_to_multiple(first, pad_to)
        images = pad_to_multiple(images, pad_to)[0] if images is not None else None
    return images, first, pads


def _merged(run: Setup, result: EquivarianceResult | None) -> tuple[list[str], Tensor, int, list[int], list[int]]:
    """``(layers, maps averaged over every rank's images, image count, shifts_h, shifts_w)``."""
    if not run.dist.distributed:
        assert result is not None  # one process always has every image
        return result.layers, result.maps, result.num_images, result.shifts_h, result.shifts_w
    mine = None if result is None else (result.layers, result.maps * result.num_images, result.num_images,
                                        result.shifts_h, result.shifts_w)
    parts = [p for p in D.gather_objects(mine, run.dist) if p]
    total = sum(p[2] for p in parts)
    maps = sum(p[1] for p in parts) / total
    return parts[0][0], maps, total, parts[0][3], parts[0][4]


run_equivariance.__doc__ += COMMON_DOC  # type: ignore[operator]  # __doc__ is str | None to mypy; these functions have docstrings
