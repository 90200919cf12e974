"""A seeded, resumable DataLoader: same seed -> same batches, whatever the number of workers.

Determinism contract (what the trainer relies on):

* Order. The epoch's order is ``torch.randperm(N, generator=Generator().manual_seed(seed +
  epoch))`` (:func:`~antialias.data.seeding.sampler_seed`), the permutation
  :class:`torch.utils.data.DistributedSampler` uses, so one process with a global batch ``B * W``
  visits, step by step, the same samples as ``W`` ranks with batch ``B`` (the distributed sampler
  pads ``N`` up to a multiple of ``W`` by repeating the first indices, unless ``drop_last``). With
  ``shuffle=False`` the order is ``0..N-1``.
* Augmentation. A :class:`~antialias.data.transforms.Transform` passed as ``transform`` is applied
  to whole batches inside the workers, with its random numbers from
  :func:`~antialias.data.transforms.keyed_uniforms` of ``(seed, epoch, sample index)``: the same
  image gets the same crop and flip in a given epoch whichever batch, worker or rank it lands in.
* Resume mid-epoch. Everything above depends only on ``(seed, epoch)``, so a run that stopped after
  ``k`` optimizer steps of epoch ``e`` resumes with ``make_loader(..., epoch=e, start_batch=k)``:
  it skips the first ``k`` batches' indices without loading them and yields exactly the batches an
  uninterrupted run would have yielded from step ``k`` on. (Iterating and discarding ``k`` batches
  gives the same result, only slower.) Save ``(epoch, steps done in the epoch)`` in checkpoints.
* Workers. ``torch`` seeds each worker from the loader's generator (seeded with
  ``derived_seed(seed, LOADER, epoch)``, see :mod:`antialias.data.seeding`); :func:`seed_worker`
  derives Python's and NumPy's seeds from it, for user transforms that use the global RNGs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from antialias.data.seeding import LOADER, derived_seed, numpy_seed, sampler_seed
from antialias.data.seeding import generator as seeding_generator
from antialias.data.transforms import Transform, keyed_uniforms

__all__ = ["EpochLoader", "SeededSampler", "make_loader", "seed_worker"]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random`` and ``numpy`` from the worker's torch seed (via :func:`numpy_seed`)."""
    s = numpy_seed(torch.initial_seed())
    random.seed(s)
    np.random.seed(s)


class SeededSampler(Sampler[int]):
    """Single-process sampler whose order depends only on ``(seed, epoch)``; skips ``start`` indices.

    Examples:
        >>> s = SeededSampler(5, shuffle=True, seed=0)
        >>> s.set_epoch(1); a = list(s); s.set_epoch(1)
        >>> a == list(s), sorted(a)
        (True, [0, 1, 2, 3, 4])
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int, epoch: int = 0, start: int = 0) -> None:
        self.n, self.shuffle, self.seed, self.epoch, self.start = n, shuffle, seed, epoch, start

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(sampler_seed(self.seed, self.epoch))  # as DistributedSampler
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.n - self.start)


class _SkipSampler(Sampler[int]):
    """Drops the first ``start`` indices of ``base`` (resume inside an epoch)."""

    def __init__(self, base: Sampler[int], start: int) -> None:
        self.base, self.start = base, start

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)  # type: ignore[attr-defined]  # every sampler make_loader builds has set_epoch; Sampler does not declare it

    def __iter__(self) -> Iterator[int]:
        it = iter(self.base)
        for _ in range(self.start):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, len(self.base) - self.start)  # type: ignore[arg-type]  # torch's Dataset declares no __len__; the map-style sets used here have one


class _BatchFetcher(Dataset):
    """Wraps a data set so that workers build whole batches: gather, stack, transform."""

    def __init__(self, dataset: Dataset, transform: Callable | None, seed: int, epoch: int) -> None:
        self.dataset, self.transform, self.seed, self.epoch = dataset, transform, seed, epoch
        images = getattr(dataset, "images", None)
        # Fast path: in-memory uint8 stacks without a per-item transform are gathered in one go.
        self._fast = (
            isinstance(images, Tensor)
            and isinstance(getattr(dataset, "targets", None), Tensor)
            and getattr(dataset, "transform", None) is None
        )

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # torch's Dataset declares no __len__; the map-style sets used here have one

    def __getitem__(self, index: int) -> Any:  # used only with batch_size=None (not by make_loader)
        return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(list(indices), dtype=torch.int64)
        if self._fast:
            x = self.dataset.images[idx].to(torch.float32).div_(255.0)  # type: ignore[attr-defined]  # (B, C, H, W)
            y = self.dataset.targets[idx]  # type: ignore[attr-defined]  # _fast: an in-memory set with these tensors
        else:
            items = [self.dataset[int(i)] for i in idx]
            try:
                x = torch.stack([im for im, _ in items])
            except RuntimeError as exc:
                shapes = sorted({tuple(im.shape) for im, _ in items})
                raise ValueError(
                    f"`make_loader`: images in a batch must share one shape, got {shapes[:4]}; "
                    "give the data set a per-image transform that fixes the size, e.g. "
                    "ResizeCenterCrop(256, 224)."
                ) from exc
            y = torch.tensor([int(t) for _, t in items], dtype=torch.int64)
        if isinstance(self.transform, Transform):
            x = self.transform.apply(
                x, keyed_uniforms(self.seed, self.epoch, idx, self.transform.num_uniforms)
            )
        elif self.transform is not None:
            x = self.transform(x)
        return x, y


def _passthrough(batch: Any) -> Any:
    return batch  # the fetcher already built the batch: (images, labels)


class EpochLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` with :meth:`set_epoch` (see :func:`make_loader`)."""

    def set_epoch(self, epoch: int) -> None:
        """Switch to ``epoch`` (order, augmentation, worker seeds); clears any ``start_batch``."""
        sampler = self.sampler
        if isinstance(sampler, _SkipSampler):
            sampler.start = 0
        sampler.set_epoch(epoch)  # type: ignore[attr-defined]  # the concrete class (built in this module) has it; DataLoader's attributes are typed as the base
        self.dataset.epoch = epoch  # type: ignore[attr-defined]  # the concrete class (built in this module) has it; DataLoader's attributes are typed as the base
        self.generator.manual_seed(_loader_seed(self.dataset.seed, epoch))  # type: ignore[attr-defined]  # the concrete class (built in this module) has it; DataLoader's attributes are typed as the base

    @property
    def source(self) -> Dataset:
        """The data set passed to :func:`make_loader`."""
        return self.dataset.dataset  # type: ignore[attr-defined]  # the concrete class (built in this module) has it; DataLoader's attributes are typed as the base


def _loader_seed(seed: int, epoch: int) -> int:
    return derived_seed(seed, LOADER, epoch)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    epoch: int = 0,
    num_workers: int = 0,
    transform: Transform | Callable[[Tensor], Tensor] | None = None,
    drop_last: bool = False,
    distributed: bool = False,
    pin_memory: bool | None = None,
    start_batch: int = 0,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> EpochLoader:
    """A deterministic loader yielding ``(images, labels)``: float32 ``(B, C, H, W)``, int64 ``(B,)``.

    See the module docstring for the determinism and resume contract.

    Args:
        dataset: items ``(image (C, H, W), label)``; in-memory sets (with ``images``/``targets``)
            are gathered a batch at a time.
        batch_size: images per batch (per rank when ``distributed``).
        shuffle: reshuffle each epoch from ``(seed, epoch)``.
        seed: run seed.
        epoch: epoch to start in (later epochs: :meth:`EpochLoader.set_epoch` or a new loader).
        num_workers: worker processes (0: in the main process); results do not depend on it.
        transform: batch transform; a :class:`~antialias.data.transforms.Transform` gets keyed
            random numbers, any other callable is called on the batch as is.
        drop_last: drop the last incomplete batch.
        distributed: shard with a seeded :class:`~torch.utils.data.DistributedSampler` (needs an
            initialised process group, or ``num_replicas`` and ``rank``).
        pin_memory: pin batches for faster host-to-GPU copies; default: when CUDA is available.
        start_batch: skip this many batches of ``epoch`` (resume mid-epoch) without loading them.
        num_replicas: world size for ``distributed`` (default: from the process group).
        rank: this process's rank for ``distributed`` (default: from the process group).

    Returns:
        An :class:`EpochLoader`.

    Raises:
        ValueError: non-positive ``batch_size``, negative ``num_workers``/``start_batch``, or
            ``distributed`` without a process group.

    Examples:
        >>> from antialias.data import ImageTensorDataset
        >>> ds = ImageTensorDataset(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1),
        ...                         torch.zeros(10, dtype=torch.long), ["x"])
        >>> full = [y.flatten() for y, _ in make_loader(ds, batch_size=4, shuffle=True, seed=1)]
        >>> rest = [y.flatten() for y, _ in make_loader(ds, batch_size=4, shuffle=True, seed=1,
        ...                                             start_batch=1)]
        >>> all(torch.equal(a, b) for a, b in zip(full[1:], rest)), len(full), len(rest)
        (True, 3, 2)
    """
    where = "make_loader"
    for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                             ("start_batch", start_batch, 0), ("epoch", epoch, 0)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"`{where}`: `{name}` must be an int >= {low}, got {value!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"`{where}`: `seed` must be an int, got {seed!r}.")
    n = len(dataset)  # type: ignore[arg-type]  # torch's Dataset declares no __len__; the map-style sets used here have one
    base: Sampler[int]
    if distributed:
        no_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        if (num_replicas is None or rank is None) and no_group:
            raise ValueError(
                f"`{where}`: `distributed` must be used with an initialised process group "
                "(run under torchrun and call torch.distributed.init_process_group first) or "
                "with explicit `num_replicas` and `rank`, got neither."
            )
        base = DistributedSampler(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        base.set_epoch(epoch)
    else:
        base = SeededSampler(n, shuffle=shuffle, seed=seed, epoch=epoch)
    per_epoch = len(base) // batch_size if drop_last else math.ceil(len(base) / batch_size)
    if start_batch > per_epoch:
        raise ValueError(
            f"`{where}`: `start_batch` must be <= the {per_epoch} batches of an epoch, got {start_batch}."
        )
    sampler = _SkipSampler(base, start_batch * batch_size)
    generator = seeding_generator(seed, LOADER, epoch)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return EpochLoader(
        _BatchFetcher(dataset, transform, seed, epoch),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_passthrough,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        generator=generator,
        persistent_workers=False,
    )
