"""Speed of :func:`antialias.eval.feature_distance_maps`: seconds per image against the forwards alone.

The workload of ``antialias reproduce``: the width-0.125 VGG13-bn of the CIFAR experiment (1 input channel,
10 classes), one 32x32 image per call, every shift (step 1) or every third (step 3), 16 shifts per forward,
default layers (38 maps with ``bin5``: every conv, norm, activation and pool, each max-pool split in two).

The floor, measured in the same run and interleaved with it: the same forwards (every shifted copy, 16 per
batch) with no hooks; ``maps / forwards`` is what the distance maps cost on top of running the model. With
``--against REV`` the implementation at a git revision (``git show REV:src/antialias/eval/equivariance.py``,
loaded beside the current one) is timed too, interleaved, and checked to give the same maps.

    python benchmarks/bench_equivariance.py                      # bin5 and baseline, steps 1 and 3, 3 images
    python benchmarks/bench_equivariance.py --images 2 --steps 1 --against ebc60c1   # before the speed-up
    OMP_NUM_THREADS=1 python benchmarks/bench_equivariance.py    # one thread, as the reproduce figures
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

import torch

from antialias.eval import feature_distance_maps
from antialias.models import get_model

ROOT = Path(__file__).resolve().parents[1]


def load_revision(rev: str) -> ModuleType:
    """``antialias.eval.equivariance`` as it was at git revision ``rev``, as a separate module."""
    source = subprocess.run(["git", "show", f"{rev}:src/antialias/eval/equivariance.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "equivariance_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("equivariance_at_rev", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(model: torch.nn.Module, images: torch.Tensor, step: int, spb: int, old: ModuleType | None) -> dict:
    """Per-image seconds of the maps, of the forwards alone and (``old``) of the other implementation."""
    shifts = [(dh, dw) for dh in range(0, 32, step) for dw in range(0, 32, step)]

    def forwards(x: torch.Tensor) -> None:
        with torch.inference_mode():
            for lo in range(0, len(shifts), spb):
                model(torch.cat([x.roll(s, (-2, -1)) for s in shifts[lo:lo + spb]]))

    feature_distance_maps(model, images[:1], step=16)  # warm-up
    out: dict = {"new": [], "floor": [], "old": [], "shifts": len(shifts), "same": None}
    for i in range(len(images)):  # interleaved, so drifting load hits all alike
        x = images[i:i + 1]
        out["new"].append(timed(partial(feature_distance_maps, model, x, step=step, shifts_per_batch=spb)))
        out["floor"].append(timed(partial(forwards, x)))
        if old is not None:
            out["old"].append(timed(partial(old.feature_distance_maps, model, x, step=step, shifts_per_batch=spb)))
    if old is not None:
        x = images[:1]
        out["same"] = torch.allclose(old.feature_distance_maps(model, x, step=step, shifts_per_batch=spb).maps,
                                     feature_distance_maps(model, x, step=step, shifts_per_batch=spb).maps,
                                     rtol=1e-5, atol=1e-6)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=3, help="images timed per model and step (one call each)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 3])
    p.add_argument("--filter-sizes", nargs="+", default=["bin5", "none"])
    p.add_argument("--shifts-per-batch", type=int, default=16)
    p.add_argument("--against", metavar="REV", help="also time equivariance.py at this git revision")
    args = p.parse_args()
    old = load_revision(args.against) if args.against else None

    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average at start "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    images = torch.rand(args.images, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    for fs in args.filter_sizes:
        kwargs = {} if fs == "none" else {"filter_size": fs}
        model = get_model("vgg13_bn_cifar", in_channels=1, num_classes=10, width=0.125, **kwargs).eval()
        for step in args.steps:
            r = bench(model, images, step, args.shifts_per_batch, old)
            mn, mf = statistics.median(r["new"]), statistics.median(r["floor"])
            line = (f"{fs:>5} step {step} ({r['shifts']:4d} shifts): {mn:6.2f} s per image; forwards alone "
                    f"{mf:5.2f} s; maps / forwards = {mn / mf:5.1f}x")
            if old is not None:
                mo = statistics.median(r["old"])
                line += f"; at {args.against}: {mo:6.2f} s = {mo / mn:5.1f}x this (same maps: {r['same']})"
            print(line + "   runs: " + " ".join(f"{v:.2f}" for v in r["new"]), flush=True)
    print("load average at end " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
