"""Published checkpoint files: where to fetch them (mirrors, caches) and loading them without unpickling code.

Downloading goes through the one stack of :mod:`antialias._download` (pooch; hash-checked, retried,
published atomically; cache ``<root>/weights`` with ``<root>`` = ``$ANTIALIAS_HOME``, default
``~/.cache/antialias``). A checkpoint already in torch.hub's folder (``$TORCH_HOME/hub/checkpoints``,
default ``~/.cache/torch/hub/checkpoints``) with the right name and hash is used where it is.

Mirrors: the published files have been unreachable (HTTP 403) at times, so every download first tries
the base URLs given by the ``mirrors`` argument, then those in ``$ANTIALIAS_WEIGHTS_MIRROR``
(separated by whitespace or commas), then the original URL. A mirror is a base URL (``https://``,
``http://``, ``file://``) or a local directory holding files under their original names.
"""

from __future__ import annotations

import os
import pickle
import re
import urllib.parse
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from antialias._download import RETRIES, ChecksumError, DownloadError, fetch, file_matches, torch_hub_dir, weights_dir
from antialias.checkpoint import CheckpointError

__all__ = [
    "MIRROR_ENV",
    "CheckpointError",
    "ChecksumError",
    "DownloadError",
    "UnsafeCheckpointError",
    "candidate_urls",
    "download_file",
    "load_state_dict_file",
]

#: Environment variable listing mirror base URLs (whitespace or comma separated), tried in order.
MIRROR_ENV = "ANTIALIAS_WEIGHTS_MIRROR"


class UnsafeCheckpointError(CheckpointError):
    """A pickle that ``torch.load(weights_only=True)`` refuses: it would import or call code."""


def _mirror_url(base: str, file_name: str) -> str:
    if "://" not in base:  # a local directory
        return Path(base).expanduser().resolve().joinpath(file_name).as_uri()
    return base.rstrip("/") + "/" + urllib.parse.quote(file_name)


def candidate_urls(url: str, mirrors: str | Iterable[str] | None = None) -> list[str]:
    """The URLs tried, in order, to fetch the file at ``url``.

    Args:
        url: The original URL; its last path component is the file name.
        mirrors: Base URLs or directories (a string may hold several, separated by whitespace or
            commas). They come first, then those in ``$ANTIALIAS_WEIGHTS_MIRROR``, then ``url``.

    Returns:
        The list of URLs, without duplicates.

    Examples:
        >>> candidate_urls("https://a.example/w/net-0123abcd.pth", "https://b.example/m/")
        ['https://b.example/m/net-0123abcd.pth', 'https://a.example/w/net-0123abcd.pth']
    """
    file_name = _file_name(url)
    bases: list[str] = []
    for source in (mirrors, os.environ.get(MIRROR_ENV)):
        if source is None:
            continue
        if isinstance(source, str):
            bases.extend(s for s in re.split(r"[\s,]+", source) if s)
        else:
            for item in source:
                if not isinstance(item, (str, os.PathLike)):
                    raise TypeError(f"`candidate_urls`: `mirrors` must be strings or paths, got {item!r}.")
                bases.append(os.fspath(item))
    urls = [_mirror_url(b, file_name) for b in bases] + [url]
    return list(dict.fromkeys(urls))


def _file_name(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ValueError(f"`download_file`: `url` must end with a file name, got {url!r}.")
    return name


def _check_prefix(sha256_prefix: str) -> str:
    if not isinstance(sha256_prefix, str) or not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256_prefix):
        raise ValueError(
            f"`download_file`: `sha256_prefix` must be 8 to 64 hex digits, got {sha256_prefix!r}."
        )
    return sha256_prefix.lower()


def download_file(
    url: str,
    sha256_prefix: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    mirrors: str | Iterable[str] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = RETRIES,
) -> Path:
    """Return the path of a verified local copy of ``url``, downloading it if needed.

    A cached file is re-hashed on every call (a few hundred ms for the largest checkpoints), so a
    file damaged on disk is caught instead of being loaded.

    Args:
        url: Original URL; its last path component is the file name in the cache.
        sha256_prefix: Leading hex digits of the file's SHA-256 (torch.hub's convention: the hex
            suffix of the published file names).
        cache_dir: Folder for the file. Default: a matching file in torch.hub's folder if there is
            one, else :func:`antialias._download.weights_dir` (``<root>/weights``).
        mirrors: Base URLs or directories tried before ``$ANTIALIAS_WEIGHTS_MIRROR`` and ``url``
            (see :func:`candidate_urls`).
        progress: Show a progress bar on stderr.
        timeout: Seconds to wait for each connection or read.
        retries: Extra attempts per source after a transient failure (a cut connection, a timeout).

    Returns:
        The path of the verified file.

    Raises:
        ChecksumError: The cached file does not match the hash (it is left for you to inspect), or
            every source served another file.
        DownloadError: No source delivered a file with the right hash; the message lists each
            attempt and says which file to fetch by hand and where to put it. No file is left behind.
        ValueError: ``url`` or ``sha256_prefix`` is malformed.
    """
    prefix = _check_prefix(sha256_prefix)
    file_name = _file_name(url)
    if cache_dir is None:
        hub = torch_hub_dir() / file_name
        if hub.is_file() and file_matches(hub, prefix):
            return hub
    hint = (
        f"(or set ${MIRROR_ENV} to a base URL or folder that serves {file_name!r}, or pass `cache_dir=` "
        "naming the folder that holds it)."
    )
    return fetch(
        candidate_urls(url, mirrors),
        weights_dir(cache_dir) / file_name,
        prefix,
        progress=progress,
        timeout=timeout,
        retries=retries,
        where="download_file",
        hint=hint,
    )


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Load a ``.pth`` state_dict without running code from the file.

    Uses ``torch.load(weights_only=True)`` on the CPU. Accepts a bare state_dict and the
    ``{"state_dict": ...}`` wrapper (the published non-fine-tuned files use it); a uniform
    ``module.`` prefix left by ``nn.DataParallel`` is removed.

    Args:
        path: The file.

    Returns:
        An ordered ``dict`` from parameter and buffer names to tensors.

    Raises:
        UnsafeCheckpointError: The pickle would import or call code (never retry with
            ``weights_only=False`` unless you trust where the file came from).
        CheckpointError: The file is truncated, corrupt, or holds something other than a
            mapping of names to tensors.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`load_state_dict_file`: no checkpoint file at {str(path)!r}.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            raise UnsafeCheckpointError(
                f"`load_state_dict_file`: refused to load {str(path)!r}: torch.load(weights_only=True) "
                f"found code in the pickle ({found.group(1)}). A checkpoint must hold only tensors; do "
                "not load it with weights_only=False unless you trust its source."
            ) from exc
        raise CheckpointError(
            f"`load_state_dict_file`: {str(path)!r} is corrupt or not a weights-only PyTorch checkpoint "
            f"(torch.load(weights_only=True) failed: {_first_line(text, 'Unsupported')}). Delete it and "
            "download it again."
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"`load_state_dict_file`: {str(path)!r} is truncated or corrupt ({type(exc).__name__}: "
            f"{_first_line(str(exc))}). Delete it and download it again."
        ) from exc
    return _as_state_dict(obj, str(path))


def _first_line(text: str, keyword: str | None = None) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if keyword:
        for line in lines:
            if keyword in line:
                return line
    return lines[0] if lines else text


def _as_state_dict(obj: object, where: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"`load_state_dict_file`: {where!r} must hold a state_dict (a mapping of names to tensors, "
            f"optionally under 'state_dict'), got {type(obj).__name__}."
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"`load_state_dict_file`: {where!r} must map names to tensors, got non-tensor entries "
            f"{bad[:5]!r}."
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state
