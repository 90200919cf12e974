"""Issue 11, defect 2: no silent wrong results from nonsense input.

Before the fixes (checked on the original code): ``--filter-size -3`` trained tri3 and
``filter_row('-1')`` returned ``[1.]`` (``_canonical_name`` stripped "-"); ``--lr inf`` exited 0 with
NaN weights and a ``metrics.jsonl`` holding bare ``NaN``; ``--warmup-epochs inf`` crashed with an
OverflowError traceback; evaluation accepted NaN weights; ``filter=`` rows were not checked.
"""

from __future__ import annotations

import json

import pytest
import torch
from security_helpers import TINY, cli, trained_run

from antialias.checkpoint import load_checkpoint, save_checkpoint
from antialias.filters import check_rows, filter_row
from antialias.runs.model import NonFiniteError, check_finite, parse_filter_size
from antialias.runs.rundir import metrics_line
from antialias.train import TrainConfig


@pytest.mark.parametrize("text", ["-1", "-3", "+3", "3.0", "- 3", "nan", "inf", "-tri4", "1_0"])
def test_filter_row_refuses_signed_and_decorated_numbers(text):
    with pytest.raises(ValueError, match=r"`filter_size` must be"):
        filter_row(text)


@pytest.mark.parametrize("text, taps", [("Tri-4", 4), ("TRI_3", 3), ("bin 5", 5), ("rect2", 2), (" 3 ", 3)])
def test_names_stay_case_and_separator_insensitive(text, taps):
    assert filter_row(text).numel() == taps


def test_cli_filter_size_minus_three_is_a_usage_error(tmp_path, capsys):
    rc, _, err = cli(["train", *TINY, "--filter-size", "-3", "--out", tmp_path / "r"], capsys)
    assert rc == 2 and "'-3'" in err and not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="got '-3'"):
        parse_filter_size("-3")
    with pytest.raises(ValueError, match="`TrainConfig`: `filter_size`"):
        TrainConfig(filter_size="-3")


@pytest.mark.parametrize("flag, value", [("--lr", "inf"), ("--lr", "nan"), ("--lr", "-1"), ("--warmup-epochs", "inf"),
                                         ("--momentum", "nan"), ("--weight-decay", "inf"), ("--gamma", "nan")])
def test_non_finite_or_negative_rates_are_refused_at_config_time(flag, value, tmp_path, capsys):
    rc, _, err = cli(["train", *TINY, flag, value, "--out", tmp_path / "r"], capsys)
    name = flag[2:].replace("-", "_")
    assert rc == 1 and f"`TrainConfig`: `{name}` must be a finite number" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_divergence_stops_with_exit_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"  # lr 1e10 on the tiny model: finite for two steps, NaN at the third (seeded)
    rc, _, err = cli(["train", *TINY, "--epochs", 3, "--lr", "1e10", "--save-every-steps", 1, "--out", run], capsys)
    assert rc == 1 and "must be finite" in err and "Training diverged" in err and "last good checkpoint" in err
    good = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in good] == ["step-00000001", "step-00000002"]  # no temporary folder left
    assert not (run / "model.safetensors").exists()
    state, _ = load_checkpoint(good[-1] / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in state.values())
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))


def test_fresh_divergence_writes_no_checkpoint_and_strict_json(tmp_path, capsys):
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--lr", "1e30", "--out", tmp_path / "r"], capsys)
    assert rc == 1 and "no checkpoint was written" in err
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_metrics_lines_are_strict_json():
    line = metrics_line({"epoch": 1, "loss": float("nan"), "val_loss": float("inf"), "lr": 0.1})
    assert json.loads(line) == {"epoch": 1, "loss": None, "val_loss": None, "lr": 0.1,
                                "non_finite": ["loss", "val_loss"]}
    assert "NaN" not in line and "Infinity" not in line


def test_evaluation_refuses_non_finite_weights(tmp_path, capsys):
    run = trained_run(tmp_path / "run", capsys)
    state, meta = load_checkpoint(run / "model.safetensors")
    name = next(iter(state))
    state[name] = torch.full_like(state[name], float("nan"))
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "antialias_version",
                                                       "torch_version", "created_utc", "tensors_file",
                                                       "tensors_sha256", "tensor_names")}
    save_checkpoint(run / "model.safetensors", state, meta)
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "e.json"], capsys)
    assert rc == 1 and "must be finite" in err and name in err and not (tmp_path / "e.json").exists()


def test_check_finite_names_the_tensors():
    check_finite({"a": torch.ones(3), "n": torch.arange(3)}, where="x", what="w", fix="")
    with pytest.raises(NonFiniteError, match=r"`x`: w must be finite, got NaN or infinity in \['b'\]\. Fix\."):
        check_finite({"a": torch.ones(1), "b": torch.tensor([float("inf")])}, where="x", what="w", fix="Fix.")


def test_check_rows_refuses_lists_of_lists_and_non_finite_rows():
    with pytest.raises(TypeError, match=r"`filter` must be a tuple of 2 1-D tensors .*torch.tensor"):
        check_rows([[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]], 2)
    with pytest.raises(ValueError, match="must be finite"):
        check_rows((torch.tensor([float("nan"), 1.0]), torch.tensor([0.5, 0.5])), 2)
    with pytest.raises(ValueError, match="non-empty 1-D floating-point"):
        check_rows((torch.ones(2, 2), torch.ones(2)), 2)
    rows = (torch.tensor([float("nan"), 1.0]),)
    assert check_rows(rows, 1, check_values=False) == rows  # the layers' own rows skip the value pass
    meta = (torch.empty(3, device="meta"),)
    assert check_rows(meta, 1) == meta  # no values on the meta device: structure only


def test_blur_pool2d_refuses_nan_and_list_of_list_filters():
    from antialias.functional import blur_pool2d

    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match="must be finite"):
        blur_pool2d(x, filter=(torch.tensor([float("nan"), 1.0]), torch.tensor([0.5, 0.5])))
    with pytest.raises(TypeError, match="1-D tensors"):
        blur_pool2d(x, filter=[[0.5, 0.5], [0.5, 0.5]])
