"""Helpers of the hostile-input tests (issue 11): a tiny trained run folder and CLI calls in process."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from antialias.cli import main

TINY = ["--model", "antialias.train._demo:tiny_model", "--data", "antialias.train._demo:tiny_data",
        "--filter-size", "none", "--batch-size", "16", "--lr", "0.05", "--progress", "none"]


def cli(args: list[object], capsys) -> tuple[int, str, str]:
    """``antialias ARGS`` in this process: (exit code, stdout, stderr); argparse's SystemExit is an exit code."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def trained_run(folder: Path, capsys, *extra: object) -> Path:
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--out", folder, *extra], capsys)
    assert rc == 0, err
    return folder


def poison_run(folder: Path, spec: str = "os:system", command: str = "touch PWNED") -> None:
    """Rewrite a run's model.json and config.json to name ``spec`` with hostile kwargs (as issue 11 did)."""
    for name in ("model.json", "config.json"):
        path = folder / name
        record = json.loads(path.read_text())
        record["config"].update(model=spec, model_kwargs={"command": command}, filter_size=None)
        path.write_text(json.dumps(record))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 1-bit pixels (Pillow checks the size when opening)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(
        b"IEND", b"")
