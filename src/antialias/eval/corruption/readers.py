"""Readers of the released corrupted sets: CIFAR-10-C ``.npy`` files and ImageNet-C folders.

- CIFAR-10-C: ``<root>/<corruption>.npy`` holds ``(5 * n, H, W, 3)`` uint8 images, severity-major
  (rows ``(s - 1) * n .. s * n - 1`` are severity ``s``), with ``<root>/labels.npy`` ``(5 * n,)``.
- ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``; every ``<corruption>/<severity>``
  folder holds the same class folders and file names (the released set does); labels are the sorted
  class folder names' indices.

Neither needs the ``imagecorruptions`` library. :func:`inspect_corruption_data` recognises either
layout in a folder the user names (``antialias eval corruption --corruption-data DIR``) and checks it
before any work, with one error per problem that says how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from antialias.data.folder import ImageFolder
from antialias.eval._data_files import recognise_layout
from antialias.eval._fields import check_data_shape, fail
from antialias.eval._names import ALL_CORRUPTIONS, KNOWN_PERTURBATIONS, SEVERITIES, check_names, check_severities

__all__ = [
    "CORRUPTION_FORMATS",
    "CorruptionFiles",
    "ImageNetC",
    "inspect_corruption_data",
    "open_cifar10c",
    "open_imagenet_c",
    "read_cifar10c",
]

#: The released layouts :func:`inspect_corruption_data` reads.
CORRUPTION_FORMATS = ("cifar10-c", "imagenet-c")


# --------------------------------------------------------------------------- CIFAR-10-C


def _cifar10c_names(root: Path, corruptions: Sequence[str] | None, where: str) -> tuple[str, ...]:
    if corruptions is not None:
        return check_names(where, "corruptions", list(corruptions), ALL_CORRUPTIONS)
    names = tuple(c for c in ALL_CORRUPTIONS if (root / f"{c}.npy").is_file())
    if not names:
        raise ValueError(f"`{where}`: {root} must hold <corruption>.npy files (e.g. gaussian_noise.npy), found none.")
    return names


def _cifar10c_array(root: Path, name: str, rows: int, where: str) -> np.ndarray:
    """``<root>/<name>.npy`` memory-mapped, checked to be ``(rows, H, W, 3)`` uint8 with ``rows % 5 == 0``."""
    path = root / f"{name}.npy"
    if not path.is_file():
        raise ValueError(
            f"`{where}`: {root} has no {name}.npy; available: {[p.stem for p in sorted(root.glob('*.npy'))]}."
        )
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] % 5 or arr.shape[0] != rows:
        raise ValueError(
            f"`{where}`: {path} must be (5 * n, H, W, 3) uint8 with as many rows as labels.npy ({rows}), "
            f"got {arr.shape} {arr.dtype}."
        )
    return arr


def _cifar10c_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """The ``n`` labels of one severity block, checked to repeat in all five."""
    n = len(labels) // 5
    first = np.asarray(labels[:n])
    for s in range(1, 5):
        if not np.array_equal(first, labels[s * n : (s + 1) * n]):
            raise ValueError(
                f"`{where}`: labels.npy must repeat the same {n} labels for every severity; block {s + 1} differs."
            )
    return first


def open_cifar10c(
    root: str | os.PathLike, corruptions: Sequence[str] | None, where: str = "open_cifar10c", *, param: str = "root"
) -> tuple[tuple[str, ...], list[np.ndarray], np.ndarray, int]:
    """Check a CIFAR-10-C folder: ``(names, memory-mapped arrays, labels (n,), n images per severity)``.

    ``corruptions=None`` takes every known name with a file, in canonical order; ``where`` and
    ``param`` name the caller and its argument in error messages.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `{param}` must be the CIFAR-10-C folder (<corruption>.npy, labels.npy), got {str(root)!r}."
        )
    names = _cifar10c_names(root, corruptions, where)
    label_path = root / "labels.npy"
    if not label_path.is_file():
        raise fail(where, param, "a CIFAR-10-C folder with labels.npy beside the <corruption>.npy files", str(root),
                   " It has no labels.npy: copy the CIFAR-10-C release's labels.npy (the labels of every row) into it.")
    labels = np.load(label_path, mmap_mode="r")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not len(labels) or len(labels) % 5:
        raise fail(where, "labels.npy", "a 1-D integer array of 5 * n labels (n per severity)",
                   f"{labels.dtype} array of shape {labels.shape}", f" Replace {label_path} with the release's file.")
    arrays = [_cifar10c_array(root, name, len(labels), where) for name in names]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise fail(where, param, "a folder whose .npy files hold images of one size",
                   {n: a.shape[1:] for n, a in zip(names, arrays, strict=True)}, " Keep the files of one release only.")
    return names, arrays, _cifar10c_labels(labels, where), len(labels) // 5


def read_cifar10c(
    root: str | os.PathLike,
    corruptions: Sequence[str] | None = None,
    *,
    severities: Sequence[int] = SEVERITIES,
    batch_size: int = 100,
    limit: int | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Read the released CIFAR-10-C files as aligned grids (layout in the module docstring).

    Args:
        root: the CIFAR-10-C folder.
        corruptions: names to read (default: every known name with a file, in canonical order).
        severities: which severities.
        batch_size: images per grid.
        limit: read only the first ``limit`` images of each severity.

    Yields:
        ``(grid, labels)``: grid ``(C, S, B, 3, H, W)`` float32 in ``[0, 1]``, labels ``(B,)`` int64.
    """
    _, arrays, labels, n = open_cifar10c(root, corruptions, "read_cifar10c")
    severities = check_severities("read_cifar10c", severities)
    stop = n if limit is None else min(n, int(limit))
    for a in range(0, stop, batch_size):
        b = min(stop, a + batch_size)
        grid = np.stack([np.stack([arr[(s - 1) * n + a : (s - 1) * n + b] for s in severities]) for arr in arrays])
        yield (
            torch.from_numpy(grid).permute(0, 1, 2, 5, 3, 4).float().div_(255),
            torch.from_numpy(labels[a:b].astype(np.int64)),
        )


# --------------------------------------------------------------------------- ImageNet-C


@dataclass
class ImageNetC:
    """Checked ImageNet-C folders: one :class:`~antialias.data.folder.ImageFolder` per corruption and severity."""

    names: tuple[str, ...]
    severities: tuple[int, ...]
    folders: list[list[ImageFolder]]  # [corruption][severity], same files in each
    clean: ImageFolder | None = None

    def __len__(self) -> int:
        return len(self.folders[0][0])

    def labels(self, idx: Sequence[int]) -> Tensor:
        """``(B,)`` labels of files ``idx`` (sorted order)."""
        return self.folders[0][0].targets[list(idx)]

    def stack(self, corruption: int, idx: Sequence[int]) -> Tensor:
        """``(S, B, C, H, W)`` images of files ``idx`` under corruption number ``corruption``, every severity."""
        return torch.stack([torch.stack([ds[i][0] for i in idx]) for ds in self.folders[corruption]])

    def clean_images(self, idx: Sequence[int]) -> Tensor | None:
        """``(B, C, H, W)`` clean images of files ``idx``, or ``None`` without a clean folder."""
        return None if self.clean is None else torch.stack([self.clean[i][0] for i in idx])


def _file_keys(ds: ImageFolder) -> list[tuple[str, int]]:
    """``(class/file stem, label)`` of every file: what must agree across folders."""
    return [(p.relative_to(ds.root).with_suffix("").as_posix(), t) for p, t in ds.samples]


def _imagenet_c_names(root: Path, corruptions: Sequence[str] | None, where: str) -> tuple[str, ...]:
    if corruptions is not None:
        return check_names(where, "corruptions", list(corruptions), ALL_CORRUPTIONS)
    names = tuple(c for c in ALL_CORRUPTIONS if (root / c).is_dir())
    if not names:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise ValueError(f"`{where}`: {root} must hold corruption folders (e.g. gaussian_noise/1/...), found {found}.")
    return names


def open_imagenet_c(
    root: str | os.PathLike,
    corruptions: Sequence[str] | None = None,
    *,
    severities: Sequence[int] = SEVERITIES,
    clean_root: str | os.PathLike | None = None,
    clean_transform: Callable[[Tensor], Tensor] | None = None,
    where: str = "open_imagenet_c",
) -> ImageNetC:
    """Check ImageNet-C folders ``<root>/<corruption>/<severity>/<wnid>/*.JPEG`` (images are read on access).

    Args:
        root: the ImageNet-C folder.
        corruptions: names to read (default: every known name with a folder, in canonical order).
        severities: which severities.
        clean_root: optional ImageNet validation folder with the same file names, read through
            ``clean_transform`` (e.g. ``antialias.data.transforms.ResizeCenterCrop(256, 224)``).
        where: the public function named in error messages.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `root` must be the ImageNet-C folder (<corruption>/<severity>/<wnid>/*.JPEG), "
            f"got {str(root)!r}."
        )
    checked = check_severities(where, severities)
    names = _imagenet_c_names(root, corruptions, where)
    folders = [[ImageFolder(root / c / str(s)) for s in checked] for c in names]
    reference = folders[0][0]
    keys = _file_keys(reference)
    for row in folders:
        for ds in row:
            if _file_keys(ds) != keys or ds.classes != reference.classes:
                raise ValueError(
                    f"`{where}`: every <corruption>/<severity> folder must hold the same class folders and files; "
                    f"{ds.root} differs from {reference.root}."
                )
    clean = None
    if clean_root is not None:
        clean = ImageFolder(clean_root, transform=clean_transform)
        if _file_keys(clean) != keys:
            raise ValueError(
                f"`{where}`: `clean_root` must hold the same class folders and file names as {reference.root}, got "
                f"{str(clean_root)!r}. Give the ImageNet validation folder the files were made from (--data "
                "imagenet:PATH), or leave the clean error out (--no-clean, clean_root=None)."
            )
    return ImageNetC(names, checked, folders, clean)


# --------------------------------------------------------------------------- a folder the user names

_LABELS = {"cifar10-c": "CIFAR-10-C", "imagenet-c": "ImageNet-C"}
_LAYOUTS = {
    "cifar10-c": "CIFAR-10-C files (<corruption>.npy, labels.npy)",
    "imagenet-c": "ImageNet-C folders (<corruption>/<severity>/<wnid>/*.JPEG)",
}
_CLEAN_HINT = {
    "cifar10-c": "--data cifar10 (the CIFAR-10 test set the files were made from)",
    "imagenet-c": "--data imagenet:PATH (the ImageNet validation set) or a folder with --data-preset imagenet",
}


@dataclass(frozen=True)
class CorruptionFiles:
    """A checked folder of released corrupted images: what ``antialias eval corruption --corruption-data`` names.

    Built by :func:`inspect_corruption_data`; the full per-file checks happen when it is read.
    """

    root: Path
    format: str  # one of CORRUPTION_FORMATS
    names: tuple[str, ...]  # corruptions present (or asked for), canonical order
    image_shape: tuple[int, int, int]  # (C, H, W) of the images

    @property
    def label(self) -> str:
        """``"CIFAR-10-C"`` or ``"ImageNet-C"``."""
        return _LABELS[self.format]

    @property
    def default_normaliser(self) -> str | None:
        """``"alexnet"`` on ImageNet-C (AlexNet's published errors are on these very images), else None."""
        return "alexnet" if self.format == "imagenet-c" else None

    def check_data(self, image_shape: Sequence[int], spec: Any, where: str) -> None:
        """The evaluation data (``--data``, the clean set) must have the files' image shape.

        It gives the model's classes, the normalisation and the clean images; a clean set of another
        shape is another data set (or needs resizing).

        Raises:
            ValueError: the shapes differ (the message names the data to give).
        """
        check_data_shape(where, self.label, self.image_shape, image_shape, spec, f" Give {_CLEAN_HINT[self.format]}.")


def _is_imagenet_c_folder(folder: Path) -> bool:
    return folder.is_dir() and any((folder / str(s)).is_dir() for s in SEVERITIES)


def _signals(root: Path) -> dict[str, list[str]]:
    """What of each layout ``root`` holds: CIFAR-10-C files, ImageNet-C folders."""
    entries = list(root.iterdir())
    npy = sorted(p.name for p in entries if p.suffix == ".npy" and (p.stem in ALL_CORRUPTIONS or p.stem == "labels"))
    dirs = sorted(p.name for p in entries if p.name in ALL_CORRUPTIONS and _is_imagenet_c_folder(p))
    return {"cifar10-c": npy, "imagenet-c": dirs}


def _layout_hint(root: Path) -> str:
    """Why ``root`` holds neither layout, and what to give instead."""
    if root.name in ALL_CORRUPTIONS and _is_imagenet_c_folder(root):
        return f" It is one corruption's folder: give its parent, {str(root.parent)!r}."
    if _is_imagenet_c_folder(root):
        return f" It holds severity folders: give the folder above its corruption folder, {str(root.parent.parent)!r}."
    inside = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for child in inside:
        if any(_signals(child).values()):
            return f" Did you mean {str(child)!r}?"
    perturbation_files = [p.name for p in root.glob("*.npy") if p.stem in KNOWN_PERTURBATIONS]
    if perturbation_files or any(next(p.glob("*/*.mp4"), None) for p in inside if p.name in KNOWN_PERTURBATIONS):
        return " It looks like CIFAR-10-P or ImageNet-P: use `antialias eval perturbation --perturbation-data`."
    listed = sorted(p.name for p in root.iterdir())
    return f" It holds {listed[:8] + (['...'] if len(listed) > 8 else [])}."


def inspect_corruption_data(
    path: str | os.PathLike,
    data_format: str = "auto",
    corruptions: Sequence[str] | None = None,
    *,
    severities: Sequence[int] = SEVERITIES,
    where: str = "inspect_corruption_data",
    param: str = "corruption_data",
) -> CorruptionFiles:
    """Recognise and check a folder of released corrupted images, before any work.

    Args:
        path: the folder: CIFAR-10-C (``<corruption>.npy`` and ``labels.npy``) or ImageNet-C
            (``<corruption>/<severity>/<wnid>/*.JPEG``), as the releases extract.
        data_format: ``"auto"`` (from the folder's contents), ``"cifar10-c"`` or ``"imagenet-c"``.
        corruptions: names to evaluate (default: every known corruption present, canonical order).
        severities: the severities to read (ImageNet-C: each needs its folder).
        where, param: the caller and its argument, for error messages.

    Returns:
        A :class:`CorruptionFiles`: format, corruptions and image shape. CIFAR-10-C arrays are
        checked here (shape, dtype, labels); ImageNet-C's folders are checked file by file when read.

    Raises:
        ValueError: a missing path, a file, a folder in neither layout (or in both), a missing
            ``labels.npy`` or corruption, a wrong array shape; each message says what to give instead.

    Examples:
        >>> import tempfile
        >>> inspect_corruption_data(tempfile.gettempdir() + "/no-such-folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `inspect_corruption_data`: `corruption_data` must be an existing folder of CIFAR-10-C ...
    """
    root, data_format, found = recognise_layout(
        path, data_format, formats=CORRUPTION_FORMATS, layouts=_LAYOUTS, signals=_signals, hint=_layout_hint,
        kind="corruption", where=where, param=param,
    )
    checked = check_severities(where, severities)
    if data_format == "cifar10-c":
        names, arrays, _, _ = open_cifar10c(root, corruptions, where, param=param)
        h, w, c = arrays[0].shape[1:]
        return CorruptionFiles(root, data_format, names, (c, h, w))
    names = _imagenet_c_names(root, corruptions, where)
    for name in names:
        if not (root / name).is_dir():
            raise fail(where, param, f"an ImageNet-C folder with a {name}/ folder", str(root),
                       f" It holds {found['imagenet-c']}: extract {name} there, or leave it out of --corruptions.")
        missing = [s for s in checked if not (root / name / str(s)).is_dir()]
        if missing:
            raise fail(where, param, f"an ImageNet-C folder with {name}/<severity>/ for severities {list(checked)}",
                       str(root), f" {name}/ has no folder {missing[0]}: extract the release again, or pass "
                       f"--severities without {missing}.")
    first = ImageFolder(root / names[0] / str(checked[0]))
    return CorruptionFiles(root, data_format, names, tuple(first[0][0].shape))  # type: ignore[arg-type]
