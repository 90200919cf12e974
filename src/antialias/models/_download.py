"""Verified, atomic downloads of checkpoint files, and loading them without unpickling code.

The cache follows torch.hub's conventions, so checkpoints already fetched by other PyTorch code are
found: ``$TORCH_HOME/hub/checkpoints``, else ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else
``~/.cache/torch/hub/checkpoints``. ``$ANTIALIAS_CACHE`` or the ``cache_dir`` argument override it.

A download goes to a temporary file in the cache directory, is hashed while it streams, is
``fsync``-ed and only then renamed to its final name with :func:`os.replace` (atomic on POSIX and
Windows). A killed process or a cut connection can therefore leave only a ``.part`` file, never a file
under the final name; a failed hash check or any error removes the temporary file.

Mirrors: the published files have been unreachable (HTTP 403) at times, so every download first tries
the base URLs given by the ``mirrors`` argument, then those in ``$ANTIALIAS_WEIGHTS_MIRROR``
(separated by whitespace or commas), then the original URL. A mirror is a base URL (``https://``,
``http://``, ``file://``) or a local directory holding files under their original names.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import re
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch  # here, so that downloading needs no torch import (a fresh process starts fast)
from torch import Tensor

from antialias._io import fsync_dir

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "CACHE_ENV",
    "MIRROR_ENV",
    "CheckpointError",
    "ChecksumError",
    "DownloadError",
    "UnsafeCheckpointError",
    "candidate_urls",
    "default_cache_dir",
    "download_file",
    "load_state_dict_file",
    "sha256_file",
]

#: Environment variable naming the directory that holds downloaded checkpoints.
CACHE_ENV = "ANTIALIAS_CACHE"
#: Environment variable listing mirror base URLs (whitespace or comma separated), tried in order.
MIRROR_ENV = "ANTIALIAS_WEIGHTS_MIRROR"

_CHUNK = 1 << 20  # 1 MiB per read: bounded memory whatever the file size


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or not a plain state_dict."""


class ChecksumError(CheckpointError):
    """A file's SHA-256 does not start with the expected prefix."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that ``torch.load(weights_only=True)`` refuses: it would import or call code."""


class DownloadError(OSError):
    """No source could deliver a verified file (offline, HTTP errors, bad hashes from every source)."""


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The directory where checkpoints are downloaded and looked up.

    Args:
        cache_dir: Explicit directory; wins over everything else.

    Returns:
        ``cache_dir``, else ``$ANTIALIAS_CACHE``, else ``$TORCH_HOME/hub/checkpoints``, else
        ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``
        (torch.hub's layout). The directory is not created here.

    Examples:
        >>> default_cache_dir("/data/weights")
        PosixPath('/data/weights')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("TORCH_HOME"):
        torch_home = Path(os.environ["TORCH_HOME"]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        torch_home = Path(xdg).expanduser() / "torch"
    return torch_home / "hub" / "checkpoints"


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


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB chunks.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:8]
        'ba7816bf'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_prefix(sha256_prefix: str) -> str:
    if not isinstance(sha256_prefix, str) or not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256_prefix):
        raise ValueError(
            f"`download_file`: `sha256_prefix` must be 8 to 64 hex digits, got {sha256_prefix!r}."
        )
    return sha256_prefix.lower()


def _fetch(url: str, dest: Path, prefix: str, progress: bool, timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``dest``, verify, then rename. Raises on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "antialias"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            digest = hashlib.sha256()
            received = 0
            read = getattr(response, "read1", response.read)  # read1: return what has arrived
            while chunk := read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    _report_progress(dest.name, received, total)
            if progress:
                sys.stderr.write("\n")
            if total is not None and received != total:
                raise DownloadError(f"connection cut: received {received} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if not actual.startswith(prefix):
            raise ChecksumError(f"SHA-256 mismatch: expected a digest starting with {prefix}, got {actual}")
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _report_progress(name: str, received: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\r{name}: {received / 2**20:.1f} / {total / 2**20:.1f} MiB ({100 * received / total:.0f}%)")
    else:
        sys.stderr.write(f"\r{name}: {received / 2**20:.1f} MiB")
    sys.stderr.flush()


def download_file(
    url: str,
    sha256_prefix: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirrors: str | Iterable[str] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Return the path of a verified local copy of ``url``, downloading it if needed.

    A cached file is re-hashed on every call (a few hundred ms for the largest checkpoints), so a
    file damaged on disk is caught instead of being loaded.

    Args:
        url: Original URL; its last path component is the file name in the cache.
        sha256_prefix: Leading hex digits of the file's SHA-256 (torch.hub's convention: the hex
            suffix of the published file names).
        cache_dir: Directory for the file (see :func:`default_cache_dir`).
        mirrors: Base URLs or directories tried before ``$ANTIALIAS_WEIGHTS_MIRROR`` and ``url``
            (see :func:`candidate_urls`).
        progress: Print download progress to stderr.
        timeout: Seconds to wait for each connection or read.

    Returns:
        The path of the verified file in the cache.

    Raises:
        ChecksumError: The cached file does not match the hash (it is left for you to inspect).
        DownloadError: No source delivered a file with the right hash; the message lists each
            attempt and says which file to fetch by hand and where to put it. No file is left behind.
        ValueError: ``url`` or ``sha256_prefix`` is malformed.
    """
    prefix = _check_prefix(sha256_prefix)
    file_name = _file_name(url)
    directory = default_cache_dir(cache_dir)
    dest = directory / file_name
    if dest.exists():
        actual = sha256_file(dest)
        if not actual.startswith(prefix):
            raise ChecksumError(
                f"`download_file`: the cached file {str(dest)!r} has SHA-256 {actual}, expected a digest "
                f"starting with {prefix}. It is corrupt or a different file: delete it and retry."
            )
        return dest
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"`download_file`: cannot create the cache directory {str(directory)!r} ({exc}). "
            f"Pass `cache_dir=` or set ${CACHE_ENV} to a writable directory."
        ) from exc
    failures: list[str] = []
    checksum_only = True
    for candidate in candidate_urls(url, mirrors):
        try:
            _fetch(candidate, dest, prefix, progress, timeout)
            return dest
        except ChecksumError as exc:
            failures.append(f"  {candidate}: {exc}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError/HTTPError (403, 404, DNS, refused, blocked network), timeouts, disk errors,
            # IncompleteRead from a cut connection, a malformed mirror URL: this source failed,
            # try the next one.
            checksum_only = False
            failures.append(f"  {candidate}: {type(exc).__name__}: {exc}")
    message = (
        f"`download_file`: could not download {file_name!r} (SHA-256 starting with {prefix}).\n"
        "Attempts:\n" + "\n".join(failures) + "\n"
        f"To install it by hand, download\n  {url}\nand put it at\n  {dest}\n"
        f"(or set ${MIRROR_ENV} to a base URL or directory that serves {file_name!r}, "
        f"or ${CACHE_ENV} to the directory that holds it)."
    )
    raise (ChecksumError if checksum_only else DownloadError)(message)


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
