"""Exact resume: SIGKILL at any moment, Ctrl-C, a failed checkpoint write, a damaged checkpoint.

The reference is one uninterrupted in-process run; every interrupted-and-resumed run must end with
bit-identical weights (CPU, fixed seed) and the same metrics. The tiny model has BatchNorm (running
statistics), dropout (torch RNG state) and the runs use augmentation and SGD momentum, so each piece
of saved state matters.
"""

from __future__ import annotations

import errno
import json
import signal
import time
from pathlib import Path

import pytest
import torch
from train_helpers import assert_same_weights, start_cli, tiny_config, weights

from antialias.runs import rundir as _rundir
from antialias.train import train

# Timing-sensitive subprocesses (SIGKILL/SIGINT mid-run): on one xdist worker with the other such tests.
pytestmark = pytest.mark.xdist_group("subprocesses")

EPOCHS = 4
KW = {"batchnorm": True, "dropout": 0.25}


def _cfg(out: Path, **kw):
    return tiny_config(**{"epochs": EPOCHS, "model_kwargs": KW, "save_every_steps": 1, "keep_checkpoints": 3,
                          "out": str(out), **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    result = train(_cfg(out, save_every_steps=0))  # checkpoints do not change what is computed
    assert result.steps == EPOCHS * 6 and not result.interrupted
    return result


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _same_metrics(a: list[dict], b: list[dict]) -> None:
    keys = ("epoch", "global_step", "loss", "train_acc", "val_loss", "val_acc", "lr")
    assert [[m[k] for k in keys] for m in a] == [[m[k] for k in keys] for m in b]


def _wait_for_step(out: Path, proc, step: int, timeout: float = 240.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = (
            [int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*")]
            if (out / "checkpoints").is_dir()
            else []
        )
        if steps and max(steps) >= step:
            return max(steps)
        if proc.poll() is not None:
            pytest.fail(f"training ended before step {step}: rc={proc.returncode}\n{proc.stderr.read()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("training did not reach the step in time")


def test_sigkill_then_resume_is_bit_identical(tmp_path, reference):
    cfg = _cfg(tmp_path / "run")
    proc = start_cli(cfg)
    seen = _wait_for_step(tmp_path / "run", proc, 5)
    proc.kill()  # SIGKILL: no handler runs, whatever was being written stays half-written
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert seen < EPOCHS * 6  # it really was cut short
    resumed = train(cfg.replace(resume=True))
    assert resumed.steps == EPOCHS * 6
    assert_same_weights(weights(reference.weights), weights(resumed.weights))
    _same_metrics(_metrics(reference.out), _metrics(resumed.out))
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))


def test_ctrl_c_saves_and_exits_cleanly_then_resumes_identically(tmp_path, reference):
    cfg = _cfg(tmp_path / "run", progress="log")
    proc = start_cli(cfg)
    _wait_for_step(tmp_path / "run", proc, 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    # on a loaded machine the signal can land at the end of an epoch, which says so instead
    assert ("interrupted at step" in out or "interrupted after epoch" in out) and "continue with --resume" in out
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()  # not finished: no final weights
    resumed = train(cfg.replace(resume=True, progress="none"))
    assert_same_weights(weights(reference.weights), weights(resumed.weights))
    _same_metrics(_metrics(reference.out), _metrics(resumed.out))


def test_full_disk_keeps_previous_checkpoint_and_damaged_latest_is_skipped(tmp_path, reference, monkeypatch):
    cfg = _cfg(tmp_path / "run")
    real_save, calls = torch.save, []

    def failing_save(obj, f, *a, **k):
        calls.append(f)
        if len(calls) == 9:  # the 9th checkpoint's state file: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(_rundir.torch, "save", failing_save)
    with pytest.raises(
        OSError,
        match=r"could not be written \(No space left on device\); the previous checkpoint .*step-00000008 is intact",
    ):
        train(cfg)
    monkeypatch.setattr(_rundir.torch, "save", real_save)
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step-00000006", "step-00000007", "step-00000008"]  # no half-written leftovers
    # Damage the newest checkpoint: resuming warns and falls back to the one before.
    (tmp_path / "run" / "checkpoints" / "step-00000008" / "state.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        resumed = train(cfg.replace(resume=True))
    assert_same_weights(weights(reference.weights), weights(resumed.weights))
    _same_metrics(_metrics(reference.out), _metrics(resumed.out))


def test_state_file_loads_with_weights_only(reference):
    latest = sorted((reference.out / "checkpoints").glob("step-*"))[-1]
    state = torch.load(latest / "state.pt", weights_only=True)
    assert {"optimizer", "scheduler", "rng", "epoch", "step_in_epoch", "global_step", "history"} <= set(state)
    assert set(state["rng"][0]) == {"torch", "cuda", "numpy", "python"}
    assert state["global_step"] == EPOCHS * 6 and state["epoch"] == EPOCHS and len(state["history"]) == EPOCHS


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    cfg = tiny_config(epochs=1, out=str(tmp_path / "run"))
    first = train(cfg)
    before = weights(first.weights)
    again = train(cfg.replace(resume=True))
    assert again.steps == first.steps
    assert_same_weights(before, weights(again.weights))
