"""Configurations of ``antialias eval``: the options every metric shares, and one frozen dataclass per metric.

The command line (:mod:`antialias.eval._cli`) is generated from these fields: a field is a flag
(``batch_size`` -> ``--batch-size``, or the flag named in its ``metadata``), its help is the field's
line in the class docstring. Values are checked in ``__post_init__``; :meth:`from_dict` refuses
unknown keys, naming the closest field. The consistency protocol's config is
:class:`antialias.eval.consistency.ConsistencyConfig` (re-exported here).

Defaults that depend on the data (the paper's ImageNet protocol: crops of 224 from 256x256 centre
crops, larger shifts) are filled by each class's :meth:`for_data` for fields that were not given.

Examples:
    >>> StabilityConfig.for_data("imagenet:/data", pad_mode="reflect")
    StabilityConfig(max_shift=32, protocol='crop', crop_size=224, pad_mode='reflect')
    >>> EquivarianceConfig.from_dict({"num-images": 4}).num_images
    4
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from antialias.eval._fields import (
    PAD_MODES,
    PROTOCOLS,
    Config,
    boolean,
    check_choice,
    check_integer,
    fail,
    flag,
    is_imagenet,
    names,
    path_or_none,
)
from antialias.eval._forward import AMP_CHOICES
from antialias.eval._resolve import NORMALIZE_CHOICES
from antialias.eval.consistency import ConsistencyConfig
from antialias.eval.worst_case import WorstCaseConfig

__all__ = [
    "METRIC_CONFIGS",
    "ConsistencyConfig",
    "CorruptionConfig",
    "EquivarianceConfig",
    "EvalOptions",
    "PerturbationConfig",
    "StabilityConfig",
]

SPLITS = ("train", "test", "val")
DISTANCES = ("cosine", "l2")
PRESETS = ("auto", "imagenet", "cifar")
DATA_PRESETS = ("none", "imagenet")
CORRUPTION_DATA_FORMATS = ("auto", "cifar10-c", "imagenet-c")
PERTURBATION_DATA_FORMATS = ("auto", "cifar10-p", "imagenet-p")


def _floats(where: str, name: str, value: Any, *, positive: bool) -> tuple[float, ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        out = tuple(float(v) for v in items if not isinstance(v, bool))
    except (TypeError, ValueError):
        out = ()
    if not out or len(out) != len(tuple(items)) or not all(math.isfinite(v) and (v > 0 or not positive) for v in out):
        raise fail(where, name, "one or more finite numbers" + (" > 0" if positive else ""), value)
    return out


def _data_files(where: str, kind: str, data: Any, data_format: Any, formats: tuple[str, ...]) -> str | None:
    """Checks ``{kind}_data`` (a folder of released files, or None) and ``{kind}_format`` (its layout, or auto);
    returns the folder as a string (recorded in the results JSON as given)."""
    path_or_none(where, f"{kind}_data", data, "a folder of released files")
    check_choice(where, f"{kind}_format", data_format, formats)
    if data is None and data_format != "auto":
        raise fail(where, f"{kind}_format", f"'auto' without `{kind}_data`", data_format,
                   f" Give the folder of the files too (--{kind}-data DIR).")
    return None if data is None else os.fspath(data)


@dataclasses.dataclass(frozen=True)
class EvalOptions(Config):
    """What is evaluated on which images, and how the evaluation runs: the options of every metric.

    Args:
        model: Zoo name (see ``antialias.models.list_models()``), or a factory
            'package.module:function' / 'file.py:function'; with checkpoint, overrides the recorded one.
            In Python also an nn.Module.
        filter_size: Blur filter: 1-7 or rect2/tri3/tri4/bin5, none for the baseline; auto: the zoo's 4,
            the weights' or the checkpoint's (a factory gets none).
        weights: Published weights of a zoo model, e.g. resnet50.imagenet1k_tri4_ft.
        checkpoint: Run directory of `antialias train` or one of our .safetensors files: the model is
            rebuilt from the recorded config and loaded strictly. Or a torch .pth/.pt state_dict (read
            with weights_only=True) loaded strictly into --model, built with --model-kwargs only.
        model_kwargs: Extra builder arguments (a JSON object on the command line).
        data: fashion-mnist, mnist, cifar10[:PATH], cifar100[:PATH], imagenet:PATH, imagefolder:PATH,
            a folder PATH (<class>/<image>, or with val/ or test/ inside) or module:function. In Python
            also a Dataset with images in [0, 1].
        class_map: Folders: which class index each class folder is. auto: folder names that are all
            integers ('243') or all ImageNet wnids are indices, else sorted names; sorted: sorted names
            are 0, 1, ...; or a .json ({"folder": index} or a list of names) or text file ('folder
            index' per line, or one name per line in index order).
        data_preset: none, or imagenet: the paper's ImageNet protocol on any folder (resize 256,
            224 crops, consistency offsets 0..31), as for imagenet:PATH.
        data_root: Folder of the data (default: the standard places).
        download: Allow downloading MNIST/Fashion-MNIST/CIFAR into the cache.
        split: Which split: train, test or val.
        subset: Evaluate the first N images only.
        resize: Folder sets: resize the shorter side to N.
        center_crop: Folder sets: then centre-crop NxN.
        normalize: auto: the run's recorded statistics, the weights' (ImageNet), else the data set's
            default; none, dataset or imagenet. In Python also a (mean, std) pair.
        mean: The model's own normalisation: the model sees (x * scale - mean) / std for images x in
            [0, 1]; one value or one per channel (e.g. --mean 127 --std 128 --scale 255).
        std: See mean (default 1).
        scale: See mean (default 1: mean and std on the [0, 1] scale; 255 for 0..255 statistics).
        batch_size: Images per batch, per process under torchrun.
        device: auto, cpu, cuda or cuda:N.
        amp: Autocast the forwards: none, bf16 or fp16 (fp16: CUDA only).
        num_workers: Data loader processes.
        out: Results JSON; arrays (.npz) and, from the command line, figures (.png) are written next
            to it with the same stem.
        overwrite: Replace existing output files.
    """

    model: str | None = dataclasses.field(default=None, metadata=flag(metavar="SPEC", group="model"))
    filter_size: int | str | None = dataclasses.field(
        default="auto", metadata=flag(metavar="N|NAME|none|auto", group="model"))
    weights: str | None = dataclasses.field(default=None, metadata=flag(metavar="NAME", group="model"))
    checkpoint: str | None = dataclasses.field(default=None, metadata=flag(metavar="PATH", group="model"))
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict, metadata=flag(metavar="JSON", group="model"))
    data: str = dataclasses.field(default="fashion-mnist", metadata=flag(metavar="SPEC", group="data"))
    class_map: str | None = dataclasses.field(default="auto", metadata=flag(metavar="FILE|auto|sorted", group="data"))
    data_preset: str = dataclasses.field(default="none", metadata=flag(choices=DATA_PRESETS, group="data"))
    data_root: str | None = dataclasses.field(default=None, metadata=flag(metavar="DIR", group="data"))
    download: bool = dataclasses.field(default=False, metadata=flag(group="data"))
    split: str = dataclasses.field(default="test", metadata=flag(choices=SPLITS, group="data"))
    subset: int | None = dataclasses.field(default=None, metadata=flag(min=1, group="data"))
    resize: int | None = dataclasses.field(default=None, metadata=flag(min=1, group="data"))
    center_crop: int | None = dataclasses.field(default=None, metadata=flag(min=1, group="data"))
    normalize: str = dataclasses.field(default="auto", metadata=flag(choices=NORMALIZE_CHOICES, group="data"))
    mean: tuple[float, ...] | None = dataclasses.field(default=None, metadata=flag(metavar="M", group="data"))
    std: tuple[float, ...] | None = dataclasses.field(default=None, metadata=flag(metavar="S", group="data"))
    scale: float = dataclasses.field(default=1.0, metadata=flag(metavar="X", group="data"))
    batch_size: int = dataclasses.field(default=128, metadata=flag(min=1, group="run"))
    device: str = dataclasses.field(default="auto", metadata=flag(metavar="DEVICE", group="run"))
    amp: str = dataclasses.field(default="none", metadata=flag(choices=AMP_CHOICES, group="run"))
    num_workers: int = dataclasses.field(default=0, metadata=flag(min=0, group="run"))
    out: str | None = dataclasses.field(default=None, metadata=flag(metavar="FILE.json", group="run", required=True))
    overwrite: bool = dataclasses.field(default=False, metadata=flag(name="--force", group="run"))

    def __post_init__(self) -> None:
        w = "eval"
        if self.model is not None and not isinstance(self.model, (str, nn.Module)):
            raise TypeError(
                f"`{w}`: `model` must be a name, 'module:function', an nn.Module or None, got {self.model!r}."
            )
        fs = self.filter_size
        if fs is not None and (isinstance(fs, bool) or not isinstance(fs, (int, str))):
            raise TypeError(f"`{w}`: `filter_size` must be an int, a filter name, 'auto' or None, got {fs!r}.")
        for name in ("weights", "checkpoint", "data_root"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"`{w}`: `{name}` must be a string or None, got {value!r}.")
        if not isinstance(self.model_kwargs, dict) or not all(isinstance(k, str) for k in self.model_kwargs):
            raise TypeError(f"`{w}`: `model_kwargs` must be a dict with str keys, got {self.model_kwargs!r}.")
        if not isinstance(self.data, (str, Dataset)):
            raise TypeError(
                f"`{w}`: `data` must be a data set spec (str) or a Dataset, got {type(self.data).__name__}."
            )
        check_choice(w, "split", self.split, SPLITS)
        for name in ("subset", "resize", "center_crop"):
            check_integer(w, name, getattr(self, name), 1, optional=True)
        if not isinstance(self.normalize, (tuple, list)):
            check_choice(w, "normalize", self.normalize, NORMALIZE_CHOICES)
        if self.class_map is not None and not isinstance(self.class_map, (str, os.PathLike)):
            raise TypeError(f"`{w}`: `class_map` must be 'auto', 'sorted' or a file path, got {self.class_map!r}.")
        check_choice(w, "data_preset", self.data_preset, DATA_PRESETS)
        for name in ("mean", "std"):
            object.__setattr__(self, name, _floats(w, name, getattr(self, name), positive=name == "std"))
        if (self.mean is not None and self.std is not None and 1 not in (len(self.mean), len(self.std))
                and len(self.mean) != len(self.std)):
            raise fail(w, "std", f"one value or {len(self.mean)} like `mean`", self.std)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not 0 < self.scale < math.inf:
            raise fail(w, "scale", "a positive finite number", self.scale)
        object.__setattr__(self, "scale", float(self.scale))
        if (self.mean is not None or self.std is not None) and self.normalize != "auto":
            raise fail(w, "normalize", "'auto' (the default) with --mean/--std", self.normalize,
                       " Give the model's statistics once: --mean/--std, or --normalize.")
        if self.scale != 1.0 and self.mean is None and self.std is None:
            raise fail(w, "scale", "1 without --mean/--std (it scales them)", self.scale, " Add --mean and --std.")
        check_integer(w, "batch_size", self.batch_size, 1)
        check_integer(w, "num_workers", self.num_workers, 0)
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"`{w}`: `device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}.")
        check_choice(w, "amp", self.amp, AMP_CHOICES)
        for name in ("download", "overwrite"):
            boolean(w, name, getattr(self, name))
        if self.out is not None and not str(self.out).endswith(".json"):
            raise fail(w, "out", "a path ending in .json", str(self.out), " (e.g. results.json)")

    @property
    def given_filter_size(self) -> bool:
        """Whether ``filter_size`` was set (``"auto"``: take the zoo's, the weights' or the checkpoint's)."""
        return self.filter_size != "auto"


@dataclasses.dataclass(frozen=True)
class StabilityConfig(Config):
    """Diagonal shifts ``(d, d)``, ``d = 0..max_shift`` (the paper's Figure 1).

    Args:
        max_shift: Largest diagonal shift in pixels (default 8; 32 for imagenet data).
        protocol: crop (crops of the padded image, or of a crop_size crop) or circular (torch.roll).
        crop_size: Crop size of the crop protocol; none: pad the image and crop its size (default none;
            224 for imagenet data).
        pad_mode: Padding of the crop protocol without crop_size: zeros or reflect.
    """

    max_shift: int = dataclasses.field(default=8, metadata=flag(min=0))
    protocol: str = dataclasses.field(default="crop", metadata=flag(choices=PROTOCOLS))
    crop_size: int | None = dataclasses.field(default=None, metadata=flag(min=1, metavar="N|none"))
    pad_mode: str = dataclasses.field(default="zeros", metadata=flag(choices=PAD_MODES))

    IMAGENET: ClassVar[dict[str, Any]] = {"max_shift": 32, "crop_size": 224}

    def __post_init__(self) -> None:
        w = "StabilityConfig"
        check_integer(w, "max_shift", self.max_shift, 0)
        check_choice(w, "protocol", self.protocol, PROTOCOLS)
        check_integer(w, "crop_size", self.crop_size, 1, optional=True)
        check_choice(w, "pad_mode", self.pad_mode, PAD_MODES)

    @classmethod
    def for_data(cls, data: Any, **given: Any) -> StabilityConfig:
        """``imagenet`` data: crops of 224 shifted up to 32 unless given (``max_shift=None``: the default)."""
        given = {k: v for k, v in given.items() if not (k == "max_shift" and v is None)}
        defaults = dict(cls.IMAGENET) if is_imagenet(data) else {}
        return cls.from_dict({**defaults, **given})


@dataclasses.dataclass(frozen=True)
class EquivarianceConfig(Config):
    """Per-layer feature distance maps between Shift(F(x)) and F(Shift(x)) over a grid of circular shifts.

    Args:
        layers: Module names (default: every conv, norm, activation and pool output).
        step: Shift grid spacing (default: 1 up to 32 pixels, else a 32x32 grid).
        distance: cosine or l2.
        num_images: Images averaged over (the first ones of the data).
        pad_to: Zero-pad the images to a multiple of N (Fashion-MNIST 28 -> 32) so that feature maps
            upsample exactly; 0 or none: no padding.
        shifts_per_batch: At most this many shifted copies of all images per forward (default: as many
            as fit in max_memory_gib).
        split_max: Record each max-pool's dense max as '<layer>.densemax'.
        max_memory_gib: Peak memory the run plans for, in GiB, the process included (default 4): the
            shifts are streamed and each layer reduced on the fly, a few channels at a time; none: no bound.
        progress: Progress bar on stderr (default: when stderr is a terminal); the plan and time
            estimate line is printed unless --no-progress.
    """

    layers: tuple[str, ...] | None = dataclasses.field(default=None, metadata=flag(metavar="NAME"))
    step: int | None = dataclasses.field(default=None, metadata=flag(min=1))
    distance: str = dataclasses.field(default="cosine", metadata=flag(choices=DISTANCES))
    num_images: int = dataclasses.field(default=16, metadata=flag(min=1))
    pad_to: int | None = dataclasses.field(default=32, metadata=flag(min=0))
    shifts_per_batch: int | None = dataclasses.field(default=None, metadata=flag(min=1))
    split_max: bool = True
    max_memory_gib: float | None = dataclasses.field(default=4.0, metadata=flag(metavar="GIB|none"))
    progress: bool | None = None

    def __post_init__(self) -> None:
        w = "EquivarianceConfig"
        m = self.max_memory_gib
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m < math.inf):
            raise fail(w, "max_memory_gib", "a positive number of GiB or None", m)
        if self.progress is not None:
            boolean(w, "progress", self.progress)
        if isinstance(self.layers, str):
            raise TypeError(
                f"`{w}`: `layers` must be a list of names, got the string {self.layers!r}; use [{self.layers!r}]."
            )
        object.__setattr__(self, "layers", names(w, "layers", self.layers))
        check_integer(w, "step", self.step, 1, optional=True)
        check_choice(w, "distance", self.distance, DISTANCES)
        check_integer(w, "num_images", self.num_images, 1)
        check_integer(w, "pad_to", self.pad_to, 0, optional=True)
        if self.pad_to == 0:
            object.__setattr__(self, "pad_to", None)
        check_integer(w, "shifts_per_batch", self.shifts_per_batch, 1, optional=True)
        boolean(w, "split_max", self.split_max)


@dataclasses.dataclass(frozen=True)
class CorruptionConfig(Config):
    """ImageNet-C style corruption errors, CE and mCE, on images corrupted on the fly or on the released files.

    Args:
        corruptions: Corruption names (default: the 15 test corruptions; with --corruption-data, every
            known one it holds).
        severities: Severities, each in 1..5.
        normaliser: Reference errors for CE and mCE: alexnet (ImageNet only) or a reference model's
            results JSON of ours (default: alexnet on ImageNet-C files, else none).
        clean: Also measure the clean error (for relative CE); with --corruption-data, on the images
            of --data, which must be the files' clean set in their order (the labels are checked).
        seed: Seed of the random corruptions.
        corruption_data: Evaluate on the released files in this folder instead of corrupting on the
            fly: CIFAR-10-C (<corruption>.npy, labels.npy) or ImageNet-C
            (<corruption>/<severity>/<wnid>/*.JPEG). --data still names the clean set (the model's
            classes, the normalisation, the clean error): cifar10, or imagenet:PATH; --subset N reads
            the first N images of each severity.
        corruption_format: The layout of --corruption-data: auto (from the folder's contents),
            cifar10-c or imagenet-c.
    """

    corruptions: tuple[str, ...] | None = dataclasses.field(default=None, metadata=flag(metavar="NAME"))
    severities: tuple[int, ...] = dataclasses.field(default=(1, 2, 3, 4, 5), metadata=flag(min=1, metavar="S"))
    normaliser: str | None = dataclasses.field(default=None, metadata=flag(metavar="alexnet|FILE.json"))
    clean: bool = True
    seed: int = dataclasses.field(default=0, metadata=flag(min=0))
    corruption_data: str | None = dataclasses.field(default=None, metadata=flag(metavar="DIR"))
    corruption_format: str = dataclasses.field(default="auto", metadata=flag(choices=CORRUPTION_DATA_FORMATS))

    def __post_init__(self) -> None:
        w = "CorruptionConfig"
        object.__setattr__(self, "corruptions", names(w, "corruptions", self.corruptions))
        severities = tuple(self.severities)
        if not severities or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 5 for s in severities):
            raise fail(w, "severities", "a non-empty list of integers in 1..5", self.severities)
        object.__setattr__(self, "severities", severities)
        if self.normaliser is not None and not isinstance(self.normaliser, (str, os.PathLike)):
            raise TypeError(
                f"`{w}`: `normaliser` must be 'alexnet', a results JSON path or None, got {self.normaliser!r}."
            )
        boolean(w, "clean", self.clean)
        check_integer(w, "seed", self.seed, 0)
        folder = _data_files(w, "corruption", self.corruption_data, self.corruption_format, CORRUPTION_DATA_FORMATS)
        object.__setattr__(self, "corruption_data", folder)


@dataclasses.dataclass(frozen=True)
class PerturbationConfig(Config):
    """ImageNet-P style flip probabilities, FR/mFR and top-5 distance on sequences generated on the fly or released.

    Args:
        perturbations: Perturbation names (default: all ten, ImageNet-P's test set).
        preset: Frame counts and ranges of generated sequences: auto, imagenet or cifar.
        step: Frame distance of compared pairs (ignored for noise).
        normaliser: A reference model's results JSON of ours, for FR and mFR.
        seed: Seed of the noise and snow perturbations.
        perturbation_data: Evaluate on the released sequences in this folder instead of generating
            them: CIFAR-10-P (<perturbation>.npy) or ImageNet-P (<perturbation>/<wnid>/*.mp4 videos,
            read with PyAV: pip install "antialias[video]"); --perturbations defaults to every known
            one it holds, --subset N reads the first N sequences of each. --data still names the
            model's data set (its classes, the normalisation): cifar10, or imagenet:PATH.
        perturbation_format: The layout of --perturbation-data: auto (from the folder's contents),
            cifar10-p or imagenet-p.
    """

    perturbations: tuple[str, ...] | None = dataclasses.field(default=None, metadata=flag(metavar="NAME"))
    preset: str = dataclasses.field(default="auto", metadata=flag(choices=PRESETS))
    step: int = dataclasses.field(default=1, metadata=flag(min=1))
    normaliser: str | None = dataclasses.field(default=None, metadata=flag(metavar="FILE.json"))
    seed: int = dataclasses.field(default=0, metadata=flag(min=0))
    perturbation_data: str | None = dataclasses.field(default=None, metadata=flag(metavar="DIR"))
    perturbation_format: str = dataclasses.field(default="auto", metadata=flag(choices=PERTURBATION_DATA_FORMATS))

    def __post_init__(self) -> None:
        w = "PerturbationConfig"
        object.__setattr__(self, "perturbations", names(w, "perturbations", self.perturbations))
        check_choice(w, "preset", self.preset, PRESETS)
        check_integer(w, "step", self.step, 1)
        if self.normaliser is not None and not isinstance(self.normaliser, (str, os.PathLike)):
            raise TypeError(f"`{w}`: `normaliser` must be a results JSON path or None, got {self.normaliser!r}.")
        check_integer(w, "seed", self.seed, 0)
        folder = _data_files(w, "perturbation", self.perturbation_data, self.perturbation_format,
                             PERTURBATION_DATA_FORMATS)
        object.__setattr__(self, "perturbation_data", folder)


#: The config class of each metric of ``antialias eval``.
METRIC_CONFIGS: dict[str, type[Config]] = {
    "consistency": ConsistencyConfig,
    "stability": StabilityConfig,
    "equivariance": EquivarianceConfig,
    "corruption": CorruptionConfig,
    "perturbation": PerturbationConfig,
    "worst-case": WorstCaseConfig,
}
