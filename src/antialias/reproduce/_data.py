"""Data of ``antialias reproduce``: which data set the trainer reads, and the evaluation tensors.

Fashion-MNIST is 28x28; the pipeline pads it with zeros to 32x32 (2 pixels each side) for training
and evaluation, through the data factory :func:`fashion_mnist_32` that the trainer imports by name
(``"antialias.reproduce._data:fashion_mnist_32"``). Why 32: the feature-distance maps upsample every
feature map to the input size by repeated 2x circular interpolation, which needs the input to be a
power-of-two multiple of each map (28 -> 14 -> 7 -> 4 breaks it), and 32x32 is also the size of the
paper's CIFAR experiments. The padding is part of the data, not of the model, so every shift of the
evaluation (crop, circular, diagonal, equivariance) acts on the same 32x32 image the model trains on.

CIFAR-10 (``cifar10:PATH``) is already 32x32 and goes to the trainer unchanged, as do users'
factories (``module:function``). ImageNet folders (``imagenet:PATH``, 224x224 after resize 256 /
centre crop 224) go through :func:`imagenet_interleaved`, which orders the images round-robin over
the classes: the trainer's and the evaluation's "first N images" are then balanced over classes
instead of being the first few classes of a sorted folder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.data import ImageFolder, ImageTensorDataset, load_dataset
from antialias.data.spec import load_split
from antialias.data.transforms import default_transform

__all__ = ["EvalData", "fashion_mnist_32", "imagenet_interleaved", "load_eval_data", "resolve_data_spec"]

FASHION_32 = "antialias.reproduce._data:fashion_mnist_32"
PAD = 2  # pixels of zeros on each side: 28 + 2 * 2 = 32


def _padded(dataset: Any, pad: int, name: str) -> ImageTensorDataset:
    images = F.pad(dataset.images, (pad, pad, pad, pad))  # (N, 1, 32, 32) uint8, zeros around
    return ImageTensorDataset(images, dataset.targets, list(dataset.classes), name=name)


@functools.lru_cache(maxsize=2)  # the 10 runs of one pipeline read the same files; the sets are never mutated
def fashion_mnist_32(split: str = "train", root: str | None = None) -> ImageTensorDataset:
    """Fashion-MNIST with 2 pixels of zeros on each side: ``uint8`` images ``(N, 1, 32, 32)``.

    A data factory for :class:`antialias.train.TrainConfig` (``data=`` this module's path and
    ``:fashion_mnist_32``). The name of the returned set starts with ``"fashion-mnist"``, so the
    default training augmentation is the usual one: a random crop with 4 pixels of zero padding and
    a horizontal flip.

    Args:
        split: ``"train"`` or ``"test"``.
        root: Folder of the IDX files (None: the Debian package location, then the cache).

    Returns:
        An :class:`antialias.data.ImageTensorDataset` of 32x32 images.

    Raises:
        antialias.data.DatasetNotFoundError: The files are missing (the message says how to get them).
    """
    base = load_dataset("fashion-mnist", split=split, root=root)
    return _padded(base, PAD, f"fashion-mnist-32-{split}")


def imagenet_interleaved(split: str = "train", root: str | None = None) -> ImageFolder:
    """An ImageNet-layout folder (``root/train``, ``root/val``) with images ordered round-robin over classes.

    Image ``k`` of class 0, then image ``k`` of class 1, ... for ``k = 0, 1, ...``, so any prefix is
    class-balanced. Images are decoded on access (resize 256, centre crop 224).

    Raises:
        antialias.data.DatasetNotFoundError: The folder is missing or not in the ImageNet layout.
    """
    ds = load_dataset("imagenet", split=split, root=root)
    if not isinstance(ds, ImageFolder):  # load_dataset's contract for "imagenet"
        raise TypeError(f"`imagenet_interleaved`: expected an ImageFolder from load_dataset, got {type(ds).__name__}.")
    rank: dict[int, int] = {}
    keyed = []
    for i, (_, label) in enumerate(ds.samples):
        k = rank.get(label, 0)
        rank[label] = k + 1
        keyed.append((k, label, i))
    order = [i for _, _, i in sorted(keyed)]
    ds.samples = [ds.samples[i] for i in order]
    ds.targets = ds.targets[order]
    return ds


def resolve_data_spec(data: str) -> tuple[str, str | None]:
    """The trainer's ``(data, data_root)`` for the user's ``--data``.

    Examples:
        >>> resolve_data_spec("fashion-mnist")
        ('antialias.reproduce._data:fashion_mnist_32', None)
        >>> resolve_data_spec("fashion-mnist:/data/fm")
        ('antialias.reproduce._data:fashion_mnist_32', '/data/fm')
        >>> resolve_data_spec("cifar10:/data/cifar")
        ('cifar10:/data/cifar', None)
        >>> resolve_data_spec("imagenet:/data/imagenet")
        ('antialias.reproduce._data:imagenet_interleaved', '/data/imagenet')
    """
    name, _, path = data.partition(":")
    if name.lower() in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        return FASHION_32, (path or None)
    if name.lower() == "imagenet" and path:
        return "antialias.reproduce._data:imagenet_interleaved", path
    return data, None


@dataclass
class EvalData:
    """The evaluation images as the trainer sees them, and the model's input preprocessing.

    Attributes:
        images: ``float32 (N, C, H, W)`` in ``[0, 1]`` (unnormalised: shifts pad in pixel space).
        labels: ``int64 (N,)``.
        preprocess: The trainer's evaluation transform (normalisation by the training subset's
            channel statistics), applied after shifting.
        num_classes: Number of classes.
        description: Human-readable summary for the report.
    """

    images: Tensor
    labels: Tensor
    preprocess: Any
    num_classes: int
    description: str

    def batches(self, n: int | None = None, batch_size: int = 256) -> list[tuple[Tensor, Tensor]]:
        """The first ``n`` images (all by default) in fixed order, as ``(images, labels)`` batches."""
        n = len(self.images) if n is None else min(n, len(self.images))
        return [(self.images[i : min(n, i + batch_size)], self.labels[i : min(n, i + batch_size)])
                for i in range(0, n, batch_size)]


def _as_float_stack(dataset: Any, n: int) -> tuple[Tensor, Tensor]:
    images = getattr(dataset, "images", None)
    if isinstance(images, Tensor):
        return images[:n].to(torch.float32) / 255.0, dataset.targets[:n].to(torch.int64)
    xs, ys = zip(*(dataset[i] for i in range(min(n, len(dataset)))), strict=True)
    return torch.stack(xs).to(torch.float32), torch.tensor(ys, dtype=torch.int64)


def load_eval_data(spec: str, root: str | None, *, train_subset: int | None, num_images: int,
                   normalize: bool = True) -> EvalData:
    """Loads the first ``num_images`` test images and rebuilds the trainer's evaluation transform.

    The trainer normalises with the channel statistics of the training subset it trains on (see
    :class:`antialias.train._data.TrainData`); the same statistics are computed here with the
    public :func:`antialias.data.transforms.default_transform` on the same first ``train_subset``
    training images.
    """
    train = load_split(spec, "train", root=root, download=False)
    test = load_split(spec, "test", root=root, download=False)
    images_in_memory = getattr(train, "images", None)  # any in-memory set (a factory's too), not only ours
    if isinstance(images_in_memory, Tensor) and train_subset is not None:
        targets, classes = getattr(train, "targets"), getattr(train, "classes")  # noqa: B009 (duck-typed set)
        train = ImageTensorDataset(images_in_memory[:train_subset], targets[:train_subset], list(classes),
                                   name=str(getattr(train, "name", "images")))
    preprocess = default_transform(train, train=False, normalize=normalize)
    images, labels = _as_float_stack(test, num_images)
    classes = getattr(test, "classes", None)
    num_classes = int(
        getattr(test, "num_classes", None) or (len(classes) if classes is not None else int(labels.max()) + 1)
    )
    c, h, w = images.shape[1:]
    desc = f"{len(images)} test images of {c}x{h}x{w}, {num_classes} classes"
    return EvalData(images, labels, preprocess, num_classes, desc)
