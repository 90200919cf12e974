"""Verified downloads into a local cache, through pooch (only when a caller passes ``download=True``).

Nothing here runs at import time and nothing touches the network unless :func:`fetch` is called.
Every file carries a known hash, checked by pooch before the file is moved into place: SHA-256
where the publisher or a checked mirror states one (MNIST), otherwise the publisher's MD5 with
pooch's ``"md5:"`` prefix (Fashion-MNIST's README, the CIFAR page list only MD5s).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from antialias.data._errors import CorruptDataError

__all__ = ["RemoteFile", "RemoteSource", "default_data_dir", "fetch"]

_ENV_DIR = "ANTIALIAS_DATA_DIR"


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: its name under each base URL and its hash (``"sha256:..."``/``"md5:..."``)."""

    name: str
    known_hash: str


@dataclass(frozen=True)
class RemoteSource:
    """Mirrors (tried in order) serving the same verified files."""

    base_urls: tuple[str, ...]
    files: tuple[RemoteFile, ...]

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


def default_data_dir() -> Path:
    """Where downloads go and where data sets are looked for by default.

    ``$ANTIALIAS_DATA_DIR`` if set, else ``$XDG_CACHE_HOME/antialias`` (``~/.cache/antialias``).

    Examples:
        >>> default_data_dir().name in {"antialias"} or "ANTIALIAS_DATA_DIR" in os.environ
        True
    """
    env = os.environ.get(_ENV_DIR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "antialias"


def fetch(
    source: RemoteSource, dest: str | os.PathLike, names: Sequence[str] | None = None
) -> list[Path]:
    """Download ``names`` (default: all files of ``source``) into ``dest``, verifying each hash.

    A file already in ``dest`` with the right hash is not downloaded again (pooch checks it).

    Args:
        source: mirrors and files with their known hashes.
        dest: folder to write into (created if needed).
        names: which files of ``source`` to fetch.

    Returns:
        The local paths, in the order of ``names``.

    Raises:
        ImportError: pooch is not installed.
        CorruptDataError: a mirror served a file whose hash does not match (the file is not kept).
        ConnectionError: no mirror could serve a file.
    """
    try:
        import pooch
    except ImportError as exc:  # pragma: no cover - pooch is a declared dependency
        raise ImportError(
            "`antialias.data`: downloading needs pooch; install it with `pip install pooch`, or "
            "put the files in place yourself and pass `root=`."
        ) from exc
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [f.name for f in source.files] if names is None else list(names)
    paths: list[Path] = []
    for name in wanted:
        remote = source.file(name)
        errors: list[str] = []
        mismatch = False
        for base in source.base_urls:
            url = base.rstrip("/") + "/" + name
            try:
                local = pooch.retrieve(
                    url, known_hash=remote.known_hash, fname=name, path=dest, progressbar=False
                )
            except ValueError as exc:  # pooch: hash mismatch (the download is discarded)
                mismatch = True
                errors.append(f"{url}: {exc}")
            except Exception as exc:  # requests/HTTP errors vary by transport; report them all
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
            else:
                paths.append(Path(local))
                break
        else:
            tried = "\n  ".join(errors)
            if mismatch:
                raise CorruptDataError(
                    f"`antialias.data`: download of {name!r} failed its hash check "
                    f"(expected {remote.known_hash}); nothing was kept in {dest}. Tried:\n  {tried}"
                )
            raise ConnectionError(
                f"`antialias.data`: could not download {name!r} into {dest}. Tried:\n  {tried}\n"
                "Download the file by other means and pass its folder as `root=`."
            )
    return paths
