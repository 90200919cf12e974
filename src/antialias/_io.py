"""Atomic file writes: nothing a user made is ever left half-written.

Every writer in antialias goes through :func:`atomic_open`: the data goes to a hidden temporary
file in the destination's folder, is flushed and fsync-ed, and only then renamed over the
destination with :func:`os.replace` (atomic on POSIX), after which the folder itself is fsync-ed so
the rename survives a power cut. A crash at any moment leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "fsync_dir"]


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames in ``directory`` durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, suffix: str = ".tmp") -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block exits without an exception.

    On an exception (or ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: `mode` must be 'w' or 'wb', got {mode!r}.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a normal file is what the user expects
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
