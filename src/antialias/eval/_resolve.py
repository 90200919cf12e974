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
import inspect
import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from antialias._download import sha256_file
from antialias._factory import INTERNAL_FACTORIES, check_recorded_factory, import_factory, is_factory_spec
from antialias.checkpoint import load_checkpoint
from antialias.data import DATASET_NAMES, ImageFolder, load_dataset
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
#: Suffixes of torch state_dict files (read with ``torch.load(weights_only=True)``).
TORCH_SUFFIXES = (".pth", ".pt")
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
    class_map: str | os.PathLike | None = "auto",
) -> ResolvedData:
    """Load ``data`` (a spec for :func:`antialias.data.load_dataset`, a ``module:function`` or a data set).

    Args:
        data: ``"fashion-mnist"``, ``"cifar10:PATH"``, ``"imagenet:PATH"``, ``"imagefolder:PATH"``...
        split: ``"train"`` or ``"test"`` (``"val"``).
        subset: Keep the first N images.
        root: Folder of the data (as ``load_dataset``'s ``root``).
        download: Allow downloading MNIST, Fashion-MNIST or CIFAR into the cache.
        resize, center_crop: Per-image resize (shorter side) and centre crop for folder sets.
        class_map: Folder sets: ``"auto"`` (integer folder names and ImageNet wnids are class
            indices, else sorted names), ``"sorted"`` (or None) or a class map file; see
            :class:`antialias.data.ImageFolder`.

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
        kwargs: dict[str, Any] = {}
        if resize is not None:
            kwargs["transform"] = ResizeCenterCrop(resize, center_crop if center_crop is not None else resize)
        elif center_crop is not None:
            kwargs["transform"] = ResizeCenterCrop(center_crop, center_crop)
        folder = _folder_spec(data, root)
        if folder is not None:
            dataset = _folder_dataset(data, folder, split, kwargs.get("transform", _UNSET), class_map)
        elif is_factory_spec(data, (*DATASET_NAMES, "fashion-mnist")):
            dataset = import_factory(data, "eval", "data")(split=split, root=root)
        else:
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
    label_source = getattr(dataset, "label_source", None)
    label_max = None
    if isinstance(getattr(dataset, "class_to_idx", None), dict):
        label_max = max(dataset.class_to_idx.values())  # type: ignore[attr-defined]
    if label_source in ("class map", "integer folder names"):
        num_classes = None  # indices into the model's classes: their number is the model's, not the data's
    identity = {
        "spec": spec,
        "split": split,
        "subset": subset,
        "size": len(dataset),  # type: ignore[arg-type]
        "full_size": full_size,
        "num_classes": num_classes,
        "label_source": label_source,
        "label_max": label_max,
        "image_shape": list(image.shape),
        "root": root,
        "resize": resize,
        "center_crop": center_crop,
    }
    return ResolvedData(dataset, identity, default)


_FOLDER_NAMES = ("imagenet", "imagefolder")


def _folder_spec(data: str, root: str | None) -> Path | None:
    """The folder of an ``imagenet:PATH`` / ``imagefolder:PATH`` spec or of a bare folder path, else None."""
    if Path(data).expanduser().is_dir() and _data_name(data) not in (*DATASET_NAMES, "fashion-mnist"):
        return Path(data).expanduser()
    if _data_name(data) not in _FOLDER_NAMES:
        return None
    path = data.split(":", 1)[1] if ":" in data else ""
    if not path and root is None:
        return None  # load_dataset says that the folder is missing
    return Path(path or str(root)).expanduser()


def _folder_dataset(spec: str, base: Path, split: str, transform: Any, class_map: Any) -> Dataset:
    """An image folder: ``base/val`` or ``base/test`` (``base/train`` for the train split), else ``base`` itself
    when its class folders hold the images (a plain ``<class>/<image>`` folder)."""
    names = ("train",) if split == "train" else ("val", "test")
    folder = next((base / n for n in names if (base / n).is_dir()), None)
    if folder is None:
        splits = [n for n in ("train", "val", "test") if (base / n).is_dir()]
        if splits or not base.is_dir():
            expected = " or ".join(str(base / n) for n in names)
            found = f"only {', '.join(splits)}" if splits else "it does not exist"
            raise FileNotFoundError(
                f"`eval`: `data` must be a folder of class folders (<class>/<image>) or hold {expected}, got "
                f"{spec!r} ({found})."
            )
        folder = base
    if transform is _UNSET:
        is_imagenet = _data_name(spec) == "imagenet"
        transform = ResizeCenterCrop(256, 224) if is_imagenet else None
    cmap = None if class_map in (None, "sorted") else class_map
    ds = ImageFolder(folder, transform=transform, class_map=cmap)
    ds.image_size = getattr(transform, "output_size", None)
    return ds


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
            # An unfinished (or interrupted) run: its newest checkpoint is evaluated, and the user is told.
            warnings.warn(f"`eval`: {str(p)!r} holds no final model.safetensors (the run is unfinished or was "
                          f"interrupted): evaluating its latest checkpoint {found[-1][1].name}. Pass that file as "
                          "--checkpoint to choose another.", UserWarning, stacklevel=4)
        return weights, run.read_config()
    if not p.exists():
        raise FileNotFoundError(
            f"`{where}`: `checkpoint` must be an existing run directory or .safetensors file, got {str(p)!r}."
        )
    if p.suffix != ".safetensors":
        raise ValueError(
            f"`{where}`: `checkpoint` must be a run directory or a .safetensors file of antialias.checkpoint, got "
            f"{str(p)!r}, or a torch state_dict ({', '.join(TORCH_SUFFIXES)}) with --model."
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
    if isinstance(config["data"], str) and is_factory_spec(config["data"], (*DATASET_NAMES, "fashion-mnist")) \
            and config["data"] not in INTERNAL_FACTORIES:
        # Trust boundary: a data factory named by the run's files is never imported.
        warnings.warn(f"`eval`: not recomputing the training normalisation: the run's config names the data "
                      f"factory {config['data']!r}, and antialias never runs code named by a file; using the "
                      "data's default (or pass --normalize).", UserWarning, stacklevel=3)
        return None
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


def _parameters(fn: Callable) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


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
        if Path(str(checkpoint)).suffix.lower() in TORCH_SUFFIXES:
            return _from_state_dict(str(checkpoint), model, filter_size, kwargs, identity)
        return _from_checkpoint(checkpoint, model, filter_size, kwargs, identity, in_channels, num_classes)
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"`eval`: `model` must be a zoo name, 'module:function' or a checkpoint, got {model!r}.")
    if is_factory_spec(model):
        net = build_model(model, filter_size if given_fs else None, in_channels=in_channels,
                          num_classes=num_classes or 1000, model_kwargs=kwargs, where="eval")
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
    if model is None:  # trust boundary: the run's files may name a zoo model, never a factory to import and call
        check_recorded_factory(spec, where="eval", param="model", flag="--model",
                               source=f"the run's {'model.json' if meta.get('config') else 'config.json'} "
                               f"({str(path.parent)!r})")
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
                      num_classes=int(recorded_classes or num_classes or 1000), model_kwargs=kwargs, where="eval")
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


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """A torch ``.pth``/``.pt`` state_dict, read with ``torch.load(weights_only=True)`` (no code runs).

    A dict holding the state_dict under ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` (training
    checkpoints) is unwrapped, and a ``"module."`` prefix on every key (DistributedDataParallel) dropped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a torch file of tensors, or a non-finite value.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"`eval`: `checkpoint` must be an existing file, got {str(p)!r}.")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises UnpicklingError, RuntimeError, EOFError, ... by file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"`eval`: `checkpoint` must be a torch state_dict readable with weights_only=True, got {str(p)!r} "
            f"({first}). Save it with torch.save(model.state_dict(), path)."
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(
            f"`eval`: `checkpoint` must hold a state_dict (a dict of tensors), got {type(obj).__name__} in {str(p)!r}."
        )
    if all(str(k).startswith("module.") for k in obj):
        obj = {str(k)[len("module."):]: v for k, v in obj.items()}
    bad = next((k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise ValueError(f"`eval`: `checkpoint` must hold finite weights, got NaN or inf in {bad!r} of {str(p)!r}.")
    return obj


def _from_state_dict(path: str, model: str | None, filter_size: Any, kwargs: dict[str, Any],
                     identity: dict[str, Any]) -> tuple[nn.Module, dict[str, Any], tuple[Normalization, str] | None]:
    """``model`` (a factory or zoo name) built with ``kwargs`` (and ``filter_size`` when given), then the torch
    state_dict at ``path`` loaded strictly. The state_dict fixes the architecture, so the data's class count is
    not passed: ``--model-kwargs`` says what the factory's defaults do not."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(
            f"`eval`: `model` must name the network for the state_dict {str(path)!r}, got {model!r}. Pass --model "
            "file.py:function, package.module:function or a zoo name."
        )
    state = read_state_dict(path)
    extra = dict(kwargs)
    if filter_size is not _UNSET:
        extra["filter_size"] = filter_size
    if is_factory_spec(model):
        factory = import_factory(model, "eval", "model")
        if "filter_size" in extra and not accepts(factory, "filter_size"):
            raise ValueError(
                f"`eval`: `filter_size` must not be given for a factory without a `filter_size` parameter, got "
                f"{extra['filter_size']!r} for {model!r}."
            )
        net = factory(**extra)
    else:
        get_model_builder(model)  # unknown names raise with close matches
        net = get_model(model, **extra)
    if not isinstance(net, nn.Module):
        raise TypeError(f"`eval`: `model` must build an nn.Module, got {type(net).__name__} from {model!r}.")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        raise ValueError(
            f"`eval`: the state_dict {str(path)!r} must fit {model!r} built with {extra or 'its defaults'}, got a "
            f"mismatch ({' '.join(lines[:3])[:400]}). Pass the arguments it was trained with in --model-kwargs."
        ) from None
    identity.update(spec=model, filter_size=extra.get("filter_size"), checkpoint=str(path),
                    checkpoint_sha256=sha256_file(Path(path)), model_kwargs=kwargs)
    return net.eval(), identity, None


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
    if _accepts(builder, "in_channels") and (in_channels != 3 or "in_channels" in _parameters(builder)):
        kwargs.setdefault("in_channels", in_channels)  # RGB through **kwargs only: resnet18's **kwargs refuse it
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
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    scale: float = 1.0,
) -> tuple[Normalization, str]:
    """Apply the precedence of the module docstring; returns ``(normalisation, source)``.

    ``mean``/``std``/``scale`` (the model's own statistics, first): the model sees
    ``(x * scale - mean) / std``, i.e. ``(x - mean / scale) / (std / scale)`` for images ``x`` in [0, 1];
    one value applies to every channel.

    Examples:
        >>> data = ResolvedData(None, {"image_shape": [3, 8, 8]}, None)
        >>> pick_normalization("auto", None, data, mean=[127], std=[128], scale=255)
        (((0.4980392156862745, 0.4980392156862745, 0.4980392156862745), (0.5019607843137255, \
0.5019607843137255, 0.5019607843137255)), 'given: (x * 255 - 127) / 128')
    """
    if mean is not None or std is not None:
        channels = int(data.identity["image_shape"][0])
        m = tuple(float(v) for v in (mean if mean is not None else (0.0,)))
        sd = tuple(float(v) for v in (std if std is not None else (1.0,)))
        for name, values in (("mean", m), ("std", sd)):
            if len(values) not in (1, channels):
                raise ValueError(
                    f"`eval`: `{name}` must have one value or one per channel ({channels}), got {list(values)}."
                )
        m, sd = (m * channels if len(m) == 1 else m), (sd * channels if len(sd) == 1 else sd)
        text = f"given: (x * {scale:g} - {_short(m)}) / {_short(sd)}" if scale != 1 else \
            f"given: (x - {_short(m)}) / {_short(sd)}"
        return (tuple(v / scale for v in m), tuple(v / scale for v in sd)), text
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


def _short(values: tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else "(" + ", ".join(f"{v:g}" for v in values) + ")"


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
