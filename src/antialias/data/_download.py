"""Verified downloads of data set files (only when a caller passes ``download=True``).

Nothing here runs at import time and nothing touches the network unless :func:`fetch` is called.
Files come through the one download stack of :mod:`antialias._download` (pooch; retried, published
atomically), into ``<root>/data/<name>`` by default (``<root>`` = ``$ANTIALIAS_HOME``, default
``~/.cache/antialias``). Every file carries a known hash, checked before the file is moved into
place: SHA-256 where the publisher or a checked mirror states one (MNIST), otherwise the
publisher's MD5 (``"md5:"``; Fashion-MNIST's README, the CIFAR page list only MD5s).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from antialias import _download

__all__ = ["RemoteFile", "RemoteSource", "default_data_dir", "fetch"]


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

    ``<root>/data`` (``$ANTIALIAS_HOME/data``, default ``~/.cache/antialias/data``); the deprecated
    ``$ANTIALIAS_DATA_DIR`` still names the folder itself. See :func:`antialias._download.data_dir`.

    Examples:
        >>> default_data_dir().name == "data" or "ANTIALIAS_DATA_DIR" in os.environ
        True
    """
    return _download.data_dir()


def fetch(
    source: RemoteSource,
    dest: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> list[Path]:
    """Download ``names`` (default: all files of ``source``) into ``dest``, verifying each hash.

    A file already in ``dest`` with the right hash is not downloaded again.

    Args:
        source: mirrors and files with their known hashes.
        dest: folder to write into (created if needed).
        names: which files of ``source`` to fetch.
        progress: show a progress bar on stderr.

    Returns:
        The local paths, in the order of ``names``.

    Raises:
        antialias.DownloadError: no mirror could serve a file (an :class:`OSError`); its subclass
            ``ChecksumError`` when the mirrors served a file with another hash (nothing is kept) or
            the file already in ``dest`` has another hash (it is left for you to inspect).
    """
    dest = Path(dest).expanduser()
    wanted = [f.name for f in source.files] if names is None else list(names)
    paths: list[Path] = []
    for name in wanted:
        remote = source.file(name)
        urls = [base.rstrip("/") + "/" + name for base in source.base_urls]
        paths.append(
            _download.fetch(
                urls,
                dest / name,
                remote.known_hash,
                progress=progress,
                where="antialias.data",
                hint="Or pass the folder that holds the files as `root=`.",
            )
        )
    return paths
