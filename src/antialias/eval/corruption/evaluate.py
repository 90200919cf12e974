"""Errors of a model under every corruption and severity, from generated images or the released sets.

Each protocol builds a grid of batches (labels, optional clean images, and the ``(S, N, C, H, W)``
images of one corruption at every severity, made on request) and runs the model over it into a
:class:`~antialias.eval.corruption.CorruptionError`. :func:`evaluate_corruption_files` reads either
release from a folder the user names (what ``antialias eval corruption --corruption-data`` runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from antialias.eval._names import CORRUPTIONS, SEVERITIES
from antialias.eval._robust_core import forward_logits
from antialias.eval.corruption.generate import corrupt_images, load_imagecorruptions
from antialias.eval.corruption.metric import CorruptionError, CorruptionResult
from antialias.eval.corruption.readers import (
    CorruptionFiles,
    inspect_corruption_data,
    open_cifar10c,
    open_imagenet_c,
    read_cifar10c,
)

__all__ = ["evaluate_cifar10c", "evaluate_corruption_files", "evaluate_corruptions", "evaluate_imagenet_c"]

# A grid item: (labels (N,), clean images (N, C, H, W) or None, get(corruption index) -> (S, N, C, H, W)).
_GridItem = tuple[Tensor, "Tensor | None", Callable[[int], Tensor]]
_Preprocess = Callable[[Tensor], Tensor] | None


def _run_grid(
    model: nn.Module,
    grid: Iterable[_GridItem],
    metric: CorruptionError,
    preprocess: _Preprocess,
    device: torch.device | str,
    where: str,
    config: dict,
) -> CorruptionResult:
    model = model.to(device).eval()
    metric = metric.to(device)
    with torch.inference_mode():
        for labels, clean, get in grid:
            rows = []
            for ci in range(len(metric.corruptions)):
                stack = get(ci)  # (S, N, C, H, W)
                s, n = stack.shape[:2]
                rows.append(forward_logits(model, stack.flatten(0, 1), preprocess, device, where).view(s, n, -1))
            clean_logits = None if clean is None else forward_logits(model, clean, preprocess, device, where)
            metric.update(torch.stack(rows), labels.to(device), clean_logits)
    if int(metric.images) == 0:
        raise ValueError(f"`{where}`: there were no images to evaluate.")
    result = metric.compute()
    result.config.update(config)
    return result


def evaluate_corruptions(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = None,
    clean: bool = True,
    seed: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Corrupt every batch on the fly with every corruption and severity and measure the errors.

    Args:
        model: any classifier returning ``(N, classes)`` logits.
        batches: ``(images, labels)``, images ``(N, C, H, W)`` floats in ``[0, 1]`` (unnormalised).
        corruptions: names (default the 15 test corruptions; add
            :data:`~antialias.eval.EXTRA_CORRUPTIONS` for all 19).
        severities: default 1..5.
        normaliser: reference errors for CE (``"alexnet"`` only makes sense on ImageNet at 224 px).
        clean: also classify the clean images (clean error, relative CE).
        seed: corruption seed (see :func:`~antialias.eval.corruption.corrupt_images`).
        preprocess: applied after corrupting (e.g. normalisation).
        device: where the model runs; the ``S * N`` copies of one corruption go in one forward.
        confidence: of the intervals.

    Raises:
        ImportError: the ``corruptions`` extra is missing (the message says how to install it).
    """
    where = "evaluate_corruptions"
    metric = CorruptionError(corruptions, severities, normaliser=normaliser, confidence=confidence)
    load_imagecorruptions()  # fail before the first batch when the extra is missing

    def grid() -> Iterator[_GridItem]:
        start = 0
        for images, labels in batches:
            if not isinstance(images, Tensor) or images.ndim != 4:
                raise ValueError(
                    f"`{where}`: images must be (N, C, H, W) tensors, got {getattr(images, 'shape', images)!r}."
                )

            def get(ci: int, images: Tensor = images, start: int = start) -> Tensor:
                name = metric.corruptions[ci]
                return torch.stack(
                    [corrupt_images(images, name, s, seed=seed, first_index=start) for s in metric.severities]
                )

            yield labels, (images if clean else None), get
            start += images.shape[0]

    config = {"source": "on the fly (imagecorruptions)", "seed": seed, "clean": clean}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)


def evaluate_cifar10c(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = None,
    clean_batches: Iterable[tuple[Tensor, Tensor]] | None = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors on the released CIFAR-10-C files (see :func:`~antialias.eval.corruption.read_cifar10c`).

    ``clean_batches`` (optional): the clean CIFAR-10 test images in the files' order, in batches of
    ``batch_size``; their labels must match. Other arguments as :func:`evaluate_corruptions`.
    """
    where = "evaluate_cifar10c"
    names = open_cifar10c(root, corruptions, where)[0]
    metric = CorruptionError(names, severities, normaliser=normaliser, confidence=confidence)
    clean_iter = iter(clean_batches) if clean_batches is not None else None

    def grid() -> Iterator[_GridItem]:
        done = 0
        for stack, labels in read_cifar10c(root, names, severities=severities, batch_size=batch_size, limit=limit):
            clean = None
            if clean_iter is not None:
                clean, clean_labels = next(clean_iter, (None, None))
                if clean_labels is None or not torch.equal(clean_labels.cpu().long(), labels):
                    got = "fewer images" if clean_labels is None else "other labels"
                    raise ValueError(
                        f"`{where}`: `clean_batches` must be the clean images of the files, in their order, in "
                        f"batches of {batch_size}, got {got} at image {done}. Give the CIFAR-10 test set (--data "
                        "cifar10), or leave the clean error out (clean=False, --no-clean)."
                    )
            done += len(labels)

            def get(ci: int, stack: Tensor = stack) -> Tensor:
                return stack[ci]  # (S, B, 3, H, W)

            yield labels, clean, get

    config = {"source": f"CIFAR-10-C files at {Path(root)}", "limit": limit}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)


def evaluate_imagenet_c(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = "alexnet",
    clean_root: str | os.PathLike | None = None,
    clean_transform: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors on the released ImageNet-C folders ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``.

    Every ``<corruption>/<severity>`` folder must hold the same class folders and file names (the
    released set does); labels are the sorted class folder names' indices. ``clean_root`` (optional)
    is the ImageNet validation folder with the same file names, read through ``clean_transform``
    (e.g. ``antialias.data.transforms.ResizeCenterCrop(256, 224)``). ``limit`` evaluates only the
    first ``limit`` files (in sorted order). Other arguments as :func:`evaluate_corruptions`.
    """
    where = "evaluate_imagenet_c"
    data = open_imagenet_c(
        root, corruptions, severities=severities, clean_root=clean_root, clean_transform=clean_transform, where=where
    )
    stop = len(data) if limit is None else min(len(data), int(limit))
    metric = CorruptionError(data.names, data.severities, normaliser=normaliser, confidence=confidence)

    def grid() -> Iterator[_GridItem]:
        for a in range(0, stop, batch_size):
            idx = range(a, min(stop, a + batch_size))

            def get(ci: int, idx: range = idx) -> Tensor:
                return data.stack(ci, idx)

            yield data.labels(idx), data.clean_images(idx), get

    config = {"source": f"ImageNet-C folders at {Path(root).expanduser()}", "limit": limit}
    return _run_grid(model, grid(), metric, preprocess, device, where, config)


def _image_folder(dataset: Dataset, where: str) -> Any:
    """The image folder under ``dataset`` (a :class:`~torch.utils.data.Subset` of one is unwrapped)."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if not (hasattr(base, "root") and hasattr(base, "samples")):
        raise ValueError(
            f"`{where}`: `clean` must be the ImageNet validation image folder with ImageNet-C's file names "
            f"(<wnid>/<file>), got {type(base).__name__}. Give --data imagenet:PATH, or --no-clean (clean=False)."
        )
    return base


def evaluate_corruption_files(
    model: nn.Module,
    files: CorruptionFiles | str | os.PathLike,
    *,
    data_format: str = "auto",
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    normaliser: object = "auto",
    clean: Dataset | None = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> CorruptionResult:
    """Errors on the released CIFAR-10-C files or ImageNet-C folders in ``files``, whichever they are.

    Args:
        model: any classifier returning ``(N, classes)`` logits.
        files: the folder (its layout is recognised, see
            :func:`~antialias.eval.corruption.readers.inspect_corruption_data`) or its checked
            :class:`~antialias.eval.corruption.readers.CorruptionFiles`.
        data_format: ``"auto"``, ``"cifar10-c"`` or ``"imagenet-c"`` (ignored for a ``CorruptionFiles``).
        corruptions: names (default: every known corruption present).
        severities: default 1..5.
        normaliser: reference errors for CE; ``"auto"``: AlexNet's published errors on ImageNet-C
            (measured on these very images), none on CIFAR-10-C.
        clean: the clean images for the clean error and relative CE, or None. CIFAR-10-C: a data
            set of the CIFAR-10 test images in the files' order (labels are checked); ImageNet-C: the
            ImageNet validation image folder with the same file names (checked).
        batch_size: images per batch (per severity).
        limit: evaluate only the first ``limit`` images of each severity.
        preprocess, device, confidence: as :func:`evaluate_corruptions`.

    Raises:
        ValueError: the folder, its files or ``clean`` are not what they must be (the message says
            what to give instead).
    """
    where = "evaluate_corruption_files"
    if not isinstance(files, CorruptionFiles):
        files = inspect_corruption_data(files, data_format, corruptions, severities=severities, where=where)
    names = files.names if corruptions is None else tuple(corruptions)
    norm = files.default_normaliser if isinstance(normaliser, str) and normaliser == "auto" else normaliser
    common: dict[str, Any] = {"corruptions": names, "severities": severities, "normaliser": norm,
                              "batch_size": batch_size, "limit": limit, "preprocess": preprocess, "device": device,
                              "confidence": confidence}
    if files.format == "cifar10-c":
        clean_batches = None if clean is None else DataLoader(clean, batch_size=batch_size, shuffle=False)
        return evaluate_cifar10c(model, files.root, clean_batches=clean_batches, **common)
    folder = None if clean is None else _image_folder(clean, where)
    return evaluate_imagenet_c(model, files.root, clean_root=None if folder is None else folder.root,
                               clean_transform=None if folder is None else folder.transform, **common)
