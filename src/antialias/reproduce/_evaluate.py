"""Evaluation stage of ``antialias reproduce``: per-model measurements, cached per run, with per-image outcomes.

Each part (clean accuracy, consistency under each protocol, diagonal stability, feature distance,
corruption, perturbation) is one JSON file in ``<run>/eval/``, keyed by the evaluation settings and the
SHA-256 of the weights: a part is recomputed only when either changes, so an interrupted evaluation
resumes at the part it was doing. Per-image outcomes (correct, consistent) are kept as bit strings,
because the pipeline compares models on the same images with the same random offsets (the paired
tests of :mod:`antialias.eval._stats`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from antialias._io import atomic_write_text
from antialias.eval import (
    ConsistencyConfig,
    Proportion,
    ShiftConsistency,
    diagonal_stability,
    evaluate_consistency,
    feature_distance_maps,
)
from antialias.reproduce._data import EvalData
from antialias.reproduce.config import EvalSettings

__all__ = ["PartCache", "bits", "equivariance_part", "evaluate_model", "from_bits"]


# ----------------------------------------------------------------------------------- per-image outcomes


def bits(values: Tensor) -> str:
    """A boolean vector as a string of 0/1 (compact JSON).

    Examples:
        >>> bits(torch.tensor([True, False, True]))
        '101'
    """
    return "".join("1" if v else "0" for v in values.tolist())


def from_bits(text: str) -> Tensor:
    """Inverse of :func:`bits`."""
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)


# ----------------------------------------------------------------------------------- the cache


class PartCache:
    """One JSON file per evaluation part in ``folder``, valid while its key matches.

    ``seconds`` adds up the compute time of every part returned, read from the file for a cached
    part, so a report made from cached parts still states what the measurements cost.
    """

    def __init__(self, folder: Path, weights_sha256: str) -> None:
        self.folder, self.weights = Path(folder), weights_sha256
        self.seconds = 0.0

    def _key(self, part: str, params: dict[str, Any]) -> str:
        text = json.dumps({"part": part, "params": params, "weights": self.weights}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, part: str, params: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.folder / f"{part}.json"
        key = self._key(part, params)
        if path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if record.get("key") == key:
                    self.seconds += float(record.get("seconds", 0.0))
                    return record["result"]
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache file is recomputed
        t0 = time.perf_counter()
        result = compute()
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "params": params, "result": result, "seconds": seconds}))
        return result


# ----------------------------------------------------------------------------------- measurements


def _proportion(p: Proportion) -> dict[str, Any]:
    return p.to_dict()


def _accuracy(model: nn.Module, data: EvalData, s: EvalSettings) -> dict[str, Any]:
    correct = []
    with torch.inference_mode():
        for images, labels in data.batches(s.num_images, s.batch_size):
            correct.append(model(data.preprocess(images)).argmax(1).cpu() == labels)
    c = torch.cat(correct)
    return {"accuracy": _proportion(Proportion.from_counts(int(c.sum()), c.numel())), "per_image": bits(c)}


def _consistency(model: nn.Module, data: EvalData, s: EvalSettings, protocol: str) -> dict[str, Any]:
    m = s.crop_max_shift if protocol == "crop" else s.circular_max_shift
    cfg = ConsistencyConfig(protocol=protocol, max_shift=m, pad_mode="zeros", seed=s.seed,
                            centre=False)  # clean accuracy is measured on its own (_accuracy)
    metric = ShiftConsistency(keep_outcomes=True)  # per-image outcomes for the paired tests
    out = evaluate_consistency(model, data.batches(s.num_images, s.batch_size), cfg, preprocess=data.preprocess,
                               metric=metric)
    return {"consistency": _proportion(out["consistency"]), "shifted_accuracy": _proportion(out["accuracy"]),
            "per_image": bits(metric.outcomes()["consistent"]), "config": dataclasses.asdict(cfg)}


def _stability(model: nn.Module, data: EvalData, s: EvalSettings) -> dict[str, Any]:
    r = diagonal_stability(model, data.batches(s.stability_images, max(1, s.batch_size // (s.stability_max_shift + 1))),
                           max_shift=s.stability_max_shift, protocol="crop", pad_mode="zeros",
                           preprocess=data.preprocess)
    d = r.to_dict()
    d.pop("prob_correct")  # per-image curves: large, not needed by the report
    d["num_images"] = int(r.prob_correct.shape[0])
    d["protocol"] = "crop of the image zero-padded on the bottom/right; shift (d, d)"
    return d


def equivariance_part(model: nn.Module, data: EvalData, s: EvalSettings) -> dict[str, Any]:
    """Feature-distance maps averaged over images, plus each image's mean distance (for a paired test)."""
    images = data.preprocess(data.images[: s.equivariance_images])  # (M, C, H, W)
    results = [feature_distance_maps(model, images[i : i + 1], step=s.equivariance_step, shifts_per_batch=16)
               for i in range(len(images))]
    if not results:
        raise ValueError(f"`reproduce`: `equivariance_images` must be >= 1, got {s.equivariance_images!r}.")
    total = results[0].maps.clone()
    for r in results[1:]:
        total = total + r.maps
    maps = total / len(results)  # (L, Sh, Sw)
    per_image = [float(r.maps.mean()) for r in results]
    result = results[0]
    return {"layers": result.layers, "maps": [[[round(float(v), 6) for v in row] for row in layer] for layer in maps],
            "means": {name: float(m.mean()) for name, m in zip(result.layers, maps, strict=True)},
            "per_image_mean": per_image, "distance": result.distance, "num_images": len(images),
            "step": s.equivariance_step, "kinds": result.kinds}


def evaluate_model(model: nn.Module, data: EvalData, s: EvalSettings, cache: PartCache, *,
                   equivariance: bool, robustness: Callable[[PartCache], dict[str, Any]] | None = None,
                   on_part: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every measurement of one model (cached per part); returns the per-model results."""
    model.eval()
    base = {"data": data.description, **s.to_dict()}

    def part(name: str, params: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if on_part is not None:
            on_part(name)
        return cache.get(name, params, fn)

    out: dict[str, Any] = {}
    out["clean"] = part("accuracy", {k: base[k] for k in ("data", "num_images")}, lambda: _accuracy(model, data, s))
    out["consistency"] = {
        p: part(f"consistency_{p}", {**base, "protocol": p}, functools.partial(_consistency, model, data, s, p))
        for p in ("crop", "circular")
    }
    out["stability"] = part("stability", {k: base[k] for k in ("data", "stability_images", "stability_max_shift")},
                            lambda: _stability(model, data, s))
    if equivariance:
        out["equivariance"] = part(
            "equivariance",
            {k: base[k] for k in ("data", "equivariance_images", "equivariance_step")},
            lambda: equivariance_part(model, data, s),
        )
    if robustness is not None:
        out.update(robustness(cache))
    return out
