"""Atomic file writes: nothing a user made is ever left half-written.

This module is the only place in antialias that moves a written file into place
(``tests/test_io.py`` scans the package for ``os.replace``/``os.rename``/``Path.replace``/
``Path.rename`` elsewhere). Every writer goes through one of:

- :func:`atomic_open`: a stream (``"w"``/``"wb"``), for code that writes to a file object;
- :func:`atomic_write_bytes` / :func:`atomic_write_text`: a whole payload at once;
- :func:`atomic_path`: a temporary *path*, for libraries that only write to a path
  (``safetensors.torch.save_file``, a downloader);
- :func:`publish`: moves a finished file or folder (e.g. a checkpoint's step folder, filled and
  fsync-ed by the caller) into place.

The data goes to a hidden temporary file in the destination's folder (same file system, so the
rename is atomic on POSIX), is flushed and ``fsync``-ed, gets the permissions of a normal file
(0644, not :func:`tempfile.mkstemp`'s 0600), and only then is renamed over the destination; the
folder itself is then ``fsync``-ed so the rename survives a power cut. A crash at any moment
leaves either the old file or the new one, plus at worst a dot-prefixed temporary file; an
exception (``KeyboardInterrupt`` included) removes the temporary file and leaves the destination
untouched.

``exclusive=True`` publishes with a hard link instead of a rename, which fails if the destination
appeared meanwhile (:class:`FileExistsError`) instead of replacing it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "publish"]

#: Permissions of every file antialias writes (before the process umask).
FILE_MODE = 0o644


def fsync_dir(directory: str | os.PathLike[str]) -> None:
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


def _fsync_file(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def publish(tmp: str | os.PathLike[str], dest: str | os.PathLike[str], *, exclusive: bool = False) -> Path:
    """Move the finished file or folder ``tmp`` to ``dest`` in one step, and make the move durable.

    The caller has written and ``fsync``-ed ``tmp``, which must be in the same folder as ``dest``
    (a rename across file systems is not atomic). A file replaces an existing ``dest``; a folder
    replaces only a missing or empty one (POSIX rename rules).

    Args:
        tmp: The finished temporary file or folder.
        dest: The final name.
        exclusive: Never replace: link ``tmp`` to ``dest`` (files only) and fail if ``dest``
            exists. On file systems without hard links, ``dest`` is checked then renamed.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``exclusive`` and ``dest`` exists (``tmp`` is left for the caller).
    """
    tmp, dest = Path(tmp), Path(dest)
    if exclusive:
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (some network and FAT file systems)
            if os.path.lexists(dest):
                raise FileExistsError(f"`publish`: `dest` must not exist, got {str(dest)!r}.") from None
            os.replace(tmp, dest)
        else:
            os.unlink(tmp)
    else:
        os.replace(tmp, dest)
    fsync_dir(_folder(dest))
    return dest


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, suffix: str = ".tmp", exclusive: bool = False
) -> Iterator[Path]:
    """A temporary path next to ``path`` that replaces ``path`` when the block exits without an exception.

    For writers that need a path rather than a stream. The temporary file exists (empty, mode
    0600) when the block starts; write it or replace it. On exit it is ``fsync``-ed, made 0644 and
    published with :func:`publish`; on an exception it is removed and ``path`` is untouched.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.bin"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_bytes(b"abc")
        ...     target.exists()
        False
        >>> target.read_bytes(), oct(target.stat().st_mode & 0o777)
        (b'abc', '0o644')
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=_folder(path))
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        publish(tmp, path, exclusive=exclusive)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    suffix: str = ".tmp",
    exclusive: bool = False,
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the block exits without an exception.

    Args:
        path: The destination; its folder must exist.
        mode: ``"wb"`` or ``"w"``.
        encoding: Text encoding for ``"w"`` (default: UTF-8).
        suffix: Suffix of the temporary file's name.
        exclusive: Fail with :class:`FileExistsError` instead of replacing an existing ``path``.

    On an exception (or ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_open(target, "w") as f:
        ...     _ = f.write("hello")
        >>> target.read_text()
        'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`atomic_open`: `mode` must be 'w' or 'wb', got {mode!r}.")
    with atomic_path(path, suffix=suffix, exclusive=exclusive) as tmp:
        text = "b" not in mode
        with open(tmp, mode, encoding=(encoding or "utf-8") if text else None) as handle:
            yield handle
            handle.flush()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb", exclusive=exclusive) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", exclusive: bool = False
) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 unless ``encoding`` says otherwise); returns ``path``."""
    with atomic_open(path, "w", encoding=encoding, exclusive=exclusive) as handle:
        handle.write(text)
    return Path(path)
