"""Data set specs shared by train, eval and reproduce: a name, ``NAME:PATH`` or a ``module:function`` factory."""

from __future__ import annotations

from collections.abc import Sized

from torch import Tensor
from torch.utils.data import Dataset, Subset

from antialias._factory import import_factory, is_factory_spec
from antialias.data._base import ImageTensorDataset
from antialias.data._registry import DATASET_NAMES, load_dataset

__all__ = ["head", "load_split"]


def load_split(spec: str, split: str, *, root: str | None, download: bool) -> Dataset:
    """The ``split`` ("train" or "test") of data set ``spec`` (a name, ``NAME:PATH`` or ``module:function``)."""
    if is_factory_spec(spec, (*DATASET_NAMES, "fashion-mnist")):
        factory = import_factory(spec, "train", "data")
        return factory(split=split, root=root)
    return load_dataset(spec, split=split, root=root, download=download)


def head(dataset: Dataset, lo: int, hi: int) -> Dataset:
    """Items ``lo:hi``; in-memory sets stay in memory (with their name, for default transforms)."""
    if lo == 0 and isinstance(dataset, Sized) and hi >= len(dataset):
        return dataset
    images, targets = getattr(dataset, "images", None), getattr(dataset, "targets", None)
    classes = getattr(dataset, "classes", None)
    untransformed = getattr(dataset, "transform", None) is None
    if isinstance(images, Tensor) and isinstance(targets, Tensor) and classes is not None and untransformed:
        return ImageTensorDataset(images[lo:hi], targets[lo:hi], list(classes),
                                  name=str(getattr(dataset, "name", "images")))
    return Subset(dataset, range(lo, hi))
