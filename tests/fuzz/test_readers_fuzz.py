"""Property-based fuzz of the file readers (issue 11): IDX, CIFAR pickles, checkpoints.

A reader given any bytes either returns what a valid file holds or raises its documented error
naming the file (``CorruptDataError``/``UnsafePickleError`` for data, ``CheckpointError``/
``FileNotFoundError`` for checkpoints): never another exception, never a huge allocation (headers
that declare enormous sizes are checked against the bytes actually present). Inputs: valid files
truncated, bit-flipped and with random headers, plus arbitrary bytes. Bounded by hypothesis'
profile (tests/conftest.py: 30 examples per test in CI).
"""

from __future__ import annotations

import contextlib
import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antialias.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from antialias.data._errors import CorruptDataError, UnsafePickleError
from antialias.data.cifar import safe_unpickle
from antialias.data.idx import read_idx

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _damage(data: bytes, cut: int, flips: list[int]) -> bytes:
    out = bytearray(data[: max(0, len(data) - cut)])
    for at in flips:
        if out:
            out[at % len(out)] ^= 1 << (at % 8)
    return bytes(out)


VALID_IDX = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 3, 3) + bytes(range(18))


@FAST
@given(cut=st.integers(0, 30), flips=st.lists(st.integers(0, 10**6), max_size=4), tail=st.binary(max_size=32),
       header=st.one_of(st.none(), st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                                             st.integers(0, 255), st.lists(st.integers(0, 2**32 - 1), max_size=6))))
def test_read_idx_never_fails_otherwise(tmp_path, cut, flips, tail, header):
    data = _damage(VALID_IDX, cut, flips) + tail
    if header is not None:
        a, b, c, d, dims = header
        data = struct.pack(">BBBB", a, b, c, d) + struct.pack(f">{len(dims)}I", *dims) + tail
    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(data)
    try:
        array = read_idx(path)
    except CorruptDataError as exc:
        assert str(path) in str(exc)
    else:
        assert array.size * array.itemsize <= len(data)


def _cifar_pickle() -> bytes:
    return pickle.dumps({"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251, "labels": [0, 1]},
                        protocol=2)


VALID_CIFAR = _cifar_pickle()


@FAST
@given(cut=st.integers(0, 200), flips=st.lists(st.integers(0, 10**6), max_size=6), extra=st.binary(max_size=16))
def test_cifar_unpickler_never_fails_otherwise(cut, flips, extra):
    data = _damage(VALID_CIFAR, cut, flips) + extra
    try:
        safe_unpickle(data, source="batch")
    except (CorruptDataError, UnsafePickleError) as exc:
        assert "batch" in str(exc)


@FAST
@given(data=st.binary(max_size=300))
def test_cifar_unpickler_on_arbitrary_bytes(data):
    with contextlib.suppress(CorruptDataError, UnsafePickleError):  # anything else fails the test
        safe_unpickle(data, source="batch")


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> tuple[bytes, bytes]:
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_checkpoint(path, {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}, {"config": {"model": "x"}})
    return path.read_bytes(), path.with_suffix(".json").read_bytes()


@FAST
@given(which=st.sampled_from(["tensors", "sidecar", "both"]), cut=st.integers(0, 64),
       flips=st.lists(st.integers(0, 10**6), max_size=3), header=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_load_checkpoint_never_fails_otherwise(tmp_path, checkpoint_bytes, which, cut, flips, header):
    tensors, sidecar = checkpoint_bytes
    if which in ("tensors", "both"):
        tensors = _damage(tensors, cut, flips)
        if header is not None:
            tensors = struct.pack("<Q", header) + tensors[8:]
    if which in ("sidecar", "both"):
        sidecar = _damage(sidecar, cut, flips)
    path = tmp_path / "m.safetensors"
    path.write_bytes(tensors)
    path.with_suffix(".json").write_bytes(sidecar)
    try:
        state, _ = load_checkpoint(path)
    except CheckpointError as exc:
        assert "m.safetensors" in str(exc) or "m.json" in str(exc)
    else:
        assert torch.equal(state["w"], torch.arange(6.0).reshape(2, 3))  # only an undamaged pair loads
