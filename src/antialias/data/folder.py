"""Image folders in the ImageNet layout: ``<root>/<class>/<image>``, and which class index each folder is.

A folder's class index (:func:`folder_class_indices`) comes from, in order: a class map given by the
user (a mapping, or a ``.json``/text file naming the folders); folder names that are all integers
(``"243"`` is class 243); folder names that are all ImageNet-1k wnids (``"n01440764"`` is class 0,
the wnid's position in sorted order, whatever subset of classes is present); otherwise the
position of the name among the sorted folder names (torchvision's ``ImageFolder`` rule).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from antialias.data._errors import CorruptDataError, DatasetNotFoundError
from antialias.data._imagenet_classes import WNID_INDEX

__all__ = ["IMAGE_EXTENSIONS", "ClassMap", "ImageFolder", "folder_class_indices", "read_class_map", "read_image"]

#: A class map: folder name -> class index, or the path of a file holding one (see :func:`read_class_map`).
ClassMap = Mapping[str, int] | str | os.PathLike

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
    except Image.DecompressionBombError as exc:  # Pillow's guard against decompression bombs (> 179 Mpixels)
        raise CorruptDataError(
            f"`read_image`: {path} must be an image of at most {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels, got a "
            f"larger one ({exc}); it may be a decompression bomb. Remove it from the folder, or resize it."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise CorruptDataError(
            f"`read_image`: {path} could not be decoded as an image ({type(exc).__name__}: {exc}); "
            "replace or delete the file."
        ) from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


def read_class_map(path: str | os.PathLike) -> dict[str, int]:
    """Read a class map file: folder name -> class index.

    Formats:

    - ``.json``: an object ``{"name": index, ...}``, or a list of names in class-index order;
    - text (any other suffix): one class per line, ``name index`` (every line with an integer second
      field), else ``name [anything]`` with the line number (from 0, blank lines skipped) as index,
      so ImageNet's ``LOC_synset_mapping.txt`` (``n01440764 tench, Tinca tinca``) reads as it is.

    Raises:
        ValueError: the file is missing or unreadable, or two names or a negative index appear.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "classes.txt"
        >>> _ = f.write_text("dog 5\\ncat 3\\n")
        >>> read_class_map(f)
        {'dog': 5, 'cat': 3}
    """
    where = "read_class_map"
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"`{where}`: `class_map` must be an existing .json or text file, got {str(p)!r}.")
    text = p.read_text(encoding="utf-8")
    pairs: list[tuple[str, int]]
    if p.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"`{where}`: `class_map` must hold valid JSON, got {str(p)!r}: {exc}") from None
        if isinstance(obj, list) and all(isinstance(n, str) for n in obj):
            pairs = [(n, i) for i, n in enumerate(obj)]
        elif isinstance(obj, dict) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in obj.values()
        ):
            pairs = [(str(k), int(v)) for k, v in obj.items()]
        else:
            raise ValueError(
                f"`{where}`: `class_map` must hold a JSON object {{\"folder\": index}} or a list of folder names, "
                f"got {type(obj).__name__} in {str(p)!r}."
            )
    else:
        rows = [line.split() for line in text.splitlines() if line.strip()]
        if rows and all(len(r) == 2 and r[1].lstrip("-").isdigit() for r in rows):
            pairs = [(r[0], int(r[1])) for r in rows]
        else:
            pairs = [(r[0], i) for i, r in enumerate(rows)]
    return _checked_map(dict(pairs), len(pairs), where, str(p))


def _checked_map(mapping: Mapping[str, int], count: int, where: str, source: str) -> dict[str, int]:
    out = {str(k): v for k, v in mapping.items()}
    if len(out) != count:
        raise ValueError(f"`{where}`: `class_map` must name each folder once, got duplicates in {source}.")
    bad = {k: v for k, v in out.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
    if bad:
        name, value = next(iter(bad.items()))
        raise ValueError(
            f"`{where}`: `class_map` must map folder names to integers >= 0, got {name!r}: {value!r} in {source}."
        )
    return out


def folder_class_indices(
    folders: Sequence[str], class_map: ClassMap | None = None
) -> tuple[dict[str, int], str]:
    """The class index of each folder name, and the rule that gave it (see the module docstring).

    Args:
        folders: Class folder names.
        class_map: A mapping folder -> index, or a file for :func:`read_class_map`; every folder
            must be in it.

    Returns:
        ``(folder -> index, source)``, source one of ``"class map"``, ``"integer folder names"``,
        ``"imagenet wnids"``, ``"sorted folder names"``.

    Raises:
        ValueError: a folder missing from the class map (close names suggested), or two folders with
            one integer index (``"7"`` and ``"007"``).

    Examples:
        >>> folder_class_indices(["243", "7"])
        ({'243': 243, '7': 7}, 'integer folder names')
        >>> folder_class_indices(["n01443537", "n01440764"])
        ({'n01443537': 1, 'n01440764': 0}, 'imagenet wnids')
        >>> folder_class_indices(["dog", "cat"])
        ({'dog': 1, 'cat': 0}, 'sorted folder names')
    """
    where = "ImageFolder"
    if class_map is not None:
        if isinstance(class_map, Mapping):
            mapping = _checked_map(class_map, len(class_map), where, "the mapping")
        elif isinstance(class_map, (str, os.PathLike)):
            mapping = read_class_map(class_map)
        else:
            raise TypeError(
                f"`{where}`: `class_map` must be a mapping, a file path or None, got {type(class_map).__name__}."
            )
        missing = [f for f in folders if f not in mapping]
        if missing:
            close = difflib.get_close_matches(missing[0], list(mapping), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"`{where}`: `class_map` must give every class folder an index, got no entry for {missing[0]!r}"
                f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}.{hint}"
            )
        return {f: mapping[f] for f in folders}, "class map"
    if folders and all(f.isascii() and f.isdigit() for f in folders):
        indices = {f: int(f) for f in folders}
        if len(set(indices.values())) != len(indices):
            raise ValueError(
                f"`{where}`: class folders named by index must name distinct indices, got {sorted(folders)!r}."
            )
        return indices, "integer folder names"
    if folders and all(f in WNID_INDEX for f in folders):
        return {f: WNID_INDEX[f] for f in folders}, "imagenet wnids"
    order = {f: i for i, f in enumerate(sorted(folders))}
    return {f: order[f] for f in folders}, "sorted folder names"


class ImageFolder(Dataset):
    """Images in class folders, decoded on access (variable size unless ``transform`` fixes it).

    Args:
        root: folder whose subfolders are the classes.
        transform: optional callable on each float image ``(3, H, W)``; e.g.
            :class:`antialias.data.transforms.ResizeCenterCrop` to get equal sizes for batching.
        extensions: file endings to read (case-insensitive).
        class_map: which class index each folder is. None (default): the sorted folder names are
            labels 0, 1, ...; ``"auto"``: integer folder names and ImageNet wnids are indices
            (:func:`folder_class_indices`), else sorted names; a mapping or a class map file
            (:func:`read_class_map`): its indices.

    Attributes:
        classes: the class folder names, sorted.
        class_to_idx: folder name -> label.
        label_source: the rule that gave the labels (see :func:`folder_class_indices`).
        num_classes: one more than the largest index known (the class map's, 1000 for wnids).

    Raises:
        DatasetNotFoundError: ``root`` is missing or holds no class folder with images.
        ValueError: a folder the class map does not name.

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
        class_map: ClassMap | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"`ImageFolder`: `root` must be an existing folder of class folders "
                f"(<root>/<class>/<image>.JPEG), got {str(self.root)!r}, which does not exist."
            )
        exts = tuple(e.lower() for e in extensions)
        self.classes: list[str] = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if class_map is None:
            self.class_to_idx, self.label_source = {c: i for i, c in enumerate(self.classes)}, "sorted folder names"
            known = len(self.classes)
        else:
            auto = isinstance(class_map, str) and class_map == "auto"
            self.class_to_idx, self.label_source = folder_class_indices(self.classes, None if auto else class_map)
            known = 1 + max(self.class_to_idx.values(), default=-1)
            if self.label_source == "imagenet wnids":
                known = len(WNID_INDEX)
            elif self.label_source == "class map" and isinstance(class_map, Mapping):
                known = max(known, 1 + max(class_map.values(), default=-1))
            elif self.label_source == "class map":
                known = max(known, 1 + max(read_class_map(class_map).values(), default=-1))  # type: ignore[arg-type]
        self._num_classes = known
        self.samples: list[tuple[Path, int]] = []
        for cls in self.classes:
            label = self.class_to_idx[cls]
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
        """Number of classes: the class folders (empty ones included), or one more than the largest known index."""
        return self._num_classes

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
