"""What every protocol does around its metric: resolve the model and data, pick the device, shard, write files.

:func:`setup` turns the user's arguments (an :class:`~antialias.eval.config.EvalOptions`) into a
:class:`Setup`: the model in eval mode on its device, the data set, the normalisation, the process
group under torchrun, and the results record's header (model identity, data, environment). Each
protocol then runs its metric on :meth:`Setup.loader` batches of its :meth:`Setup.shard` and hands
the record to :func:`finish`, which writes the ``.npz`` and then the ``.json`` (last: its presence
means the run is complete) on the main process.

Examples:
    >>> shard_range(10, 4, rank=1, world_size=2)  # 10 images, batches of 4: batches 0..2, rank 1 gets 1..2
    (4, 10, 1)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from antialias.data import make_loader
from antialias.data.spec import head
from antialias.eval._forward import autocast, check_logits
from antialias.eval._resolve import _UNSET, make_preprocess, pick_normalization, resolve_data, resolve_model
from antialias.eval._results import FORMAT, FORMAT_VERSION, check_outputs, environment, utc_now, write_json, write_npz
from antialias.eval.config import EvalOptions
from antialias.runs import distributed as D
from antialias.runs.model import check_finite

__all__ = ["COMMON_DOC", "Setup", "check_accuracy", "check_inputs", "check_labels", "check_shift", "claims_weights",
           "data_key", "finish", "options_from", "setup", "shard_range", "split_kwargs"]


def shard_range(num_items: int, batch_size: int, *, rank: int, world_size: int) -> tuple[int, int, int]:
    """Rank ``rank``'s contiguous share of whole batches: ``(first item, end item, first batch index)``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"`shard_range`: `rank` must be in [0, {world_size}), got {rank!r}.")
    batches = math.ceil(num_items / batch_size)
    lo, hi = batches * rank // world_size, batches * (rank + 1) // world_size
    return min(lo * batch_size, num_items), min(hi * batch_size, num_items), lo


# ------------------------------------------------------------------------------ arguments

COMMON_DOC = """
    Common args (the fields of :class:`~antialias.eval.config.EvalOptions`):
        model: Zoo name, ``module:function`` factory, an ``nn.Module``, or None with ``checkpoint``.
        data: Data set spec (``"fashion-mnist"``, ``"cifar10:PATH"``, ``"imagenet:PATH"``,
            ``"imagefolder:PATH"``, ``module:function``) or a Dataset with images in [0, 1].
        filter_size: Blur filter for a zoo model or factory (default ``"auto"``: the zoo's 4, the
            weights' or the checkpoint's).
        weights: Published weights name of a zoo model.
        checkpoint: Run directory or ``.safetensors`` file of ours.
        model_kwargs: Extra builder keyword arguments.
        split, subset, data_root, download, resize, center_crop: Which images (see resolve_data).
        batch_size: Images per batch (per rank under torchrun).
        device: "auto", "cpu", "cuda" or "cuda:N".
        amp: "none", "bf16" or "fp16" autocast around the forward passes.
        normalize: "auto", "none", "dataset", "imagenet" or ``(mean, std)``.
        num_workers: Loader worker processes.
        out: Results JSON path (``.json``); arrays go next to it (``.npz``). None: nothing written.
            The Python API writes no figure: ``antialias eval`` draws one from the returned record
            with :mod:`antialias.report` (``.png`` next to the JSON).
        overwrite: Replace existing output files.
        command: The command line, recorded as is (the CLI passes its own).
"""

_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(EvalOptions) if f.name not in ("model", "data"))


def split_kwargs(kwargs: Mapping[str, Any], config_type: type | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` of a ``run_*`` call split into ``(config_type's fields, common options)``.

    Raises:
        TypeError: an unknown keyword (the closest name is suggested), as Python does for functions.
    """
    config_names = [f.name for f in dataclasses.fields(config_type)] if config_type is not None else []
    known = [*_OPTION_NAMES, "command", *config_names]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        hint = difflib.get_close_matches(unknown[0], known, n=1)
        raise TypeError(
            f"`eval`: unexpected keyword argument {unknown[0]!r}." + (f" Did you mean {hint[0]!r}?" if hint else "")
        )
    config = {k: v for k, v in kwargs.items() if k in config_names}
    common = {k: v for k, v in kwargs.items() if k not in config_names}
    return config, common


def data_key(data: Any, common: Mapping[str, Any]) -> Any:
    """What decides the data-dependent defaults: ``"imagenet:"`` under ``data_preset="imagenet"``, else ``data``.

    Examples:
        >>> data_key("/photos", {"data_preset": "imagenet"}), data_key("cifar10", {})
        ('imagenet:', 'cifar10')
    """
    return "imagenet:" if common.get("data_preset") == "imagenet" else data


def options_from(model: Any, data: Any, common: Mapping[str, Any]) -> tuple[EvalOptions, list[str] | None]:
    """The :class:`EvalOptions` of a ``run_*`` call and its recorded ``command``."""
    values = {k: v for k, v in common.items() if k != "command"}
    if values.get("model_kwargs") is None:
        values.pop("model_kwargs", None)
    if values.get("filter_size", "auto") is _UNSET:
        values["filter_size"] = "auto"
    return EvalOptions(model=model, data=data, **values), common.get("command")


# ------------------------------------------------------------------------------ the setup


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
            raise ValueError(
                f"`eval`: `device` must be available, got {device!r} on a machine without CUDA. Use --device cpu."
            )
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


@dataclasses.dataclass
class Setup:
    """A resolved evaluation: model on its device, data, normalisation, process group, record header."""

    model: nn.Module
    dataset: Any
    preprocess: Callable[[Tensor], Tensor] | None
    device: torch.device
    amp: str
    record: dict[str, Any]
    dist: Any
    batch_size: int
    num_workers: int

    def loader(self, lo: int, hi: int) -> Any:
        """Batches of images ``lo..hi-1`` in order, unnormalised (images in [0, 1])."""
        return make_loader(head(self.dataset, lo, hi), batch_size=self.batch_size, shuffle=False, seed=0,
                           num_workers=self.num_workers, pin_memory=self.device.type == "cuda")

    def shard(self) -> tuple[int, int, int]:
        """This rank's ``(first image, end image, first batch index)`` (see :func:`shard_range`)."""
        return shard_range(len(self.dataset), self.batch_size, rank=self.dist.rank, world_size=self.dist.world_size)

    def autocast(self) -> Any:
        """Autocast of the forwards, as the options asked."""
        return autocast(self.device, self.amp)


def _output_paths(out: str | os.PathLike | None, kinds: Sequence[str]) -> dict[str, Path]:
    if out is None:
        return {}
    p = Path(out)
    return {"json": p, **{k: p.with_suffix("." + k) for k in kinds}}


def setup(metric: str, options: EvalOptions, *, command: list[str] | None, outputs: Sequence[str]) -> Setup:
    """Resolve ``options`` for ``metric``; ``outputs`` are the file kinds next to the JSON (e.g. ``("npz",)``).

    Existing output files are refused here, before any work (unless ``options.overwrite``).
    """
    paths = _output_paths(options.out, outputs)
    device = options.device
    dev_type = "cuda" if (str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())) else "cpu"
    # Under torchrun this joins (or starts) the process group. A group started here stays up for
    # later calls in the same process (re-creating one per call can stall on the rendezvous store).
    info = D.setup(dev_type)
    if paths and info.is_main:
        check_outputs(paths.values(), overwrite=options.overwrite)  # fail before the work, not after
    dev = _resolve_device(device, info.local_rank)
    if options.amp == "fp16" and dev.type != "cuda":
        raise ValueError("`eval`: `amp` must be 'none' or 'bf16' on the CPU, got 'fp16' (fp16 autocast needs CUDA).")
    resize, center_crop = options.resize, options.center_crop
    if options.data_preset == "imagenet" and resize is None and center_crop is None:
        resize, center_crop = 256, 224  # the paper's evaluation images (protocols with crops ask for 256x256)
    rd = resolve_data(options.data, split=options.split, subset=options.subset, root=options.data_root,
                      download=options.download, resize=resize, center_crop=center_crop,
                      class_map=options.class_map)
    net, identity, recorded = resolve_model(
        options.model, filter_size=options.filter_size if options.given_filter_size else _UNSET,
        weights=options.weights, checkpoint=options.checkpoint, model_kwargs=options.model_kwargs,
        in_channels=int(rd.identity["image_shape"][0]), num_classes=rd.identity["num_classes"])
    check_finite(net.state_dict(), where="eval", fix="Training diverged or the file is damaged; evaluate another "
                 "checkpoint.", what=f"the weights of {identity.get('checkpoint') or identity.get('spec')}")
    norm, source = pick_normalization(options.normalize, recorded, rd, mean=options.mean, std=options.std,
                                      scale=options.scale)
    preprocess = make_preprocess(norm, dev)
    net = net.to(dev).eval()
    rd.identity["normalization"] = None if norm is None else {"mean": list(norm[0]), "std": list(norm[1])}
    rd.identity["normalization_source"] = source
    _probe(net, rd.dataset, preprocess, dev, options.amp, metric, rd.identity, identity, norm is not None)
    if options.mean is not None or options.std is not None:
        rd.identity["given_normalization"] = {"mean": list(options.mean or (0.0,)), "std": list(options.std or (1.0,)),
                                              "scale": options.scale}
    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metric": metric,
        "created_utc": utc_now(),
        "model": identity,
        "data": rd.identity,
        "environment": {**environment(dev, info.world_size), "amp": options.amp},
        "files": {k: str(v) for k, v in paths.items()},
        "command": command,
    }
    return Setup(net, rd.dataset, preprocess, dev, options.amp, record, info, options.batch_size, options.num_workers)


def _probe(net: nn.Module, dataset: Any, preprocess: Callable[[Tensor], Tensor] | None, dev: torch.device, amp: str,
           metric: str, data: dict[str, Any], model: dict[str, Any], normalised: bool) -> None:
    """One tiny forward up front: a model that does not return (N, classes) fails here, clearly; labels that
    cannot be the model's classes and inputs that look normalised twice are reported before the run."""
    probe = torch.stack([dataset[i][0] for i in range(min(2, len(dataset)))]).to(dev)
    seen: list[Tensor] = []

    def first_conv_input(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not seen and args and isinstance(args[0], Tensor):
            seen.append(args[0].detach().float())

    handles = [m.register_forward_pre_hook(first_conv_input) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode(), autocast(dev, amp):
            x = preprocess(probe) if preprocess else probe
            logits = net(x)
    finally:
        for h in handles:
            h.remove()
    check_logits(logits, probe.shape[0], metric, data["num_classes"])
    model["num_outputs"] = int(logits.shape[1])
    check_labels(data, model, int(logits.shape[1]), metric)
    check_inputs(probe, x.float(), seen[0] if seen else None, normalised, data.get("normalization_source"), metric)


def claims_weights(model: dict[str, Any]) -> bool:
    """Whether the evaluated model was given trained weights (published weights or a checkpoint)."""
    return bool(model.get("weights") or model.get("checkpoint"))


def check_labels(data: dict[str, Any], model: dict[str, Any], outputs: int, where: str) -> None:
    """Labels that cannot be the model's classes: an error when one is out of range, a warning when the folders
    were labelled by sorted name and their number differs from the model's output size.

    Raises:
        ValueError: a label >= the model's number of outputs.
    """
    label_max, source = data.get("label_max"), data.get("label_source")
    if label_max is not None and label_max >= outputs:
        raise ValueError(
            f"`{where}`: the data's labels must be class indices of the model, got label {label_max} ({source}) "
            f"for a model with {outputs} outputs. Give --class-map FILE mapping the folders to the model's classes."
        )
    count = data.get("num_classes")
    if source == "sorted folder names" and count is not None and count != outputs:
        warnings.warn(
            f"`{where}`: the {count} class folders are labelled 0..{count - 1} in sorted name order, but the model "
            f"scores {outputs} classes: unless those are its first {count} classes in that order, accuracy is "
            "meaningless. Name the folders by class index ('243') or ImageNet wnid, or give --class-map FILE.",
            UserWarning, stacklevel=2)


def check_accuracy(accuracy: Any, record: dict[str, Any], where: str) -> None:
    """Warn when a model that claims trained weights is not above chance (1 / outputs) at 95%: labels permuted?

    ``accuracy``: a :class:`~antialias.eval._stats.Proportion` or its dict.
    """
    acc = accuracy if isinstance(accuracy, dict) else accuracy.to_dict()
    outputs = record["model"].get("num_outputs")
    if not claims_weights(record["model"]) or not outputs or not acc.get("total"):
        return
    chance = 1.0 / outputs
    if acc["low"] <= chance:
        source = record["data"].get("label_source") or "the data set's labels"
        warnings.warn(
            f"`{where}`: accuracy {100 * acc['value']:.2f}% of a model with trained weights is not above chance "
            f"({100 * chance:.2f}% for {outputs} classes) at 95%: the labels ({source}) may not be the model's "
            "classes, or the normalisation not its own. Check --class-map and --mean/--std/--normalize.",
            UserWarning, stacklevel=2)


def check_inputs(raw: Tensor, given: Tensor, first_conv: Tensor | None, normalised: bool, source: str | None,
                 where: str) -> None:
    """Warn when inputs look normalised twice.

    Three signs, each from the probe batch: the data's images are not in [0, 1] although they are
    normalised here (the data set normalises already); the model's first convolution sees a per-channel affine
    function of the normalised images other than the identity (the model normalises itself, on top); or that
    convolution's input has a channel mean or standard deviation beyond 3 (no single normalisation does that).
    """
    if not normalised:
        return
    hint = " Pass --normalize none (or the model's own --mean/--std) so that it is done once."
    lo, hi = float(raw.min()), float(raw.max())
    if lo < -0.01 or hi > 1.01:
        warnings.warn(
            f"`{where}`: the data's images span [{lo:.2f}, {hi:.2f}], not [0, 1]: they look normalised already, and "
            f"are normalised again here ({source}).{hint}", UserWarning, stacklevel=2)
        return
    if first_conv is None:
        return
    stats = first_conv.transpose(0, 1).flatten(1)  # (C, N*H*W)
    mean, std = stats.mean(1), stats.std(1)
    if first_conv.shape == given.shape:
        a = given.transpose(0, 1).flatten(1)
        am, astd = a.mean(1), a.std(1)
        cov = ((a - am[:, None]) * (stats - mean[:, None])).mean(1)
        corr = cov / (astd * std).clamp_min(1e-12)
        slope = cov / (astd * astd).clamp_min(1e-12)
        intercept = mean - slope * am
        affine = bool((corr > 0.999).all())
        if affine and bool(((slope - 1).abs() > 0.05).any() | (intercept.abs() > 0.05).any()):
            warnings.warn(
                f"`{where}`: the model normalises its input itself (its first convolution sees "
                f"{_affine_text(slope, intercept)} of the images given to it), and they are normalised here "
                f"too ({source}): the images look normalised twice.{hint}", UserWarning, stacklevel=2)
            return
    if bool((std > 3).any() | (mean.abs() > 3).any()):
        warnings.warn(
            f"`{where}`: the input of the model's first convolution has channel means {_values(mean)} and standard "
            f"deviations {_values(std)}, far from a normalised image's (about 0 and 1): normalised twice?{hint}",
            UserWarning, stacklevel=2)


def _values(t: Tensor) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in t) + ")"


def _affine_text(slope: Tensor, intercept: Tensor) -> str:
    return f"a * x + b with a = {_values(slope)}, b = {_values(intercept)}"


def check_shift(max_shift: int, crop_size: int | None, setup: Setup, where: str) -> None:
    """``max_shift`` and ``crop_size`` must fit the data's images."""
    _, h, w = setup.record["data"]["image_shape"]
    if max_shift >= min(h, w):
        raise ValueError(f"`{where}`: `max_shift` must be smaller than the images ({h}x{w}), got {max_shift}.")
    if crop_size is not None and crop_size > min(h, w):
        raise ValueError(
            f"`{where}`: `crop_size` must fit in the images ({h}x{w}), got {crop_size}. Resize the data first "
            "(--resize/--center-crop) or lower --crop-size."
        )


def finish(
    setup: Setup, record: dict[str, Any], options: EvalOptions, arrays: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Writes ``arrays`` (``.npz``), then ``record`` (``.json``), on the main process if ``options.out``.

    Returns:
        ``record``.
    """
    if options.out is not None and setup.dist.is_main:
        paths = _output_paths(options.out, ["npz"] if arrays is not None else [])
        if arrays is not None:
            write_npz(paths["npz"], arrays, overwrite=options.overwrite)
        write_json(paths["json"], record, overwrite=options.overwrite)  # last: its presence means all files are there
    return record
