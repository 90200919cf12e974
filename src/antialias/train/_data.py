"""The trainer's data: data set specs, subsets, and epoch loaders from :func:`antialias.data.make_loader`.

Exact resume and world-size independence come from the loader's contract (see
:mod:`antialias.data.loader`): the epoch's order depends only on ``(seed, epoch)``; augmentation is
keyed by ``(seed, epoch, sample index)``; ``start_batch`` resumes inside an epoch without loading the
skipped batches; under torchrun rank ``r`` of ``W`` with batch ``B / W`` visits, step by step, the
same samples as one process with batch ``B``. The trainer drops the last partial batch, so every
step sees a full global batch and the number of steps does not depend on ``W``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from antialias.data import make_loader
from antialias.data.loader import EpochLoader
from antialias.data.spec import head
from antialias.data.transforms import default_transform

__all__ = ["TrainData", "numpy_rng_state", "set_numpy_rng_state"]


class TrainData:
    """Train and test splits with their batch transforms, handing out per-epoch loaders.

    Args:
        train: The training set; ``train_subset`` keeps its first N items.
        test: The evaluation set; ``val_subset`` keeps its first N items.
        augment: Random crop/flip on training batches (the data set's defaults).
        normalize: Normalise with the training set's channel statistics.
    """

    def __init__(self, train: Dataset, test: Dataset, *, train_subset: int | None, val_subset: int | None,
                 augment: bool, normalize: bool, num_workers: int, pin_memory: bool) -> None:
        self.full_train = train
        self.train = head(train, 0, _size(train) if train_subset is None else train_subset)
        self.test = head(test, 0, _size(test) if val_subset is None else val_subset)
        # Statistics and crop size from the (sub)set trained on; the test set uses the train statistics.
        self.train_transform = default_transform(self.train, train=augment, normalize=normalize)
        self.eval_transform = default_transform(self.train, train=False, normalize=normalize)
        self.num_workers, self.pin_memory = num_workers, pin_memory

    @property
    def num_classes(self) -> int:
        for ds in (self.full_train, self.train):
            value = getattr(ds, "num_classes", None)
            if value is not None:
                return int(value)
            classes = getattr(ds, "classes", None)
            if classes is not None:
                return len(classes)
        raise ValueError("`train`: `data` must provide `num_classes` or `classes`, got a data set with neither.")

    def sample_shape(self) -> tuple[int, int, int]:
        images = getattr(self.train, "images", None)
        if isinstance(images, Tensor):
            c, h, w = images.shape[1:]
            return int(c), int(h), int(w)
        x, _ = self.train[0]
        c, h, w = x.shape
        return int(c), int(h), int(w)

    def train_loader(self, *, batch_size: int, seed: int, epoch: int, start_batch: int, rank: int,
                     world_size: int) -> EpochLoader:
        """Rank ``rank``'s loader for ``epoch`` (local batch ``batch_size``), from ``start_batch``."""
        return make_loader(self.train, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch,
                           num_workers=self.num_workers, transform=self.train_transform, drop_last=True,
                           distributed=world_size > 1, num_replicas=world_size, rank=rank,
                           pin_memory=self.pin_memory, start_batch=start_batch)

    def eval_loader(self, *, batch_size: int, rank: int, world_size: int) -> EpochLoader:
        """Rank ``rank``'s contiguous share of the test set (no padding: every image counts once)."""
        n = _size(self.test)
        part = head(self.test, n * rank // world_size, n * (rank + 1) // world_size)
        return make_loader(part, batch_size=batch_size, shuffle=False, seed=0, num_workers=self.num_workers,
                           transform=self.eval_transform, pin_memory=self.pin_memory)


def _size(dataset: Dataset) -> int:
    return len(dataset)  # type: ignore[arg-type]  # map-style data sets have a length


def numpy_rng_state() -> dict[str, Any]:
    """NumPy's global RNG state as tensors and numbers (checkpointable by torch.save)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"name": name, "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    """Restores a :func:`numpy_rng_state`."""
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached"]))
