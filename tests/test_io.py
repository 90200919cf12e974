"""antialias._io: the one atomic writer, and a scan that keeps it the only one."""

from __future__ import annotations

import ast
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from antialias import _io
from antialias._io import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text, publish

SRC = Path(__file__).resolve().parents[1] / "src" / "antialias"


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("writer", ["open_wb", "open_w", "bytes", "text", "path"])
def test_new_file_is_written_with_mode_0644_and_no_temp_left(writer, tmp_path) -> None:
    old = os.umask(0o022)  # the usual umask; mkstemp alone would give 0600
    try:
        target = tmp_path / "out.dat"
        if writer == "open_wb":
            with atomic_open(target, "wb") as f:
                f.write(b"\x00\xffdata")
        elif writer == "open_w":
            with atomic_open(target, "w") as f:
                f.write("\x00\xffdata")
        elif writer == "bytes":
            assert atomic_write_bytes(target, b"\x00\xffdata") == target
        elif writer == "text":
            assert atomic_write_text(target, "\x00\xffdata") == target
        else:
            with atomic_path(target) as tmp:
                assert tmp.parent == tmp_path and tmp.name.startswith(".out.dat.")
                tmp.write_bytes(b"\x00\xffdata")
    finally:
        os.umask(old)
    expected = b"\x00\xffdata" if writer in ("open_wb", "bytes", "path") else "\x00\xffdata".encode()
    assert target.read_bytes() == expected
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _entries(tmp_path) == ["out.dat"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("writer", ["open", "path"])
def test_exception_mid_write_keeps_the_old_file_and_removes_the_temp(writer, error, tmp_path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(error):
        if writer == "open":
            with atomic_open(target, "w") as f:
                f.write("new, half")
                f.flush()
                assert len(_entries(tmp_path)) == 2  # the temp exists while writing
                raise error
        else:
            with atomic_path(target) as tmp:
                tmp.write_text("new, half")
                raise error
    assert target.read_text() == "old"
    assert _entries(tmp_path) == ["out.json"]


def test_killed_mid_write_leaves_the_old_file(tmp_path) -> None:
    """SIGKILL while writing: no cleanup can run; the destination still holds the old bytes."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import time, pathlib
        from antialias._io import atomic_open
        with atomic_open({str(target)!r}, "wb") as f:
            f.write(b"new" * 1000)
            f.flush()
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(600):
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), "the writer never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_bytes() == b"old"
    left = [n for n in _entries(tmp_path) if n not in ("big.bin", "ready")]
    assert len(left) == 1 and left[0].startswith(".big.bin.") and left[0].endswith(".tmp")


def test_replaces_an_existing_file(tmp_path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_exclusive_refuses_to_replace_and_keeps_both_files(tmp_path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("theirs")
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "ours", exclusive=True)
    assert target.read_text() == "theirs"
    assert _entries(tmp_path) == ["a.txt"]
    atomic_write_text(tmp_path / "b.txt", "ours", exclusive=True)
    assert (tmp_path / "b.txt").read_text() == "ours" and _entries(tmp_path) == ["a.txt", "b.txt"]


def test_exclusive_without_hard_links_still_refuses(tmp_path, monkeypatch) -> None:
    def no_links(*args: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.txt").write_text("theirs")
    with pytest.raises(FileExistsError, match="`dest` must not exist"):
        atomic_write_text(tmp_path / "a.txt", "ours", exclusive=True)
    atomic_write_text(tmp_path / "b.txt", "ours", exclusive=True)
    assert (tmp_path / "b.txt").read_text() == "ours"


def test_publish_moves_a_folder(tmp_path) -> None:
    tmp = tmp_path / ".tmp-step"
    tmp.mkdir()
    (tmp / "x").write_text("1")
    assert publish(tmp, tmp_path / "step") == tmp_path / "step"
    assert _entries(tmp_path) == ["step"] and (tmp_path / "step" / "x").read_text() == "1"


def test_bad_mode_is_refused(tmp_path) -> None:
    with (
        pytest.raises(ValueError, match="`atomic_open`: `mode` must be 'w' or 'wb', got 'a'"),
        atomic_open(tmp_path / "x", "a"),
    ):
        pass
    assert _entries(tmp_path) == []


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_bytes(tmp_path / "f", b"x")
    assert events[:2] == ["fsync", "replace"]  # the file, then the rename, then the folder
    assert events[2:] == ["fsync"]


# --------------------------------------------------------------------------- the one writer

_RENAMES = {"replace", "rename", "renames"}


def _rename_calls(tree: ast.AST) -> list[int]:
    """Lines calling os.replace/os.rename/os.renames, shutil.move, or ``x.replace(target)`` /
    ``x.rename(target)`` with exactly one positional argument and no keywords (Path's signature;
    ``str.replace`` takes two, ``dataclasses.replace`` and config ``.replace`` take keywords)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr, owner = node.func.attr, node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else None
        module_call = (owner_name == "os" and attr in _RENAMES | {"link"}) or (
            owner_name == "shutil" and attr == "move"
        )
        path_call = (
            attr in ("replace", "rename")
            and owner_name != "dataclasses"
            and len(node.args) == 1
            and not node.keywords
        )
        if module_call or path_call:
            lines.append(node.lineno)
    return lines


def test_scan_finds_every_kind_of_rename() -> None:
    code = textwrap.dedent(
        """
        os.replace(a, b)
        os.rename(a, b)
        Path(a).replace(b)
        tmp.rename(final)
        shutil.move(a, b)
        os.link(a, b)
        "x".replace("a", "b")
        dataclasses.replace(cfg, x=1)
        cfg.replace(resume=True)
        """
    )
    assert _rename_calls(ast.parse(code)) == [2, 3, 4, 5, 6, 7]


def test_only_io_moves_files_into_place() -> None:
    """Every file antialias writes is published through antialias._io (one atomic writer)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "_io.py":
            continue
        for line in _rename_calls(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(SRC.parent)}:{line}")
    assert not offenders, "rename outside antialias._io (use atomic_open/atomic_path/publish):\n" + "\n".join(offenders)


def test_module_doc_names_the_scan() -> None:
    assert "tests/test_io.py" in (_io.__doc__ or "")
