"""``antialias train`` through main(argv): zoo models on real data, the run directory rules, bad input."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
from train_helpers import cli_args, tiny_config, weights

from antialias.train import main, train
from antialias.train.loop import _lr_factor

FMNIST = Path("/usr/share/datasets/fashion-mnist")
TINY_ARGS = ["--model", "antialias.train._demo:tiny_model", "--filter-size", "none",
             "--data", "antialias.train._demo:tiny_data", "--batch-size", "16", "--lr", "0.05", "--progress", "none"]


def run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.skipif(not FMNIST.is_dir(), reason="Fashion-MNIST Debian package not installed")
@pytest.mark.parametrize("filter_size", ["none", "4"])
def test_zoo_model_on_fashion_mnist_subset(tmp_path, capsys, filter_size):
    out = tmp_path / "run"
    rc, stdout, err = run(
        [
            "--model",
            "resnet20_cifar",
            "--model-kwargs",
            '{"width": 0.25}',
            "--filter-size",
            filter_size,
            "--data",
            "fashion-mnist",
            "--train-subset",
            256,
            "--val-subset",
            200,
            "--epochs",
            1,
            "--batch-size",
            64,
            "--lr",
            0.05,
            "--warmup-epochs",
            0.5,
            "--out",
            out,
            "--progress",
            "log",
        ],
        capsys,
    )
    assert rc == 0, err
    assert "epoch 1/1 done" in stdout and f"wrote {out / 'model.safetensors'}" in stdout
    record = json.loads((out / "config.json").read_text())
    import antialias

    assert record["antialias_version"] == antialias.__version__ and record["seed"] == 0
    assert record["config"]["filter_size"] == (None if filter_size == "none" else 4)
    assert record["data"] == {**record["data"], "train_images": 256, "val_images": 200, "num_classes": 10,
                              "image_shape": [1, 28, 28]}
    (m,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert m["epoch"] == 1 and m["global_step"] == 4 and 0.0 <= m["val_acc"] <= 1.0 and m["images_per_s"] > 0
    keys = set(weights(out / "model.safetensors"))
    from antialias.models import get_model

    ref = get_model("resnet20_cifar", filter_size=None if filter_size == "none" else 4, in_channels=1,
                    num_classes=10, width=0.25)
    assert keys == set(ref.state_dict())


def test_fresh_run_refuses_a_non_empty_folder_and_overwrite_refuses_foreign_files(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", out], capsys)
    assert rc == 1 and "must be a new or empty folder" in err and "notes.txt" in err and "--resume" in err
    assert rc == 1 and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --overwrite clears only what antialias wrote: a folder with anything else is refused, naming it (issue 11)
    rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", out, "--overwrite"], capsys)
    assert rc == 1 and "notes.txt" in err and "did not write" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", out], capsys)
    assert rc == 0, err
    rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", out, "--overwrite"], capsys)
    assert rc == 0, err
    assert (out / "model.safetensors").is_file()


def test_resume_uses_stored_config_and_refuses_differences(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", out], capsys)
    assert rc == 0, err
    rc, _, err = run([*TINY_ARGS, "--epochs", 2, "--lr", 0.1, "--out", out, "--resume"], capsys)
    assert rc == 1
    assert "2 difference(s)" in err and "epochs: 1 -> 2" in err and "lr: 0.05 -> 0.1" in err and "--force-resume" in err
    rc, _, err = run(["--out", out, "--resume", "--epochs", 2, "--force-resume"], capsys)  # stored config + change
    assert rc == 0, err
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2


def test_resume_without_a_run(tmp_path, capsys):
    rc, _, err = run([*TINY_ARGS, "--out", tmp_path / "nothing", "--resume"], capsys)
    assert rc == 1 and "must hold a run to resume" in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--model", "resnet20_cifr"], "Did you mean 'resnet20_cifar'"),
        (["--model", "no_such_module_xyz:make"], "must name an importable module"),
        (["--model", "antialias.train._demo:nope"], "no attribute 'nope'"),
        (["--model", "torch.nn:Flatten", "--filter-size", "4"], "`filter_size` must be None for a factory"),
        (["--data", "fashion-mnist", "--data-root", "/nonexistent/dir"], "apt-get install -y dataset-fashion-mnist"),
        (["--data", "fashion-minst"], "Did you mean 'fashion-mnist'"),
        (["--amp", "fp16", "--device", "cpu"], "float16 training needs CUDA"),
        (["--batch-size", "1000"], "must be at most the number of training images"),
        (["--model", "torch.nn:Identity", "--filter-size", "none"], "must have trainable parameters"),
    ],
)
def test_bad_input_gives_a_clear_error(argv, match, capsys, tmp_path):
    base = [*TINY_ARGS, "--epochs", 1]
    rc, _, err = run([*base, *argv], capsys)
    assert rc == 1
    assert match in err, err
    assert "Traceback" not in err


def test_tensorboard_missing_or_written(tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
    except ModuleNotFoundError:
        rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", tmp_path / "r", "--tensorboard"], capsys)
        assert rc == 1 and "pip install 'antialias[tensorboard]'" in err
    else:
        rc, _, err = run([*TINY_ARGS, "--epochs", 1, "--out", tmp_path / "r", "--tensorboard"], capsys)
        assert rc == 0 and any((tmp_path / "r" / "tensorboard").iterdir())


def test_progress_bar_and_log_lines():
    bar, log = io.StringIO(), io.StringIO()
    train(tiny_config(epochs=1, progress="bar"), stream=bar)
    train(tiny_config(epochs=1, progress="log", log_every_steps=2), stream=log)
    assert "img_s=" in bar.getvalue() and "loss=" in bar.getvalue() and "6/6" in bar.getvalue()
    lines = log.getvalue().splitlines()
    assert [ln.split(" loss")[0] for ln in lines[:3]] == [
        "epoch 1/1 step 2/6",
        "epoch 1/1 step 4/6",
        "epoch 1/1 step 6/6",
    ]
    assert "img/s eta 0:00:0" in lines[0] and lines[-1].startswith("epoch 1/1 done: loss ")
    auto = io.StringIO()  # not a terminal -> log lines, no bar
    train(tiny_config(epochs=1, progress="auto", log_every_steps=3), stream=auto)
    assert "step 3/6" in auto.getvalue() and "img_s=" not in auto.getvalue()


def test_schedule_matches_the_formulas():
    spe = 10
    cos = _lr_factor(tiny_config(epochs=4, warmup_epochs=1.0, schedule="cosine"), spe)
    for s in range(40):
        expect = (s + 1) / 10 if s < 10 else 0.5 * (1 + math.cos(math.pi * (s - 10) / 30))
        assert cos(s) == pytest.approx(expect, abs=1e-12)
    step = _lr_factor(tiny_config(epochs=4, schedule="step", milestones=(2, 3), gamma=0.1), spe)
    assert [step(s) for s in (0, 19, 20, 29, 30, 39)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_actual_learning_rates_follow_the_schedule():
    result = train(tiny_config(epochs=2, warmup_epochs=1.0, lr=0.1))
    # After epoch 1 (6 warm-up steps) the rate is the peak times the cosine at 0; after epoch 2 it is 0.
    assert [m["lr"] for m in result.metrics] == pytest.approx([0.1, 0.0], abs=1e-12)


def test_finetune_from_baseline_weights(tmp_path):
    from antialias.checkpoint import save_checkpoint
    from antialias.models import get_model
    from antialias.models.transfer import transfer_baseline

    kw = {"in_channels": 1, "num_classes": 2, "width": 0.25}
    base = get_model("resnet20_cifar", filter_size=None, **kw)
    with torch.no_grad():  # unlike any seed's initialisation
        for i, p in enumerate(base.parameters()):
            p.add_(0.25 + 0.01 * i)
    save_checkpoint(tmp_path / "base.safetensors", base.state_dict(), {})
    expect = get_model("resnet20_cifar", filter_size=4, **kw)
    transfer_baseline(base.state_dict(), expect)
    # lr=0: the parameters stay as transferred (BatchNorm running statistics still move).
    result = train(tiny_config(model="resnet20_cifar", filter_size=4, model_kwargs={"width": 0.25}, lr=0.0,
                               max_steps=1, finetune_from=str(tmp_path / "base.safetensors")))
    for name, p in result.model.named_parameters():
        assert torch.equal(p.detach(), expect.get_parameter(name).detach()), name
    fresh = train(tiny_config(model="resnet20_cifar", filter_size=4, model_kwargs={"width": 0.25}, lr=0.0, max_steps=1))
    assert not all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(), result.model.parameters(), strict=True))


def test_same_seed_same_weights_and_determinism_setting_restored():
    before = torch.are_deterministic_algorithms_enabled()
    a = train(tiny_config(epochs=1, seed=3))
    b = train(tiny_config(epochs=1, seed=3))
    c = train(tiny_config(epochs=1, seed=4))
    assert all(
        torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    )
    assert not all(
        torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), c.model.state_dict().values(), strict=True)
    )
    assert torch.are_deterministic_algorithms_enabled() == before


def test_cli_args_helper_round_trip():
    from antialias.train._cli import build_parser, config_from_args

    cfg = tiny_config(epochs=2)
    assert config_from_args(build_parser().parse_args(cli_args(cfg))) == cfg


def test_data_specs_are_not_mistaken_for_factories():
    from antialias._factory import is_factory_spec
    from antialias.data import DATASET_NAMES

    reserved = DATASET_NAMES
    assert is_factory_spec("antialias.train._demo:tiny_data", reserved)
    assert is_factory_spec("my_data.py:make", reserved)
    for spec in ("imagefolder:photos", "imagenet:data", "cifar10:cifar", "fashion-mnist:/x", "fashion-mnist"):
        assert not is_factory_spec(spec, reserved), spec
