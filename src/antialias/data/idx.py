"""MNIST and Fashion-MNIST from IDX files (gzip-compressed or raw).

IDX format (LeCun et al.): two zero bytes, a type code (``0x08`` = uint8), the number of
dimensions ``ndim``, then ``ndim`` big-endian uint32 sizes, then the data in C order. The reader
checks every part of the header against the file length and names the file when anything is off.

Where the files are looked for, in order: ``root`` (and ``root/<name>``) when given; otherwise
the Debian package location (Fashion-MNIST: ``apt-get install -y dataset-fashion-mnist`` puts the
files in ``/usr/share/datasets/fashion-mnist``) and ``default_data_dir()/<name>``. With
``download=True`` missing files are fetched into ``root`` (or the cache) and hash-checked.
Note: the Debian package re-compresses the files, so its ``.gz`` files do not match upstream's
MD5s byte for byte; hashes are therefore checked on downloads only, and the content is
validated by the IDX header and sizes.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from antialias.data._base import ImageTensorDataset
from antialias.data._download import RemoteFile, RemoteSource, default_data_dir, fetch
from antialias.data._errors import CorruptDataError, DatasetNotFoundError

__all__ = ["IDX_SETS", "IdxSet", "load_idx_dataset", "read_idx"]

# type code -> big-endian numpy dtype (the IDX specification's table)
#: Largest decompressed IDX file read (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 1 << 30

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw, told apart by the gzip magic bytes, not the name).

    Args:
        path: the file.

    Returns:
        An array with the file's shape and dtype (``uint8`` for MNIST-style files).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptDataError: a bad magic number, type code, size or truncated gzip stream; the
            message names the file.

    Examples:
        >>> import tempfile, struct
        >>> p = Path(tempfile.mkdtemp()) / "tiny-idx2-ubyte"
        >>> _ = p.write_bytes(struct.pack(">BBBBII", 0, 0, 8, 2, 2, 3) + bytes(range(6)))
        >>> read_idx(p)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                raw = stream.read(MAX_IDX_BYTES + 1)  # bounded: a gzip bomb stops here
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(
                f"`read_idx`: {path} is not a valid gzip file ({exc}); delete it and get it again."
            ) from exc
        if len(raw) > MAX_IDX_BYTES:
            raise CorruptDataError(
                f"`read_idx`: {path} must decompress to at most {MAX_IDX_BYTES} bytes (an IDX data set), got "
                "more; it is not an IDX file."
            )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise CorruptDataError(
            f"`read_idx`: {path} must start with an IDX magic number 0x0000 <type> <ndim> (type one "
            f"of {sorted(_IDX_DTYPES)}, ndim >= 1), got {raw[:4].hex() or 'an empty file'}."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(
            f"`read_idx`: {path} is truncated: its header announces {ndim} dims but the file has "
            f"{len(raw)} bytes."
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: dims that overflow int64 cannot wrap
    if len(raw) != expected:
        raise CorruptDataError(
            f"`read_idx`: {path} must hold {expected} bytes for shape {shape} of {dtype}, got "
            f"{len(raw)} (truncated or not an IDX file); delete it and get it again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


@dataclass(frozen=True)
class IdxSet:
    """Where a data set in IDX files lives and what it is."""

    name: str
    classes: tuple[str, ...]
    system_dirs: tuple[str, ...]
    how_to_get: str
    remote: RemoteSource

    def file_names(self, split: str) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")


_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: The IDX data sets known by name. Hashes: Fashion-MNIST's README (MD5 only, see the module
#: docstring); MNIST's SHA-256 of the original ``.gz`` files (sizes 9912422, 28881, 1648877, 4542).
IDX_SETS: dict[str, IdxSet] = {
    "fashion-mnist": IdxSet(
        name="fashion-mnist",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        how_to_get=(
            "On Debian/Ubuntu: `apt-get install -y dataset-fashion-mnist` (files land in "
            "/usr/share/datasets/fashion-mnist); or pass `download=True` (CLI: `--download`) "
            f"to fetch them from {_FASHION_URL}; or put the four files in a folder and pass it "
            "as `root=` / 'fashion-mnist:PATH'."
        ),
        remote=RemoteSource(
            base_urls=(_FASHION_URL,),
            files=(
                RemoteFile("train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                RemoteFile("train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe"),
                RemoteFile("t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79"),
                RemoteFile("t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310"),
            ),
        ),
    ),
    "mnist": IdxSet(
        name="mnist",
        classes=tuple(str(i) for i in range(10)),
        system_dirs=(),
        how_to_get=(
            "Pass `download=True` (CLI: `--download`) to fetch the files (SHA-256 checked), or put "
            "the four files from http://yann.lecun.com/exdb/mnist/ in a folder and pass it as "
            "`root=` / 'mnist:PATH'. (Debian has no MNIST package.)"
        ),
        remote=RemoteSource(
            base_urls=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ),
            files=(
                RemoteFile(
                    "train-images-idx3-ubyte.gz",
                    "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                ),
                RemoteFile(
                    "train-labels-idx1-ubyte.gz",
                    "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                ),
                RemoteFile(
                    "t10k-images-idx3-ubyte.gz",
                    "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                ),
                RemoteFile(
                    "t10k-labels-idx1-ubyte.gz",
                    "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ),
            ),
        ),
    ),
}


def _find(folder: Path, stem: str) -> Path | None:
    # Accept the published names (.gz), unpacked files, and the dotted variant some mirrors use
    # ("train-images.idx3-ubyte").
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def _candidate_dirs(info: IdxSet, root: Path | None) -> list[Path]:
    if root is not None:
        return [root, root / info.name]
    return [Path(d) for d in info.system_dirs] + [default_data_dir() / info.name]


def load_idx_dataset(
    name: str,
    *,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageTensorDataset:
    """Load MNIST or Fashion-MNIST as an in-memory :class:`ImageTensorDataset` (N, 1, 28, 28).

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder holding the IDX files (or a ``<name>`` subfolder of it); default: the Debian
            location, then the cache (:func:`default_data_dir`).
        download: fetch missing files into ``root`` (or the cache), hash-checked. Never implied.

    Returns:
        The data set; ``images`` is ``uint8`` ``(N, 1, H, W)``, ``targets`` ``int64`` ``(N,)``.

    Raises:
        DatasetNotFoundError: files missing; lists the files, the folders searched and the fix.
        CorruptDataError: a file is damaged or images and labels disagree (the file is named).
    """
    if name not in IDX_SETS:
        raise ValueError(
            f"`load_idx_dataset`: `name` must be one of {sorted(IDX_SETS)}, got {name!r}."
        )
    if split not in ("train", "test"):
        raise ValueError(f"`load_idx_dataset`: `split` must be 'train' or 'test', got {split!r}.")
    info = IDX_SETS[name]
    root_path = Path(root).expanduser() if root is not None else None
    stems = info.file_names(split)
    dirs = _candidate_dirs(info, root_path)
    found: tuple[Path, Path] | None = None
    for folder in dirs:
        image_file, label_file = (_find(folder, s) for s in stems)
        if image_file is not None and label_file is not None:
            found = (image_file, label_file)
            break
    if found is None and download:
        dest = root_path if root_path is not None else default_data_dir() / info.name
        paths = fetch(info.remote, dest, [s + ".gz" for s in stems])
        found = (paths[0], paths[1])
    if found is None:
        expected = ", ".join(s + "[.gz]" for s in stems)
        searched = "\n  ".join(str(d) for d in dirs)
        raise DatasetNotFoundError(
            f"`load_dataset`: {name} ({split}) needs the files {expected} in one folder; "
            f"none of these folders has them:\n  {searched}\n{info.how_to_get}"
        )
    images = read_idx(found[0])
    labels = read_idx(found[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise CorruptDataError(
            f"`load_dataset`: {found[0]} must hold uint8 images (N, H, W), got {images.dtype} "
            f"{images.shape}."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise CorruptDataError(
            f"`load_dataset`: {found[1]} must hold one label per image of {found[0]} "
            f"({len(images)}), got shape {labels.shape}."
        )
    if labels.dtype.kind == "f" and len(labels) and not np.isfinite(labels).all():
        raise CorruptDataError(
            f"`load_dataset`: {found[1]} must hold integer labels in [0, {len(info.classes)}), got NaN or "
            "infinite values; delete it and get it again."
        )
    if len(labels) and (labels != np.round(labels)).any():
        raise CorruptDataError(
            f"`load_dataset`: {found[1]} must hold integer labels in [0, {len(info.classes)}), got fractions."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(info.classes)):
        raise CorruptDataError(
            f"`load_dataset`: {found[1]} must hold labels in [0, {len(info.classes)}), got values from "
            f"{labels.min()} to {labels.max()}."
        )
    return ImageTensorDataset(
        torch.from_numpy(images).unsqueeze(1),  # (N, 1, H, W)
        torch.from_numpy(labels.astype(np.int64)),
        list(info.classes),
        name=f"{name}-{split}",
    )
