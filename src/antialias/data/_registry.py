"""``load_dataset(spec)``: one entry point for every data set by name, optionally with a path."""

from __future__ import annotations

import difflib
import enum
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from torch import Tensor
from torch.utils.data import Dataset

from antialias.data._errors import DatasetNotFoundError
from antialias.data.cifar import load_cifar
from antialias.data.folder import ImageFolder
from antialias.data.idx import load_idx_dataset
from antialias.data.transforms import ResizeCenterCrop

__all__ = ["DATASET_NAMES", "load_dataset"]

#: Names accepted by :func:`load_dataset` (before an optional ``":PATH"``).
DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet", "imagefolder")

_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "cifar_10": "cifar10",
    "cifar_100": "cifar100",
}

class _Auto(enum.Enum):
    """The type of the ``transform`` default: the data set's own transform (a typed sentinel)."""

    AUTO = "auto"


_AUTO = _Auto.AUTO


def _parse(spec: str) -> tuple[str, str | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"`load_dataset`: `spec` must be a data set name such as 'fashion-mnist' or "
            f"'imagenet:/data/imagenet', got {spec!r}."
        )
    name, sep, path = spec.strip().partition(":")
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        close = difflib.get_close_matches(key, DATASET_NAMES + tuple(_ALIASES), n=3, cutoff=0.5)
        names = list(dict.fromkeys(_ALIASES.get(c, c) for c in close))
        hint = f" Did you mean {' or '.join(repr(c) for c in names)}?" if names else ""
        raise ValueError(
            f"`load_dataset`: `spec` must name one of {', '.join(DATASET_NAMES)} (optionally "
            f"followed by ':PATH'), got {spec!r}.{hint}"
        )
    return key, (path if sep and path else None)


def _split_folder(base: Path, split: str, spec: str) -> Path:
    names = ("train",) if split == "train" else ("val", "test")
    for n in names:
        if (base / n).is_dir():
            return base / n
    if split == "train" and base.is_dir() and not any((base / n).is_dir() for n in ("val", "test")):
        return base  # a plain <root>/<class>/<image> folder serves as the training split
    expected = " or ".join(str(base / n) for n in names)
    raise DatasetNotFoundError(
        f"`load_dataset`: {spec!r} ({split}) needs the folder {expected} laid out as "
        f"<split>/<class>/<image>.JPEG (ImageNet layout: train/n01440764/*.JPEG, "
        f"val/n01440764/*.JPEG); {'it does not exist' if not base.exists() else 'not found'}."
    )


def load_dataset(
    spec: str,
    *,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    transform: Callable[[Tensor], Tensor] | Literal[_Auto.AUTO] | None = _AUTO,
) -> Dataset:
    """Load a data set by name: ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"``,
    ``"imagenet:PATH"``, ``"imagefolder:PATH"``; any of them as ``"NAME:PATH"`` to give the folder.

    Items are ``(image, label)``: ``image`` float32 ``(C, H, W)`` in ``[0, 1]``, ``label`` an int.
    Every set has ``classes``, ``num_classes``, ``in_channels`` and ``image_size`` (``None`` for
    variable-size folders); the in-memory sets (MNIST, Fashion-MNIST, CIFAR) also ``images``
    (``uint8`` ``(N, C, H, W)``) and ``targets`` (``int64`` ``(N,)``).

    Args:
        spec: name, optionally ``":PATH"`` (same meaning as ``root``).
        split: ``"train"`` or ``"test"``; ``"val"`` is accepted as ``"test"`` (ImageNet's
            validation images are its test split).
        root: folder with the data; default: the standard places (see :mod:`antialias.data.idx`
            and :mod:`antialias.data.cifar`), then the cache ``default_data_dir()``.
        download: fetch missing MNIST / Fashion-MNIST / CIFAR files, hash-checked, into ``root``
            or the cache. Off by default: nothing is downloaded unless asked.
        transform: per-image transform for folder sets. Default: ``ResizeCenterCrop(256, 224)``
            for ``imagenet`` (so images batch), none for ``imagefolder`` (variable size).
            In-memory sets take augmentation at batch level instead (``make_loader(transform=)``).

    Returns:
        A :class:`torch.utils.data.Dataset` as described above.

    Raises:
        ValueError: unknown name (close names are suggested), bad split, or a path given twice.
        DatasetNotFoundError: the files are not there; the message lists the files expected, the
            folders searched and how to get them.

    Examples:
        >>> load_dataset("fashion-minst")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `load_dataset`: `spec` must name one of ... Did you mean 'fashion-mnist'?
    """
    name, spec_path = _parse(spec)
    if split == "val":
        split = "test"
    if split not in ("train", "test"):
        raise ValueError(
            f"`load_dataset`: `split` must be 'train' or 'test' ('val'), got {split!r}."
        )
    if spec_path is not None and root is not None and Path(spec_path) != Path(root):
        raise ValueError(
            f"`load_dataset`: `root` must not differ from the path in `spec`, got spec={spec!r} "
            f"and root={str(root)!r}; give the path once."
        )
    where = spec_path if spec_path is not None else root
    if name in ("fashion-mnist", "mnist"):
        return load_idx_dataset(name, split=split, root=where, download=download)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, split=split, root=where, download=download)
    if where is None:
        raise ValueError(
            f"`load_dataset`: `spec` must include the folder for {name}, e.g. '{name}:/data/{name}', "
            f"got {spec!r}."
        )
    if download:
        raise ValueError(
            f"`load_dataset`: `download` must be False for {name}; it is not downloadable."
        )
    if transform is _AUTO:
        transform = ResizeCenterCrop(256, 224) if name == "imagenet" else None
    folder = _split_folder(Path(where).expanduser(), split, spec)
    ds = ImageFolder(folder, transform=transform)
    ds.image_size = getattr(transform, "output_size", None)
    return ds
