"""Image folders in the ImageNet layout: ``<root>/<class>/<image>``, classes from sorted folder names."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from antialias.data._errors import CorruptDataError, DatasetNotFoundError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "read_image"]

#: File endings read as images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def read_image(path: str | os.PathLike, *, mode: str = "RGB") -> Tensor:
    """Decode an image file with Pillow into a float32 tensor ``(C, H, W)`` in ``[0, 1]``.

    Args:
        path: a JPEG, PNG or other Pillow-readable file.
        mode: Pillow mode to convert to (``"RGB"`` -> 3 channels, ``"L"`` -> 1).

    Raises:
        CorruptDataError: the file cannot be decoded (the message names it).
    """
    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptDataError(
            f"`read_image`: {path} could not be decoded as an image ({type(exc).__name__}: {exc}); "
            "replace or delete the file."
        ) from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


class ImageFolder(Dataset):
    """Images in class folders, decoded on access (variable size unless ``transform`` fixes it).

    Args:
        root: folder whose subfolders are the classes (sorted by name -> labels 0, 1, ...).
        transform: optional callable on each float image ``(3, H, W)``; e.g.
            :class:`antialias.data.transforms.ResizeCenterCrop` to get equal sizes for batching.
        extensions: file endings to read (case-insensitive).

    Raises:
        DatasetNotFoundError: ``root`` is missing or holds no class folder with images.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for c in ("cat", "ant"):
        ...     (root / c).mkdir()
        ...     Image.new("RGB", (5, 4)).save(root / c / "0.png")
        >>> ds = ImageFolder(root)
        >>> ds.classes, len(ds), tuple(ds[0][0].shape), ds[0][1], ds.image_size
        (['ant', 'cat'], 2, (3, 4, 5), 0, None)
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        transform: Callable[[Tensor], Tensor] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"`ImageFolder`: `root` must be an existing folder of class folders "
                f"(<root>/<class>/<image>.JPEG), got {str(self.root)!r}, which does not exist."
            )
        exts = tuple(e.lower() for e in extensions)
        self.classes: list[str] = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        self.samples: list[tuple[Path, int]] = []
        for label, cls in enumerate(self.classes):
            files = sorted(
                p for p in (self.root / cls).rglob("*") if p.is_file() and p.suffix.lower() in exts
            )
            self.samples.extend((p, label) for p in files)
        if not self.samples:
            raise DatasetNotFoundError(
                f"`ImageFolder`: {self.root} must contain class folders holding images "
                f"({', '.join(exts)}), e.g. {self.root}/<class>/img.JPEG; found "
                f"{len(self.classes)} folders and no images."
            )
        self.targets = torch.tensor([t for _, t in self.samples], dtype=torch.int64)
        self.transform = transform
        self.in_channels = 3
        self.image_size: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes (class folders, including empty ones)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        image = read_image(path)  # (3, H, W)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self) -> str:
        return (
            f"ImageFolder(root={str(self.root)!r}, n={len(self)}, num_classes={self.num_classes})"
        )
