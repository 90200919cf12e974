"""Results files of the evaluation protocols: one JSON record per run, plus its arrays and figure.

A record holds everything needed to tell what was measured and to reproduce it: the metric, the
results (every proportion as ``{"value", "low", "high", "successes", "total", "confidence"}``, the
Wilson 95% interval), the full configuration and seed, the model's identity (spec, filter size,
weights name or checkpoint path with its SHA-256), the data (spec, split, size, normalisation),
the library, torch and Python versions, the device, the number of processes and a UTC timestamp.

Files are written atomically (a temporary file in the same folder, fsynced, then renamed), and an
existing file is never replaced unless the caller says so (``overwrite=True``, ``--force``).

Examples:
    >>> import tempfile, pathlib, json
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.json"
    >>> _ = write_json(path, {"metric": "consistency", "results": {"consistency": Proportion.from_counts(9, 10)}})
    >>> json.loads(path.read_text())["results"]["consistency"]["value"]
    0.9
    >>> write_json(path, {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: `write_json`: `path` must not exist already, got '...r.json'. ...
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from antialias._io import atomic_open
from antialias._version import __version__
from antialias.eval._stats import Proportion

__all__ = ["FORMAT", "FORMAT_VERSION", "check_outputs", "environment", "jsonable", "utc_now", "write_json", "write_npz"]

#: The ``format`` field of every results file.
FORMAT = "antialias-eval-results"
#: Version of the results layout.
FORMAT_VERSION = 1


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def environment(device: torch.device | str, world_size: int = 1) -> dict[str, Any]:
    """Versions and machine facts that a result depends on."""
    device = torch.device(device)
    record: dict[str, Any] = {
        "antialias_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "world_size": world_size,
        "num_threads": torch.get_num_threads(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        record["device_name"] = torch.cuda.get_device_name(device)
    return record


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: proportions and dataclasses as dicts, tensors and arrays as lists.

    Non-finite floats become ``None`` (JSON has no NaN).

    Examples:
        >>> jsonable({"p": Proportion.from_counts(1, 2), "t": torch.tensor([1, 2]), "x": float("nan")})["t"]
        [1, 2]
    """
    if isinstance(obj, Proportion):
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, torch.dtype | torch.device):
        return str(obj)
    raise TypeError(f"`jsonable`: cannot store a {type(obj).__name__} in a results file: {obj!r:.80}")


def check_outputs(paths: Iterable[str | os.PathLike], *, overwrite: bool) -> None:
    """Fail before any work if an output exists (and not ``overwrite``) or its folder is missing.

    Raises:
        FileExistsError: a path exists and ``overwrite`` is False.
        FileNotFoundError: a path's folder does not exist.
        IsADirectoryError: a path is a folder.
    """
    for p in map(Path, paths):
        if p.is_dir():
            raise IsADirectoryError(f"`results`: `out` must be a file path, got the folder {str(p)!r}.")
        if os.path.lexists(p) and not overwrite:
            raise FileExistsError(
                f"`results`: `out` must not exist already, got {str(p)!r}. Choose another name, or pass "
                "--force (overwrite=True) to replace it."
            )
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(
                f"`results`: the folder of {str(p)!r} does not exist; create {str(parent)!r} first."
            )


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool, where: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"`{where}`: `path` must be a file path, got the folder {str(path)!r}.")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"`{where}`: `path` must not exist already, got {str(path)!r}. Choose another name, or pass "
            "overwrite=True (--force) to replace it."
        )
    try:
        # exclusive: fails if another process created `path` meanwhile (no silent replace).
        with atomic_open(path, "wb", exclusive=not overwrite) as fh:
            write(fh)
    except FileExistsError:
        raise FileExistsError(f"`{where}`: `path` appeared while writing, got {str(path)!r}; not replaced.") from None
    return path


def write_json(path: str | os.PathLike, record: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``record`` (made :func:`jsonable`) to ``path`` atomically.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    text = json.dumps(jsonable(record), indent=2, allow_nan=False) + "\n"
    return _atomic_write(Path(path), lambda fh: fh.write(text.encode("utf-8")), overwrite=overwrite, where="write_json")


def write_npz(path: str | os.PathLike, arrays: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``arrays`` (tensors, arrays or lists) to a compressed ``.npz`` at ``path`` atomically."""
    data = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}
    return _atomic_write(Path(path), lambda fh: np.savez_compressed(fh, **data),  # type: ignore[arg-type]
                         overwrite=overwrite, where="write_npz")
