"""Our checkpoint format: safetensors + JSON sidecar, round trips, atomic writes, clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

import antialias
from antialias import _io
from antialias import checkpoint as ckpt
from antialias.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sidecar_path


@dataclasses.dataclass(frozen=True)
class _Config:
    arch: str = "resnet18"
    filter_size: int = 4
    lr: float = 0.01


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn.running_var": torch.rand(4, generator=g).double(),
        "bn.num_batches_tracked": torch.tensor(12),
        "half": torch.randn(5, generator=g).half(),
        "mask": torch.tensor([True, False]),
        "transposed": torch.randn(3, 5, generator=g).t(),  # non-contiguous
    }


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_round_trip_tensors_and_metadata(tmp_path: Path) -> None:
    state = _state()
    meta = {
        "config": _Config(),
        "filter": "tri4",
        "metrics": {"top1": 71.5, "loss": float("nan")},
        "extra": {"note": "x", "tags": {"b", "a"}},
    }
    path = save_checkpoint(tmp_path / "run" / "best.safetensors", state, meta)
    assert path == tmp_path / "run" / "best.safetensors"
    assert _files(path.parent) == ["best.json", "best.safetensors"]
    loaded, got = load_checkpoint(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    assert got["config"] == dataclasses.asdict(_Config())
    assert got["filter"] == "tri4" and got["metrics"]["top1"] == 71.5
    assert got["metrics"]["loss"] != got["metrics"]["loss"]  # NaN survives
    assert got["extra"] == {"note": "x", "tags": ["a", "b"]}
    assert got["antialias_version"] == antialias.__version__
    assert got["torch_version"] == torch.__version__
    assert got["format"] == ckpt.FORMAT and got["format_version"] == ckpt.FORMAT_VERSION
    assert got["tensor_names"] == list(state) and got["tensors_file"] == "best.safetensors"
    # The sidecar is plain JSON anyone can read.
    assert json.loads(sidecar_path(path).read_text())["filter"] == "tri4"


def test_a_model_round_trips(tmp_path: Path) -> None:
    from antialias.models import get_model

    model = get_model("resnet20_cifar", filter_size=4, width=0.25).eval()
    save_checkpoint(tmp_path / "m.safetensors", model.state_dict(), {"config": {"arch": "resnet20_cifar"}})
    clone = get_model("resnet20_cifar", filter_size=4, width=0.25).eval()
    clone.load_state_dict(load_checkpoint(tmp_path / "m.safetensors")[0])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    w = torch.randn(3, 3)
    save_checkpoint(tmp_path / "t.safetensors", {"a": w, "b": w, "view": w[0]})
    loaded, _ = load_checkpoint(tmp_path / "t.safetensors")
    assert torch.equal(loaded["a"], w) and torch.equal(loaded["b"], w) and torch.equal(loaded["view"], w[0])


def test_overwrite_replaces_both_files(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.zeros(2)}, {"metrics": {"epoch": 1}})
    save_checkpoint(path, {"w": torch.ones(3)}, {"metrics": {"epoch": 2}})
    state, meta = load_checkpoint(path)
    assert torch.equal(state["w"], torch.ones(3)) and meta["metrics"]["epoch"] == 2
    assert _files(tmp_path) == ["c.json", "c.safetensors"]


def test_failed_save_leaves_old_pair_and_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.zeros(2)}, {"metrics": {"epoch": 1}})
    real_replace = os.replace
    calls = []

    def crash_on_second_replace(src, dst):  # the crash lands between the two renames
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_second_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": torch.ones(2)}, {"metrics": {"epoch": 2}})
    monkeypatch.undo()
    assert _files(tmp_path) == ["c.json", "c.safetensors"]  # temporary files removed
    # New tensors with the old sidecar: refused, never silently mixed.
    with pytest.raises(CheckpointError, match="does not match its sidecar"):
        load_checkpoint(path)


def test_failure_before_any_rename_keeps_the_old_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.zeros(2)}, {"metrics": {"epoch": 1}})

    def boom(*args, **kwargs):
        raise OSError("killed while writing")

    monkeypatch.setattr(_io, "_fsync_file", boom)  # the first step of publishing the tensors
    with pytest.raises(OSError, match="killed while writing"):
        save_checkpoint(path, {"w": torch.ones(2)}, {"metrics": {"epoch": 2}})
    monkeypatch.undo()
    assert _files(tmp_path) == ["c.json", "c.safetensors"]
    state, meta = load_checkpoint(path)
    assert torch.equal(state["w"], torch.zeros(2)) and meta["metrics"]["epoch"] == 1


# --------------------------------------------------------------------------- bad input on load


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "c.safetensors", _state(), {"filter": "tri4"})


def test_missing_sidecar(saved: Path) -> None:
    sidecar_path(saved).unlink()
    with pytest.raises(FileNotFoundError, match=r"the metadata sidecar '.*c\.json' of '.*c\.safetensors' is missing"):
        load_checkpoint(saved)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.safetensors")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate", "does not match its sidecar"),
        ("flip_byte", "does not match its sidecar"),
        ("sidecar_garbage", "is not valid JSON"),
        ("sidecar_foreign", "must be an antialias checkpoint sidecar"),
        ("sidecar_newer", "format_version 99; this antialias reads up to 1"),
    ],
)
def test_corrupt_pairs_are_clear_errors(saved: Path, damage: str, match: str) -> None:
    sidecar = sidecar_path(saved)
    data = saved.read_bytes()
    meta = json.loads(sidecar.read_text())
    if damage == "truncate":
        saved.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        saved.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "sidecar_garbage":
        sidecar.write_text('{"format": "antialias-che')
    elif damage == "sidecar_foreign":
        sidecar.write_text(json.dumps({"some": "json"}))
    else:
        sidecar.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(saved)


def test_unreadable_tensors_file_with_matching_hash(saved: Path) -> None:
    """A sidecar rewritten to match a damaged file still cannot make it load."""
    saved.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    meta = json.loads(sidecar_path(saved).read_text())
    meta["tensors_sha256"] = ckpt.sha256_file(saved)
    sidecar_path(saved).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(saved)


# --------------------------------------------------------------------------- bad input on save


def test_save_errors(tmp_path: Path) -> None:
    good = {"w": torch.zeros(1)}
    with pytest.raises(
        ValueError, match=r"`path` must end with '\.safetensors', got '.*c\.pt'\. Use e\.g\. '.*c\.safetensors'"
    ):
        save_checkpoint(tmp_path / "c.pt", good)
    with pytest.raises(TypeError, match=r"got a module\. Pass `model.state_dict\(\)`"):
        save_checkpoint(tmp_path / "c.safetensors", torch.nn.Linear(1, 1))
    with pytest.raises(TypeError, match=r"non-tensor entries \['epoch'\]"):
        save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(1), "epoch": 3})
    with pytest.raises(ValueError, match=r"must not set the reserved keys \['antialias_version'\]"):
        save_checkpoint(tmp_path / "c.safetensors", good, {"antialias_version": "9"})
    with pytest.raises(TypeError, match=r"`metadata` must be JSON-serialisable, got .*object"):
        save_checkpoint(tmp_path / "c.safetensors", good, {"extra": object()})
    with pytest.raises(TypeError, match="`metadata` must be a mapping with str keys"):
        save_checkpoint(tmp_path / "c.safetensors", good, {1: "x"})
    assert _files(tmp_path) == []  # nothing written by any refused call


def test_checkpoint_error_lives_in_the_base_layer() -> None:
    """checkpoint.py imports nothing from antialias.models (tests/test_architecture.py checks the
    layers); the models' loaders raise the same class."""
    from antialias.models import _download

    assert _download.CheckpointError is CheckpointError and CheckpointError.__module__ == "antialias.checkpoint"
    assert issubclass(_download.UnsafeCheckpointError, CheckpointError)


def test_saved_files_are_0644_and_no_temp_is_left(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(2)})
    finally:
        os.umask(old)
    assert _files(tmp_path) == ["c.json", "c.safetensors"]
    assert {oct(p.stat().st_mode & 0o777) for p in (path, sidecar_path(path))} == {"0o644"}
