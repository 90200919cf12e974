"""Speed of the evaluation protocols: the consistency pass against a plain accuracy pass, and the
equivariance maps in shifted images per second.

Consistency needs two forwards per image (the two shifted copies, batched into one forward of 2N),
so its floor is 2x a plain accuracy pass over the same model and data; the target is <= 2.2x (the
rest: drawing offsets, padding and cropping, the metric update). Both passes run in inference mode
on the same batches; repetitions are interleaved (accuracy, consistency, accuracy, ...) so drifting
machine load hits both alike, and the medians are compared.

Equivariance: :func:`antialias.eval.feature_distance_maps` over a grid of circular shifts; reported as
shifted images per second (``images x shifts / seconds``) with the default layers (every conv, norm,
activation and pool output, each upsampled to the input size and compared).

    python benchmarks/bench_eval.py                       # resnet20_cifar on Fashion-MNIST (or random data)
    python benchmarks/bench_eval.py --device cuda --amp bf16 --images 2048 --batch-size 256
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from antialias.eval import ConsistencyConfig, evaluate_consistency, feature_distance_maps
from antialias.models import get_model


def load_batches(images: int, batch_size: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str]:
    try:
        from antialias.data import load_dataset

        ds = load_dataset("fashion-mnist", split="test")
        x, y, source = ds.images[:images], ds.targets[:images], "fashion-mnist test"
    except (OSError, ValueError):  # not installed: random images of the same shape
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (images, 1, 28, 28), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (images,), generator=g)
        source = "random 28x28"
    x = x.float() / 255  # (N, 1, 28, 28) in [0, 1]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)], source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20_cifar")
    p.add_argument("--filter-size", default="4", help="int, name, or 'none' for the baseline")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--max-shift", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    p.add_argument("--equiv-images", type=int, default=8)
    p.add_argument("--equiv-step", type=int, default=4, help="shift grid spacing on the 32x32 padded input")
    args = p.parse_args()
    device = torch.device(args.device)
    fs = (
        None
        if args.filter_size.lower() == "none"
        else (int(args.filter_size) if args.filter_size.isdigit() else args.filter_size)
    )
    torch.manual_seed(0)
    model = get_model(args.model, filter_size=fs, in_channels=1, num_classes=10).to(device).eval()
    batches, source = load_batches(args.images, args.batch_size)
    mean, std = 0.2860, 0.3530  # Fashion-MNIST statistics; fixed so both passes do the same work

    def preprocess(x: torch.Tensor) -> torch.Tensor:
        return (x - mean) / std

    def autocast():
        if args.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16 if args.amp == "bf16" else torch.float16)

    def accuracy_pass() -> float:
        correct = 0
        with torch.inference_mode(), autocast():
            for x, y in batches:
                correct += int((model(preprocess(x.to(device))).argmax(1) == y.to(device)).sum())
        return correct / args.images

    config = ConsistencyConfig(max_shift=args.max_shift)

    def consistency() -> None:
        with autocast():
            evaluate_consistency(model, batches, config, preprocess=preprocess, device=device)

    def timed(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    accuracy_pass(), consistency()  # warm-up
    plain, cons = [], []
    for _ in range(args.reps):
        plain.append(timed(accuracy_pass))
        cons.append(timed(consistency))
    mp, mc = statistics.median(plain), statistics.median(cons)

    # Equivariance maps: 28x28 padded to 32x32 as the driver does.
    images = torch.nn.functional.pad(batches[0][0][: args.equiv_images], (2, 2, 2, 2)).to(device)
    shifts = (32 // args.equiv_step) ** 2
    with autocast():
        feature_distance_maps(model, preprocess(images[:1]), step=16, device=device)  # warm-up
        t = timed(lambda: feature_distance_maps(model, preprocess(images), step=args.equiv_step, device=device,
                                                shifts_per_batch=max(1, 64 // len(images))))
    print("command: python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]]))
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, amp {args.amp}; "
          f"{args.model} filter_size={fs}, {args.images} images ({source}), batch {args.batch_size}, {args.reps} reps")
    print(f"accuracy pass     median {mp * 1e3:8.1f} ms  ({args.images / mp:8.1f} images/s)   runs: "
          + " ".join(f"{v * 1e3:.0f}" for v in plain))
    print(f"consistency pass  median {mc * 1e3:8.1f} ms  ({args.images / mc:8.1f} images/s)   runs: "
          + " ".join(f"{v * 1e3:.0f}" for v in cons))
    print(f"consistency / accuracy = {mc / mp:.2f}x  (floor 2.00x: two forwards; target <= 2.20x: "
          f"{'met' if mc / mp <= 2.2 else 'NOT met'})")
    print(f"equivariance maps: {len(images)} images x {shifts} shifts in {t:.2f} s = "
          f"{len(images) * shifts / t:.1f} shifted images/s (default layers, step {args.equiv_step})")


if __name__ == "__main__":
    main()
