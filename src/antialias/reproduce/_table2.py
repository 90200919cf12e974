"""The paper's Table 2 filled with a reproduction's numbers: mCE and mFR per filter, beside the paper's.

Rows are the baseline and the filters (the paper's order: baseline, Rect-2, Tri-3, Bin-5; Tri-4 last,
the paper has no row for it), columns the four numbers of Table 2. A configuration trained several
times is averaged over its trainings:

- unnormalised mCE / mFR: the mean over trainings of each training's mean error (flip probability);
- normalised: per corruption (perturbation), the configuration's error averaged over its trainings
  divided by the baseline's averaged over its trainings, then the mean over corruptions, times 100
  (Hendrycks & Dietterich's CE and FR, with our baseline in place of AlexNet, so the baseline is 100;
  a corruption or perturbation the baseline never errs or flips on has no ratio and is left out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from antialias.reproduce._comparisons import runs_by
from antialias.reproduce._verdicts import PAPER_TABLES

__all__ = ["robustness_tables"]

_ORDER = ("baseline", "rect2", "tri3", "bin5", "tri4")
_PAPER_ROWS = {"mce_normalised": "ImageNet-C mCE, normalised by AlexNet",
               "mfr_normalised": "ImageNet-P mFR, normalised by AlexNet",
               "mce": "ImageNet-C mCE, unnormalised", "mfr": "ImageNet-P mFR, unnormalised"}
_PARTS = {"mce": ("corruption", "corruption_errors"), "mfr": ("perturbation", "flip_probability")}


def _per_item(trainings: Sequence[Mapping[str, Any]], part: str, field: str) -> dict[str, float] | None:
    """Per corruption (perturbation): the error (flip probability) averaged over the trainings."""
    records = [r["eval"].get(part) for r in trainings]
    if any(rec is None for rec in records):
        return None
    names = list(records[0][field])
    return {n: float(np.mean([rec[field][n]["value"] for rec in records])) for n in names}


def _unnormalised(trainings: Sequence[Mapping[str, Any]], part: str, key: str) -> float | None:
    values = [r["eval"][part][key] for r in trainings if r["eval"].get(part) and r["eval"][part].get(key)]
    if len(values) != len(trainings):
        return None
    return float(np.mean([v["value"] if isinstance(v, Mapping) else v for v in values]))


def robustness_tables(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One Table 2 per augmentation setting: ``{"augment", "columns", "rows"}``, each row ``{"model",
    "trainings", "mce_normalised", "mfr_normalised", "mce", "mfr", "paper": {...}}`` in percent (None
    where not measured); ``paper`` holds the paper's numbers of that row (ResNet50, ImageNet)."""
    runs = runs_by(results)
    paper = PAPER_TABLES["robustness"]
    paper_cols = list(paper["columns"])
    filters = [None, *results["config"]["filters"]]
    ordered = sorted(filters, key=lambda f: _ORDER.index(f or "baseline") if (f or "baseline") in _ORDER else 99)
    tables = []
    for aug in sorted({a for _, a in runs}):
        base = runs.get((None, aug))
        if not base:
            continue
        rows = []
        for f in ordered:
            trainings = runs.get((f, aug))
            if not trainings:
                continue
            name = f or "baseline"
            row: dict[str, Any] = {"model": name, "trainings": len(trainings)}
            for metric, (part, field) in _PARTS.items():
                mine, ref = _per_item(trainings, part, field), _per_item(base, part, field)
                row[metric] = None if mine is None else _unnormalised(trainings, part, metric)
                row[f"{metric}_normalised"] = None if mine is None or ref is None else float(
                    100 * np.mean([mine[n] / ref[n] for n in mine if ref[n] > 0]))
            row["paper"] = ({k: paper["rows"][label][paper_cols.index(name)] for k, label in _PAPER_ROWS.items()}
                            if name in paper_cols else None)
            rows.append(row)
        tables.append({"augment": aug, "columns": ["mce_normalised", "mfr_normalised", "mce", "mfr"], "rows": rows})
    return tables
