"""antialias.eval._cli: flags generated from the config fields, usage errors, and the figure the CLI writes.

Runs ``antialias.cli.main(argv)`` (as a user would) on a tiny image folder and a factory model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap

import pytest
import torch
from PIL import Image

from antialias.cli import build_parser, main
from antialias.eval._cli import configs_from_args, field_help
from antialias.eval.config import METRIC_CONFIGS, EvalOptions, StabilityConfig

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")


def _subparser(metric: str) -> argparse.ArgumentParser:
    parser = build_parser()
    eval_parser = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["eval"]
    return next(a for a in eval_parser._subparsers._group_actions if a.dest == "metric").choices[metric]


@pytest.mark.parametrize("metric", list(METRIC_CONFIGS))
def test_every_field_is_a_flag_with_its_docstring_as_help(metric):
    sub = _subparser(metric)
    actions = {a.dest: a for a in sub._actions}
    for cls in (EvalOptions, METRIC_CONFIGS[metric]):
        helps = field_help(cls)
        for f in dataclasses.fields(cls):
            assert f.name in actions, f"--{f.name} missing from `antialias eval {metric}`"
            assert actions[f.name].help.startswith(helps[f.name][:30])
            assert actions[f.name].default is argparse.SUPPRESS  # not given -> not in the namespace


@pytest.mark.parametrize(
    "argv",
    [
        # Every flag of the former hand-written parser still parses (tests/test_cli_eval.py runs them).
        ["consistency", "--protocol", "circular", "--max-shift", "3", "--crop-size", "none", "--pad-mode", "reflect",
         "--copies", "3", "--passes", "2", "--per-batch", "--only-correct", "--seed", "4", "--confidence", "0.9"],
        ["stability", "--max-shift", "3", "--protocol", "crop", "--crop-size", "8", "--pad-mode", "zeros"],
        ["equivariance", "--layers", "0", "2", "--step", "4", "--distance", "l2", "--num-images", "2", "--pad-to", "0",
         "--shifts-per-batch", "8", "--no-split-max"],
        ["corruption", "--corruptions", "contrast", "--severities", "1", "4", "--normaliser", "alexnet", "--no-clean",
         "--seed", "2"],
        ["perturbation", "--perturbations", "translate", "--preset", "cifar", "--step", "2", "--normaliser", "r.json",
         "--seed", "1"],
    ],
)
def test_former_flags_parse_into_the_configs(argv):
    common = ["--model", "m:f", "--filter-size", "none", "--weights", "w", "--model-kwargs", '{"width": 0.5}',
              "--data", "cifar10", "--data-root", "/d", "--download", "--split", "train", "--subset", "5", "--resize",
              "9", "--center-crop", "8", "--normalize", "none", "--batch-size", "3", "--device", "cpu", "--amp",
              "bf16", "--num-workers", "1", "--out", "x.json", "--force"]
    args = build_parser().parse_args(["eval", *argv, *common])
    options, config = configs_from_args(args)
    assert options == EvalOptions(
        model="m:f",
        filter_size=None,
        weights="w",
        model_kwargs={"width": 0.5},
        data="cifar10",
        data_root="/d",
        download=True,
        split="train",
        subset=5,
        resize=9,
        center_crop=8,
        normalize="none",
        batch_size=3,
        device="cpu",
        amp="bf16",
        num_workers=1,
        out="x.json",
        overwrite=True,
    )
    assert type(config) is METRIC_CONFIGS[argv[0]] and config != type(config)()


def test_data_dependent_defaults_fill_only_what_is_not_given():
    parse = build_parser().parse_args
    _, config = configs_from_args(parse(["eval", "stability", "--data", "imagenet:/x", "--out", "x.json"]))
    assert config == StabilityConfig(max_shift=32, crop_size=224)
    _, config = configs_from_args(parse(["eval", "stability", "--data", "imagenet:/x", "--max-shift", "5",
                                         "--crop-size", "none", "--out", "x.json"]))
    assert config == StabilityConfig(max_shift=5, crop_size=None)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["consistency", "--copies", "1"], "`ConsistencyConfig`: `copies` must be an integer >= 2, got 1."),
        (["consistency", "--confidence", "2"], "`confidence` must be a number in (0, 1), got 2.0."),
        (["corruption", "--severities", "7"], "`severities` must be a non-empty list of integers in 1..5"),
        (["stability", "--out", "x.txt"], "`out` must be a path ending in .json, got 'x.txt'."),
        (["stability", "--max-shift", "-2"], "argument --max-shift: must be an integer >= 0, got '-2'"),
        (["stability", "--crop-size", "0"], "argument --crop-size: must be an integer >= 1 or none, got '0'"),
    ],
)
def test_refused_values_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", *argv, "--model", "m:f", *(["--out", "x.json"] if "--out" not in argv else [])])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: antialias eval" in err and message in err


def test_help_shows_the_documented_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "consistency", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Shifted copies per image that must agree (at least 2). (default: 2)" in out
    assert "Largest shift in pixels (default 4; 31 for imagenet data, the paper's offsets 0..31)." in out
    assert "--force, --no-force Replace existing output files. (default: False)" in out


FACTORY = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny(in_channels=3, num_classes=2):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, num_classes))
    """
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    (root / "nets.py").write_text(FACTORY)
    g = torch.Generator().manual_seed(0)
    for c in ("ant", "bee"):
        folder = root / "images" / "test" / c
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=g).numpy()).save(
                folder / f"{i}.png"
            )
    return root


def test_the_cli_writes_the_figure_and_never_replaces_one_silently(workspace, tmp_path, capsys):
    out = tmp_path / "s.json"
    argv = [
        "eval",
        "stability",
        "--model",
        f"{workspace / 'nets.py'}:tiny",
        "--data",
        f"imagefolder:{workspace / 'images'}",
        "--max-shift",
        "2",
        "--out",
        str(out),
    ]
    (tmp_path / "s.png").write_bytes(b"mine")
    assert main(argv) == 1  # refused before the work: nothing written
    assert "s.png" in capsys.readouterr().err and not out.exists() and (tmp_path / "s.png").read_bytes() == b"mine"
    assert main([*argv, "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 's.png'}" in printed and f"wrote {tmp_path / 's.npz'}" in printed
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads(out.read_text())
    assert record["metric"] == "stability" and set(record["files"]) == {"json", "npz"}


def test_a_config_file_sets_defaults_that_flags_override(tmp_path):
    toml = tmp_path / "eval.toml"
    toml.write_text('data = "imagenet:/x"\nbatch-size = 2\nmax_shift = 3\nout = "r.json"\nmodel = "m:f"\n')
    args = build_parser().parse_args(["eval", "stability", "--config", str(toml), "--max-shift", "5"])
    options, config = configs_from_args(args)
    assert (options.batch_size, options.out, options.data) == (2, "r.json", "imagenet:/x")
    assert config == StabilityConfig(max_shift=5, crop_size=224)  # the flag wins; imagenet's crop as not given
    as_json = tmp_path / "eval.json"
    as_json.write_text(json.dumps({"max_shift": 3, "out": "r.json"}))
    _, config = configs_from_args(build_parser().parse_args(["eval", "stability", "--config", str(as_json)]))
    assert config.max_shift == 3


@pytest.mark.parametrize(
    "text,message",
    [
        (
            'max_shfit = 3\nout = "r.json"\n',
            "`max_shfit` must be an option of `antialias eval stability`, got unknown key "
            "'max_shfit'. Did you mean 'max_shift'?",
        ),
        ("max_shift = [\n", "`--config` must hold valid TOML"),
        ("max_shift = 3\n", "the following arguments are required: --out"),
    ],
)
def test_config_file_errors_are_usage_errors(tmp_path, capsys, text, message):
    toml = tmp_path / "eval.toml"
    toml.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["eval", "stability", "--model", "m:f", "--config", str(toml)])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-3", "3.5", "tri9"])
def test_a_bad_filter_size_is_a_usage_error_that_says_what_is_wrong(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "consistency", "--filter-size", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "`--filter-size`: `filter_size` must be" in err and repr(value) in err
    assert "_filter_size" not in err  # never the name of a private parser function
