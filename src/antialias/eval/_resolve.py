"""What the evaluation protocols evaluate: models and data from names, paths and factories.

A model is one of:

- a zoo name (``"resnet50"``), with ``filter_size`` and optionally published ``weights``
  (``"resnet50.imagenet1k_tri4_ft"``); without weights the network is randomly initialised (a
  warning says so);
- a user's factory, ``"package.module:function"`` or ``"path/to/file.py:function"``, called with
  ``in_channels``/``num_classes`` when it takes them (and ``filter_size`` when given);
- a ``checkpoint``: a run directory of ``antialias train`` (its ``model.safetensors``, else its newest
  ``checkpoints/step-*/model.safetensors``) or one of our ``.safetensors`` files; the model is rebuilt
  from the recorded training config and the weights are loaded strictly;
- an ``nn.Module`` (Python API only).

Normalisation, in order of precedence: an explicit ``normalize`` ("none", "imagenet", "dataset" or a
``(mean, std)`` pair); a run's recorded evaluation transform (the training set's statistics, as the
trainer used them); published weights' preprocessing (ImageNet statistics); otherwise the data set's
default (:func:`antialias.data.transforms.default_transform`: the evaluated split's channel
statistics for in-memory sets, ImageNet's for folders). Shifts and padding happen in pixel space
([0, 1]); normalisation is applied to the shifted images.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from antialias._download import sha256_file
from antialias._factory import import_factory, is_factory_spec
from antialias.checkpoint import load_checkpoint
from antialias.data import DATASET_NAMES, load_dataset
from antialias.data.spec import head as _head
from antialias.data.spec import load_split
from antialias.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    Normalize,
    ResizeCenterCrop,
    default_transform,
)
from antialias.models import get_model, get_model_builder
from antialias.models._weights import resolve as resolve_weights
from antialias.runs.model import accepts, build_model
from antialias.runs.rundir import RunDir

__all__ = ["Normalization", "ResolvedData", "ResolvedModel", "resolve_data", "resolve_model"]

Normalization = tuple[tuple[float, ...], tuple[float, ...]] | None
NORMALIZE_CHOICES = ("auto", "none", "dataset", "imagenet")
_UNSET: Any = object()
_NORMALIZE_REPR = re.compile(r"Normalize\(mean=\(([^)]*)\), std=\(([^)]*)\)\)")


@dataclasses.dataclass
class ResolvedData:
    """A data set ready for batching, with the record of what it is."""

    dataset: Dataset
    identity: dict[str, Any]
    default_normalization: Normalization


@dataclasses.dataclass
class ResolvedModel:
    """A model in eval mode, its identity for the results file, and the normalisation it expects."""

    module: nn.Module
    identity: dict[str, Any]
    normalization: Normalization
    normalization_source: str


# ----------------------------------------------------------------------------------------- data


def _normalization_of(transform: Compose) -> Normalization:
    """The mean and std of ``transform``'s :class:`Normalize` step, None without one."""
    found = [t for t in transform.transforms if isinstance(t, Normalize)]
    return (found[-1].mean, found[-1].std) if found else None


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t.strip())


def _data_name(spec: str) -> str:
    return spec.split(":", 1)[0].strip().lower().replace("_", "-")


def resolve_data(
    data: str | Dataset,
    *,
    split: str = "test",
    subset: int | None = None,
    root: str | None = None,
    download: bool = False,
    resize: int | None = None,
    center_crop: int | None = None,
) -> ResolvedData:
    """Load ``data`` (a spec for :func:`antialias.data.load_dataset`, a ``module:function`` or a data set).

    Args:
        data: ``"fashion-mnist"``, ``"cifar10:PATH"``, ``"imagenet:PATH"``, ``"imagefolder:PATH"``...
        split: ``"train"`` or ``"test"`` (``"val"``).
        subset: Keep the first N images.
        root: Folder of the data (as ``load_dataset``'s ``root``).
        download: Allow downloading MNIST, Fashion-MNIST or CIFAR into the cache.
        resize, center_crop: Per-image resize (shorter side) and centre crop for folder sets.

    Raises:
        ValueError: unknown name (close names suggested), bad ``subset``.
        DatasetNotFoundError: the files are not there (the message says how to get them).
    """
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ValueError(f"`eval`: `subset` must be a positive integer or None, got {subset!r}.")
    if isinstance(data, Dataset):
        dataset, spec = data, f"python:{type(data).__qualname__}"
    elif isinstance(data, str):
        spec = data
        if is_factory_spec(data, (*DATASET_NAMES, "fashion-mnist")):
            dataset = import_factory(data, "eval", "data")(split=split, root=root)
        else:
            kwargs: dict[str, Any] = {}
            if resize is not None:
                kwargs["transform"] = ResizeCenterCrop(resize, center_crop if center_crop is not None else resize)
            elif center_crop is not None:
                kwargs["transform"] = ResizeCenterCrop(center_crop, center_crop)
            dataset = load_dataset(data, split=split, root=root, download=download, **kwargs)
    else:
        raise TypeError(f"`eval`: `data` must be a data set spec (str) or a Dataset, got {type(data).__name__}.")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError(f"`eval`: `data` must hold at least one image, got an empty data set from {spec!r}.")
    full_size = len(dataset)  # type: ignore[arg-type]
    # The default normalisation comes from the whole split, not the evaluated subset.
    default = _normalization_of(default_transform(dataset, train=False, normalize=True))
    if subset is not None:
        dataset = _head(dataset, 0, min(subset, full_size))
    image, _ = dataset[0]
    classes = getattr(dataset, "classes", None)
    num_classes = getattr(dataset, "num_classes", None) or (len(classes) if classes is not None else None)
    identity = {
        "spec": spec,
        "split": split,
        "subset": subset,
        "size": len(dataset),  # type: ignore[arg-type]
        "full_size": full_size,
        "num_classes": num_classes,
        "image_shape": list(image.shape),
        "root": root,
        "resize": resize,
        "center_crop": center_crop,
    }
    return ResolvedData(dataset, identity, default)


# ---------------------------------------------------------------------------------------- models


def _find_weights(path: str) -> tuple[Path, dict[str, Any] | None]:
    """The ``.safetensors`` file of a run directory or file, and the run's config.json record."""
    p = Path(path).expanduser()
    where = "eval"
    if p.is_dir():
        run = RunDir(p)
        weights = p / "model.safetensors"
        if not weights.is_file():
            found = run.checkpoints()
            if not found:
                raise FileNotFoundError(
                    f"`{where}`: `checkpoint` must be a run directory with model.safetensors or "
                    f"checkpoints/step-*/model.safetensors, or a .safetensors file, got {str(p)!r} (neither found)."
                )
            weights = found[-1][1] / "model.safetensors"
        return weights, run.read_config()
    if not p.exists():
        raise FileNotFoundError(
            f"`{where}`: `checkpoint` must be an existing run directory or .safetensors file, got {str(p)!r}."
        )
    if p.suffix != ".safetensors":
        raise ValueError(
            f"`{where}`: `checkpoint` must be a run directory or a .safetensors file of antialias.checkpoint, got "
            f"{str(p)!r}. For a torch .pt state_dict, build the model in Python and call load_state_dict."
        )
    for folder in (p.parent, p.parent.parent.parent):  # run/model.safetensors, run/checkpoints/step-N/...
        if (folder / "config.json").is_file():
            try:
                record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            except ValueError:
                continue
            if isinstance(record, dict) and "config" in record:
                return p, record
    return p, None


def _recorded_normalization(record: dict[str, Any] | None, config: dict[str, Any]) -> tuple[Normalization, str] | None:
    """The normalisation a trainer run used, from its record (or by recomputing it)."""
    if record is not None:
        text = str(record.get("data", {}).get("eval_transform", ""))
        if text:
            m = _NORMALIZE_REPR.search(text)
            return ((_floats(m.group(1)), _floats(m.group(2))) if m else None), "run config (eval_transform)"
    if "normalize" not in config or "data" not in config:
        return None
    if not config["normalize"]:
        return None, "run config (normalize=false)"
    try:  # the trainer's statistics: those of its (sub)set of the training split
        train = load_split(config["data"], "train", root=config.get("data_root"), download=False)
        n = config.get("train_subset") or len(train)  # type: ignore[arg-type]
        return _normalization_of(default_transform(_head(train, 0, n), train=False, normalize=True)), \
            "recomputed from the run's training data"
    except (OSError, ValueError) as exc:
        warnings.warn(f"`eval`: could not recompute the training normalisation ({exc}); using the data's default.",
                      UserWarning, stacklevel=3)
        return None


def _accepts(fn: Callable, name: str) -> bool:
    return accepts(fn, name)


def _first_conv_channels(model: nn.Module) -> int | None:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if first is None else first.in_channels


def resolve_model(
    model: str | nn.Module | None,
    *,
    filter_size: Any = _UNSET,
    weights: str | None = None,
    checkpoint: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    in_channels: int,
    num_classes: int | None,
) -> tuple[nn.Module, dict[str, Any], tuple[Normalization, str] | None]:
    """Build the model to evaluate; see the module docstring.

    Returns:
        ``(module in eval mode, identity record, (normalisation, its source) or None)``.

    Raises:
        ValueError: unknown zoo name or weights (close names suggested), a factory that does not
            return a module, weights that do not fit the rebuilt model.
        FileNotFoundError: the checkpoint is missing.
    """
    kwargs = dict(model_kwargs or {})
    identity: dict[str, Any] = {"spec": None, "filter_size": None, "weights": None, "checkpoint": None,
                                "checkpoint_sha256": None, "model_kwargs": kwargs}
    given_fs = filter_size is not _UNSET
    if isinstance(model, nn.Module):
        if checkpoint is not None or weights is not None:
            raise ValueError("`eval`: `model` must be a name when `checkpoint` or `weights` is given, got a module.")
        identity.update(spec=f"python:{type(model).__module__}.{type(model).__qualname__}",
                        filter_size=filter_size if given_fs else None)
        return model.eval(), identity, None
    if checkpoint is not None:
        if weights is not None:
            raise ValueError(f"`eval`: `weights` must not be given with `checkpoint`, got {weights!r}; pick one.")
        return _from_checkpoint(checkpoint, model, filter_size, kwargs, identity, in_channels, num_classes)
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"`eval`: `model` must be a zoo name, 'module:function' or a checkpoint, got {model!r}.")
    if is_factory_spec(model):
        net = build_model(model, filter_size if given_fs else None, in_channels=in_channels,
                          num_classes=num_classes or 1000, model_kwargs=kwargs)
        identity.update(spec=model, filter_size=filter_size if given_fs else None)
        return net.eval(), identity, None
    if weights is not None:
        return _from_weights(model, weights, filter_size, kwargs, identity)
    return _from_zoo(model, filter_size if given_fs else 4, kwargs, identity, in_channels, num_classes)


def _from_checkpoint(checkpoint: str, model: str | None, filter_size: Any, kwargs: dict[str, Any],
                     identity: dict[str, Any], in_channels: int,
                     num_classes: int | None) -> tuple[nn.Module, dict[str, Any], tuple[Normalization, str] | None]:
    """Rebuild the model from the run's recorded config and load its weights strictly."""
    path, record = _find_weights(checkpoint)
    state, meta = load_checkpoint(path)
    config = dict(meta.get("config") or (record or {}).get("config") or {})
    spec = model if model is not None else config.get("model")
    if not spec:
        raise ValueError(
            f"`eval`: `model` must be given for checkpoint {str(path)!r}, which records no model config "
            "(pass --model NAME or module:factory, and --filter-size)."
        )
    fs = filter_size if filter_size is not _UNSET else config.get("filter_size", meta.get("filter_size"))
    kwargs = {**config.get("model_kwargs", {}), **kwargs}
    shape = (record or {}).get("data", {}).get("image_shape")
    recorded_classes = (record or {}).get("data", {}).get("num_classes")
    net = build_model(spec, fs, in_channels=int(shape[0]) if shape else in_channels,
                      num_classes=int(recorded_classes or num_classes or 1000), model_kwargs=kwargs)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(
            f"`eval`: the weights in {str(path)!r} must fit the model rebuilt as {spec!r} with filter_size="
            f"{fs!r}, got a mismatch ({' '.join(first[:2])[:300]}). Pass the --model/--filter-size it was trained with."
        ) from None
    identity.update(spec=spec, filter_size=fs, checkpoint=str(path), checkpoint_sha256=sha256_file(path),
                    model_kwargs=kwargs, training_config=config or None)
    return net.eval(), identity, _recorded_normalization(record, config)


def _from_weights(model: str, weights: str, filter_size: Any, kwargs: dict[str, Any],
                  identity: dict[str, Any]) -> tuple[nn.Module, dict[str, Any], tuple[Normalization, str] | None]:
    """A zoo model with published weights; their preprocessing gives the normalisation."""
    get_model_builder(model)  # unknown names raise with close matches
    w = resolve_weights(weights, model)
    assert w is not None  # resolve() returns None only for weights=None
    extra = {"filter_size": filter_size} if filter_size is not _UNSET else {}
    net = get_model(model, weights=w, **extra, **kwargs)
    pre = w.meta.get("preprocessing", {})
    identity.update(spec=model, filter_size=w.filter_size, weights=w.full_name,
                    weights_sha256_prefix=w.sha256_prefix, weights_url=w.url)
    norm = ((tuple(pre["mean"]), tuple(pre["std"])), "published weights") if "mean" in pre else None
    return net.eval(), identity, norm


def _from_zoo(model: str, filter_size: Any, kwargs: dict[str, Any], identity: dict[str, Any], in_channels: int,
              num_classes: int | None) -> tuple[nn.Module, dict[str, Any], tuple[Normalization, str] | None]:
    """A randomly initialised zoo model (a warning says so), built for the data's channels and classes."""
    builder = get_model_builder(model)  # unknown names raise with close matches
    if num_classes is not None and _accepts(builder, "num_classes"):
        kwargs.setdefault("num_classes", num_classes)
    if _accepts(builder, "in_channels"):
        kwargs.setdefault("in_channels", in_channels)
    net = get_model(model, filter_size=filter_size, **kwargs)
    warnings.warn(
        f"`eval`: {model!r} has no weights (give --weights NAME or --checkpoint PATH): evaluating a randomly "
        "initialised network.", UserWarning, stacklevel=3)
    identity.update(spec=model, filter_size=filter_size, model_kwargs=kwargs)
    channels = _first_conv_channels(net)
    if channels is not None and channels != in_channels:
        raise ValueError(
            f"`eval`: `model` must take {in_channels}-channel input like the data, got {model!r} with {channels} "
            "input channels. Use a model that accepts `in_channels` (e.g. the *_cifar models), or other data."
        )
    return net.eval(), identity, None


def pick_normalization(
    normalize: str | tuple[Sequence[float], Sequence[float]],
    recorded: tuple[Normalization, str] | None,
    data: ResolvedData,
) -> tuple[Normalization, str]:
    """Apply the precedence of the module docstring; returns ``(normalisation, source)``."""
    if isinstance(normalize, (tuple, list)):
        mean, std = normalize
        return (tuple(map(float, mean)), tuple(map(float, std))), "given"
    if normalize not in NORMALIZE_CHOICES:
        close = difflib.get_close_matches(str(normalize), NORMALIZE_CHOICES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"`eval`: `normalize` must be one of {NORMALIZE_CHOICES} or (mean, std), got {normalize!r}.{hint}"
        )
    if normalize == "none":
        return None, "none"
    if normalize == "imagenet":
        return (IMAGENET_MEAN, IMAGENET_STD), "imagenet"
    if normalize == "auto" and recorded is not None:
        return recorded
    return data.default_normalization, "data set default"


def make_preprocess(norm: Normalization, device: torch.device) -> Callable[[Tensor], Tensor] | None:
    """A function ``(N, C, H, W)`` -> normalised, or None for no normalisation."""
    if norm is None:
        return None
    mean = torch.tensor(norm[0], dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(norm[1], dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def preprocess(x: Tensor) -> Tensor:
        if x.shape[1] != mean.shape[1]:
            raise ValueError(f"`eval`: the normalisation has {mean.shape[1]} channels, the images {x.shape[1]}.")
        return (x - mean.to(x.dtype)) / std.to(x.dtype)

    return preprocess
