"""Helpers for the trainer tests (imported as `train_helpers`): a tiny config, subprocess runs of the CLI,
weight comparison."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from antialias.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = {"model": "antialias.train._demo:tiny_model", "filter_size": None, "data": "antialias.train._demo:tiny_data",
        "batch_size": 16, "lr": 0.05, "progress": "none"}


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})


def cli_args(cfg: TrainConfig) -> list[str]:
    """The command line that reproduces ``cfg`` (every field spelled out)."""
    args = []
    for key, value in cfg.to_dict().items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            if key in ("filter_size", "train_subset", "val_subset", "max_steps"):
                args += [flag, "none"]
        elif key == "milestones":
            args += [flag, *map(str, value)]
        elif key == "model_kwargs":
            import json

            args += [flag, json.dumps(value)]
        else:
            args += [flag, str(value)]
    return args


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["OMP_NUM_THREADS"] = "1"
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), e.get("PYTHONPATH", "")])
    return e


def start_cli(cfg: TrainConfig, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "antialias.train", *cli_args(cfg)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs: max |diff| {float((a[k].double() - b[k].double()).abs().max())}"
