"""Speed and memory of BlurPool2d and MaxBlurPool2d against the reference formulation.

Run from the repository root::

    python benchmarks/bench_layers.py            # full: 4 shapes x 2 layouts
    python benchmarks/bench_layers.py --quick    # 1 shape, fewer repetitions

Every variant is timed in the same run, interleaved (one repetition of each in turn), and the
median is reported as a ratio to a reference measured alongside it, never as an absolute time
alone (the CPU is shared). References, written here independently of the library:

* ``ref``   the reference formulation: reflect pad ``[floor((k-1)/2), ceil((k-1)/2)]`` per axis and
  a depthwise ``conv2d`` with the full ``k x k`` outer-product kernel at stride 2; for MaxBlurPool
  ``F.max_pool2d(x, 2, 1)`` first (``tri4``).
* ``maxpool``  ``F.max_pool2d(x, 2)``, the layer MaxBlurPool replaces.
* ``clone``  ``x.clone()``, the bandwidth floor (reads and writes the input once); every row
  reports ``f+b/clone`` for ours and for the reference.
* ``adobe_*`` / ``kornia_*``  the reference package's layers (``antialiased_cnns.BlurPool`` after
  ``nn.MaxPool2d(2, 1)``) and kornia's (``kornia.filters.BlurPool2D`` / ``MaxBlurPool2D``), only
  when importable (benchmark-only: the library never imports them). Install them without their
  dependencies into a separate directory so they cannot replace torch::

      pip install --no-deps --target /tmp/bench_deps antialiased-cnns kornia kornia-rs
      PYTHONPATH=/tmp/bench_deps python benchmarks/bench_layers.py

``--compile`` adds a converted resnet18 (``antialias.models.get_model("resnet18", filter_size=4)``,
eval, batch 8 at 224x224) forward under ``torch.compile`` (Inductor, fullgraph) against eager.

Times: ``fwd`` is a forward under ``torch.no_grad()``; ``f+b`` is a forward with autograd plus the
backward of a fixed random output gradient. Memory, two measures, both excluding the input itself:

* ``held``: what autograd keeps between forward and backward: bytes of the distinct storages saved
  for backward (``torch.autograd.graph.saved_tensors_hooks``) plus the output.
* ``peak``: the peak of live CPU allocations during forward + backward, from
  ``torch.profiler`` with ``profile_memory=True`` (each op's own allocations minus frees, summed in
  start-time order; op granularity), or ``torch.cuda.max_memory_allocated`` on a GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from antialias import BlurPool2d, MaxBlurPool2d
from antialias.filters import filter_row, padding

SHAPES = [(32, 64, 56, 56), (32, 256, 28, 28), (128, 64, 32, 32), (8, 64, 112, 112)]


# --------------------------------------------------------------------------- references


def ref_blur_pool(x: torch.Tensor, k: int, stride: int = 2) -> torch.Tensor:
    row = filter_row(k).to(x.dtype)
    kernel = torch.outer(row, row).to(x.device)  # (k, k)
    before, after = padding(k)
    xp = F.pad(x, [before, after, before, after], mode="reflect")
    return F.conv2d(xp, kernel.expand(x.shape[1], 1, k, k), stride=stride, groups=x.shape[1])


def ref_max_blur_pool(x: torch.Tensor) -> torch.Tensor:
    return ref_blur_pool(F.max_pool2d(x, 2, 1), 4)


# --------------------------------------------------------------------------- measurement


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_fwd(fn, x) -> float:
    _sync(x.device)
    t = time.perf_counter()
    with torch.no_grad():
        fn(x)
    _sync(x.device)
    return time.perf_counter() - t


def _time_fb(fn, x, grad) -> float:
    x = x.detach().requires_grad_()
    _sync(x.device)
    t = time.perf_counter()
    fn(x).backward(grad)
    _sync(x.device)
    return time.perf_counter() - t


def held_bytes(fn, x) -> int:
    x = x.detach().requires_grad_()
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() != x.untyped_storage().data_ptr():
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    return sum(storages.values()) + y.untyped_storage().nbytes()


def peak_bytes(fn, x, grad) -> int:
    x = x.detach().requires_grad_()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn(x).backward(grad)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x).backward(grad)
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def third_party(channels: int, device: torch.device) -> dict:
    """The reference package's and kornia's layers, when importable (benchmark-only)."""
    out = {}
    try:
        import antialiased_cnns  # the reference implementation (Zhang's package)

        out["adobe_blur5"] = antialiased_cnns.BlurPool(channels, filt_size=5, stride=2).to(device)
        blur4 = antialiased_cnns.BlurPool(channels, filt_size=4, stride=2)
        out["adobe_maxblur"] = torch.nn.Sequential(torch.nn.MaxPool2d(2, 1), blur4).to(device)
    except ImportError:
        pass
    try:
        import kornia

        out["kornia_blur5"] = kornia.filters.BlurPool2D(kernel_size=5, stride=2).to(device)
        out["kornia_maxblur"] = kornia.filters.MaxBlurPool2D(kernel_size=4, stride=2, max_pool_size=2).to(device)
    except ImportError:
        pass
    return out


def variants(channels: int, device: torch.device) -> dict:
    out = {"clone": torch.clone, "maxpool": lambda t: F.max_pool2d(t, 2)}
    for k in (2, 3, 4, 5):
        out[f"ref_blur{k}"] = lambda t, k=k: ref_blur_pool(t, k)
        out[f"blur{k}"] = BlurPool2d(channels, k).to(device)
    out["ref_maxblur"] = ref_max_blur_pool
    out["maxblur"] = MaxBlurPool2d(2).to(device)
    out.update(third_party(channels, device))
    return out


def measure(shape, layout: str, reps: int, device: torch.device, extra: dict | None = None) -> dict:
    torch.manual_seed(0)
    x = torch.randn(shape, device=device)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    fns = variants(shape[1], device)
    fns.update(extra or {})
    grads = {}
    for name, fn in fns.items():  # warm-up (allocator, caches) and fixed output gradients
        with torch.no_grad():
            y = fn(x)
        grads[name] = torch.randn_like(y)
        _time_fb(fn, x, grads[name])
        _time_fb(fn, x, grads[name])
    fwd = {n: [] for n in fns}
    fb = {n: [] for n in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            fwd[name].append(_time_fwd(fn, x))
            fb[name].append(_time_fb(fn, x, grads[name]))
    res = {}
    for name, fn in fns.items():
        res[name] = {
            "fwd": statistics.median(fwd[name]),
            "fb": statistics.median(fb[name]),
            "held": held_bytes(fn, x),
            "peak": peak_bytes(fn, x, grads[name]),
        }
    return res


# --------------------------------------------------------------------------- report

PAIRS = [(f"blur{k}", f"ref_blur{k}") for k in (2, 3, 4, 5)] + [("maxblur", "ref_maxblur")]
EXTRA_PAIRS = [
    ("maxblur", "maxpool"),
    ("blur5", "adobe_blur5"),
    ("maxblur", "adobe_maxblur"),
    ("blur5", "kornia_blur5"),
    ("maxblur", "kornia_maxblur"),
]
NAMES = {f"blur{k}": f"BlurPool2d({k})" for k in (2, 3, 4, 5)} | {"maxblur": "MaxBlurPool2d(tri4)"}
VERSUS = {"maxpool": "F.max_pool2d(2)", "adobe_blur5": "antialiased_cnns", "adobe_maxblur": "antialiased_cnns",
          "kornia_blur5": "kornia", "kornia_maxblur": "kornia"}


def report(results: dict, layouts, shapes) -> None:
    cols = "fwd/ref  f+b/ref  f+b/clone  ref f+b/clone  held/ref  peak/ref"
    for layout in layouts:
        print(f"\n## {layout}: ratios ours / reference formulation (lower is better), medians of the run")
        print(f"{'op':<20} {'shape':<18} {cols}")
        summary = {}
        present = results[(shapes[0], layout)]
        for ours, ref in PAIRS + [pair for pair in EXTRA_PAIRS if pair[1] in present]:
            rows = []
            for shape in shapes:
                r = results[(shape, layout)]
                o, f, c = r[ours], r[ref], r["clone"]
                row = (
                    o["fwd"] / f["fwd"],
                    o["fb"] / f["fb"],
                    o["fb"] / c["fb"],
                    f["fb"] / c["fb"],
                    o["held"] / f["held"],
                    o["peak"] / max(f["peak"], 1),
                )
                rows.append(row)
                label = NAMES[ours] + (f" vs {VERSUS[ref]}" if ref in VERSUS else "")
                print(f"{label:<20} {tuple(shape)!s:<18} " + "  ".join(f"{v:7.2f}" for v in row))
            summary[(ours, ref)] = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(f"\n### {layout}: median over shapes")
        print(f"{'op':<40} {cols}")
        for (ours, ref), med in summary.items():
            label = NAMES[ours] + (f" vs {VERSUS[ref]}" if ref in VERSUS else "")
            print(f"{label:<40} " + "  ".join(f"{v:7.2f}" for v in med))
        mb = summary[("maxblur", "ref_maxblur")]
        b5 = summary[("blur5", "ref_blur5")]
        need_mb, need_b5 = (5.0, 2.5) if layout == "contiguous" else (2.0, 1.8)
        print(
            f"targets: MaxBlurPool2d f+b/clone {mb[2]:.2f} (<= 2.5), speed-up {1 / mb[1]:.2f}x (>= {need_mb}x), "
            f"peak {mb[5]:.2f} (<= 0.5), held {mb[4]:.2f}; "
            f"BlurPool2d(bin5) f+b speed-up {1 / b5[1]:.2f}x (>= {need_b5}x)"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 5 repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--shapes", type=int, default=None, help="only the first N shapes")
    parser.add_argument("--compile", action="store_true", help="also: converted resnet18, torch.compile vs eager")
    parser.add_argument("--compile-only", action="store_true", help="only the torch.compile comparison")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shapes = SHAPES[: args.shapes or (1 if args.quick else len(SHAPES))]
    reps = args.reps or (5 if args.quick else 15)
    layouts = ("contiguous", "channels_last")
    from antialias import _kernels

    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"reps {reps}, float32; load average {_load()}; {_kernels.backend_description()}"
    )
    print(f"third-party layers: {sorted(third_party(4, device)) or 'none importable'}")
    if args.compile_only:
        compile_resnet(device, reps)
        return
    results = {}
    for shape in shapes:
        for layout in layouts:
            t = time.perf_counter()
            results[(shape, layout)] = measure(shape, layout, reps, device)
            r = results[(shape, layout)]
            print(
                f"measured {shape} {layout} in {time.perf_counter() - t:.0f} s; clone f+b "
                f"{r['clone']['fb'] * 1e3:.1f} ms, ref MaxBlurPool f+b {r['ref_maxblur']['fb'] * 1e3:.1f} ms, "
                f"ours {r['maxblur']['fb'] * 1e3:.1f} ms",
                flush=True,
            )
    report(results, layouts, shapes)
    if args.compile:
        compile_resnet(device, reps)
    print(f"load average at the end {_load()} ({os.cpu_count()} CPUs)")


def compile_resnet(device: torch.device, reps: int) -> None:
    """Converted resnet18 forward (eval, batch 8, 224x224): torch.compile (Inductor) vs eager,
    interleaved medians. Compile time is reported, not counted."""
    from antialias.models import get_model

    torch.manual_seed(0)
    model = get_model("resnet18", filter_size=4).to(device).eval()
    x = torch.randn(8, 3, 224, 224, device=device)
    t = time.perf_counter()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        compiled(x)
    compile_s = time.perf_counter() - t
    fns = {"eager": model, "compiled": compiled}
    times = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn(x)
        for _ in range(max(reps, 5)):
            for name, fn in fns.items():
                times[name].append(_time_fwd(fn, x))
    eager, comp = statistics.median(times["eager"]), statistics.median(times["compiled"])
    print(
        f"\n## converted resnet18 forward (eval, 8x3x224x224): eager {eager * 1e3:.1f} ms, "
        f"compiled {comp * 1e3:.1f} ms, "
        f"compiled/eager {comp / eager:.2f} (target <= 1.0); compile {compile_s:.0f} s; load {_load()}"
    )


def _load() -> str:
    """1/5/15-minute load averages: the ratios are only comparable on a similarly loaded machine."""
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # not available on this platform
        return "n/a"


if __name__ == "__main__":
    main()
