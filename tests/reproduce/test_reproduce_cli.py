"""Tests of ``antialias reproduce``'s command line, configuration and data helpers (no training)."""

from __future__ import annotations

import argparse

import pytest
from PIL import Image as PILImage

from antialias.cli import build_parser, main
from antialias.reproduce import ReproduceConfig, add_arguments, run_from_args
from antialias.reproduce._cli import _config
from antialias.reproduce._data import imagenet_interleaved, resolve_data_spec
from antialias.reproduce._runs import plan_runs


def test_cli_arguments_and_bad_input(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--quick", "--out", str(tmp_path)])
    assert args.preset == "quick" and args.data == "fashion-mnist" and args.threads == 1
    assert parser.parse_args([]).preset == "default"
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--tiny"])
    bad = parser.parse_args(["--tiny", "--out", str(tmp_path), "--data", "cifar10:" + str(tmp_path / "nope"),
                             "--progress", "none"])
    assert run_from_args(bad) == 1
    assert "antialias reproduce: error:" in capsys.readouterr().err


def test_config_validation():
    with pytest.raises(ValueError, match=r"`ReproduceConfig`: `filters` must include 'bin5'"):
        ReproduceConfig(filters=("rect2",))
    with pytest.raises(ValueError, match=r"`ReproduceConfig.from_preset`: `name` must be one of"):
        ReproduceConfig.from_preset("huge")
    with pytest.raises(ValueError, match=r"`threads` must be a positive int"):
        ReproduceConfig(threads=0)
    assert ReproduceConfig.from_preset("quick", eval={"num_images": 7}).eval.num_images == 7


def test_imagenet_folders_are_interleaved_over_classes(tmp_path):
    for split in ("train", "val"):
        for cls, n in (("n01", 3), ("n02", 1), ("n03", 2)):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                PILImage.new("RGB", (40, 30), (10 * i, 0, 0)).save(folder / f"{i}.JPEG")
    _, root = resolve_data_spec(f"imagenet:{tmp_path}")
    ds = imagenet_interleaved("train", root)
    assert ds.targets.tolist() == [0, 1, 2, 0, 2, 0]  # any prefix is balanced over the classes
    assert [int(p.stem) for p, _ in ds.samples] == [0, 0, 0, 1, 1, 2]
    image, label = ds[1]
    assert tuple(image.shape) == (3, 224, 224) and label == 1


def test_antialias_command_has_the_subcommand(tmp_path, capsys):
    args = build_parser().parse_args(["reproduce", "--quick", "--out", str(tmp_path)])
    assert args.preset == "quick" and args.out == str(tmp_path)
    code = main(["reproduce", "--tiny", "--out", str(tmp_path / "o"), "--data", "cifar10:" + str(tmp_path / "none"),
                 "--progress", "none"])
    assert code == 1 and "cifar" in capsys.readouterr().err.lower()


def test_seeds_option_trains_each_seeded_configuration_that_many_times():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = _config(parser.parse_args(["--quick", "--seeds", "2"]))
    assert cfg.seeds == 2 and cfg.preset == "quick"
    names = [r.name for r in plan_runs(cfg)]
    assert "baseline-noaug-r1" in names and "bin5-aug-r1" in names and "rect2-aug-r1" not in names
    assert _config(parser.parse_args(["--preset", "full"])).seeds == 5
    with pytest.raises(ValueError, match="`seeds` must be a positive int"):
        _config(parser.parse_args(["--quick", "--seeds", "0"]))
