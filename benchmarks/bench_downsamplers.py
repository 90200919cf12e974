"""Speed of the downsamplers of :mod:`antialias.downsample` against the ops they replace and ``x.clone()``.

Run from the repository root::

    python benchmarks/bench_downsamplers.py             # 2 shapes, 15 repetitions
    python benchmarks/bench_downsamplers.py --quick     # 1 shape, 7 repetitions
    python benchmarks/bench_downsamplers.py --device cuda

Every variant is timed in the same run, interleaved (one repetition of each in turn, after two warm-up
rounds), and the median is reported as a ratio to floors measured alongside it, never as an absolute time
alone (the machine is shared):

* ``clone``     ``x.clone()`` forward and backward: the bandwidth floor (reads and writes the input once);
* ``subsample`` ``x[:, :, ::2, ::2].contiguous()``: plain stride-2 subsampling, what a strided conv does;
* ``maxpool``   ``F.max_pool2d(x, 2)``: the strided pool the samplers replace.

``fwd`` is a forward under ``torch.no_grad()``; ``f+b`` a forward with autograd plus the backward of a
fixed random output gradient. The load average is printed before and after (a busy machine inflates
every ratio's spread, not the ratios themselves).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from antialias import BlurPool2d
from antialias.downsample import (
    AdaptiveDownsample2d,
    APS2d,
    BlurUpsample2d,
    IdealDownsample2d,
    LPS2d,
)

SHAPES = [(32, 64, 56, 56), (128, 64, 32, 32)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_fwd(fn: Callable, x: torch.Tensor) -> float:
    _sync(x.device)
    t = time.perf_counter()
    with torch.no_grad():
        fn(x)
    _sync(x.device)
    return time.perf_counter() - t


def _time_fb(fn: Callable, x: torch.Tensor, grads: dict) -> float:
    x = x.detach().requires_grad_()
    _sync(x.device)
    t = time.perf_counter()
    out = fn(x)
    key = tuple(out.shape)
    if key not in grads:
        grads[key] = torch.randn_like(out)
    out.backward(grads[key])
    _sync(x.device)
    return time.perf_counter() - t


def variants(c: int, device: torch.device) -> dict[str, Callable]:
    aps = APS2d(c, 2).to(device)
    aps_blur = APS2d(c, 2, filter_size=3).to(device)
    lps = LPS2d(c, 2).to(device)
    lps_train = LPS2d(c, 2).to(device).train()
    lps.eval()
    ideal = IdealDownsample2d(c, 2).to(device)
    adaptive = AdaptiveDownsample2d(c, 2).to(device)
    blurpool = BlurPool2d(c, 4, 2).to(device)
    up = BlurUpsample2d(2).to(device)
    return {
        "clone": lambda x: x.clone(),
        "subsample": lambda x: x[:, :, ::2, ::2].contiguous(),
        "maxpool": lambda x: F.max_pool2d(x, 2),
        "blurpool (bin4)": blurpool,
        "aps": aps,
        "aps + blur 3": aps_blur,
        "lps (eval)": lps,
        "lps (train)": lps_train,
        "ideal": ideal,
        "adaptive (k=3)": adaptive,
        "blur upsample x2 (of x/2)": lambda x: up(x[:, :, ::2, ::2]),
    }


def run(shape: tuple[int, ...], device: torch.device, reps: int, layout: str) -> dict[str, tuple[float, float]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    fns = variants(shape[1], device)
    fwd: dict[str, list[float]] = {k: [] for k in fns}
    fb: dict[str, list[float]] = {k: [] for k in fns}
    grads: dict = {}
    for r in range(reps + 2):
        for name, fn in fns.items():  # interleaved: one repetition of each in turn
            tf = _time_fwd(fn, x)
            tb = _time_fb(fn, x, grads)
            if r >= 2:  # two warm-up rounds
                fwd[name].append(tf)
                fb[name].append(tb)
    return {k: (statistics.median(fwd[k]), statistics.median(fb[k])) for k in fns}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 7 repetitions")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--layouts", default="contiguous,channels_last")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    reps = args.reps or (7 if args.quick else 15)
    shapes = SHAPES[:1] if args.quick else SHAPES
    print(f"command: python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, {platform.machine()}, device {device}, threads {torch.get_num_threads()}, "
          f"reps {reps} (median)")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for layout in args.layouts.split(","):
        for shape in shapes:
            res = run(shape, device, reps, layout)
            clone_fb, clone_f = res["clone"][1], res["clone"][0]
            pool_fb, sub_fb = res["maxpool"][1], res["subsample"][1]
            print(f"\nshape {shape}, {layout}: ratios of medians (lower is faster)")
            print("| layer | fwd / clone fwd | f+b / clone f+b | f+b / maxpool f+b | f+b / subsample f+b |")
            print("|---|---|---|---|---|")
            for name, (tf, tb) in res.items():
                print(f"| {name} | {tf / clone_f:.2f} | {tb / clone_fb:.2f} | {tb / pool_fb:.2f} | {tb / sub_fb:.2f} |")
            print(f"(clone f+b median {clone_fb * 1e3:.2f} ms)")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
