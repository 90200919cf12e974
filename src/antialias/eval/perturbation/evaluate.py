"""Flip probability and top-5 distance of a model over generated sequences or the released CIFAR-10-P files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from antialias.eval._names import GENERATED_PERTURBATIONS, check_names
from antialias.eval._robust_core import forward_logits
from antialias.eval.perturbation.generate import perturbation_sequence, resolve_preset
from antialias.eval.perturbation.metric import PerturbationResult, PerturbationStability
from antialias.eval.perturbation.readers import (
    PerturbationFiles,
    cifar10p_names,
    inspect_perturbation_data,
    read_cifar10p,
)

__all__ = ["evaluate_cifar10p", "evaluate_perturbation_files", "evaluate_perturbations"]


def _run(
    model: nn.Module,
    items: Iterable[tuple[str, Tensor]],
    metric: PerturbationStability,
    preprocess: Callable[[Tensor], Tensor] | None,
    device: torch.device | str,
    where: str,
    config: dict,
) -> PerturbationResult:
    model = model.to(device).eval()
    metric = metric.to(device)
    with torch.inference_mode():
        for name, frames in items:  # frames (N, T, C, H, W)
            n, t = frames.shape[:2]
            logits = forward_logits(model, frames.flatten(0, 1), preprocess, device, where)
            metric.update(logits.view(n, t, -1), name)
    if int(metric.sequences.sum()) == 0:
        raise ValueError(f"`{where}`: there were no sequences to evaluate.")
    result = metric.compute()
    result.config.update(config)
    return result


def evaluate_perturbations(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]] | Iterable[Tensor],
    *,
    perturbations: Sequence[str] = GENERATED_PERTURBATIONS,
    preset: str = "auto",
    step: int = 1,
    normaliser: object = None,
    seed: int = 0,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> PerturbationResult:
    """Generate every perturbation sequence of every image on the fly and measure FP, FR and T5D.

    Args:
        model: any classifier returning ``(N, classes)`` logits.
        batches: ``(images, labels)`` (labels are unused) or plain image batches, images
            ``(N, C, H, W)`` floats in ``[0, 1]``.
        perturbations: names from :data:`~antialias.eval.GENERATED_PERTURBATIONS` (default all ten,
            ImageNet-P's test set).
        preset: frame counts and ranges (see :mod:`antialias.eval.perturbation.generate`).
        step: frame distance of compared pairs (ImageNet-P's difficulty), ignored for noise.
        normaliser: reference model's flip probabilities (a
            :class:`~antialias.eval.perturbation.PerturbationResult`, its JSON, or ``{name: fp}``)
            for FR/mFR and mT5D.
        seed: seed of the noise and snow perturbations.
        preprocess: applied after perturbing (e.g. normalisation).
        device: where the model runs; a batch's ``N * T`` frames of one perturbation go in one forward.
        confidence: of the intervals.
    """
    where = "evaluate_perturbations"
    names = check_names(where, "perturbations", list(perturbations), GENERATED_PERTURBATIONS)
    metric = PerturbationStability(names, step=step, normaliser=normaliser, confidence=confidence)
    resolve_preset(preset, 256, 256, where)  # a bad preset fails before the first batch

    def items() -> Iterator[tuple[str, Tensor]]:
        start = 0
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for name in names:
                yield name, perturbation_sequence(images, name, preset=preset, seed=seed, first_index=start)
            start += images.shape[0]

    config = {"source": "generated", "preset": preset, "seed": seed}
    return _run(model, items(), metric, preprocess, device, where, config)


def evaluate_cifar10p(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    perturbations: Sequence[str] | None = None,
    step: int = 1,
    normaliser: object = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> PerturbationResult:
    """FP, FR and T5D on the released CIFAR-10-P files ``<root>/<perturbation>.npy`` (default: all present)."""
    where = "evaluate_cifar10p"
    folder, names = cifar10p_names(root, perturbations, where)
    metric = PerturbationStability(names, step=step, normaliser=normaliser, confidence=confidence)

    def items() -> Iterator[tuple[str, Tensor]]:
        for name in names:
            for frames in read_cifar10p(folder / f"{name}.npy", batch_size=batch_size, limit=limit):
                yield name, frames

    config = {"source": f"CIFAR-10-P files at {folder}", "limit": limit}
    return _run(model, items(), metric, preprocess, device, where, config)


def evaluate_perturbation_files(
    model: nn.Module,
    files: PerturbationFiles | str | os.PathLike,
    *,
    data_format: str = "auto",
    perturbations: Sequence[str] | None = None,
    step: int = 1,
    normaliser: object = None,
    batch_size: int = 100,
    limit: int | None = None,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    confidence: float = 0.95,
) -> PerturbationResult:
    """FP, FR and T5D on the released CIFAR-10-P files or ImageNet-P videos in ``files``, whichever they are.

    ``files``: the folder (its layout is recognised by
    :func:`~antialias.eval.perturbation.readers.inspect_perturbation_data`; ``data_format`` ``"auto"``,
    ``"cifar10-p"`` or ``"imagenet-p"``) or its checked ``PerturbationFiles``. ImageNet-P's videos
    need PyAV (``pip install "antialias[video]"``). ``batch_size`` is sequences per batch, ``limit``
    the first sequences of each perturbation. Other arguments as :func:`evaluate_cifar10p`.
    """
    where = "evaluate_perturbation_files"
    if not isinstance(files, PerturbationFiles):
        files = inspect_perturbation_data(files, data_format, perturbations, where=where)
    names = files.names if perturbations is None else tuple(perturbations)
    metric = PerturbationStability(names, step=step, normaliser=normaliser, confidence=confidence)

    def items() -> Iterator[tuple[str, Tensor]]:
        for name in names:
            for frames in files.sequences(name, batch_size=batch_size, limit=limit):
                yield name, frames

    config = {"source": f"{files.label} files at {files.root}", "limit": limit}
    return _run(model, items(), metric, preprocess, device, where, config)
