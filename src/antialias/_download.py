"""The one download stack: hash-checked files from a list of sources into one cache, through pooch.

Published weights (:mod:`antialias.models`) and data sets (:mod:`antialias.data`) both come
through :func:`fetch`, so they share one cache root, one retry policy, one progress bar and one
error type.

Cache (nothing is created until something is downloaded):

- root: ``$ANTIALIAS_HOME``, else ``$XDG_CACHE_HOME/antialias``, else ``~/.cache/antialias``;
- ``<root>/weights``: published checkpoints. Before downloading one, torch.hub's folder
  (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) is searched for a
  file of the same name and hash, so checkpoints other PyTorch code already fetched are used where
  they are;
- ``<root>/data``: data sets, one folder each.

Deprecated aliases, still honoured (a :class:`DeprecationWarning` says so):
``$ANTIALIAS_CACHE`` names the weights folder itself and ``$ANTIALIAS_DATA_DIR`` the data folder.

A download is streamed by pooch's downloaders (``requests``; ``file://`` sources are copied) into a
dot-prefixed ``.part`` file next to its destination, its hash is checked, and only then is it
published under its final name by :mod:`antialias._io` (fsync-ed, atomic rename). A cut or
failed transfer is retried like pooch retries (after 1 s, then 2 s, ... up to 10 s), except for
HTTP 4xx answers, which a retry cannot fix; then the next source is tried.

Errors: every failure to obtain a verified file raises :class:`DownloadError` (an
:class:`OSError`); :class:`ChecksumError` is the subclass for files whose only fault is their hash
(every source served a different file, or the cached copy is damaged). Content errors of files
already on disk are :class:`ValueError`\\ s of their own modules
(:class:`antialias.checkpoint.CheckpointError`, :class:`antialias.data.CorruptDataError`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pooch
import requests
import torch.hub
from tqdm import tqdm

from antialias._io import atomic_path
from antialias._version import __version__

__all__ = [
    "DATA_ENV",
    "HOME_ENV",
    "RETRIES",
    "WEIGHTS_ENV",
    "ChecksumError",
    "DownloadError",
    "cache_root",
    "data_dir",
    "fetch",
    "file_matches",
    "parse_hash",
    "sha256_file",
    "torch_hub_dir",
    "weights_dir",
]

#: Environment variable naming the cache root.
HOME_ENV = "ANTIALIAS_HOME"
#: Deprecated: names the weights folder itself (use ``$ANTIALIAS_HOME``).
WEIGHTS_ENV = "ANTIALIAS_CACHE"
#: Deprecated: names the data folder itself (use ``$ANTIALIAS_HOME``).
DATA_ENV = "ANTIALIAS_DATA_DIR"
#: Extra attempts per source after a transient failure (pooch's ``retry_if_failed``).
RETRIES = 2

_CHUNK = 1 << 20  # bytes per read: bounded memory, and a progress update per MiB
_MAX_WAIT = 10  # seconds, pooch's cap between retries
_wait = time.sleep  # tests replace it


class DownloadError(OSError):
    """No source could deliver a verified file (offline, HTTP errors, bad hashes, unwritable cache).

    The message lists each attempt and says which file to fetch by hand and where to put it.
    """


class ChecksumError(DownloadError):
    """A file's hash is not the expected one: every source served another file, or the cached copy is damaged."""


# --------------------------------------------------------------------------------------- folders


def _env_path(name: str, replacement: str) -> Path | None:
    value = os.environ.get(name)
    if not value:
        return None
    warnings.warn(
        f"${name} is deprecated; set ${HOME_ENV} instead (the cache root; {replacement}).",
        DeprecationWarning,
        stacklevel=3,
    )
    return Path(value).expanduser()


def cache_root() -> Path:
    """The cache root: ``$ANTIALIAS_HOME``, else ``$XDG_CACHE_HOME/antialias``, else ``~/.cache/antialias``.

    Examples:
        >>> import os
        >>> cache_root().name == "antialias" or bool(os.environ.get("ANTIALIAS_HOME"))
        True
    """
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "antialias"


def weights_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where published checkpoints are downloaded: ``cache_dir``, else ``$ANTIALIAS_CACHE``
    (deprecated), else ``<root>/weights``.

    Examples:
        >>> weights_dir("/data/weights")
        PosixPath('/data/weights')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return _env_path(WEIGHTS_ENV, "weights go to <root>/weights") or cache_root() / "weights"


def data_dir() -> Path:
    """Where data sets are downloaded and looked for: ``$ANTIALIAS_DATA_DIR`` (deprecated), else ``<root>/data``."""
    return _env_path(DATA_ENV, "data goes to <root>/data") or cache_root() / "data"


def torch_hub_dir() -> Path:
    """torch.hub's checkpoint folder (``torch.hub.get_dir()/checkpoints``), searched before downloading weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


# ---------------------------------------------------------------------------------------- hashes


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 digest of a file, read in chunks.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:8]
        'ba7816bf'
    """
    return str(pooch.file_hash(str(path), alg="sha256"))


def parse_hash(known_hash: str, where: str = "fetch") -> tuple[str, str]:
    """Split ``"alg:hex"`` (bare hex means SHA-256) into a hashlib name and lower-case hex digits.

    The hex may be a leading part of the digest (at least 8 digits), as in torch.hub's file names.

    Examples:
        >>> parse_hash("MD5:C58F30108F718F92721AF3B95E74349A")
        ('md5', 'c58f30108f718f92721af3b95e74349a')
        >>> parse_hash("8c77af40")
        ('sha256', '8c77af40')
    """
    alg, _, digits = known_hash.rpartition(":") if isinstance(known_hash, str) else ("", "", "")
    alg = alg.lower() or "sha256"
    size = hashlib.new(alg).digest_size * 2 if alg in hashlib.algorithms_guaranteed else 0
    if not size or not re.fullmatch(r"[0-9a-fA-F]{8,}", digits) or len(digits) > size:
        raise ValueError(
            f"`{where}`: `known_hash` must be 'sha256:<hex>', 'md5:<hex>' or bare SHA-256 hex (at least 8 "
            f"digits, at most the digest's length), got {known_hash!r}."
        )
    return alg, digits.lower()


def _describe(alg: str, digits: str) -> tuple[str, str]:
    """(the hash's name, the expectation): ("SHA-256", "a digest starting with 8c77af40")."""
    name = {"sha256": "SHA-256", "md5": "MD5", "sha1": "SHA-1"}.get(alg, alg.upper())
    full = len(digits) == hashlib.new(alg).digest_size * 2
    return name, digits if full else f"a digest starting with {digits}"


def file_matches(path: str | os.PathLike[str], known_hash: str) -> bool:
    """Whether the file's digest starts with ``known_hash``'s digits (see :func:`parse_hash`)."""
    alg, digits = parse_hash(known_hash, "file_matches")
    return str(pooch.file_hash(str(path), alg=alg)).startswith(digits)


# ------------------------------------------------------------------------------------- transfers


class _Bar(tqdm):
    """tqdm, always true: pooch tests ``if progressbar:`` before it sets ``total`` (tqdm's bool raises then)."""

    def __bool__(self) -> bool:
        return True


def _progress_bar(name: str) -> Any:
    """The progress bar handed to pooch's downloader (total, update, reset, close)."""
    return _Bar(desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=True, ncols=79)


def _transfer(url: str, tmp: Path, name: str, progress: bool, timeout: float) -> None:
    """Write the bytes at ``url`` into ``tmp`` (raises on any failure)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlparse(url).path), tmp)
        return
    bar = _progress_bar(name) if progress else None
    try:
        if scheme in ("http", "https"):
            downloader: Any = pooch.HTTPDownloader(
                progressbar=bar or False,
                chunk_size=_CHUNK,
                timeout=timeout,
                headers={"User-Agent": f"antialias/{__version__}"},
            )
        else:  # ftp, sftp, doi: pooch's choice
            downloader = pooch.downloaders.choose_downloader(url, progressbar=bar or False)
        downloader(url, str(tmp), None)
    finally:
        if bar is not None:
            bar.close()


def _is_final(exc: BaseException) -> bool:
    """A failure a retry cannot fix: an HTTP 4xx answer, or anything that is not a transfer error."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status is not None and 400 <= status < 500
    return not isinstance(exc, (requests.RequestException, ChecksumError))


def _attempt(url: str, dest: Path, alg: str, digits: str, progress: bool, timeout: float) -> None:
    with atomic_path(dest, suffix=".part") as tmp:
        _transfer(url, tmp, dest.name, progress, timeout)
        actual = str(pooch.file_hash(str(tmp), alg=alg))
        if not actual.startswith(digits):
            name, expected = _describe(alg, digits)
            raise ChecksumError(f"{name} mismatch: expected {expected}, got {actual}")


def fetch(
    urls: Sequence[str],
    dest: str | os.PathLike[str],
    known_hash: str,
    *,
    progress: bool = False,
    timeout: float = 30.0,
    retries: int = RETRIES,
    where: str = "fetch",
    hint: str = "",
) -> Path:
    """Return ``dest``, a verified copy of the file served at ``urls``, downloading it if needed.

    An existing ``dest`` is hashed (a damaged file is reported, never used or replaced). Otherwise
    each URL is tried in order, each up to ``1 + retries`` times after transient failures.

    Args:
        urls: Sources of the same file, tried in order (``http(s)://``, ``ftp://``, ``file://``).
        dest: The final path; its folder is created if needed.
        known_hash: ``"sha256:<hex>"``, ``"md5:<hex>"`` or bare SHA-256 hex; a leading part of the
            digest (at least 8 digits) is enough.
        progress: Show a progress bar (tqdm) on stderr.
        timeout: Seconds to wait for a connection or for each read.
        retries: Extra attempts per source after a transient failure.
        where: Name of the public function, for messages.
        hint: Appended to the error message (what else the user can do).

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ChecksumError: ``dest`` exists with another hash (left for you to inspect), or every source
            served a file with another hash (nothing is kept).
        DownloadError: No source delivered the file; the message lists each attempt and says what
            to download and where to put it. Nothing is left under ``dest``'s name.
        ValueError: ``known_hash`` or ``urls`` is malformed.
    """
    alg, digits = parse_hash(known_hash, where)
    if isinstance(urls, str) or not urls or not all(isinstance(u, str) for u in urls):
        raise ValueError(f"`{where}`: `urls` must be a non-empty sequence of URL strings, got {urls!r}.")
    dest = Path(dest).expanduser()
    hash_name, expected = _describe(alg, digits)
    if dest.exists():
        actual = str(pooch.file_hash(str(dest), alg=alg))
        if not actual.startswith(digits):
            raise ChecksumError(
                f"`{where}`: the cached file {str(dest)!r} has {hash_name} {actual}, expected {expected}. "
                "It is corrupt or a different file: delete it and retry."
            )
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"`{where}`: cannot create the folder {str(dest.parent)!r} ({exc}). Set ${HOME_ENV} to a writable folder."
        ) from exc
    failures: list[str] = []
    checksum_only = True
    for url in urls:
        for attempt in range(1 + max(0, retries)):
            if attempt:
                _wait(min(attempt, _MAX_WAIT))
            try:
                _attempt(url, dest, alg, digits, progress, timeout)
                return dest
            except ChecksumError as exc:
                failures.append(f"  {url}: {exc}")
            except (OSError, requests.RequestException, ValueError) as exc:
                # HTTP errors (403, 404), DNS failures, refused or blocked connections, timeouts,
                # cut connections, a missing local mirror file, a malformed URL: this source failed.
                checksum_only = False
                failures.append(f"  {url}: {type(exc).__name__}: {exc}")
                if _is_final(exc):
                    break
    sources = "\n  ".join(urls)
    message = (
        f"`{where}`: could not download {dest.name!r} ({hash_name}: {expected}).\n"
        "Attempts:\n" + "\n".join(failures) + "\n"
        f"To install it by hand, download it from\n  {sources}\nand put it at\n  {dest}\n" + hint
    )
    raise (ChecksumError if checksum_only else DownloadError)(message.rstrip("\n"))
