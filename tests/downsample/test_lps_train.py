"""LPS end to end: ``antialias train`` anneals the Gumbel-softmax temperature of an LPS-converted zoo model."""

from __future__ import annotations

import json

import pytest
import torch

from antialias.cli import main
from antialias.downsample import LPS2d, lps_temperature
from antialias.train import TrainConfig, train


def test_train_anneals_lps_temperature():
    cfg = TrainConfig(model="resnet20_cifar", filter_size=None, model_kwargs={"method": "lps", "width": 0.25},
                      data="antialias.train._demo:tiny_data", epochs=3, batch_size=32, lr=0.05, progress="none",
                      lps_tau_start=2.0, lps_tau_end=0.5)
    result = train(cfg)
    lps = [m for m in result.model.modules() if isinstance(m, LPS2d)]
    assert lps, "the zoo model was not converted to LPS"
    assert all(m.tau == pytest.approx(0.5) for m in lps)  # the last epoch's temperature
    assert [m["epoch"] for m in result.metrics] == [1, 2, 3]
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert lps_temperature(1, 3, 2.0, 0.5) == pytest.approx(1.0)  # the middle epoch's (geometric mean)


def test_cli_train_runs_with_lps(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--model", "resnet20_cifar", "--filter-size", "none",
                 "--model-kwargs", json.dumps({"method": "lps", "width": 0.25}),
                 "--data", "antialias.train._demo:tiny_data", "--epochs", "1", "--batch-size", "32",
                 "--lps-tau-start", "1.5", "--lps-tau-end", "0.5", "--progress", "none", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["lps_tau_start"] == 1.5
    assert (out / "model.safetensors").exists()
