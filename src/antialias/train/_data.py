"""The training data stream: a pure function of (seed, epoch, step), so resuming needs no loader state.

Why the trainer owns the index order and the augmentation rather than a stateful DataLoader: a run
killed at step k and resumed must see exactly the batches an uninterrupted run sees from step k on,
for any number of processes. Here

- the epoch's order is ``randperm(N)`` from a generator seeded with ``(seed, epoch)``;
- global batch ``b`` is ``order[b*B:(b+1)*B]`` (the last partial batch is dropped, so the number of
  steps and the learning-rate schedule do not depend on the number of processes); under torchrun
  rank ``r`` of ``W`` takes the ``r``-th of ``W`` near-equal slices of it;
- augmentation (random crop with zero padding, horizontal flip) draws its parameters for the whole
  global batch from a generator seeded with ``(seed, epoch, b)``, and each rank applies its slice.

So 1 process and N processes see the same samples with the same augmentation, and resuming at step
``b`` just starts there. Data sets held in memory (``images``/``targets`` attributes) are gathered
a batch at a time; others go through a DataLoader whose batch sampler is this order (its workers
only read and decode: an item must not be random).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["DataSource", "load_split", "derived_seed", "epoch_batches", "augment_batch", "shard"]

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


def is_factory_spec(spec: str) -> bool:
    return _FACTORY.match(spec) is not None and not Path(spec).exists()


def load_split(spec: str, split: str, *, root: str | None, download: bool) -> Dataset:
    """The ``split`` ("train" or "test") of data set ``spec`` (a name, a path or ``module:function``)."""
    if is_factory_spec(spec):
        factory = import_factory(spec, "train", "data")
        return factory(split=split, root=root)
    from antialias.data import load_dataset

    return load_dataset(spec, split=split, root=root, download=download)


def _dataset_attr(ds: Dataset, name: str) -> Any:
    while isinstance(ds, Subset):
        ds = ds.dataset
    return getattr(ds, name, None)


class DataSource:
    """One split of a data set, optionally cut to its first ``subset`` items, served by index lists.

    Args:
        dataset: Items ``(float image (C, H, W) in [0, 1], int label)``; in-memory sets also have
            ``images`` (uint8 (N, C, H, W)) and ``targets`` (int64 (N,)).
        subset: Keep only the first ``subset`` items (None: all).
        num_workers: DataLoader workers for data sets not held in memory.
        pin_memory: Pin batches (CUDA training).
    """

    def __init__(self, dataset: Dataset, subset: int | None, *, num_workers: int = 0, pin_memory: bool = False) -> None:
        self.dataset = dataset
        n = len(dataset)
        self.n = n if subset is None else min(subset, n)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        images, targets = getattr(dataset, "images", None), getattr(dataset, "targets", None)
        self.in_memory = isinstance(images, Tensor) and images.dtype == torch.uint8 and images.ndim == 4 and isinstance(targets, Tensor)
        if self.in_memory:
            self.images, self.targets = images[: self.n], targets[: self.n].to(torch.int64)

    def __len__(self) -> int:
        return self.n

    @property
    def num_classes(self) -> int:
        value = _dataset_attr(self.dataset, "num_classes")
        if value is None:
            classes = _dataset_attr(self.dataset, "classes")
            if classes is None:
                if self.in_memory:
                    return int(self.targets.max()) + 1
                raise ValueError("`train`: `data` must provide `num_classes` or `classes`, got a data set with neither.")
            value = len(classes)
        return int(value)

    def sample_shape(self) -> tuple[int, int, int]:
        if self.in_memory:
            return tuple(self.images.shape[1:])  # type: ignore[return-value]
        x, _ = self.dataset[0]
        return tuple(x.shape)  # type: ignore[return-value]

    def channel_stats(self, limit: int = 10_000) -> tuple[list[float], list[float]]:
        """Per-channel mean and std (of [0, 1] values) over the first ``limit`` items."""
        if self.in_memory:
            x = self.images[:limit].to(torch.float64) / 255.0  # (n, C, H, W)
        else:
            x = torch.stack([self.dataset[i][0].to(torch.float64) for i in range(min(limit // 20, self.n))])
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return mean.tolist(), std.tolist()

    def batches(self, index_lists: list[list[int]]) -> Iterator[tuple[Tensor, Tensor]]:
        """Yields ``(x float32 (B, C, H, W) in [0, 1], y int64 (B,))`` for each index list."""
        if self.in_memory:
            for idx in index_lists:
                t = torch.as_tensor(idx, dtype=torch.int64)
                yield self.images[t].to(torch.float32).div_(255.0), self.targets[t]
            return
        if not index_lists:
            return
        loader = DataLoader(
            self.dataset,
            batch_sampler=index_lists,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        for x, y in loader:
            yield x.to(torch.float32), torch.as_tensor(y, dtype=torch.int64)


def shard(indices: Tensor, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s contiguous slice of ``indices`` (sizes differ by at most one)."""
    n = len(indices)
    lo, hi = n * rank // world_size, n * (rank + 1) // world_size
    return indices[lo:hi].tolist()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> Tensor:
    """The epoch's global batches as a ``(steps, batch_size)`` index tensor (partial batch dropped)."""
    g = torch.Generator().manual_seed(derived_seed(seed, epoch, 0x5EED))
    order = torch.randperm(n, generator=g)
    steps = n // batch_size
    return order[: steps * batch_size].view(steps, batch_size)


def augment_batch(x: Tensor, seed: int, epoch: int, step: int, global_size: int, lo: int, padding: int) -> Tensor:
    """Random crop (zero padding ``padding``) and horizontal flip of this rank's slice of a batch.

    The parameters are drawn for all ``global_size`` images of global batch ``step`` and the rows
    ``lo:lo + len(x)`` applied here, so the result does not depend on the number of processes.

    Shape:
        x: (B, C, H, W) -> (B, C, H, W)
    """
    g = torch.Generator().manual_seed(derived_seed(seed, epoch, step, 0xA06))
    offsets = torch.randint(0, 2 * padding + 1, (global_size, 2), generator=g)[lo : lo + len(x)]  # (B, 2)
    flips = (torch.rand(global_size, generator=g) < 0.5)[lo : lo + len(x)]  # (B,)
    b, c, h, w = x.shape
    if padding > 0:
        xp = torch.nn.functional.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
        rows = offsets[:, 0, None] + torch.arange(h)  # (B, H)
        cols = offsets[:, 1, None] + torch.arange(w)  # (B, W)
        rows, cols = rows.to(x.device), cols.to(x.device)
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)
    flips = flips.to(x.device)[:, None, None, None]
    return torch.where(flips, x.flip(-1), x)


def numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached"]))
