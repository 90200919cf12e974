"""The stages of ``antialias reproduce`` in order (see :mod:`antialias.reproduce`).

:func:`run_pipeline` is the table of contents: explanatory figures, training, evaluation (with the
robustness parts), then the report. Each step is one function below it, in that order.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from antialias._io import atomic_write_text
from antialias._manifest import Manifest, describe
from antialias._version import __version__
from antialias.data.spec import load_split
from antialias.report.eval_figures import (
    accuracy_vs_consistency,
    feature_distance_heatmaps,
    learning_curves,
    stability_curves,
)
from antialias.report.figures import FIGURE_FILES, is_own_png, save_png, write_figures
from antialias.report.html import write_html
from antialias.reproduce._data import EvalData, load_eval_data, resolve_data_spec
from antialias.reproduce._evaluate import PartCache, evaluate_model
from antialias.reproduce._robust import (
    PERTURBATIONS,
    CorruptionInputs,
    corruption_available,
    corruption_predictions,
    perturbation_predictions,
    summarise,
)
from antialias.reproduce._runs import (
    PlannedRun,
    Progress,
    load_model,
    plan_runs,
    run_name,
    train_config,
    train_or_reuse,
)
from antialias.reproduce._table2 import robustness_tables
from antialias.reproduce._verdicts import PAPER_TABLES, RULE, judge
from antialias.reproduce.config import EvalSettings, ReproduceConfig

__all__ = ["run_pipeline", "write_report"]

# Figures of the report, by key: file name under OUT/figures/ and caption.
FIGURES = {
    "accuracy_vs_consistency": ("accuracy_vs_consistency.png",
                                "Accuracy against consistency (crop protocol) per filter, trained without shift "
                                "augmentation, 95% Wilson intervals: the paper's headline plot (each configuration's "
                                "first training). Up and to the right is better."),
    "accuracy_vs_consistency_aug": ("accuracy_vs_consistency_aug.png",
                                    "The same for the models trained with shift augmentation."),
    "accuracy_vs_consistency_circular": ("accuracy_vs_consistency_circular.png",
                                         "All models with the circular-shift protocol."),
    "stability": ("stability_curves.png",
                  "Diagonal stability (the paper's Figure 1, averaged): probability of the correct class and "
                  "accuracy as the image is shifted by (d, d)."),
    "heatmaps": ("feature_distance_heatmaps.png",
                 "Internal shift-equivariance, the baseline's layers above the same layers of bin5, on one colour "
                 "scale: distance between Shift(F(x)) and F(Shift(x)) for every circular shift, per layer (the "
                 "paper's VGG13-bn figure)."),
    "learning_curves": ("learning_curves.png",
                        "Learning curves of every training: training loss and accuracy on the scored test images "
                        "after each epoch."),
    "toy_example": ("toy_example.png", "The paper's 1-D example (its Figure 4)."),
    "zone_plate": ("downsampling_zone_plate.png", "Strided max-pooling against MaxBlurPool on a zone plate."),
    "photo": ("downsampling_photo.png", "Strided max-pooling against MaxBlurPool on a photo."),
    "frequency_response": ("filter_frequency_response.png", "Frequency responses of the paper's filters."),
}

def _label(filter_size: str | None, augment: bool, both: bool) -> str:
    name = filter_size or "baseline"
    return f"{name} ({'aug' if augment else 'no aug'})" if both else name


def run_pipeline(cfg: ReproduceConfig, *, stream: TextIO, progress: str) -> dict[str, Any]:
    """Runs every step of the reproduction and returns the results written to ``results.json``."""
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    spec, root = resolve_data_spec(cfg.data)
    load_split(spec, "test", root=root, download=False)  # a missing data set fails here, before any work
    out = Path(cfg.out)
    manifest = _check_out(out)  # before any work: never replace a file this command did not write
    runs_dir, fig_dir = out / "runs", out / "figures"
    runs_dir.mkdir(parents=True, exist_ok=True)
    fig_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_runs(cfg)
    if cfg.eval.corruption_images > 0:
        ok_corruption, why_corruption = corruption_available()
    else:
        ok_corruption, why_corruption = False, "disabled in the configuration"
    # figures, one task per training and per evaluation, report
    bar = Progress(1 + 2 * len(plan) + 1, stream, progress)
    timings: dict[str, float] = {}
    results: dict[str, Any] = {"runs": {}}
    try:
        _explanatory_figures(fig_dir, bar, timings)
        results["runs"] = _train_runs(cfg, plan, runs_dir, bar, stream, timings)
        data, ev = _evaluate_runs(cfg, plan, spec, root, runs_dir, results["runs"], bar, timings,
                                  with_corruption=ok_corruption)
        bar.start("writing the report")
        results.update(_header(cfg, data.description, load_start))
        results["eval_settings"] = ev.to_dict()
        results["missing"] = _missing_parts(cfg.eval, ok_corruption, why_corruption)
        timings["total_before_report"] = time.perf_counter() - t_start
        results["timing"] = timings
        manifest.add(*_OUTPUT_FILES, *(f"figures/{f}" for f in _figure_files()))
        write_report(results, out)
        results["timing"]["total"] = time.perf_counter() - t_start
        results["load_average_end"] = list(os.getloadavg())
        _write_json(out / "results.json", results)
        bar.advance()
        bar.message(f"done in {results['timing']['total']:.0f}s: {out / 'report.html'}")
    finally:
        bar.close()
    return results


# ----------------------------------------------------------------------------------- 0. the output folder

#: Files of OUT written by the report step (the figures under OUT/figures/ carry their own mark).
_OUTPUT_FILES = ("report.html", "results.json")


def _figure_files() -> list[str]:
    return sorted({name for name, _ in FIGURES.values()} | set(FIGURE_FILES.values()))


def _written_by_us(path: Path) -> bool:
    """A report.html/results.json of an earlier version of this command (before manifests existed)."""
    try:
        head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    except OSError:
        return False
    if path.name == "results.json":
        return '"format": "antialias-reproduction"' in head
    return "<title>antialias reproduce: report</title>" in head


def _check_out(out: Path) -> Manifest:
    """The manifest of ``out``; refuses a folder whose report files or figures another program wrote."""
    manifest = Manifest(out, "antialias reproduce")
    foreign = [name for name in _OUTPUT_FILES
               if os.path.lexists(out / name) and not manifest.owns(name) and not _written_by_us(out / name)]
    foreign += [f"figures/{f}" for f in _figure_files()
                if os.path.lexists(out / "figures" / f) and not is_own_png(out / "figures" / f)]
    if foreign:
        raise FileExistsError(
            f"`reproduce`: `out` must not hold files of these names that antialias reproduce did not write, got "
            f"{str(out)!r} holding {describe(foreign)}. Move them away, or choose another --out."
        )
    return manifest


# ----------------------------------------------------------------------------------- 1. figures


def _explanatory_figures(fig_dir: Path, bar: Progress, timings: dict[str, float]) -> None:
    """The figures of ``antialias figures`` (cheap, and a first sign of life); deterministic: drawn once."""
    bar.start("figures of `antialias figures`")
    t0 = time.perf_counter()
    if not all(is_own_png(fig_dir / f) for f in FIGURE_FILES.values()):
        write_figures(fig_dir)
    timings["figures"] = time.perf_counter() - t0
    bar.advance()


# ----------------------------------------------------------------------------------- 2. training


def _train_runs(cfg: ReproduceConfig, plan: list[PlannedRun], runs_dir: Path, bar: Progress, stream: TextIO,
                timings: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Trains, resumes or reuses every planned run; returns each run's record (name -> dict)."""
    t0 = time.perf_counter()
    trainer_progress = {"bar": "bar", "log": "log"}.get(bar.mode, "none")
    records: dict[str, dict[str, Any]] = {}
    for run in plan:
        name = run.name
        bar.start(f"training {name}")
        t1 = time.perf_counter()
        tcfg = train_config(cfg, run, runs_dir / name, trainer_progress)
        status, last = train_or_reuse(tcfg, stream)
        records[name] = {"filter_size": run.filter_size, "augment": run.augment, "replicate": run.replicate,
                         "seed": run.seed, "run_dir": str(Path("runs") / name), "status": status, "train": last,
                         "learning_curve": _learning_curve(runs_dir / name),
                         "train_seconds": time.perf_counter() - t1}
        bar.message(
            f"{name}: {status} ({time.perf_counter() - t1:.0f}s), val_acc {last.get('val_acc', float('nan')):.4f}"
        )
        bar.advance()
    timings["training"] = time.perf_counter() - t0
    return records


def _learning_curve(run: Path) -> list[dict[str, Any]]:
    """Per epoch of ``run``: training loss and accuracy, test accuracy on the scored images, seconds."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    keys = ("epoch", "loss", "train_acc", "val_acc", "seconds")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{k: rec.get(k) for k in keys} for rec in map(json.loads, lines)]


# ----------------------------------------------------------------------------------- 3. evaluation


def _scaled_settings(ev: EvalSettings, size: int) -> EvalSettings:
    """Shifts given for 32x32 images, scaled to larger inputs (ImageNet 224: x7), equivariance grid <= 32x32."""
    f = max(1, size // 32)
    if f == 1:
        return ev
    return dataclasses.replace(ev, crop_max_shift=ev.crop_max_shift * f, circular_max_shift=ev.circular_max_shift * f,
                               stability_max_shift=ev.stability_max_shift * f,
                               equivariance_step=max(ev.equivariance_step, -(-size // 32)))


@dataclasses.dataclass
class _Robustness:
    """The corruption and perturbation parts of every model: shared inputs, and each run's cached predictions."""

    data: EvalData
    ev: EvalSettings
    bar: Progress
    corruption: bool
    perturbation: bool
    timings: dict[str, float]
    _corruption_inputs: CorruptionInputs | None = None
    corruption_records: dict[str, Any] = dataclasses.field(default_factory=dict)
    perturbation_records: dict[str, Any] = dataclasses.field(default_factory=dict)

    def measure(self, name: str, model: nn.Module, cache: PartCache) -> dict[str, Any]:
        """The ``robustness`` hook of :func:`evaluate_model`: caches this run's predictions, returns no part."""
        ev, data = self.ev, self.data
        if self.corruption:
            self.bar.start(f"evaluating {name}: corruption")
            self.corruption_records[name] = cache.get(
                "corruption", {"n": ev.corruption_images, "seed": ev.seed, "data": data.description},
                lambda: corruption_predictions(model, self.corruption_inputs(), data.preprocess))
        if self.perturbation:
            self.bar.start(f"evaluating {name}: perturbation")
            self.perturbation_records[name] = cache.get(
                "perturbation",
                {"n": ev.perturbation_images, "seed": ev.seed, "data": data.description,
                 "perturbations": list(PERTURBATIONS)},
                lambda: perturbation_predictions(
                    model, data.images[: ev.perturbation_images], data.preprocess, ev.seed
                ),
            )
        return {}

    def corruption_inputs(self) -> CorruptionInputs:
        """The corrupted test images, generated on first use (not at all when every prediction is cached)."""
        if self._corruption_inputs is None:
            ev = self.ev
            self.bar.start(f"generating corruptions of {ev.corruption_images} images (15 x 5)")
            t0 = time.perf_counter()
            self._corruption_inputs = CorruptionInputs(self.data.images[: ev.corruption_images],
                                                       self.data.labels[: ev.corruption_images], ev.seed)
            self.timings["corruption_generation"] = time.perf_counter() - t0
        return self._corruption_inputs

    def summarise_into(self, runs: dict[str, dict[str, Any]], plan: list[PlannedRun]) -> None:
        """Table 2's numbers of every run, normalised by the baseline trained the same way."""
        names = {r.name for r in plan}
        baselines = {}
        for r in plan:  # the baseline of the same augmentation and replicate (its first training when none)
            own = run_name(None, r.augment, r.replicate)
            baselines[r.name] = own if own in names else run_name(None, r.augment)
        if self.corruption_records:
            labels = self.data.labels[: self.ev.corruption_images]
            summaries = summarise("corruption", self.corruption_records, baselines, labels, self.data.num_classes)
            for name, summary in summaries.items():
                runs[name]["eval"]["corruption"] = summary
        if self.perturbation_records:
            for name, summary in summarise("perturbation", self.perturbation_records, baselines, None,
                                           self.data.num_classes).items():
                runs[name]["eval"]["perturbation"] = summary


def _evaluate_runs(cfg: ReproduceConfig, plan: list[PlannedRun], spec: str, root: str | None, runs_dir: Path,
                   runs: dict[str, dict[str, Any]], bar: Progress, timings: dict[str, float], *,
                   with_corruption: bool) -> tuple[EvalData, EvalSettings]:
    """Every measurement of every run, into ``runs[name]["eval"]``; returns the data and the settings used."""
    t0 = time.perf_counter()
    ev = cfg.eval
    need = max(ev.num_images, ev.stability_images, ev.equivariance_images, ev.corruption_images, ev.perturbation_images)
    data = load_eval_data(spec, root, train_subset=cfg.train_subset, num_images=need)
    ev = _scaled_settings(ev, data.images.shape[-1])
    robustness = _Robustness(data, ev, bar, corruption=with_corruption, perturbation=ev.perturbation_images > 0,
                             timings=timings)
    strong, heat_aug = cfg.filters[-1], cfg.augment[-1]  # feature-distance maps: baseline and strongest filter
    for run in plan:
        name = run.name
        bar.start(f"evaluating {name}")
        model, sha = load_model(cfg, runs_dir / name, data.images.shape[1], data.num_classes)
        cache = PartCache(runs_dir / name / "eval", sha)
        t1 = time.perf_counter()
        maps = run.augment == heat_aug and run.filter_size in (None, strong) and run.replicate == 0
        runs[name]["eval"] = evaluate_model(
            model, data, ev, cache, equivariance=maps,
            robustness=functools.partial(robustness.measure, name, model),
            on_part=functools.partial(_part_started, bar, name))
        runs[name]["eval_seconds"] = time.perf_counter() - t1
        runs[name]["eval_compute_seconds"] = cache.seconds
        bar.advance()
    robustness.summarise_into(runs, plan)
    timings["evaluation"] = time.perf_counter() - t0
    return data, ev


def _part_started(bar: Progress, name: str, part: str) -> None:
    bar.start(f"evaluating {name}: {part}")


# ----------------------------------------------------------------------------------- 4. report


def _missing_parts(ev: EvalSettings, ok_corruption: bool, why_corruption: str) -> list[dict[str, str]]:
    """The tables that could not be measured, with the reason (the report names them)."""
    missing = []
    if not ok_corruption:
        missing.append({"part": "corruption", "table": "Corruption robustness (mCE), Table 2 rows 1 and 3",
                        "reason": why_corruption})
    if ev.perturbation_images <= 0:
        missing.append({"part": "perturbation", "table": "Perturbation stability (mFR), Table 2 rows 2 and 4",
                        "reason": "disabled in the configuration"})
    return missing


def _header(cfg: ReproduceConfig, data_description: str, load_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "format": "antialias-reproduction",
        "format_version": 1,
        "antialias_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "load_average_start": list(load_start)},
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "data_description": data_description,
    }


def _cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write_json(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=1, default=str))


def _figures(results: dict[str, Any], fig_dir: Path) -> dict[str, str]:
    runs = results["runs"]
    both = len({r["augment"] for r in runs.values()}) > 1
    first = [r for r in runs.values() if not r.get("replicate")]  # the plots show each configuration's first training
    written = {}

    def headline(key: str, proto: str, augs: list[bool], title: str) -> None:
        points = {_label(r["filter_size"], r["augment"], len(augs) > 1): {
            "accuracy": r["eval"]["clean"]["accuracy"], "consistency": r["eval"]["consistency"][proto]["consistency"]}
            for r in first if r["augment"] in augs}
        if points:
            save_png(accuracy_vs_consistency(points, title=title), fig_dir / FIGURES[key][0])
            written[key] = FIGURES[key][0]

    headline("accuracy_vs_consistency", "crop", [False], "No shift augmentation: crop protocol, 95% CI")
    headline("accuracy_vs_consistency_aug", "crop", [True], "With shift augmentation: crop protocol, 95% CI")
    headline("accuracy_vs_consistency_circular", "circular", [False, True], "Circular protocol, 95% CI")
    stability = {_label(r["filter_size"], r["augment"], both): r["eval"]["stability"] for r in first}
    save_png(stability_curves(stability), fig_dir / FIGURES["stability"][0])
    written["stability"] = FIGURES["stability"][0]
    curves: dict[str, list[list[dict[str, Any]]]] = {}
    for r in sorted(runs.values(), key=lambda r: int(r.get("replicate", 0))):
        if r.get("learning_curve"):
            curves.setdefault(_label(r["filter_size"], r["augment"], both), []).append(r["learning_curve"])
    if curves:
        save_png(learning_curves(curves), fig_dir / FIGURES["learning_curves"][0])
        written["learning_curves"] = FIGURES["learning_curves"][0]
    eq = {_label(r["filter_size"], r["augment"], both): r["eval"]["equivariance"] for r in first
          if "equivariance" in r["eval"]}
    if eq:
        kinds = {k: v["kinds"] for k, v in eq.items()} if all("kinds" in v for v in eq.values()) else None
        fig = feature_distance_heatmaps({k: v["maps"] for k, v in eq.items()}, {k: v["layers"] for k, v in eq.items()},
                                        distance=next(iter(eq.values()))["distance"], kinds=kinds)
        save_png(fig, fig_dir / FIGURES["heatmaps"][0])
        written["heatmaps"] = FIGURES["heatmaps"][0]
    for key in ("toy_example", "zone_plate", "photo", "frequency_response"):
        if (fig_dir / FIGURES[key][0]).is_file():
            written[key] = FIGURES[key][0]
    return written


def write_report(results: dict[str, Any], out: Path) -> None:
    """Figures, verdicts and ``report.html`` from ``results`` (which gains ``figures`` and ``claims``)."""
    names = _figures(results, out / "figures")
    results["figures"] = {k: {"path": f"figures/{v}", "caption": FIGURES[k][1]} for k, v in names.items()}
    results["claims"] = judge(results)
    results["decision_rule"] = RULE
    results["paper"] = PAPER_TABLES
    results["table2"] = robustness_tables(results)
    results["compute_seconds"] = {
        "training": sum(e.get("seconds") or 0.0 for r in results["runs"].values() for e in r.get("learning_curve", [])),
        "evaluation": sum(r.get("eval_compute_seconds", 0.0) for r in results["runs"].values()),
    }
    write_html(results, out)
