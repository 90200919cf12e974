"""Data sets from local paths or verified downloads, tensor transforms and a deterministic loader.

No torchvision: IDX (MNIST, Fashion-MNIST), CIFAR pickles (restricted unpickler) and image
folders (Pillow) are read here. Start with :func:`load_dataset` and :func:`make_loader`.
"""

from antialias.data import transforms
from antialias.data._base import ImageTensorDataset
from antialias.data._download import RemoteFile, RemoteSource, default_data_dir, fetch
from antialias.data._errors import CorruptDataError, DatasetNotFoundError, UnsafePickleError
from antialias.data._registry import DATASET_NAMES, load_dataset
from antialias.data.cifar import load_cifar, safe_unpickle
from antialias.data.folder import ImageFolder, read_image
from antialias.data.idx import load_idx_dataset, read_idx
from antialias.data.loader import EpochLoader, SeededSampler, make_loader, seed_worker

__all__ = [
    "DATASET_NAMES",
    "CorruptDataError",
    "DatasetNotFoundError",
    "EpochLoader",
    "ImageFolder",
    "ImageTensorDataset",
    "RemoteFile",
    "RemoteSource",
    "SeededSampler",
    "UnsafePickleError",
    "default_data_dir",
    "fetch",
    "load_cifar",
    "load_dataset",
    "load_idx_dataset",
    "make_loader",
    "read_idx",
    "read_image",
    "safe_unpickle",
    "seed_worker",
    "transforms",
]
