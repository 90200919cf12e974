"""Expected wall time of ``antialias reproduce --preset cifar10`` and ``--preset imagenet`` on this machine.

What is measured, on synthetic data of the presets' shapes (no data set needed):

* **Training images/s of the trainer's real step**: :func:`antialias.train.train` itself, with the
  :class:`~antialias.train.TrainConfig` the pipeline builds for the preset
  (:func:`antialias.reproduce._runs.train_config`: model, batch, optimiser, fp32, deterministic
  algorithms, the trainer's loader and batch transforms), only the data replaced and the run cut to 2
  epochs of a few steps. The rate is the trainer's own ``images_per_s`` of the second epoch (its step
  loop, data loading included; warm-up, evaluation and checkpoints excluded). Baseline and Bin-5 are
  interleaved (baseline, bin5, baseline, ...) and the medians reported, with their ratio. The other
  filters (rect2, tri3, tri4) are charged Bin-5's rate: the largest filter, so an upper bound.
* CIFAR-10 data are an in-memory uint8 set (as the real one: random crop + flip on the CPU). ImageNet is
  measured twice: images already decoded (the GPU-bound rate), and a folder of generated JPEGs (500x375,
  as ImageNet's typical photo) read by the pipeline's own ImageNet loader in the training process
  (``num_workers=0``, as ``antialias reproduce`` trains). The per-image decoding cost follows from the
  two (1/r_folder = 1/r_gpu + 1/r_decode); with W loader workers (``--plan`` prints 8) the rate is
  estimated as min(r_gpu, W r_decode): an estimate, not measured.
* **Evaluation images/s**: forward passes in inference mode at the preset's evaluation batch, on the
  GPU, and on the CPU (the pipeline's evaluation currently runs on the CPU: the model is not moved
  to ``--device``); CPU for the baseline only (the anti-aliased models add the blur layers).

Expected time of a preset = sum over its runs of (training images x epochs) / rate + the per-epoch
scoring of ``val_images`` + the evaluation's forward passes (accuracy, 2 views x 2 protocols,
diagonal stability, feature-distance maps, 75 corruptions + clean, the perturbation frames) / the
evaluation rate. Not included: generating the corruptions (CPU, ``imagecorruptions``), reading the
evaluation images, checkpoints, the report. Under torchrun the training part is divided by the
number of GPUs: an assumption (linear scaling), not measured here (one GPU).

    python benchmarks/bench_reproduce_gpu.py                       # on a GPU machine (~3 minutes)
    python benchmarks/bench_reproduce_gpu.py --quick --device cpu  # a smoke test of the script (tiny sizes)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from antialias.data import ImageTensorDataset
from antialias.eval._names import GENERATED_PERTURBATIONS
from antialias.eval.perturbation.generate import sequence_length
from antialias.reproduce._pipeline import _scaled_settings
from antialias.reproduce._runs import PlannedRun, plan_runs, train_config
from antialias.reproduce.config import ReproduceConfig
from antialias.runs.model import build_model
from antialias.train import train

SELF = Path(__file__).resolve()
PRESETS = {"cifar10": {"size": 32, "classes": 10}, "imagenet": {"size": 224, "classes": 1000}}
CORRUPTION_VIEWS = 15 * 5 + 1  # 15 corruptions x 5 severities, and the clean image
WORKERS = 8  # loader workers per process printed by --plan for ImageNet folders


# ----------------------------------------------------------------------------------- synthetic data


class _DecodedImages(Dataset):
    """``n`` items ``(float image (3, S, S) in [0, 1], label)`` cycled from a small pool, like an image
    folder after decoding (no ``images`` tensor: the trainer collates items and applies flip + ImageNet
    normalisation, as for the real folder)."""

    def __init__(self, n: int, size: int, classes: int) -> None:
        self.n, self.num_classes = n, classes
        self.classes = [f"c{i}" for i in range(classes)]
        self.pool = torch.rand(16, 3, size, size)
        self.name = "synthetic-decoded"
        self.image_size = (size, size)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.pool[i % len(self.pool)], i % self.num_classes


def synthetic_set(split: str = "train", root: str | None = None) -> Dataset:
    """The trainer's data factory: ``root`` is ``"KIND:N:SIZE:CLASSES"`` (KIND memory or decoded)."""
    kind, *numbers = (root or "memory:256:32:10").split(":")
    n, size, classes = map(int, numbers)
    if kind == "decoded":
        return _DecodedImages(n, size, classes)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return ImageTensorDataset(images, torch.arange(n) % classes, [f"c{i}" for i in range(classes)],
                              name=f"synthetic-{split}")


def _jpeg(job: tuple[str, int]) -> None:
    path, seed = job
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    coarse = coarse.resize((500, 375), Image.Resampling.BICUBIC)  # smooth content, as photos
    fine = rng.normal(0, 12, (375, 500, 3))  # texture, so the JPEG is not trivially small
    Image.fromarray(np.clip(np.asarray(coarse, np.float64) + fine, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_jpeg_folder(root: Path, train: int, val: int, classes: int) -> Path:
    """An ImageNet-layout folder (train/ and val/, one folder per class) of generated 500x375 JPEGs."""
    jobs = []
    for split, n in (("train", train), ("val", val)):
        for c in range(classes):
            (root / split / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
        jobs += [(str(root / split / f"n{i % classes:08d}" / f"{i}.JPEG"), i) for i in range(n)]
    with multiprocessing.get_context("fork").Pool(min(16, os.cpu_count() or 1)) as pool:
        pool.map(_jpeg, jobs, chunksize=16)
    return root


# ----------------------------------------------------------------------------------- measurements


def _full_width(kwargs: dict[str, Any]) -> dict[str, Any]:
    # reproduce/_runs.py passes {"width": cfg.width} to every model; the ImageNet builders take no width
    # argument (1.0 is their only width), so it is left out for them here, as train_config must (reported).
    return {k: v for k, v in kwargs.items() if not (k == "width" and v == 1.0)}


def train_rate(cfg: ReproduceConfig, filter_size: str | None, *, data: str, root: str, steps: int, batch: int,
               device: str, **changes: Any) -> float:
    """Images/s of the second epoch of a 2-epoch run of ``steps`` steps (the trainer's own measure)."""
    run = PlannedRun("bench", filter_size, cfg.augment[-1], 0, cfg.seed)
    tcfg = train_config(cfg, run, Path("unused"), "none")
    tcfg = tcfg.replace(data=data, data_root=root, train_subset=steps * batch, val_subset=batch, epochs=2,
                        batch_size=batch, out=None, save_every_steps=0, device=device,
                        model_kwargs=_full_width(tcfg.model_kwargs), **changes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deterministic mode's warn-only notices on CUDA
        result = train(tcfg)
    return float(result.metrics[1]["images_per_s"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def eval_rate(model: torch.nn.Module, x: torch.Tensor, batches: int) -> float:
    """Images/s of ``batches`` inference forwards of ``x`` (after one warm-up forward)."""
    device = x.device
    with torch.inference_mode():
        model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(batches):
            model(x)
        _sync(device)
    return batches * len(x) / (time.perf_counter() - t0)


def _model(cfg: ReproduceConfig, filter_size: str | None, classes: int, device: torch.device) -> torch.nn.Module:
    tcfg = train_config(cfg, PlannedRun("bench", filter_size, True, 0, 0), Path("unused"), "none")
    model = build_model(cfg.model, filter_size, in_channels=3, num_classes=classes,
                        model_kwargs=_full_width(tcfg.model_kwargs), where="bench")
    return model.to(device).eval()


def interleaved(fns: dict[str, Any], reps: int) -> dict[str, list[float]]:
    """Each function once per repetition, in turn (drifting load hits every variant alike)."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            out[name].append(fn())
    return out


# ----------------------------------------------------------------------------------- the estimate


def forwards_per_model(cfg: ReproduceConfig, size: int) -> dict[str, int]:
    """Forward passes of the evaluation of one model, per part (settings scaled as the pipeline does)."""
    ev = _scaled_settings(cfg.eval, size)
    frames = sum(sequence_length(p, "imagenet" if size >= 64 else "cifar") for p in GENERATED_PERTURBATIONS)
    grid = math.ceil(size / ev.equivariance_step) ** 2
    return {"accuracy": ev.num_images, "consistency": 4 * ev.num_images,  # 2 views x 2 protocols
            "stability": ev.stability_images * (ev.stability_max_shift + 1),
            "equivariance": ev.equivariance_images * (grid + 1),  # baseline and bin5 only (below)
            "corruption": CORRUPTION_VIEWS * ev.corruption_images,
            "perturbation": frames * ev.perturbation_images}


def estimate(cfg: ReproduceConfig, size: int, train_images: int, rates: dict[str, float],
             eval_rates: dict[str, float]) -> dict[str, Any]:
    """Seconds of training (per run's filter), per-epoch scoring, and evaluation, on one GPU."""
    runs = plan_runs(cfg)
    train_s = sum(train_images * cfg.epochs / rates["baseline" if r.filter_size is None else "bin5"] for r in runs)
    val_s = sum(cfg.val_images * cfg.epochs / eval_rates["baseline" if r.filter_size is None else "bin5"]
                for r in runs)
    per_model = forwards_per_model(cfg, size)
    maps_models = 2  # the feature-distance maps: baseline and the strongest filter, first seed, last augmentation
    n_eval = sum(v for k, v in per_model.items() if k != "equivariance") * len(runs)
    n_eval += per_model["equivariance"] * maps_models
    return {"runs": len(runs), "train_images_x_epochs": train_images * cfg.epochs * len(runs),
            "train_s": train_s, "val_s": val_s, "eval_forwards": n_eval, "forwards_per_model": per_model}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script, not a result")
    parser.add_argument("--gpus", type=int, default=8, help="GPU count of the torchrun estimate (assumed scaling)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"device: {name}; torch {torch.__version__}; {os.cpu_count()} CPUs, {torch.get_num_threads()} threads; "
          f"load average at start {load_start[0]:.2f}", flush=True)
    q = args.quick
    # (steps per epoch, batch) of the measured runs; the batch is the preset's unless --quick.
    sizes = {"cifar10": (2, 16) if q else (40, None), "imagenet": (1, 4) if q else (6, None)}
    report: dict[str, Any] = {"device": name, "torch": torch.__version__, "command": sys.argv, "presets": {}}
    for preset, shape in PRESETS.items():
        cfg = ReproduceConfig.from_preset(preset, data=f"{preset}:/unused")
        size, classes = shape["size"], shape["classes"]
        steps, batch = sizes[preset]
        batch = batch or cfg.batch_size
        kind = "memory" if preset == "cifar10" else "decoded"
        root = f"{kind}:{steps * batch}:{size}:{classes}"
        data = f"{SELF}:synthetic_set"
        variants = {"baseline": None, "bin5": "bin5"}
        measure = functools.partial(train_rate, cfg, data=data, root=root, steps=steps, batch=batch,
                                    device=args.device)
        fns = {v: functools.partial(measure, f) for v, f in variants.items()}
        if device.type == "cuda":  # not reachable from reproduce today (fp32, deterministic): for comparison
            fns.update({f"{v} bf16+channels_last": functools.partial(measure, f, amp="bf16", channels_last=True,
                                                                     deterministic=False)
                        for v, f in variants.items()})
        reps = 1 if q else args.reps
        t0 = time.perf_counter()
        train_rates = interleaved(fns, reps)
        med = {k: statistics.median(v) for k, v in train_rates.items()}
        print(f"\n[{preset}] {cfg.model} at {size}px, batch {batch}, {steps} steps/epoch, {reps} interleaved reps "
              f"({time.perf_counter() - t0:.0f}s)")
        for k, v in train_rates.items():
            print(f"  train {k:28s} median {med[k]:9.1f} img/s   reps {[round(x, 1) for x in v]}")
        print(f"  bin5 / baseline time per image: {med['baseline'] / med['bin5']:.3f}x")
        entry: dict[str, Any] = {"train_rates": train_rates, "train_median": med, "steps": steps, "batch": batch}
        if preset == "imagenet":
            with tempfile.TemporaryDirectory() as tmp:
                folder_steps = 1 if q else 2
                t0 = time.perf_counter()
                make_jpeg_folder(Path(tmp), folder_steps * batch, batch, 100)
                made = time.perf_counter() - t0
                r_folder = train_rate(cfg, None, data="antialias.reproduce._data:imagenet_interleaved", root=tmp,
                                      steps=folder_steps, batch=batch, device=args.device)
            extra = 1.0 / r_folder - 1.0 / med["baseline"]  # seconds per image the folder adds
            r_decode = 1.0 / extra if extra > 0 else math.inf  # inf: within the noise of the step's rate
            r_workers = min(med["baseline"], WORKERS * r_decode)
            print(f"  train baseline, JPEG folder in the training process: {r_folder:.1f} img/s (folder made in "
                  f"{made:.0f}s) -> decoding {r_decode:.1f} img/s per process; with {WORKERS} loader workers "
                  f"(estimate): {r_workers:.1f} img/s")
            entry.update(folder_rate=r_folder, decode_rate=r_decode, workers_rate=r_workers)
        # Evaluation forwards at the preset's evaluation batch.
        eb = 4 if q else cfg.eval.batch_size
        x = torch.rand(eb, 3, size, size, device=device)
        models = {v: _model(cfg, f, classes, device) for v, f in variants.items()}
        ev = interleaved({v: functools.partial(eval_rate, m, x, 1 if q else 4) for v, m in models.items()}, reps)
        ev_med = {k: statistics.median(v) for k, v in ev.items()}
        del models
        cpu_batch = 4 if q else (cfg.eval.batch_size if size <= 32 else 32)
        cpu_model = _model(cfg, None, classes, torch.device("cpu"))
        cpu_rate = eval_rate(cpu_model, torch.rand(cpu_batch, 3, size, size), 1 if q else 2)
        print(f"  eval on {device.type}: baseline {ev_med['baseline']:.1f}, bin5 {ev_med['bin5']:.1f} img/s "
              f"(batch {eb}); on the CPU ({torch.get_num_threads()} threads, baseline, batch {cpu_batch}): "
              f"{cpu_rate:.1f} img/s")
        entry.update(eval_rates=ev, eval_median=ev_med, cpu_eval_rate=cpu_rate)
        # The preset's expected time.
        train_images = 50_000 if preset == "cifar10" else 1_281_167
        est = estimate(cfg, size, train_images, med, ev_med)
        eval_gpu = est["eval_forwards"] / statistics.mean(ev_med.values())
        eval_cpu = est["eval_forwards"] / cpu_rate
        lines = [f"  preset {preset}: {est['runs']} runs, {est['train_images_x_epochs']:,} training images in all, "
                 f"{est['eval_forwards']:,} evaluation forwards"]
        train_total = est["train_s"] + est["val_s"]
        lines.append(f"    training, images decoded/in memory (GPU-bound): {_hours(train_total)} "
                     f"(of which per-epoch scoring {_hours(est['val_s'])})")
        if preset == "imagenet":
            slow = train_total * med["baseline"] / entry["folder_rate"]
            fast = train_total * med["baseline"] / entry["workers_rate"]
            lines.append(f"    training from JPEG folders: in reproduce's process {_hours(slow)}; "
                         f"with {WORKERS} loader workers per GPU (--plan, estimate) {_hours(fast)}")
            train_total = fast
        lines.append(f"    evaluation: {_hours(eval_gpu)} if on the GPU; {_hours(eval_cpu)} on the CPU as the "
                     "pipeline does now (baseline's CPU rate for every model)")
        lines.append(f"    total on one GPU: {_hours(train_total + eval_gpu)} (evaluation on the GPU), "
                     f"{_hours(train_total + eval_cpu)} (evaluation on the CPU, as now)")
        lines.append(f"    under torchrun with {args.gpus} GPUs (training / {args.gpus}, assumed linear, not "
                     f"measured): {_hours(train_total / args.gpus + eval_gpu)} / "
                     f"{_hours(train_total / args.gpus + eval_cpu)}")
        print("\n".join(lines), flush=True)
        entry.update(estimate=est, eval_gpu_s=eval_gpu, eval_cpu_s=eval_cpu, train_total_s=train_total)
        report["presets"][preset] = entry
    load_end = os.getloadavg()
    report.update(load_average=[load_start[0], load_end[0]], seconds=time.perf_counter() - t_start)
    print(f"\nload average at end {load_end[0]:.2f}; benchmark took {time.perf_counter() - t_start:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
