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
README for six fine-tuned models; ``None`` where no number was published. The rows (hashes and
figures) live in :mod:`antialias.models._weights_table`; this module is the API over them.

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

from antialias._download import weights_dir
from antialias.models import _weights_table as _table
from antialias.models._download import download_file, load_state_dict_file
from antialias.models._weights_table import LICENSE

__all__ = [
    "LICENSE",
    "AlexNet_Weights",
    "DenseNet121_Weights",
    "DenseNet161_Weights",
    "DenseNet169_Weights",
    "DenseNet201_Weights",
    "MobileNet_V2_Weights",
    "ResNeXt50_32X4D_Weights",
    "ResNeXt101_32X8D_Weights",
    "ResNet18_Weights",
    "ResNet34_Weights",
    "ResNet50_Weights",
    "ResNet101_Weights",
    "ResNet152_Weights",
    "VGG11_BN_Weights",
    "VGG11_Weights",
    "VGG13_BN_Weights",
    "VGG13_Weights",
    "VGG16_BN_Weights",
    "VGG16_Weights",
    "VGG19_BN_Weights",
    "VGG19_Weights",
    "Weights",
    "WeightsEnum",
    "Wide_ResNet50_2_Weights",
    "Wide_ResNet101_2_Weights",
    "get_model_weights",
    "get_weights",
    "list_weights",
    "resolve",
]

_FILTER_NAMES = {2: "rect2", 3: "tri3", 4: "tri4", 5: "bin5"}

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
        """Where the file is (or will be) downloaded; put a hand-downloaded copy here.

        (A copy in torch.hub's folder with the right hash is used too, see :meth:`get_state_dict`.)
        """
        return weights_dir(cache_dir) / self.file_name

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
            progress: Show a progress bar on stderr.
            cache_dir: Folder for the file (default: a copy with the right hash in torch.hub's
                ``checkpoints`` folder if there is one, else ``$ANTIALIAS_HOME/weights``, see
                :mod:`antialias._download`).
            mirrors: Base URLs or directories tried before ``$ANTIALIAS_WEIGHTS_MIRROR`` and the
                original URL.

        Returns:
            A ``dict`` from names to CPU tensors.

        Raises:
            DownloadError: Offline or every source failed; the message says which file to fetch by
                hand and where to put it. ``ChecksumError`` (a subclass): the file's hash is wrong.
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
        f"{license_} ({_table.LICENSE_URL}): non-commercial use, attribution, share-alike.",
        UserWarning,
        stacklevel=3,
    )


def _w(arch: str, filter_size: int, *, finetuned: bool = False) -> Weights:
    """The :class:`Weights` of one row of :mod:`antialias.models._weights_table`."""
    checkpoint = f"{arch}_lpf{filter_size}" + ("_finetune" if finetuned else "")
    sha256_prefix = _table.SHA256_PREFIXES[checkpoint]
    published = _table.FINETUNED.get(arch) if finetuned else _table.FROM_SCRATCH.get(arch, {}).get(filter_size)
    top1, consistency = published if published else (None, None)
    meta = {
        "num_classes": 1000,
        "top1": top1,
        "consistency": consistency,
        "num_params": _table.NUM_PARAMS[arch],
        "filter": _FILTER_NAMES[filter_size],
        "preprocessing": dict(_table.PREPROCESSING),
        "license": LICENSE,
        "checkpoint": checkpoint,
        "paper": _table.PAPER,
    }
    url = f"{_table.BASE_URL}{checkpoint}-{sha256_prefix}.pth"
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

    IMAGENET1K_RECT2 = _w("alexnet", 2)
    IMAGENET1K_TRI3 = _w("alexnet", 3)
    IMAGENET1K_TRI4 = _w("alexnet", 4)
    IMAGENET1K_BIN5 = _w("alexnet", 5)
    IMAGENET1K_TRI4_FT = _w("alexnet", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG11_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg11``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg11", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG11_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg11_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg11_bn", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG13_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg13``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg13", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG13_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg13_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg13_bn", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG16_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg16``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("vgg16", 2)
    IMAGENET1K_TRI3 = _w("vgg16", 3)
    IMAGENET1K_TRI4 = _w("vgg16", 4)
    IMAGENET1K_BIN5 = _w("vgg16", 5)
    IMAGENET1K_TRI4_FT = _w("vgg16", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG16_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg16_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("vgg16_bn", 2)
    IMAGENET1K_TRI3 = _w("vgg16_bn", 3)
    IMAGENET1K_TRI4 = _w("vgg16_bn", 4)
    IMAGENET1K_BIN5 = _w("vgg16_bn", 5)
    IMAGENET1K_TRI4_FT = _w("vgg16_bn", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG19_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg19``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg19", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class VGG19_BN_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``vgg19_bn``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("vgg19_bn", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet18_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet18``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet18", 2)
    IMAGENET1K_TRI3 = _w("resnet18", 3)
    IMAGENET1K_TRI4 = _w("resnet18", 4)
    IMAGENET1K_BIN5 = _w("resnet18", 5)
    IMAGENET1K_TRI4_FT = _w("resnet18", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet34_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet34``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet34", 2)
    IMAGENET1K_TRI3 = _w("resnet34", 3)
    IMAGENET1K_TRI4 = _w("resnet34", 4)
    IMAGENET1K_BIN5 = _w("resnet34", 5)
    IMAGENET1K_TRI4_FT = _w("resnet34", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet50_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet50``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet50", 2)
    IMAGENET1K_TRI3 = _w("resnet50", 3)
    IMAGENET1K_TRI4 = _w("resnet50", 4)
    IMAGENET1K_BIN5 = _w("resnet50", 5)
    IMAGENET1K_TRI4_FT = _w("resnet50", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet101_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet101``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("resnet101", 2)
    IMAGENET1K_TRI3 = _w("resnet101", 3)
    IMAGENET1K_TRI4 = _w("resnet101", 4)
    IMAGENET1K_BIN5 = _w("resnet101", 5)
    IMAGENET1K_TRI4_FT = _w("resnet101", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNet152_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnet152``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnet152", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNeXt50_32X4D_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnext50_32x4d``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnext50_32x4d", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class ResNeXt101_32X8D_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``resnext101_32x8d``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("resnext101_32x8d", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class Wide_ResNet50_2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``wide_resnet50_2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("wide_resnet50_2", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class Wide_ResNet101_2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``wide_resnet101_2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("wide_resnet101_2", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet121_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet121``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("densenet121", 2)
    IMAGENET1K_TRI3 = _w("densenet121", 3)
    IMAGENET1K_TRI4 = _w("densenet121", 4)
    IMAGENET1K_BIN5 = _w("densenet121", 5)
    IMAGENET1K_TRI4_FT = _w("densenet121", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet161_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet161``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet161", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet169_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet169``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet169", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class DenseNet201_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``densenet201``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_TRI4_FT = _w("densenet201", 4, finetuned=True)
    DEFAULT = IMAGENET1K_TRI4_FT


class MobileNet_V2_Weights(WeightsEnum):
    """Published anti-aliased ImageNet weights for ``mobilenet_v2``; ``DEFAULT`` is the fine-tuned Tri-4."""

    IMAGENET1K_RECT2 = _w("mobilenet_v2", 2)
    IMAGENET1K_TRI3 = _w("mobilenet_v2", 3)
    IMAGENET1K_TRI4 = _w("mobilenet_v2", 4)
    IMAGENET1K_BIN5 = _w("mobilenet_v2", 5)
    IMAGENET1K_TRI4_FT = _w("mobilenet_v2", 4, finetuned=True)
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
        >>> resolve(ResNet18_Weights.DEFAULT, "resnet50")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `resolve`: weights 'resnet18.imagenet1k_tri4_ft' are for resnet18, not resnet50. Use ...
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
            f" Use {cls.__name__}, e.g. {cls['DEFAULT'].full_name!r}."
            if cls is not None
            else f" No weights are published for {arch!r}."
        )
        raise ValueError(f"`resolve`: weights {found.full_name!r} are for {found.arch}, not {arch}.{fix}")
    return found


def _member_names(arch: str) -> set[str]:
    cls = _ENUMS.get(arch.lower()) if isinstance(arch, str) else None
    return {m.lower() for m in cls.__members__} if cls is not None else set()
