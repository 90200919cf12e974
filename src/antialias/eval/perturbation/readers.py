"""Reader of the released CIFAR-10-P files: ``<root>/<perturbation>.npy``, ``(n, T, H, W, 3)`` uint8 sequences.

Names are ImageNet-P's test and validation perturbations and CIFAR-10-P's noise difficulty files
(``gaussian_noise_2``, ...): :data:`~antialias.eval._names.KNOWN_PERTURBATIONS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from antialias.eval._names import KNOWN_PERTURBATIONS, check_names

__all__ = ["cifar10p_names", "read_cifar10p"]


def cifar10p_names(
    root: str | os.PathLike, perturbations: Sequence[str] | None, where: str = "cifar10p_names"
) -> tuple[Path, tuple[str, ...]]:
    """The checked CIFAR-10-P folder and names (``None``: every known name with a file, in canonical order)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `root` must be the CIFAR-10-P folder (<perturbation>.npy files), got {str(root)!r}."
        )
    if perturbations is not None:
        return root, check_names(where, "perturbations", list(perturbations), KNOWN_PERTURBATIONS)
    names = tuple(p for p in KNOWN_PERTURBATIONS if (root / f"{p}.npy").is_file())
    if not names:
        raise ValueError(f"`{where}`: {root} must hold <perturbation>.npy files (e.g. translate.npy), found none.")
    return root, names


def read_cifar10p(path: str | os.PathLike, *, batch_size: int = 100, limit: int | None = None) -> Iterator[Tensor]:
    """Read one released CIFAR-10-P file ``(n, T, H, W, 3)`` uint8 as ``(B, T, 3, H, W)`` floats in [0, 1]."""
    where = "read_cifar10p"
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"`{where}`: `path` must be a CIFAR-10-P .npy file, got {str(path)!r}, which does not exist.")
    array = np.load(path, mmap_mode="r")
    if array.ndim != 5 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[1] < 2:
        raise ValueError(
            f"`{where}`: {path} must hold (n, frames >= 2, H, W, 3) uint8 sequences, got {array.shape} {array.dtype}."
        )
    stop = len(array) if limit is None else min(len(array), int(limit))
    for a in range(0, stop, batch_size):
        chunk = np.array(array[a : min(stop, a + batch_size)])  # a writable copy of the memory map
        yield torch.from_numpy(chunk).permute(0, 1, 4, 2, 3).float().div_(255)
