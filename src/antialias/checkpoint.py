"""Our own checkpoints: tensors in a safetensors file, metadata in a JSON sidecar next to it.

``model.safetensors`` holds the tensors (no pickle, so loading never runs code); ``model.json``
holds everything else: the resolved config, the filter, metrics, any extra user data, plus what
:func:`save_checkpoint` adds itself (library and torch versions, UTC time, and the SHA-256 of the
tensors file, which ties the pair together). Both files are written to temporary files in the same
directory, ``fsync``-ed, and renamed into place by :mod:`antialias._io` (tensors first, then the
sidecar), so an interrupted save never leaves a pair that loads: the sidecar's hash would not match.

Examples:
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.safetensors"
    >>> _ = save_checkpoint(path, {"w": torch.ones(2)}, {"config": {"arch": "resnet18"}, "filter": "tri4"})
    >>> state, meta = load_checkpoint(path)
    >>> state["w"], meta["config"], meta["filter"]
    (tensor([1., 1.]), {'arch': 'resnet18'}, 'tri4')
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from antialias._download import sha256_file
from antialias._io import atomic_path
from antialias._version import __version__

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckpointError", "load_checkpoint", "save_checkpoint", "sidecar_path"]

#: Value of the sidecar's ``format`` field.
FORMAT = "antialias-checkpoint"
#: Version of the sidecar layout; a newer one is refused with a clear message.
FORMAT_VERSION = 1
# Fields save_checkpoint writes itself; user metadata may not set them.
_RESERVED = (
    "format", "format_version", "antialias_version", "torch_version", "created_utc", "tensors_file", "tensors_sha256",
    "tensor_names",
)  # fmt: skip
_SUFFIX = ".safetensors"


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or not what it claims to be.

    Raised for files already on disk (ours, and the published ``.pth`` files, see
    :func:`antialias.models.load_state_dict_file`); a failure to *obtain* a file is an
    :class:`antialias.DownloadError` (an :class:`OSError`) instead.
    """


def _check_path(path: str | os.PathLike, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{where}`: `path` must be a str or path, got {path!r}.")
    path = Path(path)
    if path.suffix != _SUFFIX:
        raise ValueError(
            f"`{where}`: `path` must end with {_SUFFIX!r}, got {str(path)!r}. "
            f"Use e.g. {str(path.with_suffix(_SUFFIX))!r}; the metadata goes to the same name with '.json'."
        )
    return path


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a ``.safetensors`` checkpoint: the same name with ``.json``.

    Examples:
        >>> sidecar_path("runs/a/best.safetensors")
        PosixPath('runs/a/best.json')
    """
    return _check_path(path, "sidecar_path").with_suffix(".json")


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Tensor) and obj.numel() == 1:
        return obj.item()
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():  # NumPy scalars
        return obj.item()
    raise TypeError(f"{type(obj).__name__} {obj!r:.60}")


def _tensors_for_saving(state_dict: Mapping[str, Tensor], where: str) -> dict[str, Tensor]:
    if isinstance(state_dict, torch.nn.Module):
        raise TypeError(
            f"`{where}`: `state_dict` must be a mapping of names to tensors, got a module. Pass `model.state_dict()`."
        )
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"`{where}`: `state_dict` must be a mapping of names to tensors, got {type(state_dict).__name__}."
        )
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise TypeError(f"`{where}`: `state_dict` must map names to tensors, got non-tensor entries {bad[:5]!r}.")
    tensors: dict[str, Tensor] = {}
    seen: set[tuple[int, str]] = set()
    for key, value in state_dict.items():
        t = value.detach().to("cpu").contiguous()
        storage = (t.untyped_storage().data_ptr(), str(t.device))
        if storage in seen and t.numel():  # safetensors refuses shared storage (tied weights): copy
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), str(t.device)))
        tensors[key] = t
    return tensors


def save_checkpoint(
    path: str | os.PathLike,
    state_dict: Mapping[str, Tensor],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state_dict`` to ``path`` (safetensors) and ``metadata`` to its JSON sidecar, atomically.

    Args:
        path: Destination ending in ``.safetensors``; the sidecar is the same name with ``.json``.
            Existing files are replaced.
        state_dict: Names to tensors (``model.state_dict()``); saved contiguous, on the CPU, with
            tensors that share memory (tied weights) stored as copies.
        metadata: JSON-serialisable mapping. Suggested keys: ``config`` (a dataclass is converted),
            ``filter``, ``weights`` (the weights name), ``seed``, ``metrics``, ``extra``. The keys
            ``format``, ``format_version``, ``antialias_version``, ``torch_version``, ``created_utc``,
            ``tensors_file``, ``tensors_sha256`` and ``tensor_names`` are written by this function.

    Returns:
        The path of the tensors file.

    Raises:
        TypeError: ``state_dict`` holds something other than tensors, or ``metadata`` is not
            JSON-serialisable (the message names the value).
        ValueError: ``path`` does not end in ``.safetensors``, or ``metadata`` sets a reserved key.
    """
    where = "save_checkpoint"
    path = _check_path(path, where)
    tensors = _tensors_for_saving(state_dict, where)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"`{where}`: `metadata` must be a mapping with str keys, got {metadata!r:.80}.")
    reserved = [k for k in metadata if k in _RESERVED]
    if reserved:
        raise ValueError(
            f"`{where}`: `metadata` must not set the reserved keys {reserved!r}; they are written by save_checkpoint."
        )

    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "antialias_version": __version__,
        "torch_version": torch.__version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensors_file": path.name,
        "tensor_names": list(tensors),  # safetensors sorts names; this keeps state_dict order
        **dict(metadata),
    }
    try:
        json.dumps(record, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{where}`: `metadata` must be JSON-serialisable, got {exc}.") from exc

    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = path.with_suffix(".json")
    # Both files are complete before either is published; the inner block publishes the tensors
    # first: a crash between the two renames leaves a new tensors file with an old sidecar, whose
    # hash no longer matches, so load_checkpoint refuses the pair. Any error removes both temps.
    with atomic_path(sidecar) as tmp_json, atomic_path(path) as tmp_tensors:
        safetensors.torch.save_file(tensors, str(tmp_tensors), metadata={"format": FORMAT, "sidecar": sidecar.name})
        record["tensors_sha256"] = sha256_file(tmp_tensors)
        tmp_json.write_text(json.dumps(record, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def load_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The ``.safetensors`` file; its ``.json`` sidecar must be next to it.
        device: Where to put the tensors.

    Returns:
        ``(state_dict, metadata)``: the tensors in the order they were saved, and the sidecar's content
        (user metadata plus the fields written by :func:`save_checkpoint`).

    Raises:
        FileNotFoundError: The tensors file or the sidecar is missing.
        CheckpointError: The sidecar is not valid JSON or not ours, was written by a newer format
            version, or does not match the tensors file (corrupt, truncated or replaced); or the
            tensors file cannot be read.
    """
    where = "load_checkpoint"
    path = _check_path(path, where)
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"`{where}`: no checkpoint at {str(path)!r}.")
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"`{where}`: the metadata sidecar {str(sidecar)!r} of {str(path)!r} is missing; save_checkpoint "
            "writes both files, copy them together."
        )
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"`{where}`: the sidecar {str(sidecar)!r} is not valid JSON ({exc}); it is corrupt."
        ) from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"`{where}`: {str(sidecar)!r} must be an antialias checkpoint sidecar (format {FORMAT!r}), "
            "got another JSON file."
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"`{where}`: {str(sidecar)!r} has format_version {version!r}; this antialias reads up to "
            f"{FORMAT_VERSION}. Upgrade antialias."
        )
    actual = sha256_file(path)
    if actual != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"`{where}`: {str(path)!r} does not match its sidecar (SHA-256 {actual}, sidecar says "
            f"{metadata.get('tensors_sha256')!r}): the file is corrupt, truncated, or from another save."
        )
    try:
        state_dict = safetensors.torch.load_file(path, device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"`{where}`: cannot read {str(path)!r} ({type(exc).__name__}: {exc}).") from exc
    names = metadata.get("tensor_names")
    if not isinstance(names, list) or sorted(names) != sorted(state_dict):
        raise CheckpointError(f"`{where}`: the tensor names in {str(sidecar)!r} do not match {str(path)!r}.")
    return {name: state_dict[name] for name in names}, metadata
