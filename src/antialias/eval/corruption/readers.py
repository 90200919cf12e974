"""Readers of the released corrupted sets: CIFAR-10-C ``.npy`` files and ImageNet-C folders.

- CIFAR-10-C: ``<root>/<corruption>.npy`` holds ``(5 * n, H, W, 3)`` uint8 images, severity-major
  (rows ``(s - 1) * n .. s * n - 1`` are severity ``s``), with ``<root>/labels.npy`` ``(5 * n,)``.
- ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``; every ``<corruption>/<severity>``
  folder holds the same class folders and file names (the released set does); labels are the sorted
  class folder names' indices.

Neither needs the ``imagecorruptions`` library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from antialias.data.folder import ImageFolder
from antialias.eval._names import ALL_CORRUPTIONS, SEVERITIES, check_names, check_severities

__all__ = ["ImageNetC", "open_cifar10c", "open_imagenet_c", "read_cifar10c"]


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
    root: str | os.PathLike, corruptions: Sequence[str] | None, where: str = "open_cifar10c"
) -> tuple[tuple[str, ...], list[np.ndarray], np.ndarray, int]:
    """Check a CIFAR-10-C folder: ``(names, memory-mapped arrays, labels (n,), n images per severity)``.

    ``corruptions=None`` takes every known name with a file, in canonical order.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `root` must be the CIFAR-10-C folder (<corruption>.npy, labels.npy), got {str(root)!r}."
        )
    names = _cifar10c_names(root, corruptions, where)
    label_path = root / "labels.npy"
    if not label_path.is_file():
        raise ValueError(f"`{where}`: {root} must hold labels.npy (the labels of every row), found none.")
    labels = np.load(label_path, mmap_mode="r")
    arrays = [_cifar10c_array(root, name, len(labels), where) for name in names]
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
                f"`{where}`: `clean_root` must hold the same class folders and file names as {reference.root}."
            )
    return ImageNetC(names, checked, folders, clean)
