"""TrainConfig, the config file and the generated command line."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from antialias.train import TrainConfig, add_arguments, config_differences, load_config_file
from antialias.train._cli import config_from_args


def parse(argv):
    return add_arguments(argparse.ArgumentParser()).parse_args(argv)



def test_cli_reproduces_config():
    from train_helpers import cli_args

    cfg = TrainConfig(model="resnet56_cifar", filter_size="tri4", model_kwargs={"width": 0.5}, data="cifar10",
                      epochs=3, max_steps=7, milestones=(1, 2), amp="bf16", nesterov=True, augment=False,
                      train_subset=100, warmup_epochs=0.5, label_smoothing=0.1, out="x")
    assert config_from_args(parse(cli_args(cfg))) == cfg
    assert config_from_args(parse([])) == TrainConfig()
    flags = {a.dest for a in add_arguments(argparse.ArgumentParser())._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= flags


def test_filter_size_none_and_bool_flags():
    ns = parse(["--filter-size", "none", "--no-augment", "--epochs", "2"])
    cfg = config_from_args(ns)
    assert (cfg.filter_size, cfg.augment, cfg.epochs, cfg.lr) == (None, False, 2, TrainConfig().lr)


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    (tmp_path / "c.toml").write_text('epochs = 4\nlr = 0.2\nfilter_size = "bin5"\nmilestones = [2, 3]\n')
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 4, "lr": 0.2, "filter-size": None}))
    cfg = config_from_args(parse(["--config", str(tmp_path / "c.toml"), "--lr", "0.01"]))
    assert (cfg.epochs, cfg.lr, cfg.filter_size, cfg.milestones) == (4, 0.01, "bin5", (2, 3))
    cfg = config_from_args(parse(["--config", str(tmp_path / "c.json")]))
    assert (cfg.epochs, cfg.lr, cfg.filter_size) == (4, 0.2, None)


def test_unknown_key_in_file_is_an_error_with_a_suggestion(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"epoch": 4}))
    with pytest.raises(ValueError, match=r"unknown key 'epoch'.*Did you mean 'epochs'"):
        config_from_args(parse(["--config", str(tmp_path / "c.json")]))
    with pytest.raises(ValueError, match="unknown key 'zzz'"):
        TrainConfig.from_dict({"zzz": 1})


def test_bad_config_files(tmp_path):
    with pytest.raises(ValueError, match=r"existing \.json or \.toml file"):
        load_config_file(tmp_path / "missing.toml")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="valid JSON"):
        load_config_file(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="table of config keys"):
        load_config_file(tmp_path / "list.json")


@pytest.mark.parametrize(
    ("changes", "exc", "match"),
    [
        ({"epochs": 0}, ValueError, "`epochs` must be an integer >= 1, got 0"),
        ({"epochs": 1.5}, TypeError, "`epochs` must be an int"),
        ({"schedule": "cosin"}, ValueError, "Did you mean 'cosine'"),
        ({"amp": "fp8"}, ValueError, "`amp` must be one of"),
        ({"lr": -1.0}, ValueError, "`lr` must be a finite number"),
        ({"filter_size": 9}, ValueError, "`filter_size` must be in 1..7"),
        ({"filter_size": True}, TypeError, "`filter_size` must be an int"),
        ({"milestones": (3, 2)}, ValueError, "`milestones` must be increasing"),
        ({"resume": True}, ValueError, "`out` must be the run directory to resume"),
        ({"resume": True, "overwrite": True, "out": "x"}, ValueError, "must not both be set"),
        ({"train_subset": 0}, ValueError, "`train_subset` must be a positive integer"),
    ],
)
def test_bad_values(changes, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**changes)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3  # type: ignore[misc]


def test_config_differences_ignores_operational_fields():
    a = TrainConfig(epochs=2, out="a", progress="log").to_dict()
    b = TrainConfig(epochs=3, lr=0.2, out="b", progress="none", num_workers=2).to_dict()
    assert config_differences(a, b) == ["epochs: 2 -> 3", "lr: 0.1 -> 0.2"]
