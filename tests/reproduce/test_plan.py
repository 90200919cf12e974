"""Tests of the paper-scale presets (cifar10, imagenet) and of ``antialias reproduce --plan``.

The plan's commands must train exactly the runs the pipeline expects: checked field by field against
:func:`antialias.reproduce._runs.train_config` for every preset, and end to end on CPU with the tiny
preset (run the printed commands, then ``reproduce`` reuses every run without training), once
through torchrun with two processes.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from antialias import cli
from antialias.reproduce import _pipeline as P
from antialias.reproduce import _runs as R
from antialias.reproduce import reproduce
from antialias.reproduce._cli import _config, add_arguments, check_preset_data
from antialias.reproduce._plan import FOLDER_WORKERS, plan_commands, train_arguments
from antialias.reproduce._runs import plan_runs, train_config, train_or_reuse
from antialias.reproduce.config import PRESETS, ReproduceConfig
from antialias.runs.model import build_model
from antialias.train import config_differences
from antialias.train._cli import build_parser as train_parser
from antialias.train._cli import config_from_args

# ----------------------------------------------------------------------------------- helpers


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_spec(tmp_path_factory) -> str:
    """Random 28x28 images in Fashion-MNIST's file format: the tiny preset needs 128 + 64 of them."""
    root = tmp_path_factory.mktemp("plan-fashion-mnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 160), ("t10k", 80)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return f"fashion-mnist:{root}"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _parsed_train_config(command: str):
    """The TrainConfig ``antialias train`` builds from a printed command (launcher stripped)."""
    argv = shlex.split(command)
    start = argv.index("antialias.train") + 1 if "antialias.train" in argv else 2
    return config_from_args(train_parser().parse_args(argv[start:]))


def _no_corruption(monkeypatch) -> None:
    monkeypatch.setattr(P, "corruption_available", lambda: (False, "not needed by these tests"))


# ----------------------------------------------------------------------------------- the presets


@pytest.mark.parametrize(("name", "data", "runs", "model"), [
    ("cifar10", "cifar10:/data/cifar", 18, "vgg13_bn_cifar"),
    ("imagenet", "imagenet:/data/imagenet", 5, "resnet50"),
])
def test_paper_scale_presets_validate(name, data, runs, model):
    cfg = ReproduceConfig.from_preset(name, data=data)
    assert (cfg.model, cfg.width, cfg.train_subset, cfg.device, cfg.threads) == (model, 1.0, None, "cuda", None)
    assert PRESETS[name]["data"] == data.partition(":")[0]
    planned = plan_runs(cfg)
    assert len(planned) == runs and {r.filter_size for r in planned} == {None, "rect2", "tri3", "tri4", "bin5"}
    for run in planned:  # every run's trainer config validates
        tcfg = train_config(cfg, run, Path("out") / run.name, "none")
        assert (tcfg.epochs, tcfg.batch_size, tcfg.device) == (cfg.epochs, cfg.batch_size, "cuda")


def test_imagenet_preset_follows_the_papers_recipe():
    cfg = ReproduceConfig.from_preset("imagenet", data="imagenet:/x")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.warmup_epochs) == (90, 256, 0.1, 1e-4, 0.0)
    assert cfg.augment == (True,) and cfg.seeds == 1


def test_cifar10_preset_model_builds_as_the_trainer_builds_it():
    cfg = ReproduceConfig.from_preset("cifar10", data="cifar10:/x")
    tcfg = train_config(cfg, plan_runs(cfg)[0], Path("o"), "none")
    model = build_model(tcfg.model, "bin5", in_channels=3, num_classes=10, model_kwargs=tcfg.model_kwargs)
    assert sum(p.numel() for p in model.parameters()) > 9_000_000  # full width, not a CPU preset's


def test_imagenet_preset_model_builds_as_the_trainer_builds_it():
    cfg = ReproduceConfig.from_preset("imagenet", data="imagenet:/x")
    tcfg = train_config(cfg, plan_runs(cfg)[0], Path("o"), "none")
    build_model(tcfg.model, None, in_channels=3, num_classes=1000, model_kwargs=tcfg.model_kwargs)


def test_paper_scale_presets_refuse_other_data_and_name_the_fix(capsys, tmp_path):
    out = str(tmp_path / "o")
    for argv, expected in (
        (["--preset", "cifar10", "--data", "fashion-mnist"], r"`--data` must be CIFAR-10 for --preset cifar10, got "
                                                             r"'fashion-mnist'. Give --data cifar10:"),
        (["--preset", "imagenet", "--data", "cifar10:/c"], r"`--data` must be ImageNet for --preset imagenet, got "
                                                           r"'cifar10:/c'. Give --data imagenet:/path/to/imagenet"),
        (["--preset", "imagenet"], r"must name the ImageNet folder for --preset imagenet, got 'imagenet'"),
    ):
        assert cli.main(["reproduce", *argv, "--out", out, "--plan"]) == 1
        err = capsys.readouterr().err
        assert expected.replace("\\", "") in err.replace("\\", ""), err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match=r"a preset sized for any data set: full, default or quick"):
        check_preset_data("cifar10", "mnist")
    check_preset_data("quick", "cifar10:/c")  # the CPU presets take any data set
    with pytest.raises(ValueError, match="must be CIFAR-10 for --preset cifar10"):
        ReproduceConfig.from_preset("cifar10", data="fashion-mnist")  # the Python API refuses it too
    check_preset_data("cifar10", "CIFAR10:/c")


def test_preset_options_apply_unless_given():
    cfg = _config(_args("--preset", "cifar10"))
    assert (cfg.data, cfg.device, cfg.threads) == ("cifar10", "cuda", None)  # the preset's own
    cfg = _config(_args("--preset", "cifar10", "--device", "cpu", "--threads", "3", "--data", "cifar10:/d"))
    assert (cfg.data, cfg.device, cfg.threads) == ("cifar10:/d", "cpu", 3)
    cfg = _config(_args("--quick"))
    assert (cfg.data, cfg.device, cfg.threads) == ("fashion-mnist", "cpu", 1)  # unchanged for the CPU presets


# ----------------------------------------------------------------------------------- the commands


@pytest.mark.parametrize("name", ["tiny", "full", "cifar10", "imagenet"])
@pytest.mark.parametrize("nproc", [None, 4])
def test_printed_commands_rebuild_the_pipelines_train_configs_exactly(name, nproc):
    data = {"cifar10": "cifar10:/data/c x", "imagenet": "imagenet:/data/i"}.get(name, "fashion-mnist:/f")
    cfg = ReproduceConfig.from_preset(name, data=data, out="my out/rep", seed=3)
    commands = plan_commands(cfg, nproc_per_node=nproc)
    planned = plan_runs(cfg)
    assert len(commands) == len(planned)
    for command, run in zip(commands, planned, strict=True):
        argv = shlex.split(command)
        if nproc is None:
            assert argv[:2] == ["antialias", "train"]
        else:
            assert argv[:5] == ["torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m", "antialias.train"]
        expected = train_config(cfg, run, Path(cfg.out) / "runs" / run.name, "auto")
        if name == "imagenet":
            assert "--num-workers" in argv and argv[argv.index("--num-workers") + 1] == str(FOLDER_WORKERS)
            expected = expected.replace(num_workers=FOLDER_WORKERS)
        got = _parsed_train_config(command)
        # Every field, the resumable ones (out, checkpoints) included, but how progress is shown.
        assert config_differences(got.to_dict(), expected.to_dict(), ignore={"progress", "log_every_steps"}) == []
        assert got.seed == 3 + run.replicate


def test_train_arguments_cover_every_kind_of_field():
    from antialias.train import TrainConfig

    tcfg = TrainConfig(model="vgg13_bn_cifar", filter_size="tri3", model_kwargs={"width": 0.125, "b": [1, 2]},
                       data="cifar10:/p", data_root="/r", train_subset=7, milestones=(3, 6), schedule="step",
                       lr=1 / 3, augment=False, deterministic=False, out="o")
    got = config_from_args(train_parser().parse_args(train_arguments(tcfg)))
    assert got == tcfg.replace(progress=got.progress, log_every_steps=got.log_every_steps)


def test_plan_options_are_checked(capsys, tmp_path):
    cfg = ReproduceConfig.from_preset("imagenet", data="imagenet:/i")
    with pytest.raises(ValueError, match=r"`--nproc-per-node` must divide the global batch size 256.*got 3"):
        plan_commands(cfg, nproc_per_node=3)
    with pytest.raises(ValueError, match=r"`--num-workers` must be an int >= 0, got -1"):
        plan_commands(cfg, num_workers=-1)
    assert "--num-workers" not in plan_commands(cfg.replace(data="cifar10:/c"))[0]  # in-memory sets: none
    out = str(tmp_path / "o")
    assert cli.main(["reproduce", "--quick", "--out", out, "--nproc-per-node", "2"]) == 1
    assert "must come with --plan" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------- end to end


def test_cli_plan_prints_the_commands_and_writes_nothing(capsys, tmp_path, data_spec):
    out = tmp_path / "rep"
    assert cli.main(["reproduce", "--tiny", "--data", data_spec, "--out", str(out), "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cfg = ReproduceConfig.from_preset("tiny", data=data_spec, out=str(out))
    assert [line for line in lines if not line.startswith("#")] == plan_commands(cfg)
    then = shlex.join(["antialias", "reproduce", "--tiny", "--data", data_spec, "--out", str(out), "--device", "cpu"])
    assert f"#   {then}" in lines
    assert not out.exists()


def test_runs_trained_by_the_plan_are_reused(tmp_path, data_spec, monkeypatch):
    """Run the printed commands (antialias train, in this process), then reproduce trains nothing."""
    cfg = ReproduceConfig.from_preset("tiny", data=data_spec, out=str(tmp_path / "rep"), filters=("bin5",))
    commands = plan_commands(cfg)
    assert len(commands) == 4
    for command in commands:
        argv = shlex.split(command)
        assert argv[:2] == ["antialias", "train"]
        assert cli.main([*argv[1:], "--progress", "none"]) == 0

    def no_training(*args, **kwargs):
        raise AssertionError("reproduce trained a run that the plan had trained")

    monkeypatch.setattr(R, "train", no_training)
    _no_corruption(monkeypatch)
    results = reproduce(cfg, stream=io.StringIO(), progress="none")
    assert {name: r["status"] for name, r in results["runs"].items()} == {r.name: "reused" for r in plan_runs(cfg)}
    assert (tmp_path / "rep" / "report.html").is_file()


@pytest.mark.xdist_group("subprocesses")  # never beside another subprocess test (CPU)
def test_a_run_trained_under_torchrun_is_reused(tmp_path, data_spec):
    """The printed torchrun command, two processes on CPU (gloo): the run is reused as is."""
    cfg = ReproduceConfig.from_preset("tiny", data=data_spec, out=str(tmp_path / "rep"), filters=("bin5",),
                                      augment=(False,), device="cpu")
    command = plan_commands(cfg, nproc_per_node=2)[1]  # bin5-noaug
    argv = shlex.split(command)
    assert argv[0] == "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv[1:], "--progress", "none"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run = plan_runs(cfg)[1]
    assert run.name == "bin5-noaug"
    tcfg = train_config(cfg, run, tmp_path / cfg.out / "runs" / run.name, "none")
    status, last = train_or_reuse(tcfg, io.StringIO())
    assert status == "reused" and last["epoch"] == 1
