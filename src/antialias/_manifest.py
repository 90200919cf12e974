"""Manifests: the record of what a command wrote into a folder, so it never touches anything else.

Every command that writes into a folder (``antialias train --out``, ``antialias reproduce --out``)
keeps ``.antialias-manifest.json`` there: the paths, relative to the folder, of the files and folders
it created. A path is added *before* it is written, so even a process killed mid-write leaves it
listed. The command replaces or deletes only listed paths (and its own temporary files); anything
else in the folder is the user's, and a request to start afresh (``--overwrite``) is refused while
such files are there, naming them. The manifest itself is written atomically (:mod:`antialias._io`).

Examples:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> m = Manifest(folder, "antialias train")
    >>> m.add("config.json"); _ = (folder / "config.json").write_text("{}")
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> m.foreign()
    ['notes.txt']
    >>> m.remove_owned(); sorted(p.name for p in folder.iterdir())
    ['.antialias-manifest.json', 'notes.txt']
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from antialias._io import atomic_write_text

__all__ = ["MANIFEST_NAME", "Manifest"]

#: The manifest's file name, in the folder it describes.
MANIFEST_NAME = ".antialias-manifest.json"
_FORMAT = "antialias-manifest"
# Temporary names of antialias._io (".NAME.XXXX.tmp") and of checkpoint folders (".tmp-step-N-PID").
_TEMP = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")
_TEMP_STEP = re.compile(r"^\.tmp-step-\d+-\d+$")


def _rel(path: str | os.PathLike[str]) -> str:
    rel = PurePosixPath(Path(path).as_posix())
    if rel.is_absolute() or ".." in rel.parts or str(rel) in ("", "."):
        raise ValueError(f"`Manifest`: `path` must be relative to the folder, got {str(path)!r}.")
    return str(rel)


class Manifest:
    """What ``command`` wrote into ``folder`` (see the module docstring).

    A missing, unreadable or foreign manifest file counts as empty: the command then owns nothing
    it finds there, which errs on the side of leaving files alone.

    Args:
        folder: The output folder.
        command: Who writes it (``"antialias train"``), recorded for the reader.
    """

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.folder = Path(folder)
        self.command = command
        self.path = self.folder / MANIFEST_NAME
        self.entries: set[str] = set(self._read())

    def _read(self) -> list[str]:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        files = record.get("files") if isinstance(record, dict) and record.get("format") == _FORMAT else None
        if not isinstance(files, list):
            return []
        return [f for f in files if isinstance(f, str) and f and not f.startswith("/") and ".." not in f.split("/")]

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"format": _FORMAT, "format_version": 1, "command": self.command,
                                  "files": sorted(self.entries)}
        atomic_write_text(self.path, json.dumps(record, indent=1) + "\n")

    # ------------------------------------------------------------------------------ recording
    def add(self, *paths: str | os.PathLike[str]) -> None:
        """Records ``paths`` (files or folders this command creates) before they are written."""
        new = {_rel(p) for p in paths} - self.entries
        if new:
            self.entries |= new
            self._save()

    def discard(self, *paths: str | os.PathLike[str]) -> None:
        """Forgets ``paths`` (after this command deleted them)."""
        gone = {_rel(p) for p in paths} & self.entries
        if gone:
            self.entries -= gone
            self._save()

    # ------------------------------------------------------------------------------ questions
    def owns(self, path: str | os.PathLike[str]) -> bool:
        """True for a recorded path or anything inside a recorded folder."""
        parts = PurePosixPath(_rel(path)).parts
        return any("/".join(parts[:i]) in self.entries for i in range(1, len(parts) + 1))

    @staticmethod
    def _join(base: PurePosixPath, name: str) -> PurePosixPath:
        return base / name if str(base) != "." else PurePosixPath(name)

    def _is_own_temp(self, rel: PurePosixPath) -> bool:
        m = _TEMP.match(rel.name)
        if m is not None and (str(rel.parent / m.group("name")) if str(rel.parent) != "." else m.group("name")) in (
            self.entries | {MANIFEST_NAME}
        ):
            return True
        return bool(_TEMP_STEP.match(rel.name)) and rel.parent.name == "checkpoints"

    def foreign(self, limit: int = 20) -> list[str]:
        """Paths in the folder that this command did not write (at most ``limit``), sorted."""
        if not self.folder.is_dir():
            return []
        found: list[str] = []
        for root, dirs, files in os.walk(self.folder):
            base = PurePosixPath(Path(root).relative_to(self.folder).as_posix())
            # Folders of ours (recorded, or our temporaries) are ours as a whole; any other is searched.
            dirs[:] = [d for d in sorted(dirs) if not (self.owns(self._join(base, d))
                                                        or self._is_own_temp(self._join(base, d)))]
            found += [f"{self._join(base, d)}/" for d in dirs if os.path.islink(os.path.join(root, d))]  # not walked
            for f in sorted(files):
                rel = self._join(base, f)
                if str(rel) == MANIFEST_NAME or self.owns(rel) or self._is_own_temp(rel):
                    continue
                found.append(str(rel))
        return sorted(found)[:limit]

    # ------------------------------------------------------------------------------ deleting
    def remove_owned(self, keep: Iterable[str] = ()) -> None:
        """Deletes every recorded path (except ``keep``), then folders of ours left empty."""
        kept = {_rel(k) for k in keep}
        for rel in sorted(self.entries - kept, key=lambda r: -len(PurePosixPath(r).parts)):
            p = self.folder / rel
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif os.path.lexists(p):
                p.unlink()
        for rel in sorted(self.entries - kept, key=lambda r: -len(PurePosixPath(r).parts)):
            for parent in PurePosixPath(rel).parents:
                d = self.folder / parent
                if str(parent) in (".", "") or not d.is_dir() or any(d.iterdir()):
                    break
                d.rmdir()
        self.entries &= kept
        self._save()


def describe(paths: list[str], limit: int = 8) -> str:
    """``a, b, c`` (and how many more) for messages."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
