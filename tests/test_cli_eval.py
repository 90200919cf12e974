"""`antialias eval` and `antialias train` on the command line: main(argv) on tiny data, files, exit codes."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

import antialias
from antialias.cli import main

FACTORIES = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny(in_channels=3, num_classes=2):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, num_classes))

    def spatial(in_channels=3, num_classes=2):
        return nn.Conv2d(in_channels, num_classes, 1)  # (N, classes, H, W): not logits
    """
)
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A factory module and an ImageFolder (test split, 2 classes x 6 RGB 16x16 PNGs)."""
    root = tmp_path_factory.mktemp("cli_eval")
    (root / "nets.py").write_text(FACTORIES)
    g = torch.Generator().manual_seed(0)
    for c in ("ant", "bee"):
        folder = root / "images" / "test" / c
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=g).numpy()
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def common(ws: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", f"{ws / 'nets.py'}:tiny", "--data", f"imagefolder:{ws / 'images'}", "--batch-size", "5",
            "--out", str(out), *extra]


def one_line_error(capsys, prog: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "warning:" not in ln]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def test_train_subcommand_is_wired(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--epochs", "--filter-size", "--resume", "--out"):
        assert flag in out


def test_eval_help_lists_metrics(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for metric in ("consistency", "stability", "equivariance"):
        assert metric in out


def test_consistency_on_an_image_folder_writes_a_complete_record(workspace, tmp_path, capsys):
    out = tmp_path / "c.json"
    argv = ["eval", "consistency", *common(workspace, out, "--max-shift", "2", "--seed", "3", "--copies", "3",
                                           "--passes", "2", "--pad-mode", "reflect", "--only-correct")]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    rec = json.loads(out.read_text())
    assert rec["metric"] == "consistency" and rec["command"] == ["antialias", *argv]
    assert rec["config"] == {"protocol": "crop", "max_shift": 2, "crop_size": None, "pad_mode": "reflect", "copies": 3,
                             "passes": 2, "per_batch": False, "only_correct": True, "seed": 3, "confidence": 0.95,
                             "centre": True, "resamples": 2000, "batch_size": 5}
    assert rec["seed"] == 3
    assert rec["environment"]["antialias_version"] == antialias.__version__
    assert rec["environment"]["torch_version"] == torch.__version__
    assert rec["data"]["spec"] == f"imagefolder:{workspace / 'images'}" and rec["data"]["size"] == 12
    assert rec["data"]["normalization_source"] == "data set default"  # ImageNet statistics for folders
    assert rec["data"]["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    acc = rec["results"]["accuracy"]
    assert acc["total"] == 24 and acc["low"] <= acc["value"] <= acc["high"]  # 12 images x 2 passes
    # only_correct: consistency is measured over the correctly classified (first copies) only.
    assert rec["results"]["consistency"]["total"] == acc["successes"]


def test_refuses_to_overwrite_unless_forced(workspace, tmp_path, capsys):
    out = tmp_path / "c.json"
    out.write_text("keep me")
    assert main(["eval", "consistency", *common(workspace, out)]) == 1
    assert "must not exist already" in one_line_error(capsys, "antialias eval consistency")
    assert out.read_text() == "keep me"
    assert main(["eval", "consistency", *common(workspace, out, "--force")]) == 0
    assert json.loads(out.read_text())["metric"] == "consistency"


def test_stability_and_equivariance_write_json_png_npz(workspace, tmp_path):
    assert main(["eval", "stability", *common(workspace, tmp_path / "s.json", "--max-shift", "3")]) == 0
    rec = json.loads((tmp_path / "s.json").read_text())
    assert rec["results"]["shifts"] == [0, 1, 2, 3] and len(rec["results"]["accuracy"]) == 4
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "s.npz").is_file()
    assert main(["eval", "equivariance", *common(workspace, tmp_path / "e.json", "--num-images", "2", "--step", "4",
                                                 "--layers", "0", "2", "--distance", "l2")]) == 0
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["results"]["layers"] == ["0", "2.densemax", "2"] and rec["results"]["distance"] == "l2"
    assert rec["config"]["input_size"] == [32, 32]  # 16 is not a multiple of 32: padded by 8 on each side
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "e.npz").is_file()


def test_train_then_evaluate_the_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "antialias.train._demo:tiny_model", "--filter-size", "none", "--data",
                 "antialias.train._demo:tiny_data", "--epochs", "1", "--batch-size", "16", "--progress", "none",
                 "--out", str(run)]) == 0
    out = tmp_path / "r.json"
    assert main(["eval", "consistency", "--checkpoint", str(run), "--data", "antialias.train._demo:tiny_data",
                 "--max-shift", "1", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    weights = run / "model.safetensors"
    assert rec["model"]["checkpoint_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert rec["model"]["filter_size"] is None and rec["model"]["training_config"]["epochs"] == 1
    assert rec["data"]["normalization_source"] == "run config (eval_transform)"


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST is not installed (apt install fashion-mnist)")
def test_zoo_model_on_fashion_mnist_subset(tmp_path, capsys):
    out = tmp_path / "f.json"
    code = main(
        [
            "eval",
            "consistency",
            "--model",
            "resnet20_cifar",
            "--filter-size",
            "tri3",
            "--model-kwargs",
            '{"width": 0.25}',
            "--subset",
            "24",
            "--batch-size",
            "12",
            "--protocol",
            "circular",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err.strip()  # warnings are one line each, no source lines
    assert err.startswith("antialias eval consistency: warning:") and "randomly initialised" in err
    assert len(err.splitlines()) == 1
    rec = json.loads(out.read_text())
    assert rec["model"]["spec"] == "resnet20_cifar" and rec["model"]["filter_size"] == "tri3"
    assert rec["data"]["size"] == 24 and rec["data"]["full_size"] == 10000 and rec["data"]["image_shape"] == [1, 28, 28]


def test_corruption_and_perturbation_with_a_reference_result(workspace, tmp_path):
    pytest.importorskip("imagecorruptions")
    base = ["--corruptions", "contrast", "brightness", "--severities", "1", "4"]
    assert main(["eval", "corruption", *common(workspace, tmp_path / "k.json", *base)]) == 0
    # The model's own result as the reference: every CE is exactly 100.
    assert main(["eval", "corruption", *common(workspace, tmp_path / "k2.json", *base, "--normaliser",
                                               str(tmp_path / "k.json"))]) == 0
    rec = json.loads((tmp_path / "k2.json").read_text())
    assert rec["metric"] == "corruption" and rec["config"]["severities"] == [1, 4]
    assert {name: ce["value"] for name, ce in rec["results"]["ce"].items()} == {"contrast": 100.0, "brightness": 100.0}
    assert main(["eval", "perturbation", *common(workspace, tmp_path / "p.json", "--perturbations", "translate",
                                                 "--subset", "4")]) == 0
    rec = json.loads((tmp_path / "p.json").read_text())
    fp = rec["results"]["flip_probability"]["translate"]
    assert list(rec["results"]["flip_probability"]) == ["translate"] and 0 <= fp["low"] <= fp["value"] <= fp["high"]


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "robustness", "--out", "x.json"],
        ["eval", "consistency", "--model", "m:f"],  # no --out
        ["eval", "consistency", "--model", "m:f", "--out", "x.json", "--max-shift", "-1"],
        ["eval", "consistency", "--model", "m:f", "--out", "x.json", "--filter-size", "tri9"],
        ["eval", "stability", "--model", "m:f", "--out", "x.json", "--protocol", "roll"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_model_is_a_usage_error(capsys):
    assert main(["eval", "consistency", "--out", "x.json"]) == 2
    assert "one of --model or --checkpoint is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "metric,change,message",
    [
        ("consistency", {"--model": "resnt20_cifar"}, "Did you mean 'resnet20_cifar'"),
        ("consistency", {"--data": "cifar-1O"}, "Did you mean"),
        ("consistency", {"--model": "{ws}/nets.py:spatial"}, r"logits of shape (N, classes), got (2, 2, 16, 16)"),
        ("consistency", {"--crop-size": "24"}, "`crop_size` must fit in the images (16x16)"),
        (
            "consistency",
            {"--max-shift": "16", "--protocol": "circular"},
            "`max_shift` must be smaller than the images (16x16)",
        ),
        ("stability", {"--max-shift": "40"}, "`max_shift` must be smaller than the images"),
        (
            "equivariance",
            {"--layers": "conv"},
            "got 'conv'. Layers that can be measured: 0 (Conv2d), 1 (ReLU), 2 (MaxPool2d)",
        ),
        ("equivariance", {"--layers": "03"}, "got '03'. Did you mean '3' or '0'?"),
        ("consistency", {"--checkpoint": "{ws}/missing", "--model": None}, "existing run directory"),
        ("consistency", {"--amp": "fp16", "--device": "cpu"}, "fp16 autocast needs CUDA"),
    ],
)
def test_runtime_errors_exit_1_with_one_line(workspace, tmp_path, capsys, metric, change, message):
    flags = common(workspace, tmp_path / "r.json")
    argv = dict(zip(flags[::2], flags[1::2], strict=True))
    for key, value in change.items():
        if value is None:
            argv.pop(key)
        else:
            argv[key] = value.format(ws=workspace)
    flat = [item for pair in argv.items() for item in pair]
    assert main(["eval", metric, *flat]) == 1
    assert message in one_line_error(capsys, f"antialias eval {metric}")
    assert not (tmp_path / "r.json").exists()
