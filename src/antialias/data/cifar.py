"""CIFAR-10 and CIFAR-100 from the official python pickles, read with a restricted unpickler.

Accepted layouts under ``root``: the extracted folders ``cifar-10-batches-py/`` (``data_batch_1``
... ``data_batch_5``, ``test_batch``, ``batches.meta``) and ``cifar-100-python/`` (``train``,
``test``, ``meta``), or the archives ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``
(read member by member in memory, never extracted).

The files are Python 2 pickles. ``pickle.load`` on them would run whatever the file asks for, so
they are read by :class:`RestrictedUnpickler`, which admits only the globals a numpy ``uint8``
array needs (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, plus
``_codecs.encode`` for bytes written by Python 3 at protocol 2), each wrapped so it builds only
plain numeric arrays; any other global raises :class:`UnsafePickleError` before anything runs.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from antialias.data._base import ImageTensorDataset
from antialias.data._download import RemoteFile, RemoteSource, default_data_dir, fetch
from antialias.data._errors import CorruptDataError, DatasetNotFoundError, UnsafePickleError

__all__ = ["CIFAR_SETS", "RestrictedUnpickler", "load_cifar", "safe_unpickle"]


# ----------------------------------------------------------------------------- restricted unpickler


#: The most elements one array of a CIFAR pickle may declare (a batch is 10,000 x 3,072 = 30.7 M):
#: a hostile file declaring 2**44 elements is refused instead of asking for terabytes of memory.
MAX_ARRAY_ELEMENTS = 1 << 27


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(
            f"`RestrictedUnpickler`: an array's class must be numpy.ndarray, got {subtype!r}; refused."
        )
    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple) or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise ValueError(f"`RestrictedUnpickler`: an array's shape must be non-negative ints, got {shape!r}.")
    if math.prod(dims) > MAX_ARRAY_ELEMENTS:
        raise ValueError(
            f"`RestrictedUnpickler`: an array must declare no more than {MAX_ARRAY_ELEMENTS} elements, "
            f"got shape {shape!r}."
        )
    return np.ndarray.__new__(np.ndarray, dims, _dtype(dtype))


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if not isinstance(spec, (str, np.dtype)):
        raise UnsafePickleError(f"`RestrictedUnpickler`: a dtype must be a plain numeric dtype, got {spec!r}; refused.")
    dt = np.dtype(spec)
    if dt.kind not in "biuf":  # no object, void, structured or string dtypes
        raise UnsafePickleError(f"`RestrictedUnpickler`: a dtype must be a plain numeric dtype, got {dt!r}; refused.")
    return dt


def _encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes bytes at protocol 2 as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            f"`RestrictedUnpickler`: `_codecs.encode` must get a str and 'latin1', "
            f"got ({text!r}, {encoding!r}); refused."
        )
    return codecs.encode(text, "latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only the globals CIFAR files need.

    ``dtype`` objects are built through a checked factory; since ``numpy.dtype`` is then not the
    real class, array states carry a real ``np.dtype`` from that factory. Everything else
    (``os.system``, ``builtins.eval``, ``subprocess``...) raises :class:`UnsafePickleError`.

    Examples:
        >>> import io, pickle
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": [1, 2]}))).load()
        {'a': [1, 2]}
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(print))).load()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        antialias.data._errors.UnsafePickleError: `RestrictedUnpickler`: ... got global builtins.print, refused: ...
    """

    def __init__(self, file: io.BufferedIOBase, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"`RestrictedUnpickler`: a global must be one a CIFAR pickle needs, got global {module}.{name}, "
                f"refused: {self.source} is not a plain CIFAR "
                "pickle (only numpy uint8 arrays, lists, dicts, str and int are admitted); nothing "
                "was executed. Re-download the data set from its official source."
            ) from None


def safe_unpickle(data: bytes, *, source: str = "<pickle>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; ``source`` names the file in errors.

    Raises:
        UnsafePickleError: the pickle asks for a global outside the CIFAR allow-list.
        CorruptDataError: the bytes are not a valid pickle.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            MemoryError, OverflowError, RecursionError) as exc:  # MemoryError: a header declaring a huge array
        raise CorruptDataError(
            f"`load_dataset`: {source} is not a valid CIFAR pickle ({type(exc).__name__}: {exc}); "
            "re-download it."
        ) from exc


# ----------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class CifarSet:
    """The files and keys of one CIFAR variant."""

    name: str
    folder: str
    archive: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    remote: RemoteSource


_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"

#: Known CIFAR variants; archive MD5s as published on https://www.cs.toronto.edu/~kriz/cifar.html.
CIFAR_SETS: dict[str, CifarSet] = {
    "cifar10": CifarSet(
        name="cifar10",
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        meta="batches.meta",
        label_key="labels",
        names_key="label_names",
        remote=RemoteSource(
            (_CIFAR_URL,),
            (RemoteFile("cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a"),),
        ),
    ),
    "cifar100": CifarSet(
        name="cifar100",
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        train=("train",),
        test=("test",),
        meta="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        remote=RemoteSource(
            (_CIFAR_URL,),
            (RemoteFile("cifar-100-python.tar.gz", "md5:eb9058c3a382ffc7106e4002c42a8d85"),),
        ),
    ),
}


def _str_keys(obj: Any, source: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CorruptDataError(
            f"`load_dataset`: {source} must hold a dict, got {type(obj).__name__}; re-download it."
        )
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _open_members(info: CifarSet, root: Path) -> tuple[Callable[[str], bytes], str] | None:
    """A reader ``member name -> bytes`` over the folder or the archive found under ``root``."""
    for folder in (root / info.folder, root):
        if (folder / info.meta).is_file() and all(
            (folder / f).is_file() for f in info.train + info.test
        ):
            return (lambda m, _f=folder: (_f / m).read_bytes()), str(folder)
    for archive in (root / info.archive, root):
        if archive.is_file() and archive.name.endswith((".tar.gz", ".tgz", ".tar")):
            try:
                tar = tarfile.open(archive)  # noqa: SIM115 - stays open: the returned reader reads members lazily
            except (tarfile.TarError, OSError) as exc:
                raise CorruptDataError(
                    f"`load_dataset`: {archive} is not a readable tar archive ({exc}); re-download it."
                ) from exc

            def read(member: str, _tar: tarfile.TarFile = tar, _a: Path = archive) -> bytes:
                try:
                    handle = _tar.extractfile(f"{info.folder}/{member}")
                    data = handle.read() if handle is not None else None
                except KeyError:
                    data = None
                except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:  # truncated or damaged archive
                    raise CorruptDataError(
                        f"`load_dataset`: {_a} is damaged or truncated ({type(exc).__name__}: {exc}) while reading "
                        f"{info.folder}/{member}; delete it and re-download it."
                    ) from exc
                if data is None:
                    raise CorruptDataError(
                        f"`load_dataset`: {_a} must contain {info.folder}/{member}; re-download it."
                    )
                return data

            return read, str(archive)
    return None


def load_cifar(
    name: str,
    *,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageTensorDataset:
    """Load CIFAR-10 or CIFAR-100 (fine labels) as an in-memory :class:`ImageTensorDataset`.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        root: folder holding the extracted folder or the ``.tar.gz``; may also be the extracted
            folder or the archive itself. Default: :func:`default_data_dir` ``/<name>``.
        download: fetch the archive (MD5-checked) into ``root`` or the cache when nothing is found.

    Returns:
        ``images`` ``uint8`` ``(N, 3, 32, 32)``, ``targets`` ``int64`` ``(N,)``, class names from
        the ``meta`` file.

    Raises:
        DatasetNotFoundError: nothing usable under ``root``; lists the expected files.
        UnsafePickleError: a file asks the unpickler for anything but plain data.
        CorruptDataError: a file is damaged or has the wrong keys or shapes (the file is named).
    """
    if name not in CIFAR_SETS:
        raise ValueError(f"`load_cifar`: `name` must be one of {sorted(CIFAR_SETS)}, got {name!r}.")
    if split not in ("train", "test"):
        raise ValueError(f"`load_cifar`: `split` must be 'train' or 'test', got {split!r}.")
    info = CIFAR_SETS[name]
    base = Path(root).expanduser() if root is not None else default_data_dir() / name
    opened = _open_members(info, base)
    if opened is None and download:
        fetch(info.remote, base)
        opened = _open_members(info, base)
    if opened is None:
        files = ", ".join((info.meta, *info.train, *info.test))
        raise DatasetNotFoundError(
            f"`load_dataset`: {name} needs either the folder {base / info.folder} holding {files}, "
            f"or the archive {base / info.archive}; neither was found. Get "
            f"{_CIFAR_URL}{info.archive} (python version) and pass its folder as `root=` / "
            f"'{name}:PATH', or pass `download=True` (CLI: `--download`)."
        )
    read, where = opened
    meta_src = f"{where}/{info.meta}"
    meta = _str_keys(safe_unpickle(read(info.meta), source=meta_src), meta_src)
    if info.names_key not in meta:
        raise CorruptDataError(
            f"`load_dataset`: {meta_src} must have the key {info.names_key!r}, got {sorted(meta)}."
        )
    classes = [_text(c) for c in meta[info.names_key]]
    images, labels = [], []
    for member in info.train if split == "train" else info.test:
        src = f"{where}/{member}"
        batch = _str_keys(safe_unpickle(read(member), source=src), src)
        if "data" not in batch or info.label_key not in batch:
            raise CorruptDataError(
                f"`load_dataset`: {src} must have the keys 'data' and {info.label_key!r}, got "
                f"{sorted(batch)}."
            )
        data = batch["data"]
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
        ):
            raise CorruptDataError(
                f"`load_dataset`: {src} must hold 'data' as uint8 (N, 3072), got "
                f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}."
            )
        lab = np.asarray(batch[info.label_key])
        if lab.ndim != 1 or len(lab) != len(data) or lab.dtype.kind not in "iu":
            raise CorruptDataError(
                f"`load_dataset`: {src} must hold one integer label per image ({len(data)}), got "
                f"{lab.dtype} {lab.shape}."
            )
        images.append(data.reshape(-1, 3, 32, 32))  # rows are R plane, G plane, B plane
        labels.append(lab.astype(np.int64))
    try:
        return ImageTensorDataset(
            torch.from_numpy(np.concatenate(images)),
            torch.from_numpy(np.concatenate(labels)),
            classes,
            name=f"{name}-{split}",
        )
    except ValueError as exc:
        raise CorruptDataError(f"`load_dataset`: {where}: {exc}") from exc
