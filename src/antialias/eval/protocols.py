"""The evaluation protocols end to end: resolve a model and data, run a metric, write the results.

:func:`run_consistency`, :func:`run_stability` and :func:`run_equivariance` are what ``antialias eval
consistency|stability|equivariance`` calls. Each takes the model as a zoo name (+ ``filter_size``,
``weights``), a user's ``module:factory``, a ``checkpoint`` (a run directory of ``antialias train`` or
one of our ``.safetensors`` files) or an ``nn.Module``, and the data as a spec of
:func:`antialias.data.load_dataset` (see :mod:`antialias.eval._resolve` for the rules, normalisation
included). Each returns the results record (a JSON-ready dict, see :mod:`antialias.eval._results`)
and, given ``out="name.json"``, writes it, plus ``name.png`` (stability curves, equivariance
heatmaps) and ``name.npz`` (their arrays). Existing files are never replaced unless ``overwrite``.

Speed: every shifted copy of a batch goes through the model in one forward, in inference mode,
optionally under autocast (``amp="bf16"`` or ``"fp16"``, the latter on CUDA only).

Sharding under ``torchrun --nproc_per_node=W``: rank ``r`` evaluates a contiguous range of whole
batches (batches ``[B r / W, B (r+1) / W)`` of the ``B`` batches of the set), and the random offsets
of batch ``b`` in pass ``p`` come from a generator seeded with ``(seed, p, b)``. So every image gets
the same shifts whatever ``W`` is, the consistency counts (torchmetrics states, summed across
ranks) equal those of one process exactly, stability's per-image arrays are gathered in order, and
equivariance maps (means over images) are merged weighted by each rank's image count. The offsets
depend on ``batch_size`` (a batch's offsets are drawn together); record it (the results file does).

Examples:
    >>> shard_range(10, 4, rank=1, world_size=2)  # 10 images, batches of 4: batches 0..2, rank 1 gets 1..2
    (4, 10, 1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.data import make_loader
from antialias.data.seeding import derived_seed
from antialias.data.spec import head as _head
from antialias.eval._resolve import _UNSET, make_preprocess, pick_normalization, resolve_data, resolve_model
from antialias.eval._results import FORMAT, FORMAT_VERSION, check_outputs, environment, utc_now, write_json, write_npz
from antialias.eval._stats import Proportion
from antialias.eval.consistency import ConsistencyConfig, ShiftConsistency, make_copies
from antialias.eval.corruption import CORRUPTIONS, evaluate_corruptions
from antialias.eval.equivariance import default_layers, feature_distance_maps
from antialias.eval.perturbation import GENERATED_PERTURBATIONS, evaluate_perturbations
from antialias.eval.stability import diagonal_stability
from antialias.report.eval_figures import (
    corruption_errors,
    feature_distance_heatmaps,
    perturbation_flips,
    stability_curves,
)
from antialias.runs import distributed as D

__all__ = [
    "AMP_CHOICES",
    "batch_seed",
    "consistency_pass",
    "run_consistency",
    "run_corruption",
    "run_equivariance",
    "run_perturbation",
    "run_stability",
    "shard_range",
]

AMP_CHOICES = ("none", "bf16", "fp16")


# ------------------------------------------------------------------------------ sharding, seeding


def shard_range(num_items: int, batch_size: int, *, rank: int, world_size: int) -> tuple[int, int, int]:
    """Rank ``rank``'s contiguous share of whole batches: ``(first item, end item, first batch index)``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"`shard_range`: `rank` must be in [0, {world_size}), got {rank!r}.")
    batches = math.ceil(num_items / batch_size)
    lo, hi = batches * rank // world_size, batches * (rank + 1) // world_size
    return min(lo * batch_size, num_items), min(hi * batch_size, num_items), lo


def batch_seed(seed: int, pass_index: int, batch_index: int) -> int:
    """The seed of batch ``batch_index``'s offsets in pass ``pass_index`` (independent of the shard).

    Examples:
        >>> batch_seed(0, 0, 1) == batch_seed(0, 0, 1) != batch_seed(0, 1, 1)
        True
    """
    return derived_seed(seed, pass_index, batch_index, 0xE7A1)


def consistency_pass(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    config: ConsistencyConfig = ConsistencyConfig(),
    *,
    first_batch: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
    metric: ShiftConsistency | None = None,
) -> ShiftConsistency:
    """Update a :class:`ShiftConsistency` over ``batches`` (images in [0, 1]) with per-batch seeding.

    Unlike :func:`~antialias.eval.evaluate_consistency`, whose offsets come from one generator
    running through the batches, batch ``b`` (counting from ``first_batch``) of pass ``p`` draws its
    offsets from :func:`batch_seed` ``(config.seed, p, b)``: a shard of the batches gets the same
    offsets as in the whole run. ``batches`` is iterated ``config.passes`` times.

    Returns:
        The metric (call ``compute()``; under a process group it sums every rank's counts).
    """
    device = torch.device(device)
    metric = metric if metric is not None else ShiftConsistency(only_correct=config.only_correct, confidence=config.confidence)
    metric = metric.to(device)
    model = model.to(device).eval()
    with torch.inference_mode():
        for pass_index in range(config.passes):
            for b, (images, labels) in enumerate(batches, start=first_batch):
                generator = torch.Generator().manual_seed(batch_seed(config.seed, pass_index, b))
                copies = make_copies(images, config, generator)  # (K, N, C, h, w)
                k, n = copies.shape[:2]
                flat = copies.flatten(0, 1).to(device, non_blocking=True)  # (K*N, C, h, w)
                if preprocess is not None:
                    flat = preprocess(flat)
                with _autocast(device, amp):
                    logits = model(flat)
                _check_logits(logits, k * n, "consistency")
                metric.update(logits.float().view(k, n, -1), labels.to(device))
    return metric


# ------------------------------------------------------------------------------------ the setup


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _check_logits(logits: Any, rows: int, where: str, num_classes: int | None = None) -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != rows:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"`{where}`: the model must return logits of shape (N, classes), got {got} for a batch of {rows}. "
            "Wrap the model so that forward returns the class scores only."
        )
    if num_classes is not None and logits.shape[1] < num_classes:
        raise ValueError(
            f"`{where}`: the model must score at least the data's {num_classes} classes, got {logits.shape[1]} "
            "outputs. Build it with num_classes matching the data (--model-kwargs '{\"num_classes\": N}')."
        )


def _resolve_device(device: str | torch.device, local_rank: int) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"`eval`: `device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`eval`: `device` must be available, got {device!r} on a machine without CUDA. Use --device cpu.")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


@dataclasses.dataclass
class _Setup:
    model: nn.Module
    dataset: Any
    preprocess: Callable[[Tensor], Tensor] | None
    device: torch.device
    amp: str
    record: dict[str, Any]
    dist: Any
    batch_size: int
    num_workers: int

    def loader(self, lo: int, hi: int):
        return make_loader(_head(self.dataset, lo, hi), batch_size=self.batch_size, shuffle=False, seed=0,
                           num_workers=self.num_workers, pin_memory=self.device.type == "cuda")

    def shard(self) -> tuple[int, int, int]:
        return shard_range(len(self.dataset), self.batch_size, rank=self.dist.rank, world_size=self.dist.world_size)


def _check_positive(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`eval`: `{name}` must be an integer >= {minimum}, got {value!r}.")


def _setup(metric: str, model, data, *, filter_size, weights, checkpoint, model_kwargs, split, subset, data_root,
           download, resize, center_crop, batch_size, device, amp, normalize, num_workers, out, overwrite,
           command, outputs: Sequence[str]) -> _Setup:
    _check_positive("batch_size", batch_size)
    _check_positive("num_workers", num_workers, 0)
    if amp not in AMP_CHOICES:
        raise ValueError(f"`eval`: `amp` must be one of {AMP_CHOICES}, got {amp!r}.")
    paths = _output_paths(out, outputs)
    dev_type = "cuda" if (str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())) else "cpu"
    # Under torchrun this joins (or starts) the process group. A group started here stays up for
    # later calls in the same process (re-creating one per call can stall on the rendezvous store).
    info = D.setup(dev_type)
    return _setup_in_group(metric, info, paths, model, data, filter_size=filter_size, weights=weights,
                           checkpoint=checkpoint, model_kwargs=model_kwargs, split=split, subset=subset,
                           data_root=data_root, download=download, resize=resize, center_crop=center_crop,
                           batch_size=batch_size, device=device, amp=amp, normalize=normalize,
                           num_workers=num_workers, overwrite=overwrite, command=command)


def _setup_in_group(metric, info, paths, model, data, *, filter_size, weights, checkpoint, model_kwargs, split,
                    subset, data_root, download, resize, center_crop, batch_size, device, amp, normalize,
                    num_workers, overwrite, command) -> _Setup:
    if paths and info.is_main:
        check_outputs(paths.values(), overwrite=overwrite)  # fail before the work, not after
    dev = _resolve_device(device, info.local_rank)
    if amp == "fp16" and dev.type != "cuda":
        raise ValueError("`eval`: `amp` must be 'none' or 'bf16' on the CPU, got 'fp16' (fp16 autocast needs CUDA).")
    rd = resolve_data(data, split=split, subset=subset, root=data_root, download=download, resize=resize,
                      center_crop=center_crop)
    shape = rd.identity["image_shape"]
    net, identity, recorded = resolve_model(model, filter_size=filter_size, weights=weights, checkpoint=checkpoint,
                                            model_kwargs=model_kwargs, in_channels=int(shape[0]),
                                            num_classes=rd.identity["num_classes"])
    norm, source = pick_normalization(normalize, recorded, rd)
    preprocess = make_preprocess(norm, dev)
    net = net.to(dev).eval()
    # One tiny forward up front: a model that does not return (N, classes) fails here, clearly.
    probe = torch.stack([rd.dataset[i][0] for i in range(min(2, len(rd.dataset)))]).to(dev)
    with torch.inference_mode(), _autocast(dev, amp):
        logits = net(preprocess(probe) if preprocess else probe)
    _check_logits(logits, probe.shape[0], metric, rd.identity["num_classes"])
    rd.identity["normalization"] = None if norm is None else {"mean": list(norm[0]), "std": list(norm[1])}
    rd.identity["normalization_source"] = source
    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metric": metric,
        "created_utc": utc_now(),
        "model": identity,
        "data": rd.identity,
        "environment": {**environment(dev, info.world_size), "amp": amp},
        "files": {k: str(v) for k, v in paths.items()},
        "command": command,
    }
    return _Setup(net, rd.dataset, preprocess, dev, amp, record, info, batch_size, num_workers)


def _output_paths(out: str | os.PathLike | None, kinds: Sequence[str]) -> dict[str, Path]:
    if out is None:
        return {}
    p = Path(out)
    if p.suffix != ".json":
        raise ValueError(f"`eval`: `out` must be a path ending in .json, got {str(out)!r} (e.g. results.json).")
    return {"json": p, **{k: p.with_suffix("." + k) for k in kinds}}


def _finish(setup: _Setup, record: dict[str, Any], out, overwrite: bool, figure=None, arrays=None) -> dict[str, Any]:
    if out is not None and setup.dist.is_main:
        paths = _output_paths(out, [k for k, v in (("png", figure), ("npz", arrays)) if v is not None])
        if arrays is not None:
            write_npz(paths["npz"], arrays, overwrite=overwrite)
        if figure is not None:
            from antialias.report.figures import save_png

            if paths["png"].exists() and not overwrite:
                raise FileExistsError(f"`eval`: `out` must not exist already, got {str(paths['png'])!r}. Pass --force.")
            save_png(figure(), paths["png"], overwrite=True)
        write_json(paths["json"], record, overwrite=overwrite)  # last: its presence means all files are there
    return record


_COMMON_DOC = """
    Common args:
        model: Zoo name, ``module:function`` factory, an ``nn.Module``, or None with ``checkpoint``.
        data: Data set spec (``"fashion-mnist"``, ``"cifar10:PATH"``, ``"imagenet:PATH"``,
            ``"imagefolder:PATH"``, ``module:function``) or a Dataset with images in [0, 1].
        filter_size: Blur filter for a zoo model or factory (default: the zoo's 4, the weights' or
            the checkpoint's).
        weights: Published weights name of a zoo model.
        checkpoint: Run directory or ``.safetensors`` file of ours.
        model_kwargs: Extra builder keyword arguments.
        split, subset, data_root, download, resize, center_crop: Which images (see resolve_data).
        batch_size: Images per batch (per rank under torchrun).
        device: "auto", "cpu", "cuda" or "cuda:N".
        amp: "none", "bf16" or "fp16" autocast around the forward passes.
        normalize: "auto", "none", "dataset", "imagenet" or ``(mean, std)``.
        num_workers: Loader worker processes.
        out: Results JSON path (``.json``); figures and arrays go next to it. None: nothing written.
        overwrite: Replace existing output files.
        command: The command line, recorded as is (the CLI passes its own).
"""


def _common_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    defaults = dict(filter_size=_UNSET, weights=None, checkpoint=None, model_kwargs=None, split="test", subset=None,
                    data_root=None, download=False, resize=None, center_crop=None, batch_size=128, device="auto",
                    amp="none", normalize="auto", num_workers=0, out=None, overwrite=False, command=None)
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        raise TypeError(f"`eval`: unexpected keyword argument {unknown[0]!r}." + (f" Did you mean {hint[0]!r}?" if hint else ""))
    return {**defaults, **kw}


def _is_imagenet(data: Any) -> bool:
    return isinstance(data, str) and data.split(":", 1)[0].strip().lower() == "imagenet"


# ------------------------------------------------------------------------------------ consistency


def run_consistency(model: Any = None, data: Any = "fashion-mnist", *, config: ConsistencyConfig | None = None,
                    **kwargs: Any) -> dict[str, Any]:
    """Classification consistency under shifts (and accuracy from the same pass), with 95% intervals.

    Args:
        config: The protocol (default :class:`ConsistencyConfig`; for ``imagenet`` data the paper's
            crop protocol, ``crop_size=224, max_shift=31`` on 256x256 centre crops).
        **kwargs: The common arguments below.
    """
    kw = _common_kwargs(kwargs)
    if config is None:
        config = ConsistencyConfig(crop_size=224, max_shift=31) if _is_imagenet(data) else ConsistencyConfig()
    if _is_imagenet(data) and config.protocol == "crop" and config.crop_size and kw["resize"] is None:
        kw["resize"], kw["center_crop"] = 256, 256  # the paper: resize 256, centre crop 256, then 224 crops
    setup = _setup("consistency", model, data, outputs=(), **kw)
    _check_shift(config.max_shift, config.crop_size, setup, "consistency")
    start = time.perf_counter()
    lo, hi, first = setup.shard()
    metric = consistency_pass(setup.model, setup.loader(lo, hi), config, first_batch=first,
                              preprocess=setup.preprocess, device=setup.device, amp=setup.amp)
    results = metric.compute()  # sums the counts of every rank under torchrun
    record = {**setup.record, "seed": config.seed,
              "config": {**dataclasses.asdict(config), "batch_size": setup.batch_size},
              "results": {k: v.to_dict() for k, v in results.items()},
              "seconds": time.perf_counter() - start}
    return _finish(setup, record, kw["out"], kw["overwrite"])


run_consistency.__doc__ += _COMMON_DOC  # type: ignore[operator]


def _check_shift(max_shift: int, crop_size: int | None, setup: _Setup, where: str) -> None:
    _, h, w = setup.record["data"]["image_shape"]
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"`{where}`: `max_shift` must be an integer >= 0, got {max_shift!r}.")
    if max_shift >= min(h, w):
        raise ValueError(f"`{where}`: `max_shift` must be smaller than the images ({h}x{w}), got {max_shift}.")
    if crop_size is not None and crop_size > min(h, w):
        raise ValueError(
            f"`{where}`: `crop_size` must fit in the images ({h}x{w}), got {crop_size}. Resize the data first "
            "(--resize/--center-crop) or lower --crop-size."
        )


# ------------------------------------------------------------------------------------- stability


def run_stability(model: Any = None, data: Any = "fashion-mnist", *, max_shift: int | None = None,
                  protocol: str = "crop", crop_size: int | None = _UNSET, pad_mode: str = "zeros",
                  **kwargs: Any) -> dict[str, Any]:
    """Probability of the correct class and accuracy along diagonal shifts ``0..max_shift`` (Figure 1).

    Args:
        max_shift: Largest diagonal shift (default 8; 32 for ``imagenet`` data).
        protocol: ``"crop"`` or ``"circular"`` (see :func:`~antialias.eval.diagonal_stability`).
        crop_size: Crop size for the crop protocol (default None: pad instead; 224 for ``imagenet``).
        pad_mode: ``"zeros"`` or ``"reflect"`` padding when ``crop_size`` is None.
        **kwargs: The common arguments below.

    Returns:
        The record; ``results`` holds accuracy per shift (proportions), the mean probability of the
        correct class per shift, the mean absolute change of the top-class probability per 1-px step,
        the share of images whose prediction never changes, and agreement with the unshifted
        prediction per shift. The per-image arrays go to the ``.npz``, the curves to the ``.png``.
    """
    kw = _common_kwargs(kwargs)
    imagenet = _is_imagenet(data)
    if crop_size is _UNSET:
        crop_size = 224 if imagenet else None
    if max_shift is None:
        max_shift = 32 if imagenet else 8
    if imagenet and protocol == "crop" and crop_size and kw["resize"] is None:
        kw["resize"], kw["center_crop"] = 256, 256
    setup = _setup("stability", model, data, outputs=("png", "npz"), **kw)
    _check_shift(max_shift, crop_size, setup, "stability")
    start = time.perf_counter()
    lo, hi, _ = setup.shard()
    with _autocast(setup.device, setup.amp):
        res = diagonal_stability(setup.model, setup.loader(lo, hi), max_shift=max_shift, protocol=protocol,
                                 crop_size=crop_size, pad_mode=pad_mode, preprocess=setup.preprocess,
                                 device=setup.device)
    arrays = {"shifts": torch.tensor(res.shifts), "prob_correct": res.prob_correct, "top_prob": res.top_prob,
              "prediction": res.prediction, "correct": res.correct}
    if setup.dist.distributed:
        from antialias.runs import distributed as D

        parts = D.gather_objects({k: v.cpu() for k, v in arrays.items()}, setup.dist)
        arrays = {k: (parts[0][k] if k == "shifts" else torch.cat([p[k] for p in parts])) for k in arrays}
    n = arrays["correct"].shape[0]
    pred, correct = arrays["prediction"], arrays["correct"]
    top = arrays["top_prob"]
    results = {
        "shifts": res.shifts,
        "accuracy": [Proportion.from_counts(int(c), n).to_dict() for c in correct.sum(0)],
        "mean_prob_correct": arrays["prob_correct"].mean(0).tolist(),
        "mean_abs_step_change": float(top.diff(dim=1).abs().mean()) if top.shape[1] > 1 else 0.0,
        "prediction_changes": float((pred.diff(dim=1) != 0).sum(1).float().mean()),
        "unchanged_prediction": Proportion.from_counts(int((pred == pred[:, :1]).all(1).sum()), n).to_dict(),
        "agreement_with_unshifted": [Proportion.from_counts(int(c), n).to_dict() for c in (pred == pred[:, :1]).sum(0)],
    }
    config = {"max_shift": max_shift, "protocol": protocol, "crop_size": crop_size, "pad_mode": pad_mode,
              "batch_size": setup.batch_size}
    record = {**setup.record, "seed": None, "config": config, "results": results,
              "seconds": time.perf_counter() - start}
    label = str(record["model"]["spec"])

    def figure():
        acc = [a["value"] for a in results["accuracy"]]
        return stability_curves({label: {"shifts": res.shifts, "mean_prob_correct": results["mean_prob_correct"],
                                         "accuracy": acc}})

    return _finish(setup, record, kw["out"], kw["overwrite"], figure=figure, arrays=arrays)


run_stability.__doc__ += _COMMON_DOC  # type: ignore[operator]


# ----------------------------------------------------------------------------------- equivariance


def pad_to_multiple(images: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``(N, C, H, W)`` images up to the next multiple of ``multiple``, split evenly (extra at the end).

    Examples:
        >>> pad_to_multiple(torch.ones(1, 1, 28, 28), 32)[0].shape, pad_to_multiple(torch.ones(1, 1, 28, 28), 32)[1]
        (torch.Size([1, 1, 32, 32]), (2, 2, 2, 2))
    """
    h, w = images.shape[-2:]
    th, tw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    top, left = (th - h) // 2, (tw - w) // 2
    pads = (left, tw - w - left, top, th - h - top)  # F.pad order: left, right, top, bottom
    return (F.pad(images, pads) if any(pads) else images), pads


def _check_layers(model: nn.Module, layers: Sequence[str]) -> None:
    """Unknown layer names: suggest close names, else list the layers that can be measured."""
    if isinstance(layers, str):
        raise TypeError(f"`equivariance`: `layers` must be a list of names, got the string {layers!r}; use [{layers!r}].")
    names = [n for n, _ in model.named_modules() if n]
    modules = dict(model.named_modules())
    for layer in layers:
        if layer in modules:
            continue
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        if close:
            hint = f"Did you mean {' or '.join(map(repr, close))}?"
        else:
            listed = [f"{n} ({type(modules[n]).__name__})" for n in default_layers(model)]
            more = f", ... ({len(listed) - 12} more)" if len(listed) > 12 else ""
            hint = f"Layers that can be measured: {', '.join(listed[:12])}{more}."
        raise ValueError(f"`equivariance`: `layers` must name modules of the model, got {layer!r}. {hint}")


def run_equivariance(model: Any = None, data: Any = "fashion-mnist", *, layers: Sequence[str] | None = None,
                     step: int | None = None, distance: str = "cosine", num_images: int = 16, pad_to: int | None = 32,
                     shifts_per_batch: int | None = None, split_max: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Internal shift-equivariance maps: per layer, the distance between Shift(F(X)) and F(Shift(X)).

    Images are zero-padded (in pixel space, before normalisation) up to a multiple of ``pad_to``
    (default 32: Fashion-MNIST's 28x28 becomes 32x32 with 2 black pixels on each side), so that
    every feature map of a network that halves the resolution up to 5 times upsamples exactly to the
    input size by the author's 2x circular interpolation. ``pad_to=None`` or 0 leaves them as they are.

    Args:
        layers: Module names (default: every conv, norm, activation and pool output).
        step: Shift grid spacing (default: 1 up to 32 pixels, else ``ceil(size / 32)`` for a 32x32 grid).
        distance: ``"cosine"`` or ``"l2"``.
        num_images: Images averaged over (the first ones of the data).
        pad_to: See above.
        shifts_per_batch: Shifted copies of all images per forward (default: ``max(1, 64 // num_images)``).
        split_max: Record each max-pool's dense max as ``"<layer>.densemax"``.
        **kwargs: The common arguments below.
    """
    kw = _common_kwargs(kwargs)
    _check_positive("num_images", num_images)
    if pad_to is not None:
        _check_positive("pad_to", pad_to, 0)
    kw["subset"] = min(num_images, kw["subset"] or num_images)
    setup = _setup("equivariance", model, data, outputs=("png", "npz"), **kw)
    n = len(setup.dataset)
    lo, hi = n * setup.dist.rank // setup.dist.world_size, n * (setup.dist.rank + 1) // setup.dist.world_size
    images = torch.stack([setup.dataset[i][0] for i in range(lo, hi)]) if hi > lo else None
    full = torch.stack([setup.dataset[0][0]])
    pads = (0, 0, 0, 0)
    if pad_to:
        full, pads = pad_to_multiple(full, pad_to)
        images = pad_to_multiple(images, pad_to)[0] if images is not None else None
    if layers is not None:
        _check_layers(setup.model, layers)
    h, w = full.shape[-2:]
    if step is None:
        step = 1 if max(h, w) <= 32 else math.ceil(max(h, w) / 32)
    spb = shifts_per_batch or max(1, 64 // max(1, hi - lo))
    start = time.perf_counter()
    result = None
    if images is not None:
        x = images.to(setup.device)
        x = setup.preprocess(x) if setup.preprocess else x
        with _autocast(setup.device, setup.amp):
            result = feature_distance_maps(setup.model, x, layers=layers, step=step, distance=distance,
                                           shifts_per_batch=spb, split_max=split_max, device=setup.device)
    seconds = time.perf_counter() - start
    if setup.dist.distributed:
        from antialias.runs import distributed as D

        parts = [p for p in D.gather_objects(None if result is None else (result.layers, result.maps * result.num_images,
                                                                          result.num_images, result.shifts_h,
                                                                          result.shifts_w), setup.dist) if p]
        total = sum(p[2] for p in parts)
        maps = sum(p[1] for p in parts) / total
        layer_names, shifts_h, shifts_w = parts[0][0], parts[0][3], parts[0][4]
    else:
        layer_names, maps, total, shifts_h, shifts_w = result.layers, result.maps, result.num_images, result.shifts_h, result.shifts_w
    means = {name: float(m.mean()) for name, m in zip(layer_names, maps)}
    results = {"layers": layer_names, "means": means, "shifts_h": shifts_h, "shifts_w": shifts_w, "distance": distance,
               "num_images": total, "max_map_value": float(maps.max()) if maps.numel() else 0.0,
               "shifted_images_per_second": total * len(shifts_h) * len(shifts_w) / seconds if seconds > 0 else None}
    config = {"layers": list(layers) if layers is not None else None, "step": step, "distance": distance,
              "num_images": num_images, "pad_to": pad_to, "padding_ltrb": [pads[0], pads[2], pads[1], pads[3]],
              "input_size": [h, w], "shifts_per_batch": spb, "split_max": split_max}
    record = {**setup.record, "seed": None, "config": config, "results": results, "seconds": seconds}
    label = str(record["model"]["spec"])
    arrays = {"maps": maps, "layers": list(layer_names), "shifts_h": shifts_h, "shifts_w": shifts_w}

    def figure():
        return feature_distance_heatmaps({label: maps.numpy()}, {label: layer_names}, distance=distance)

    return _finish(setup, record, kw["out"], kw["overwrite"], figure=figure, arrays=arrays)


run_equivariance.__doc__ += _COMMON_DOC  # type: ignore[operator]


# ------------------------------------------------------------------------ corruption, perturbation


def _reference(normaliser: Any) -> Any:
    """A results file of ours as a normaliser: its ``results`` (the metric's own ``to_dict()``)."""
    if isinstance(normaliser, (str, os.PathLike)) and str(normaliser).endswith(".json") and Path(normaliser).is_file():
        data = json.loads(Path(normaliser).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return data["results"]
    return normaliser


def _unsharded(setup: _Setup, where: str) -> None:
    if setup.dist.distributed:
        raise ValueError(f"`{where}`: runs in one process only for now, got {setup.dist.world_size} under torchrun. "
                         "Run it without torchrun (batches still go through the model as one forward per item).")


def run_corruption(model: Any = None, data: Any = "fashion-mnist", *, corruptions: Sequence[str] | None = None,
                   severities: Sequence[int] = (1, 2, 3, 4, 5), normaliser: Any = None, clean: bool = True,
                   seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """ImageNet-C style corruption errors, CE and mCE, generated on the fly
    (:func:`~antialias.eval.corruption.evaluate_corruptions`; needs the ``corruptions`` extra).

    Args:
        corruptions: Names (default the 15 test corruptions).
        severities: Default 1..5.
        normaliser: ``"alexnet"`` (ImageNet only), or a reference model's result (a results JSON
            path of ours, e.g. the baseline's) for CE and mCE.
        clean: Also measure the clean error (for relative CE).
        seed: Corruption seed.
        **kwargs: The common arguments below.
    """
    kw = _common_kwargs(kwargs)
    setup = _setup("corruption", model, data, outputs=("png",), **kw)
    _unsharded(setup, "corruption")
    start = time.perf_counter()
    with _autocast(setup.device, setup.amp):
        result = evaluate_corruptions(setup.model, setup.loader(0, len(setup.dataset)),
                                      corruptions=tuple(corruptions or CORRUPTIONS), severities=tuple(severities),
                                      normaliser=_reference(normaliser), clean=clean, seed=seed,
                                      preprocess=setup.preprocess, device=setup.device)
    config = {"corruptions": list(corruptions or CORRUPTIONS), "severities": list(severities), "clean": clean,
              "seed": seed, "normaliser": str(normaliser) if normaliser is not None else None,
              "batch_size": setup.batch_size}
    record = {**setup.record, "seed": seed, "config": config, "results": result.to_dict(),
              "seconds": time.perf_counter() - start}

    def figure():
        return corruption_errors(record["results"])

    return _finish(setup, record, kw["out"], kw["overwrite"], figure=figure)


def run_perturbation(model: Any = None, data: Any = "fashion-mnist", *, perturbations: Sequence[str] | None = None,
                     preset: str = "auto", step: int = 1, normaliser: Any = None, seed: int = 0,
                     **kwargs: Any) -> dict[str, Any]:
    """ImageNet-P style flip probabilities, FR/mFR and T5D on sequences generated on the fly
    (:func:`~antialias.eval.perturbation.evaluate_perturbations`).

    Args:
        perturbations: Names (default all eight generated ones).
        preset: ``"auto"``, ``"imagenet"`` or ``"cifar"`` frame counts and ranges.
        step: Frame distance of compared pairs (ignored for noise).
        normaliser: A reference model's result (a results JSON path of ours) for FR and mFR.
        seed: Noise seed.
        **kwargs: The common arguments below.
    """
    kw = _common_kwargs(kwargs)
    setup = _setup("perturbation", model, data, outputs=("png",), **kw)
    _unsharded(setup, "perturbation")
    names = tuple(perturbations or GENERATED_PERTURBATIONS)
    start = time.perf_counter()
    with _autocast(setup.device, setup.amp):
        result = evaluate_perturbations(setup.model, setup.loader(0, len(setup.dataset)), perturbations=names,
                                        preset=preset, step=step, normaliser=_reference(normaliser), seed=seed,
                                        preprocess=setup.preprocess, device=setup.device)
    config = {"perturbations": list(names), "preset": preset, "step": step, "seed": seed,
              "normaliser": str(normaliser) if normaliser is not None else None, "batch_size": setup.batch_size}
    record = {**setup.record, "seed": seed, "config": config, "results": result.to_dict(),
              "seconds": time.perf_counter() - start}

    def figure():
        return perturbation_flips(record["results"])

    return _finish(setup, record, kw["out"], kw["overwrite"], figure=figure)


run_corruption.__doc__ += _COMMON_DOC  # type: ignore[operator]
run_perturbation.__doc__ += _COMMON_DOC  # type: ignore[operator]
