"""Time and peak memory of one training step (forward, backward, SGD step): anti-aliased vs baseline.

Models: resnet18 and resnet50 (224x224 batch 16; 64x64 batch 64) and the CIFAR VGG13-bn (32x32 batch
128), each as the baseline (``filter_size=None``: torchvision layout, strided convolutions) and
anti-aliased (``filter_size=4``). Repetitions are interleaved (baseline, anti-aliased, baseline, ...)
so drifting machine load hits both alike; the table shows medians and the anti-aliased/baseline
ratio from the same run, against the targets (issue 9: resnet50 <= 1.2x time, <= 1.1x memory;
resnet18 <= 1.35x, <= 1.5x).

Memory. GPU: ``torch.cuda.max_memory_allocated`` over the step. CPU: the rise of the peak resident
set size over the step (Linux: ``/proc/self/clear_refs`` resets the peak), measured after a warm-up
step so that weights, gradients and momentum buffers are already resident; each variant runs in a
fresh process with ``MALLOC_MMAP_THRESHOLD_`` set so freed activations go back to the system.

    python benchmarks/bench_train.py --quick          # 3 repetitions, CPU (and GPU when present)
    python benchmarks/bench_train.py --reps 7 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

CASES = [  # (model, image size, batch, num_classes)
    ("resnet18", 224, 16, 1000),
    ("resnet18", 64, 64, 1000),
    ("resnet50", 224, 16, 1000),
    ("resnet50", 64, 64, 1000),
    ("vgg13_bn_cifar", 32, 128, 10),
]
TARGETS = {"resnet50": (1.2, 1.1), "resnet18": (1.35, 1.5)}
VARIANTS = (("baseline", None), ("antialiased", 4))


def _build(name, filter_size, size, batch, num_classes, device):
    from antialias.models import get_model

    torch.manual_seed(0)
    model = get_model(name, filter_size=filter_size, num_classes=num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    return model, opt, x, y


def _step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _memory_child(name, filter_size, size, batch, num_classes):
    """Runs in a fresh process: CPU peak-RSS rise (MiB) over one step after a warm-up step."""
    model, opt, x, y = _build(name, filter_size, size, batch, num_classes, torch.device("cpu"))
    _step(model, opt, x, y)
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM (peak RSS) to the current RSS
    _step(model, opt, x, y)
    print(json.dumps((_rss_kib("VmHWM") - before) / 1024))


def cpu_memory(name, filter_size, size, batch, num_classes, threads):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(threads))
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import bench_train as b; "
            f"b._memory_child({name!r}, {filter_size!r}, {size}, {batch}, {num_classes})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def gpu_memory(model, opt, x, y, device):
    _step(model, opt, x, y)
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    _step(model, opt, x, y)
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - start) / 2**20


def bench_case(case, device, reps):
    name, size, batch, classes = case
    built = {v: _build(name, fs, size, batch, classes, device) for v, fs in VARIANTS}
    for v in built:  # warm-up (allocator, momentum buffers, cuDNN choices)
        _step(*built[v])
    _sync(device)
    times = {v: [] for v in built}
    for _ in range(reps):
        for v in built:
            _sync(device)
            t = time.perf_counter()
            _step(*built[v])
            _sync(device)
            times[v].append(time.perf_counter() - t)
    if device.type == "cuda":
        mem = {v: gpu_memory(*built[v], device) for v in built}
    else:
        del built
        mem = {v: cpu_memory(name, fs, size, batch, classes, torch.get_num_threads()) for v, fs in VARIANTS}
    return {v: (statistics.median(times[v]), mem[v]) for v in times}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 repetitions")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CPU, and also CUDA when present")
    p.add_argument("--only", nargs="*", default=None, help="model names to run (default: all)")
    p.add_argument("--sizes", nargs="*", type=int, default=None, help="input sizes to run (default: all)")
    args = p.parse_args(argv)
    reps = 3 if args.quick else args.reps
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    from antialias import _kernels

    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {reps} interleaved repetitions, medians; "
          f"load average {load}; {_kernels.backend_description()}")
    print(f"{'device':6} {'model':15} {'input':>8} {'batch':>5} | {'base s':>8} {'aa s':>8} {'time x':>7} | "
          f"{'base MiB':>9} {'aa MiB':>9} {'mem x':>6} | target")
    for dev in devices:
        device = torch.device(dev)
        for case in CASES:
            if (args.only and case[0] not in args.only) or (args.sizes and case[1] not in args.sizes):
                continue
            r = bench_case(case, device, reps)
            (tb, mb), (ta, ma) = r["baseline"], r["antialiased"]
            tgt = TARGETS.get(case[0])
            tx, mx = ta / tb, (ma / mb if mb > 0 else float("nan"))
            verdict = "" if tgt is None else (f"<= {tgt[0]}x / {tgt[1]}x: "
                                              + ("time ok" if tx <= tgt[0] else "time OVER") + ", "
                                              + ("mem ok" if mx <= tgt[1] else "mem OVER"))
            print(f"{dev:6} {case[0]:15} {case[1]:>4}x{case[1]:<3} {case[2]:>5} | {tb:8.3f} {ta:8.3f} {tx:7.2f} | "
                  f"{mb:9.1f} {ma:9.1f} {mx:6.2f} | {verdict}", flush=True)
    print("load average at the end " + "/".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
