"""The trainer's data: data set specs, subsets, and epoch loaders from :func:`antialias.data.make_loader`.

Exact resume and world-size independence come from the loader's contract (see
:mod:`antialias.data.loader`): the epoch's order depends only on ``(seed, epoch)``; augmentation is
keyed by ``(seed, epoch, sample index)``; ``start_batch`` resumes inside an epoch without loading the
skipped batches; under torchrun rank ``r`` of ``W`` with batch ``B / W`` visits, step by step, the
same samples as one process with batch ``B``. The trainer drops the last partial batch, so every
step sees a full global batch and the number of steps does not depend on ``W``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

__all__ = ["TrainData", "load_split", "import_factory", "is_factory_spec", "derived_seed"]

_FACTORY = re.compile(r"^(?P<module>[\w.]+|.+\.py):(?P<attr>[A-Za-z_]\w*)$")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers; stable across processes, platforms and Python versions."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def import_factory(spec: str, where: str, param: str) -> Any:
    """Imports ``package.module:function`` or ``path/to/file.py:function``."""
    m = _FACTORY.match(spec)
    if m is None:
        raise ValueError(f"`{where}`: `{param}` must be 'module:function' or 'file.py:function', got {spec!r}.")
    module_name, attr = m.group("module"), m.group("attr")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ValueError(f"`{where}`: `{param}` must name an existing Python file, got {spec!r} ({path} not found).")
            name = "_antialias_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            loader_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"`{where}`: `{param}` must name an importable module, got {spec!r} ({exc}). "
            "Check the spelling and that the module is on PYTHONPATH."
        ) from None
    if not hasattr(module, attr):
        raise ValueError(f"`{where}`: `{param}` must name a function of {module_name}, got {spec!r} (no attribute {attr!r}).")
    return getattr(module, attr)


def is_factory_spec(spec: str, reserved: tuple[str, ...] = ()) -> bool:
    """True for ``module:function`` (not an existing path, not ``NAME:PATH`` of a reserved name)."""
    if _FACTORY.match(spec) is None or Path(spec).exists():
        return False
    return spec.split(":", 1)[0].lower().replace("_", "-") not in reserved


def load_split(spec: str, split: str, *, root: str | None, download: bool) -> Dataset:
    """The ``split`` ("train" or "test") of data set ``spec`` (a name, ``NAME:PATH`` or ``module:function``)."""
    from antialias.data import DATASET_NAMES, load_dataset

    if is_factory_spec(spec, DATASET_NAMES + ("fashion-mnist",)):
        factory = import_factory(spec, "train", "data")
        return factory(split=split, root=root)
    return load_dataset(spec, split=split, root=root, download=download)


def _head(dataset: Dataset, lo: int, hi: int) -> Dataset:
    """Items ``lo:hi``; in-memory sets stay in memory (with their name, for default transforms)."""
    if lo == 0 and hi >= len(dataset):
        return dataset
    images, targets = getattr(dataset, "images", None), getattr(dataset, "targets", None)
    if isinstance(images, Tensor) and isinstance(targets, Tensor) and getattr(dataset, "transform", None) is None:
        from antialias.data import ImageTensorDataset

        return ImageTensorDataset(images[lo:hi], targets[lo:hi], list(dataset.classes),
                                  name=str(getattr(dataset, "name", "images")))
    return Subset(dataset, range(lo, hi))


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
        from antialias.data.transforms import default_transform

        self.full_train = train
        self.train = _head(train, 0, len(train) if train_subset is None else train_subset)
        self.test = _head(test, 0, len(test) if val_subset is None else val_subset)
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
            return tuple(images.shape[1:])  # type: ignore[return-value]
        x, _ = self.train[0]
        return tuple(x.shape)  # type: ignore[return-value]

    def train_loader(self, *, batch_size: int, seed: int, epoch: int, start_batch: int, rank: int, world_size: int):
        """Rank ``rank``'s loader for ``epoch`` (local batch ``batch_size``), from ``start_batch``."""
        from antialias.data import make_loader

        return make_loader(self.train, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch,
                           num_workers=self.num_workers, transform=self.train_transform, drop_last=True,
                           distributed=world_size > 1, num_replicas=world_size, rank=rank,
                           pin_memory=self.pin_memory, start_batch=start_batch)

    def eval_loader(self, *, batch_size: int, rank: int, world_size: int):
        """Rank ``rank``'s contiguous share of the test set (no padding: every image counts once)."""
        from antialias.data import make_loader

        n = len(self.test)
        part = _head(self.test, n * rank // world_size, n * (rank + 1) // world_size)
        return make_loader(part, batch_size=batch_size, shuffle=False, seed=0, num_workers=self.num_workers,
                           transform=self.eval_transform, pin_memory=self.pin_memory)


def numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached"]))
