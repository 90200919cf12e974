"""Registry of the published anti-aliased ImageNet checkpoints, in torchvision's multi-weight style.

Each architecture has one enum (``ResNet50_Weights``) whose members are self-describing
:class:`Weights`: URL, SHA-256 prefix, filter size, fine-tuned or not, and ``meta`` (published
top-1 and consistency, preprocessing, licence, parameter count, source file). ``DEFAULT`` is the
fine-tuned Tri-4 model, the reference's recommendation. Members are also named by strings,
``"resnet50.imagenet1k_tri4_ft"`` (case-insensitive), and :func:`resolve` accepts either form.

Member names: ``IMAGENET1K_RECT2``, ``_TRI3``, ``_TRI4``, ``_BIN5`` are the models trained from
scratch with that filter (files ``<arch>_lpf{2,3,4,5}``); ``IMAGENET1K_TRI4_FT`` is the Tri-4 model
fine-tuned from the torchvision baseline (``<arch>_lpf4_finetune``).

The 59 checkpoints come from Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019)
and its reference code adobe/antialiased-cnns (release ``weights_v0.1``); they are licensed
CC BY-NC-SA 4.0 by Adobe (non-commercial), which is shown once per process when one is loaded.
Published numbers: the paper's per-filter table for models trained from scratch, the reference's
README for six fine-tuned models; ``None`` where no number was published.

Examples:
    >>> w = resolve("resnet50.imagenet1k_tri4_ft", "resnet50")
    >>> w is ResNet50_Weights.DEFAULT.value, w.filter_size, w.finetuned
    (True, 4, True)
    >>> w.meta["top1"], w.meta["consistency"]
    (77.41, 91.32)
    >>> len(list_weights())
    59
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from torch import Tensor

from antialias.models._download import default_cache_dir, download_file, load_state_dict_file

__all__ = [
    "AlexNet_Weights",
    "VGG11_Weights",
    "VGG11_BN_Weights",
    "VGG13_Weights",
    "VGG13_BN_Weights",
    "VGG16_Weights",
    "VGG16_BN_Weights",
    "VGG19_Weights",
    "VGG19_BN_Weights",
    "ResNet18_Weights",
    "ResNet34_Weights",
    "ResNet50_Weights",
    "ResNet101_Weights",
    "ResNet152_Weights",
    "ResNeXt50_32X4D_Weights",
    "ResNeXt101_32X8D_Weights",
    "Wide_ResNet50_2_Weights",
    "Wide_ResNet101_2_Weights",
    "DenseNet121_Weights",
    "DenseNet161_Weights",
    "DenseNet169_Weights",
    "DenseNet201_Weights",
    "MobileNet_V2_Weights",
    "LICENSE",
    "Weights",
    "WeightsEnum",
    "get_model_weights",
    "get_weights",
    "list_weights",
    "resolve",
]

_BASE_URL = "https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/"
LICENSE = "CC BY-NC-SA 4.0 (Adobe)"
_LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
_FILTER_NAMES = {2: "rect2", 3: "tri3", 4: "tri4", 5: "bin5"}

# The reference's evaluation transform (torchvision's ImageNet convention).
_PREPROCESSING = {
    "resize": 256,
    "center_crop": 224,
    "interpolation": "bilinear",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}

# Trainable parameters (weights and biases, no buffers), counted from the reference key lists.
_NUM_PARAMS = {
    "alexnet": 61100840, "vgg11": 132863336, "vgg11_bn": 132868840, "vgg13": 133047848,
    "vgg13_bn": 133053736, "vgg16": 138357544, "vgg16_bn": 138365992, "vgg19": 143667240,
    "vgg19_bn": 143678248, "resnet18": 11689512, "resnet34": 21797672, "resnet50": 25557032,
    "resnet101": 44549160, "resnet152": 60192808, "resnext50_32x4d": 25028904,
    "resnext101_32x8d": 88791336, "wide_resnet50_2": 68883240, "wide_resnet101_2": 126886696,
    "densenet121": 7978856, "densenet161": 28681000, "densenet169": 14149480,
    "densenet201": 20013928, "mobilenet_v2": 3504872,
}  # fmt: skip

# ImageNet val top-1 / consistency (%), trained from scratch, per filter size (the paper's table).
_FROM_SCRATCH = {
    "alexnet": {2: (57.24, 81.33), 3: (56.90, 82.15), 4: (56.72, 82.54), 5: (56.58, 82.51)},
    "vgg16": {2: (72.15, 89.24), 3: (72.20, 89.60), 4: (72.43, 89.92), 5: (72.33, 90.19)},
    "vgg16_bn": {2: (74.01, 90.72), 3: (73.91, 91.10), 4: (74.12, 91.22), 5: (74.05, 91.35)},
    "resnet18": {2: (71.39, 86.90), 3: (71.69, 87.51), 4: (71.48, 88.07), 5: (71.38, 88.25)},
    "resnet34": {2: (74.46, 89.14), 3: (74.33, 89.32), 4: (74.38, 89.53), 5: (74.20, 89.49)},
    "resnet50": {2: (76.81, 89.96), 3: (76.83, 90.91), 4: (77.23, 91.29), 5: (77.04, 91.31)},
    "resnet101": {2: (77.82, 91.04), 3: (78.13, 91.62), 4: (78.22, 91.85), 5: (77.92, 91.74)},
    "densenet121": {2: (75.04, 89.53), 3: (75.14, 89.78), 4: (75.29, 90.29), 5: (75.03, 90.39)},
    "mobilenet_v2": {2: (72.63, 87.33), 3: (72.59, 87.46), 4: (72.72, 87.72), 5: (72.50, 87.79)},
}
# Fine-tuned Tri-4 (the reference's README); the other 17 fine-tuned models have no number here.
_FINETUNED = {
    "resnet18": (71.67, 88.36),
    "resnet50": (77.41, 91.32),
    "vgg16_bn": (75.13, 91.58),
    "densenet121": (75.79, 90.35),
    "mobilenet_v2": (72.72, 87.73),
    "alexnet": (56.94, 83.31),
}

_LICENSE_SHOWN: set[str] = set()  # licences already shown in this process


@dataclass(frozen=True)
class Weights:
    """One published checkpoint: where to get it, how to check it, and what it is.

    Args:
        url: Original download URL; the file name ends in ``-<sha256_prefix>.pth``.
        sha256_prefix: Leading hex digits of the file's SHA-256.
        arch: Architecture name, as in ``antialias.models.get_model`` (``"resnet50"``).
        filter_size: Blur filter taps (2 Rect-2, 3 Tri-3, 4 Tri-4, 5 Bin-5).
        finetuned: True for models fine-tuned from the torchvision baseline, False for models
            trained from scratch.
        meta: ``num_classes``, ``top1`` and ``consistency`` (published ImageNet val %, ``None``
            where unpublished), ``num_params``, ``preprocessing``, ``license``, ``checkpoint``
            (the source file's stem), ``filter`` (its name), ``paper``.

    Examples:
        >>> w = ResNet18_Weights.IMAGENET1K_TRI3.value
        >>> w.full_name, w.file_name
        ('resnet18.imagenet1k_tri3', 'resnet18_lpf3-449351b9.pth')
    """

    url: str
    sha256_prefix: str
    arch: str
    filter_size: int
    finetuned: bool
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def full_name(self) -> str:
        """The string name, ``"<arch>.imagenet1k_<filter>[_ft]"``."""
        suffix = "_ft" if self.finetuned else ""
        return f"{self.arch}.imagenet1k_{_FILTER_NAMES.get(self.filter_size, self.filter_size)}{suffix}"

    @property
    def file_name(self) -> str:
        """The file name in the cache (the URL's last component)."""
        return self.url.rsplit("/", 1)[-1]

    def cache_path(self, cache_dir: str | os.PathLike | None = None) -> Path:
        """Where the file is (or will be) cached; put a hand-downloaded copy here."""
        return default_cache_dir(cache_dir) / self.file_name

    def get_state_dict(
        self,
        progress: bool = True,
        *,
        cache_dir: str | os.PathLike | None = None,
        mirrors: str | Iterable[str] | None = None,
    ) -> dict[str, Tensor]:
        """Download (or find in the cache), verify and load the checkpoint.

        The state_dict is in the reference's layout, including its ``.filt`` buffers; the
        anti-aliased models of :mod:`antialias.models` check and drop those when loading.

        Args:
            progress: Print download progress to stderr.
            cache_dir: Cache directory (default: ``$ANTIALIAS_CACHE``, else torch.hub's
                ``checkpoints`` directory).
            mirrors: Base URLs or directories tried before ``$ANTIALIAS_WEIGHTS_MIRROR`` and the
                original URL.

        Returns:
            A ``dict`` from names to CPU tensors.

        Raises:
            DownloadError: Offline or every source failed; the message says which file to fetch by
                hand and where to put it.
            ChecksumError: The file's hash is wrong.
            CheckpointError: The file is corrupt, or (``UnsafeCheckpointError``) its pickle would
                run code.
        """
        path = download_file(self.url, self.sha256_prefix, cache_dir=cache_dir, mirrors=mirrors, progress=progress)
        state_dict = load_state_dict_file(path)
        _show_license(self)
        return state_dict


def _show_license(weights: Weights) -> None:
    license_ = weights.meta.get("license", LICENSE)
    if license_ in _LICENSE_SHOWN:
        return
    _LICENSE_SHOWN.add(license_)
    warnings.warn(
        f"The published anti-aliased weights ({weights.full_name} and the others) are licensed "
        f"{license_} ({_LICENSE_URL}): non-commercial use, attribution, share-alike.",
        UserWarning,
        stacklevel=3,
    )


def _w(arch: str, filter_size: int, sha256_prefix: str, *, finetuned: bool = False) -> Weights:
    checkpoint = f"{arch}_lpf{filter_size}" + ("_finetune" if finetuned else "")
    published = _FINETUNED.get(arch) if finetuned else _FROM_SCRATCH.get(arch, {}).get(filter_size)
    top1, consistency = published if published else (None, None)
    meta = {
        "num_classes": 1000,
        "top1": top1,
        "consistency": consistency,
        "num_params": _NUM_PARAMS[arch],
        "filter": _FILTER_NAMES[filter_size],
        "preprocessing": dict(_PREPROCESSING),
        "license": LICENSE,
        "checkpoint": checkpoint,
        "paper": "Zhang, Making Convolutional Networks Shift-Invariant Again, ICML 2019",
    }
    url = f"{_BASE_URL}{checkpoint}-{sha256_prefix}.pth"
    return Weights(url, sha256_prefix, arch, filter_size, finetuned, meta)


class WeightsEnum(Enum):
    """Base of the per-architecture enums; members forward the :class:`Weights` attributes.

    Examples:
        >>> ResNet50_Weights.DEFAULT
        ResNet50_Weights.IMAGENET1K_TRI4_FT
        >>> ResNet50_Weights.DEFAULT.full_name, ResNet50_Weights.DEFAULT.meta["filter"]
        ('resnet50.imagenet1k_tri4_ft', 'tri4')
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @property
    def url(self) -> str:
        return self.value.url

    @property
    def sha256_prefix(self) -> str:
        return self.value.sha256_prefix

    @property
    def arch(self) -> str:
        return self.value.arch

    @property
    def filter_size(self) -> int:
        return self.value.filter_size

    @property
    def finetuned(self) -> bool:
        return self.value.finetuned

    @property
    def meta(self) -> dict[str, Any]:
        return self.value.meta

    @property
    def full_name(self) -> str:
        return self.value.full_name

    @property
    def file_name(self) -> str:
        return self.value.file_name

    def cache_path(self, cache_dir: str | os.PathLike | None = None) -> Path:
        return self.value.cache_path(cache_dir)

    def get_state_dict(self, progress: bool = True, **kwargs: Any) -> dict[str, Tensor]:
        """See :meth:`Weights.get_state_dict`."""
        return self.value.get_state_dict(progress, **kwargs)


class AlexNet_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``alexnet``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("alexnet", 2, "da8aca74")
    IMAGENET1K_TRI3 = _w("alexnet", 3, "f9bbc410")
    IMAGENET1K_TRI4 = _w("alexnet", 4, "0114fe25")
    IMAGENET1K_BIN5 = _w("alexnet", 5, "4fa3706a")
    IMAGENET1K_TRI4_FT = _w("alexnet", 4, "20598a7a", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG11_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg11``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg11", 4, "35eab449", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG11_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg11_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg11_bn", 4, "5d60b5e4", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG13_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg13``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg13", 4, "d8ff02c4", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG13_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg13_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg13_bn", 4, "45e2a72f", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG16_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg16``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("vgg16", 2, "60268e0c")
    IMAGENET1K_TRI3 = _w("vgg16", 3, "e9b0ce42")
    IMAGENET1K_TRI4 = _w("vgg16", 4, "de9267ac")
    IMAGENET1K_BIN5 = _w("vgg16", 5, "1391f70c")
    IMAGENET1K_TRI4_FT = _w("vgg16", 4, "79c9dff7", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG16_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg16_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("vgg16_bn", 2, "2c2052a8")
    IMAGENET1K_TRI3 = _w("vgg16_bn", 3, "1782878a")
    IMAGENET1K_TRI4 = _w("vgg16_bn", 4, "a1c3559b")
    IMAGENET1K_BIN5 = _w("vgg16_bn", 5, "c500b52f")
    IMAGENET1K_TRI4_FT = _w("vgg16_bn", 4, "1dd798d1", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG19_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg19``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg19", 4, "7ab2cf45", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG19_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg19_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg19_bn", 4, "d0114293", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet18_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet18``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet18", 2, "6e2ee76f")
    IMAGENET1K_TRI3 = _w("resnet18", 3, "449351b9")
    IMAGENET1K_TRI4 = _w("resnet18", 4, "8c77af40")
    IMAGENET1K_BIN5 = _w("resnet18", 5, "c1eed0a1")
    IMAGENET1K_TRI4_FT = _w("resnet18", 4, "8cc58f59", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet34_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet34``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet34", 2, "4707aed9")
    IMAGENET1K_TRI3 = _w("resnet34", 3, "16aa6c48")
    IMAGENET1K_TRI4 = _w("resnet34", 4, "55747267")
    IMAGENET1K_BIN5 = _w("resnet34", 5, "85283561")
    IMAGENET1K_TRI4_FT = _w("resnet34", 4, "db622952", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet50_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet50``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet50", 2, "f0f7589d")
    IMAGENET1K_TRI3 = _w("resnet50", 3, "a4e868d2")
    IMAGENET1K_TRI4 = _w("resnet50", 4, "994b528f")
    IMAGENET1K_BIN5 = _w("resnet50", 5, "9953c9ad")
    IMAGENET1K_TRI4_FT = _w("resnet50", 4, "cad66808", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet101_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet101``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet101", 2, "3d00941d")
    IMAGENET1K_TRI3 = _w("resnet101", 3, "928f1444")
    IMAGENET1K_TRI4 = _w("resnet101", 4, "f8a116ff")
    IMAGENET1K_BIN5 = _w("resnet101", 5, "1f3745af")
    IMAGENET1K_TRI4_FT = _w("resnet101", 4, "9280acb0", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet152_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet152``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnet152", 4, "7f67d9ae", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNeXt50_32X4D_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnext50_32x4d``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnext50_32x4d", 4, "9106e549", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNeXt101_32X8D_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnext101_32x8d``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnext101_32x8d", 4, "8f13a25d", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class Wide_ResNet50_2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``wide_resnet50_2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("wide_resnet50_2", 4, "02a183f7", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class Wide_ResNet101_2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``wide_resnet101_2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("wide_resnet101_2", 4, "da4eae04", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet121_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet121``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("densenet121", 2, "7da7d4cd")
    IMAGENET1K_TRI3 = _w("densenet121", 3, "0f267ad8")
    IMAGENET1K_TRI4 = _w("densenet121", 4, "edeaab00")
    IMAGENET1K_BIN5 = _w("densenet121", 5, "ebc7880c")
    IMAGENET1K_TRI4_FT = _w("densenet121", 4, "eceaa619", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet161_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet161``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet161", 4, "a5e0f328", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet169_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet169``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet169", 4, "992131e6", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet201_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet201``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet201", 4, "736979b2", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class MobileNet_V2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``mobilenet_v2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("mobilenet_v2", 2, "f4379012")
    IMAGENET1K_TRI3 = _w("mobilenet_v2", 3, "23b2e2ee")
    IMAGENET1K_TRI4 = _w("mobilenet_v2", 4, "2e0b9cb9")
    IMAGENET1K_BIN5 = _w("mobilenet_v2", 5, "ab8fe968")
    IMAGENET1K_TRI4_FT = _w("mobilenet_v2", 4, "7eed94b1", finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT

_ENUMS: dict[str, type[WeightsEnum]] = {
    members[0].arch: cls
    for cls in WeightsEnum.__subclasses__()
    if (members := list(cls))
}
# Every accepted string, lower case: "<arch>.<member>" (DEFAULT included) and the source file stem.
_BY_NAME: dict[str, Weights] = {}
for _arch, _cls in _ENUMS.items():
    for _member_name, _member in _cls.__members__.items():
        _BY_NAME[f"{_arch}.{_member_name.lower()}"] = _member.value
        _BY_NAME[_member.value.meta["checkpoint"]] = _member.value
del _arch, _cls, _member_name, _member


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_arch(arch: str, where: str) -> type[WeightsEnum]:
    if not isinstance(arch, str):
        raise TypeError(f"`{where}`: `arch` must be a str, got {arch!r}.")
    cls = _ENUMS.get(arch.lower())
    if cls is None:
        raise ValueError(
            f"`{where}`: `arch` must be an architecture with published weights, got {arch!r}."
            f"{_suggest(arch.lower(), _ENUMS)} Known: {', '.join(_ENUMS)}."
        )
    return cls


def list_weights(arch: str | None = None) -> list[str]:
    """String names of the published weights, optionally for one architecture (no aliases).

    Args:
        arch: Architecture name (``"resnet50"``); ``None`` lists all 59.

    Returns:
        Names such as ``"resnet50.imagenet1k_tri4_ft"``, in registry order.

    Raises:
        ValueError: ``arch`` has no published weights (close names are suggested).

    Examples:
        >>> list_weights("resnet152")
        ['resnet152.imagenet1k_tri4_ft']
    """
    classes = [_check_arch(arch, "list_weights")] if arch is not None else list(_ENUMS.values())
    return [member.full_name for cls in classes for member in cls]


def get_model_weights(arch: str) -> type[WeightsEnum]:
    """The weights enum of an architecture.

    Examples:
        >>> get_model_weights("densenet121").__name__
        'DenseNet121_Weights'
    """
    return _check_arch(arch, "get_model_weights")


def get_weights(name: str) -> Weights:
    """The weights with string name ``name`` (case-insensitive; ``"resnet50.default"`` works).

    The reference's file stems (``"resnet50_lpf4_finetune"``) are accepted too.

    Raises:
        ValueError: Unknown name (close names are suggested).

    Examples:
        >>> get_weights("ResNet50.DEFAULT").full_name
        'resnet50.imagenet1k_tri4_ft'
    """
    if not isinstance(name, str):
        raise TypeError(f"`get_weights`: `name` must be a str, got {name!r}.")
    found = _BY_NAME.get(name.strip().lower())
    if found is None:
        raise ValueError(
            f"`get_weights`: `name` must be a published weights name, got {name!r}."
            f"{_suggest(name.strip().lower(), _BY_NAME)} See antialias.models.list_weights()."
        )
    return found


def resolve(weights: Weights | WeightsEnum | str | None, arch: str) -> Weights | None:
    """Turn any accepted form of ``weights`` into :class:`Weights` for ``arch``, or ``None``.

    Args:
        weights: ``None``; a :class:`Weights`; an enum member (``ResNet50_Weights.DEFAULT``); a
            string name (``"resnet50.imagenet1k_tri4_ft"``, case-insensitive); or a member name of
            ``arch``'s enum (``"DEFAULT"``, ``"imagenet1k_tri3"``).
        arch: The architecture being built (``"resnet50"``).

    Returns:
        The :class:`Weights`, or ``None`` when ``weights`` is ``None``.

    Raises:
        ValueError: Unknown name (close names are suggested), or weights of another architecture.
        TypeError: ``weights`` is of another type.

    Examples:
        >>> resolve("default", "vgg16_bn").full_name
        'vgg16_bn.imagenet1k_tri4_ft'
        >>> resolve(ResNet18_Weights.DEFAULT, "resnet50")
        Traceback (most recent call last):
        ...
        ValueError: `resolve`: weights 'resnet18.imagenet1k_tri4_ft' are for resnet18, not resnet50. Use ResNet50_Weights, e.g. 'resnet50.imagenet1k_tri4_ft'.
    """
    if weights is None:
        return None
    if isinstance(weights, WeightsEnum):
        found = weights.value
    elif isinstance(weights, Weights):
        found = weights
    elif isinstance(weights, str):
        key = weights.strip().lower()
        if "." not in key and key in _member_names(arch):
            key = f"{arch.lower()}.{key}"
        found = _BY_NAME.get(key)
        if found is None:
            choices = list(_BY_NAME)
            raise ValueError(
                f"`resolve`: `weights` must be a published weights name, got {weights!r}."
                f"{_suggest(key, choices)} See antialias.models.list_weights({arch!r})."
            )
    else:
        raise TypeError(
            f"`resolve`: `weights` must be a Weights, a weights enum member, a name or None, got {weights!r}."
        )
    if not isinstance(arch, str) or found.arch != arch.lower():
        cls = _ENUMS.get(arch.lower()) if isinstance(arch, str) else None
        fix = (
            f" Use {cls.__name__}, e.g. {cls.DEFAULT.full_name!r}."
            if cls is not None
            else f" No weights are published for {arch!r}."
        )
        raise ValueError(f"`resolve`: weights {found.full_name!r} are for {found.arch}, not {arch}.{fix}")
    return found


def _member_names(arch: str) -> set[str]:
    cls = _ENUMS.get(arch.lower()) if isinstance(arch, str) else None
    return {m.lower() for m in cls.__members__} if cls is not None else set()
