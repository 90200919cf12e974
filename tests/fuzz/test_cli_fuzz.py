"""Property-based fuzz of every ``antialias`` command (issue 11): random and hostile arguments, damaged files.

Every subcommand is found by walking the real argument parser (a command added later is fuzzed
without editing this file), and each of its options gets values drawn from a hostile pool: signed,
non-finite and malformed numbers, factory names (``os:system``), path escapes, empty strings, and
damaged files (truncated, bit-flipped, wrong format, huge headers). For every example:

- stderr holds no traceback (every failure is one ``antialias <command>: error:`` line);
- the exit code is 0, 1 or 2;
- nothing outside the output folder changed (the inputs are hashed before and after, and no
  file appears next to them).

Bounded for CI: a few examples per command (hypothesis' ``antialias`` profile caps the rest),
options that only set how long a run takes are pinned (``--max-steps 1``, tiny data), and
``antialias figures`` and ``antialias reproduce`` are pointed where they refuse quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antialias.cli import build_parser, main
from antialias.report.figures import FIGURE_FILES

TINY_MODEL, TINY_DATA = "antialias.train._demo:tiny_model", "antialias.train._demo:tiny_data"
FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# ------------------------------------------------------------------------------------------- inputs


def _png_header(width: int, height: int) -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 9)) + chunk(b"IEND", b"")


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at % len(b)] ^= 0x40
    return bytes(b)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """``in/``: damaged and hostile input files (no manifest: antialias owns none of them); ``out/``: the cwd."""
    root = tmp_path_factory.mktemp("fuzz")
    inp = root / "in"
    run = inp / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["train", "--model", TINY_MODEL, "--data", TINY_DATA, "--filter-size", "none", "--batch-size", "16",
                   "--epochs", "1", "--max-steps", "2", "--progress", "none", "--out", str(run)])
    assert rc == 0
    (run / ".antialias-manifest.json").unlink(missing_ok=True)  # the inputs are the user's, whoever wrote them
    weights = (run / "model.safetensors").read_bytes()
    for name, data in {
        "truncated.safetensors": weights[: len(weights) // 3],
        "flipped.safetensors": _flip(weights, len(weights) // 2),
        "huge_header.safetensors": struct.pack("<Q", 2**60) + b"{}",
        "text.pt": b"just text\n",
        "empty.pt": b"",
        "pickle.pt": pickle.dumps({"w": [1, 2]}),
        "bad.json": b"{not json",
        "list.json": b"[1, 2, 3]",
        "hostile.json": json.dumps({"model": "os:system", "lr": "inf", "filter_size": "-3"}).encode(),
        "numbers.json": json.dumps({"lr": 1e308, "epochs": -1, "batch_size": 0}).encode(),
        "bad.toml": b"[[[",
    }.items():
        (inp / name).write_bytes(data)
    for name in ("truncated", "flipped", "huge_header"):
        (inp / f"{name}.json").write_bytes((run / "model.json").read_bytes())
    bomb = inp / "bomb"
    for split in ("train", "val"):
        (bomb / split / "a").mkdir(parents=True)
        (bomb / split / "a" / "big.png").write_bytes(_png_header(40000, 40000))
        (bomb / split / "a" / "cut.png").write_bytes(_png_header(8, 8)[:20])
    idx = inp / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 65536, 65536, 2**32 - 1))
    (idx / "train-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0D, 1, 2) + b"\x7f\xc0\0\0" * 2)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes(b"\x1f\x8b broken gzip")
    cifar = inp / "cifar"
    cifar.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (cifar / "cifar-10-python.tar.gz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "out").mkdir()
    return root


def _hostile_values(inp: Path) -> list[str]:
    files = [str(p) for p in sorted(inp.rglob("*")) if p.is_file()]
    return [
        "-3", "-1", "0", "1", "2", "3", "64", "inf", "-inf", "nan", "1e309", "0.5", "-0.0", "1e-320", "3.0",
        "", " ", "none", "None", "null", "auto", "tri9", "Tri-4", "-tri4", "bin5", "rect2", "x" * 300, "\u00e9\u00df",
        "os:system", "subprocess:run", "evil.py:build", "antialias.cli:main", TINY_MODEL, TINY_DATA, "resnet20_cifar",
        "{}", "[", "{\"command\": \"touch PWNED\"}", "{\"width\": -1}", "cifar10", "fashion-mnist",
        f"imagefolder:{inp / 'bomb'}", f"cifar10:{inp / 'cifar'}", f"mnist:{inp / 'idx'}", f"imagenet:{inp / 'nope'}",
        str(inp / "run"), str(inp / "nope"), "../../nope", "/dev/null", *files,
    ]


# Outputs only ever go under out/ (the cwd): a command must not be able to escape it by our choice.
OUT_VALUES = ["o", "o/deep/er", "run", "e.json", "figs", ".", "o.json"]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                           argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


COMMANDS = dict(_leaves(build_parser()))

# Per command: arguments that keep every example short, and options the fuzz leaves alone (they
# only set the run's length, or would make a slow command do its full work).
_BASE = {
    "figures": ["--out", "figs"],  # figs/ holds foreign PNGs of every name: refused unless --force...
    "train": ["--model", TINY_MODEL, "--data", TINY_DATA, "--batch-size", "16", "--epochs", "1", "--max-steps", "1",
              "--train-subset", "32", "--val-subset", "8", "--progress", "none", "--out", "run"],
    "eval": ["--model", TINY_MODEL, "--data", TINY_DATA, "--subset", "4", "--out", "e.json"],
}
# Commands with none of the above (reproduce, compare, any added later) are whole pipelines: they get
# the damaged CIFAR archive as --data, which they read before any training, and the fuzz leaves
# --data alone for them.
_PINNED = {"--max-steps", "--subset", "--train-subset", "--val-subset", "--force", "--quick", "--tiny",
           "--corruptions", "--perturbations", "--severities", "--preset", "--threads", "--help", "--version",
           "--debug"}


def _is_pipeline(path: tuple[str, ...]) -> bool:
    return path[0] not in _BASE


def _base(path: tuple[str, ...], inp: Path) -> list[str]:
    args = list(_BASE.get(path[0], []))
    if path == ("eval", "corruption"):
        args += ["--corruptions", "gaussian_noise", "--severities", "1"]
    if path == ("eval", "perturbation"):
        args += ["--perturbations", "gaussian_noise"]
    if _is_pipeline(path):
        flags = {s for a in COMMANDS[path]._actions for s in a.option_strings}
        assert "--data" in flags, f"{path}: a new command without --data needs a quick-failing base here"
        args += ["--data", f"cifar10:{inp / 'cifar'}", "--out", "o"]
        args += ["--progress", "none"] if "--progress" in flags else []
        args += ["--tiny"] if "--tiny" in flags else []
    return args


@st.composite
def _argv(draw: st.DrawFn, path: tuple[str, ...], inp: Path) -> list[str]:
    parser = COMMANDS[path]
    pool = _hostile_values(inp)
    options = [a for a in parser._actions if a.option_strings and not set(a.option_strings) & _PINNED
               and a.dest != "help"]
    if _is_pipeline(path):
        options = [a for a in options if a.dest != "data"]
    chosen = draw(st.lists(st.sampled_from(options), max_size=4, unique_by=id)) if options else []
    args = [*path, *_base(path, inp)]
    for action in chosen:
        flag = draw(st.sampled_from([s for s in action.option_strings if s.startswith("--")] or action.option_strings))
        if action.nargs == 0:
            args.append(flag)
            continue
        if action.dest == "out":
            values = [draw(st.sampled_from(OUT_VALUES))]
        elif action.choices and draw(st.booleans()):
            values = [str(draw(st.sampled_from(list(action.choices))))]
        else:
            many = action.nargs in ("*", "+")
            values = draw(st.lists(st.sampled_from(pool), min_size=0 if action.nargs == "*" else 1,
                                   max_size=3 if many else 1))
        args += [flag, *values]
    return args


# ------------------------------------------------------------------------------------------- checks


def _snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` except ``out/``."""
    found = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] == "out" or not p.is_file():
            continue
        found[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def _run(argv: list[str], root: Path) -> tuple[int, str]:
    before = _snapshot(root)
    threads, cwd = torch.get_num_threads(), os.getcwd()
    err = io.StringIO()
    os.chdir(root / "out")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    text = err.getvalue()
    assert "Traceback (most recent call last)" not in text, (argv, text[-3000:])
    assert rc in (0, 1, 2), (argv, rc, text[-2000:])
    assert _snapshot(root) == before, (argv, "a file outside the output folder changed")
    assert not (root / "out" / "PWNED").exists() and not (root / "PWNED").exists(), argv
    if rc == 1:
        assert "error:" in text, (argv, text[-2000:])
    return rc, text


def _prepare_figures(root: Path) -> None:
    figs = root / "out" / "figs"
    figs.mkdir(exist_ok=True)
    for name in FIGURE_FILES.values():
        if not (figs / name).exists():
            (figs / name).write_bytes(b"not ours")  # the refusal keeps figures quick (and is itself checked)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_survives_hostile_arguments(path, sandbox):
    if path[0] == "figures":
        _prepare_figures(sandbox)

    # figures renders for seconds whenever the drawn arguments are valid: fewer examples there.
    @settings(FUZZ, max_examples=4 if path[0] == "figures" else FUZZ.max_examples)
    @given(argv=_argv(path, sandbox / "in"))
    def check(argv: list[str]) -> None:
        _run(argv, sandbox)

    check()


def test_the_fuzzed_commands_include_every_subcommand():
    assert {p[0] for p in COMMANDS} >= {"figures", "train", "eval", "reproduce"}
    assert all(_is_pipeline(p) for p in COMMANDS if p[0] not in ("figures", "train", "eval"))
    assert ("eval", "consistency") in COMMANDS and ("eval", "worst-case") in COMMANDS
