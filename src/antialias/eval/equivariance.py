"""Internal shift-equivariance: per-layer feature distance maps (Zhang, ICML 2019, VGG13-bn on CIFAR).

For each chosen layer ``F_l`` and each circular shift ``(dh, dw)`` of the input ``X``, the distance
between ``Shift(F_l(X))`` and ``F_l(Shift(X))``, averaged over positions and images. Feature maps
smaller than the input are first upsampled to the input size by the author's recursive 2x circular
interpolation, per axis ``(A, B, C, D) -> (A, (A+B)/2, B, (B+C)/2, C, (C+D)/2, D, (D+A)/2)``, so a
shift of the input is a shift of every map. Max-pools are split into the dense (stride-1, circular)
max and the pool's output, as in the paper's figure.

The distance (not published) is a parameter: ``"cosine"`` (default; 1 - cosine similarity of the
channel vectors at each position) or ``"l2"`` (``|a - b| / (|a| + |b|)`` per position, in [0, 1]).
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from antialias.eval._equivariance_distances import (
    _direct_distances,
    _gram_bytes_per_shift,
    _gram_distances,
    _gram_is_cheaper,
    _gram_matrices,
    _interpolation_matrix,
    _rolled_interpolation,
)
from antialias.layers import _BlurPoolNd, _MaxBlurPoolNd

__all__ = ["EquivarianceResult", "circular_upsample", "default_layers", "feature_distance_maps", "rss_bytes"]

DISTANCES = ("cosine", "l2")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Mish, nn.Tanh, nn.Sigmoid)


def circular_upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample ``(N, C, h, w)`` to ``size`` by circular linear interpolation.

    For power-of-two factors this equals the author's recursive 2x scheme
    ``(A, B, ...) -> (A, (A+B)/2, B, ...)`` exactly (midpoints of a piecewise-linear periodic
    signal lie on it), computed in one pass per axis; other integer factors interpolate the same way.

    Examples:
        >>> circular_upsample(torch.tensor([[[[0., 2., 4., 6.]]]]), (1, 8))
        tensor([[[[0., 1., 2., 3., 4., 5., 6., 3.]]]])
    """
    h, w = x.shape[-2:]
    if size[0] % h or size[1] % w:
        raise ValueError(
            f"`circular_upsample`: a feature map of size {h}x{w} cannot be upsampled to {size[0]}x{size[1]} by "
            "an integer factor. Use an input size that is a power-of-two multiple of every layer's size "
            "(e.g. 32x32: pad 28x28 images by 2)."
        )
    if (h, w) == tuple(size):
        return x
    # Two small GEMMs with the (size, n) interpolation matrices: ~2x faster than F.interpolate here.
    rows = _interpolation_matrix(h, size[0], x.dtype, x.device)  # (H, h)
    cols = _interpolation_matrix(w, size[1], x.dtype, x.device)  # (W, w)
    return rows @ x @ cols.T


def default_layers(model: nn.Module) -> list[str]:
    """Names of every conv, norm, activation and pooling module, in module order."""
    kinds = (nn.Conv2d, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, *_ACTIVATIONS,
             nn.MaxPool2d, nn.AvgPool2d, _BlurPoolNd, _MaxBlurPoolNd)
    return [name for name, module in model.named_modules() if name and isinstance(module, kinds)]


def _dense_max(module: nn.Module, x: Tensor) -> Tensor | None:
    """The stride-1 circular max of a max-pool's input (the first half of the paper's split)."""
    if not isinstance(module, (nn.MaxPool2d, _MaxBlurPoolNd)):
        return None
    k = module.kernel_size
    kh, kw = (k, k) if isinstance(k, int) else k
    if (kh, kw) == (1, 1):
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, kw - 1, 0, kh - 1), mode="circular")  # (N, C, H + kh - 1, W + kw - 1)
    # Separable running max over shifted views: ~10x faster than F.max_pool2d(padded, (kh, kw), 1) on CPU,
    # which computes indices too (torch.profiler, vgg13_bn_cifar at 32x32); the same values.
    rows = padded[..., :h, :]
    for a in range(1, kh):
        rows = torch.maximum(rows, padded[..., a:a + h, :])
    out = rows[..., :w]
    for b in range(1, kw):
        out = torch.maximum(out, rows[..., b:b + w])
    return out


def _distance(a: Tensor, b: Tensor, norm_a: Tensor, norm_b: Tensor, kind: str) -> Tensor:
    """Mean over positions of the per-position distance of ``(N, C, H, W)`` maps -> ``(N,)``.

    ``norm_a``, ``norm_b``: the channel norms ``(N, H, W)``, computed once by the caller.
    """
    eps = 1e-8
    if kind == "cosine":
        d = 1 - (a * b).sum(1) / (norm_a * norm_b).clamp_min(eps)
        # Two all-zero vectors (common after ReLU) are identical: distance 0, not 1.
        d = d.masked_fill((norm_a < eps) & (norm_b < eps), 0.0)
    else:
        d = (a - b).norm(dim=1) / (norm_a + norm_b).clamp_min(eps)
    return d.flatten(1).mean(1)


@dataclass
class EquivarianceResult:
    """Distance maps: ``maps[l, i, j]`` for layer ``layers[l]`` and shift ``(shifts_h[i], shifts_w[j])``."""

    layers: list[str]
    maps: Tensor  # (L, Sh, Sw)
    shifts_h: list[int]
    shifts_w: list[int]
    distance: str
    num_images: int
    kinds: list[str]  # what each layer is: the module's class name, or "dense max"

    @property
    def means(self) -> dict[str, float]:
        return {name: float(m.mean()) for name, m in zip(self.layers, self.maps, strict=True)}

    def to_dict(self) -> dict:
        return {
            "layers": self.layers, "maps": self.maps.tolist(), "shifts_h": self.shifts_h, "shifts_w": self.shifts_w,
            "distance": self.distance, "num_images": self.num_images, "means": self.means, "kinds": self.kinds,
        }


def rss_bytes() -> int | None:
    """This process's resident memory now (Linux ``/proc/self/statm``), None where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@dataclass
class _Plan:
    """How a run fits in memory: shifts per forward, channels per upsampling step, forwards whose maps are
    compared together, the bytes it expects."""

    shifts_per_batch: int
    channels_per_step: int
    peak_bytes: int
    base_bytes: int
    forwards_per_reduction: int = 1


# Shifted images whose maps are compared in one go when memory allows (several forwards' maps kept): ~25%
# faster than 16 at a time for vgg13_bn_cifar at 32x32 (fewer, larger operations), 128 slower again (cache).
_REDUCTION_IMAGES = 64


def _plan(budget: int | None, baseline: int, base_bytes: int, act_bytes: int, channels: int, m: int, hw: int,
          n_shifts: int, requested: int | None) -> _Plan:
    """Shifts per forward ``B`` and channels per step ``cc`` so that the run's peak stays under ``budget``.

    Per shifted image the forward holds about 5 activations of the largest layer (``act_bytes``: input,
    output, a temporary, and a max-pool's padded input and dense max) and 4 accumulators of ``hw``
    floats; a step upsamples ``cc`` channels of the ``B * M`` shifted maps and of the ``M`` base maps,
    each with an intermediate of at most its size, plus a rolled copy and a product per shift of the
    ``M`` images. Half of what is left after ``baseline`` (the process now) and the base maps goes to
    each. (Measured: resnet18, 4 images at 224x224, ``budget`` 4 GiB: see the equivariance tests.) What is
    still left keeps the maps of several forwards (up to ``_REDUCTION_IMAGES`` shifted images) so that they
    are compared together.
    """
    per_image = 5 * act_bytes + 4 * 4 * hw
    def step_bytes(b: int) -> int:  # one upsampled channel of everything a step holds
        return (2 * b * m + 4 * m) * 4 * hw

    if budget is None:
        b = min(n_shifts, requested or 8)
        cc = channels
    else:
        room = budget - baseline - base_bytes
        if room < m * per_image + step_bytes(1):
            raise MemoryError(room)
        b = max(1, min(n_shifts, int(room / 2) // (m * per_image)))
        if requested is not None:
            b = min(b, requested)
        cc = max(1, min(channels, (room - b * m * per_image) // step_bytes(b)))
    # Then as many forwards per reduction as fit beside that: their maps (base_bytes per shift) are kept until
    # compared, and the comparison's step grows with the shifts it holds.
    r = 1
    max_r = max(1, min(_REDUCTION_IMAGES // (b * m), math.ceil(n_shifts / b)))

    def extra(r: int) -> int:
        return (r * b * base_bytes if r > 1 else 0) + step_bytes(r * b) * cc

    while r < max_r and (budget is None or baseline + base_bytes + b * m * per_image + extra(r + 1) <= budget):
        r += 1
    peak = baseline + base_bytes + b * m * per_image + extra(r)
    return _Plan(b, cc, peak, base_bytes, r)


def feature_distance_maps(
    model: nn.Module,
    images: Tensor,
    *,
    layers: Sequence[str] | None = None,
    step: int = 1,
    distance: str = "cosine",
    shifts_per_batch: int | None = None,
    split_max: bool = True,
    device: torch.device | str = "cpu",
    max_memory_gib: float | None = 4.0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> EquivarianceResult:
    """Feature distance between ``Shift(F_l(X))`` and ``F_l(Shift(X))`` for every shift on a grid.

    Memory stays bounded whatever the input size: the unshifted maps are kept at their own resolution,
    the shifts are streamed in batches, and each layer's distance is reduced as its maps arrive (those of
    a few forwards together when memory allows), upsampling a few channels at a time (never all layers'
    upsampled maps at once); small maps are compared through their channel Gram matrices without being
    upsampled at all (:mod:`antialias.eval._equivariance_distances`; the same numbers). How many shifts go
    through one forward, how many channels are upsampled per step and how many forwards are compared
    together are chosen from ``max_memory_gib`` after one forward of the unshifted images; ``log`` receives
    that plan and an estimate of the time (from that forward, which also measures the zero shift) before
    the shifts start.

    A module called several times in one forward (a shared activation) gives one map per call, named
    ``"<layer>#1"``, ``"<layer>#2"``...; a module called once keeps its name.

    Args:
        model: Any network; hooks read the outputs of the named modules.
        images: ``(M, C, H, W)`` inputs, already preprocessed as the model expects.
        layers: Module names (default :func:`default_layers`); unknown names get suggestions.
        step: Grid spacing of the shifts ``(dh, dw)`` in ``{0, step, 2 step, ...} < (H, W)``; 1 is
            every shift (the paper's 32x32 maps).
        distance: ``"cosine"`` or ``"l2"`` (see the module docstring).
        shifts_per_batch: At most this many shifted copies of all M images per forward (default: as
            many as fit in ``max_memory_gib``).
        split_max: Also record each max-pool's dense max (named ``"<layer>.densemax"``).
        device: Where to run.
        max_memory_gib: Peak memory (GiB) of the process the run plans for (the process's own memory
            included, on the CPU; on CUDA the same bound applies to the tensors); None: no bound.
        progress: Show a progress bar (tqdm) on stderr.
        log: Called with one line: the plan and the estimate.

    Returns:
        An :class:`EquivarianceResult` with one map per recorded layer call, in forward order.

    Raises:
        ValueError: bad arguments, or ``max_memory_gib`` too small for even one shift at a time.
    """
    where = "feature_distance_maps"
    if distance not in DISTANCES:
        raise ValueError(f"`{where}`: `distance` must be one of {DISTANCES}, got {distance!r}.")
    if images.ndim != 4:
        raise ValueError(f"`{where}`: `images` must be (M, C, H, W), got shape {tuple(images.shape)}.")
    if max_memory_gib is not None and (isinstance(max_memory_gib, bool) or not max_memory_gib > 0):
        raise ValueError(f"`{where}`: `max_memory_gib` must be a positive number or None, got {max_memory_gib!r}.")
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else default_layers(model)
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(f"`{where}`: no layer named {name!r}." + (f" Did you mean {close}?" if close else ""))
    h, w = images.shape[-2:]
    if not 1 <= step <= min(h, w):
        raise ValueError(f"`{where}`: `step` must be in 1..{min(h, w)}, got {step!r}.")
    shifts = [(dh, dw) for dh in range(0, h, step) for dw in range(0, w, step)]
    m = images.shape[0]

    base: dict[tuple[str, int, bool], Tensor] = {}  # (module, call, dense max) -> (M, C, h', w') at its own size
    order: list[tuple[str, int, bool]] = []
    calls: dict[str, int] = {}
    totals: dict[tuple[str, int, bool], Tensor] = {}  # -> (len(shifts),)
    # The unshifted forward upsamples at most ~256 MiB at a time; the plan sets the step for the shifts.
    state: dict[str, Any] = {"chunk": [(0, 0)], "first": 0, "channels": max(1, 2**28 // (6 * m * h * w * 4)),
                             "rolls": {}, "keep": False}
    kept: dict[tuple[str, int, bool], Tensor] = {}  # maps of the forwards not yet compared
    group: list[tuple[int, list[tuple[int, int]]]] = []  # (first index, shifts) of those forwards

    def reduce(key: tuple[str, int, bool], feats: Tensor, chunk: list[tuple[int, int]], first: int) -> None:
        """Distances of ``feats`` ``(B*M, C, h', w')`` (the shifted copies ``chunk``) to the shifted base maps."""
        ref = base[key]  # (M, C, h', w')
        b, c = len(chunk), ref.shape[1]
        cc = min(c, state["channels"])
        hf, wf = ref.shape[-2:]
        step_bytes = (2 * b * m + 4 * m) * 4 * h * w * state["channels"]  # what the plan lets one step hold
        per_shift = _gram_bytes_per_shift(m, c, (hf, wf), (h, w))
        rolls = state["rolls"]  # what depends only on the shifts and a map size, for these shifts
        # At most _REDUCTION_IMAGES shifted images per call: larger calls spill the cache (16 images at 32x32:
        # 256 per call took 1.8x as long as 64).
        per_call = max(1, _REDUCTION_IMAGES // m)
        if _gram_is_cheaper(c, (hf, wf), (h, w)) and per_shift <= step_bytes:
            sub = max(1, min(per_call, step_bytes // per_shift))
            if ("gram", hf, wf) not in rolls:  # shared by the layers of this size
                rolls["gram", hf, wf] = _gram_matrices(chunk, (hf, wf), (h, w), ref.device)
            mats = rolls["gram", hf, wf]
            d = torch.cat([_gram_distances(feats[lo * m:(lo + sub) * m], ref,
                                           tuple(t[lo:lo + sub] for t in mats[:4]) + mats[4:], distance)
                           for lo in range(0, b, sub)])
        else:
            if (hf, wf) not in rolls:
                rolls[hf, wf] = _rolled_interpolation(chunk, (hf, wf), (h, w), ref.device)
            rows, cols = rolls[hf, wf]
            d = torch.cat([_direct_distances(feats[lo * m:(lo + per_call) * m], ref,
                                             (rows[lo:lo + per_call], None if cols is None else cols[lo:lo + per_call]),
                                             (h, w), cc, distance)
                           for lo in range(0, b, per_call)])
        totals[key][first:first + b] = d.cpu()

    def record(key: tuple[str, int, bool], out: Tensor) -> None:
        if state["first"] == 0:  # the unshifted forward
            if key not in base:
                base[key] = out.detach().float().clone()
                order.append(key)
                totals[key] = torch.zeros(len(shifts))
            reduce(key, out.detach(), state["chunk"], 0)
        elif state["keep"]:  # compared with the next forwards' maps; a copy, as later modules may work in place
            lo = (state["first"] - group[0][0]) * m  # this forward's place among the kept ones
            if key not in kept:  # one buffer per map for the whole run, (forwards * B * M, C, h', w')
                kept[key] = out.new_empty((state["keep"] * out.shape[0], *out.shape[1:]), dtype=torch.float32)
            kept[key][lo:lo + out.shape[0]].copy_(out.detach())
        else:
            reduce(key, out.detach(), state["chunk"], state["first"])

    def flush() -> None:
        """Compare the kept maps of the forwards since the last flush."""
        if not group:
            return
        chunk = [shift for _, part in group for shift in part]
        state["rolls"] = {}
        for key, maps in kept.items():
            reduce(key, maps[:len(chunk) * m], chunk, group[0][0])
        group.clear()

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            call = calls.get(name, 0)
            calls[name] = call + 1
            if split_max and (dense := _dense_max(module, inputs[0])) is not None:
                record((name, call, True), dense)
            record((name, call, False), output)
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    model = model.to(device).eval()
    images = images.to(device)
    try:
        with torch.inference_mode():
            baseline = rss_bytes() or 0
            start = time.perf_counter()
            model(images)  # the unshifted maps, and the zero shift's distances (exactly 0 up to rounding)
            seconds = time.perf_counter() - start
            base_bytes = sum(t.numel() * t.element_size() for t in base.values())
            act = max((t[:1].numel() * 4 for t in base.values()), default=0)
            channels = max((t.shape[1] for t in base.values()), default=1)
            budget = None if max_memory_gib is None else int(max_memory_gib * 2**30)
            try:
                plan = _plan(budget, baseline, base_bytes, act, channels, m, h * w, len(shifts), shifts_per_batch)
            except MemoryError:
                raise ValueError(
                    f"`{where}`: `max_memory_gib` must leave room for one shift of {m} images at {h}x{w} (the "
                    f"process holds {baseline / 2**30:.2f} GiB and the unshifted maps {base_bytes / 2**30:.2f} GiB), "
                    f"got {max_memory_gib!r}. Raise it, or measure fewer images or layers."
                ) from None
            state["channels"] = plan.channels_per_step
            # forwards whose maps are kept and compared together; 0: each forward's maps compared in its hooks
            state["keep"] = plan.forwards_per_reduction if plan.forwards_per_reduction > 1 else 0
            rest = shifts[1:]
            if log is not None:
                batches = math.ceil(len(rest) / plan.shifts_per_batch)
                log(f"{len(order)} maps x {len(shifts)} shifts (step {step}) x {m} images at {h}x{w}: "
                    f"{plan.shifts_per_batch} shifts per forward, {plan.channels_per_step} channels per upsampling "
                    f"step, {plan.forwards_per_reduction} forwards per comparison; planned peak "
                    f"{plan.peak_bytes / 2**30:.2f} GiB"
                    + (f" (limit {max_memory_gib:g} GiB)" if max_memory_gib is not None else "")
                    + f"; about {_duration(seconds * len(rest))} at most ({batches} forwards, "
                    f"{seconds:.2f} s per shift of all images)")
            bar = tqdm(total=len(shifts), initial=1, disable=not progress, file=sys.stderr, unit="shift",
                       desc="equivariance", dynamic_ncols=True)
            with bar:
                for lo in range(0, len(rest), plan.shifts_per_batch):
                    chunk = rest[lo:lo + plan.shifts_per_batch]
                    state.update(chunk=chunk, first=1 + lo, rolls={})
                    calls.clear()
                    if state["keep"]:
                        group.append((1 + lo, chunk))
                    model(torch.cat([images.roll(shift, (-2, -1)) for shift in chunk]))  # (B*M, C, H, W)
                    if len(group) == state["keep"]:
                        flush()
                    bar.update(len(chunk))
                flush()
    finally:
        for handle in handles:
            handle.remove()
    labels = _labels(order, modules)
    grid_h, grid_w = list(range(0, h, step)), list(range(0, w, step))
    maps = torch.stack([totals[k] for k in order]).view(len(order), len(grid_h), len(grid_w)) if order else \
        torch.zeros(0, len(grid_h), len(grid_w))
    return EquivarianceResult([lab for lab, _ in labels], maps, grid_h, grid_w, distance, m,
                              [kind for _, kind in labels])


def _labels(order: list[tuple[str, int, bool]], modules: dict[str, nn.Module]) -> list[tuple[str, str]]:
    """``(name, kind)`` per recorded map: ``layer``, or ``layer#k`` for the k-th call of a module called more
    than once; ``.densemax`` for the dense max of a max-pool."""
    count: dict[str, int] = {}
    for name, call, _ in order:
        count[name] = max(count.get(name, 0), call + 1)
    out = []
    for name, call, dense in order:
        label = f"{name}#{call + 1}" if count[name] > 1 else name
        out.append((label + ".densemax", "dense max") if dense else (label, type(modules[name]).__name__))
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
