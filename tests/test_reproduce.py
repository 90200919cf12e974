"""Tests of ``antialias reproduce``: the whole pipeline at a tiny size, resuming after kill -9, caching,
the statistics behind the verdicts, the verdict rule, and the command line.

The tiny pipeline trains 4 runs (baseline and bin5, with and without augmentation) on 128
Fashion-MNIST images for one epoch: seconds, and meaningless as science. It needs the Fashion-MNIST
files (Debian's dataset-fashion-mnist, installed by scripts/setup.sh); without them it is skipped.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from antialias.reproduce import _evaluate as E
from antialias.reproduce import _pipeline as P
from antialias.reproduce import _robust as R
from antialias.reproduce import ReproduceConfig, add_arguments, reproduce, run_from_args
from antialias.reproduce._runs import run_name
from antialias.reproduce import _verdicts as V

REFERENCE = Path(__file__).parent / "reference" / "paper_results.md"


def _fashion_available() -> bool:
    from antialias.data import DatasetNotFoundError, load_dataset

    try:
        load_dataset("fashion-mnist", split="test")
    except DatasetNotFoundError:
        return False
    return True


needs_fashion = pytest.mark.skipif(not _fashion_available(),
                                   reason="Fashion-MNIST files missing (apt-get install dataset-fashion-mnist)")

TINY = dict(filters=("bin5",), augment=(False, True))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One complete tiny pipeline, corruption library reported missing (the message path)."""
    out = tmp_path_factory.mktemp("rep") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(P, "corruption_available", lambda: (False, "the optional corruption library is not installed; "
                                                          'install it with `pip install "antialias[corruptions]"`'))
    stream = io.StringIO()
    try:
        results = reproduce(ReproduceConfig.from_preset("tiny", out=str(out), **TINY), stream=stream, progress="log")
    finally:
        mp.undo()
    return out, results, stream.getvalue()


# ----------------------------------------------------------------------------------- the pipeline


@needs_fashion
def test_pipeline_writes_everything(tiny_run):
    out, results, log = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["config"]["filters"] == ["bin5"] and on_disk["seed"] == 0
    assert on_disk["antialias_version"] and on_disk["torch_version"] == torch.__version__
    assert sorted(on_disk["runs"]) == sorted(run_name(f, a) for f in (None, "bin5") for a in (False, True))
    for name, r in on_disk["runs"].items():
        run = out / "runs" / name
        assert (run / "model.safetensors").is_file() and (run / "config.json").is_file()
        stored = json.loads((run / "config.json").read_text())["config"]
        assert stored["augment"] == r["augment"] and stored["filter_size"] == r["filter_size"]
        assert stored["data"] == "antialias.reproduce._data:fashion_mnist_32"
    for key, fig in on_disk["figures"].items():
        assert (out / fig["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
    assert {"accuracy_vs_consistency", "stability", "heatmaps", "toy_example"} <= set(on_disk["figures"])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(on_disk["figures"])
    # the missing corruption table is named, with the install command, and its claim is "not measured"
    assert on_disk["missing"][0]["part"] == "corruption"
    assert 'pip install "antialias[corruptions]"' in html.replace("&quot;", '"')
    claims = {c["id"]: c for c in on_disk["claims"]}
    assert claims["corruption"]["verdict"] == V.NOT_MEASURED
    assert claims["stronger_filters"]["verdict"] == V.NOT_MEASURED  # one filter only
    assert all(c["verdict"] in (V.CONFIRMED, V.NOT_CONFIRMED, V.INCONCLUSIVE, V.NOT_MEASURED) for c in claims.values())
    assert "perturbation" in on_disk["runs"]["bin5-aug"]["eval"]
    assert "[" in log and "training baseline-noaug" in log  # plain progress lines when not a terminal


@needs_fashion
def test_images_are_padded_to_32(tiny_run):
    from antialias.reproduce._data import fashion_mnist_32
    from antialias.data import load_dataset

    padded, plain = fashion_mnist_32("test"), load_dataset("fashion-mnist", split="test")
    assert padded.images.shape[-2:] == (32, 32)
    assert torch.equal(padded.images[:5, :, 2:30, 2:30], plain.images[:5])
    assert padded.images[:, :, :2].sum() == 0 and padded.images[:, :, :, 30:].sum() == 0


@needs_fashion
def test_clean_accuracy_matches_the_trainers_and_per_image_counts(tiny_run):
    """Our accuracy pass (own preprocessing rebuilt from public APIs) equals the trainer's val_acc."""
    _, results, _ = tiny_run
    for name, r in results["runs"].items():
        acc = r["eval"]["clean"]["accuracy"]
        assert acc["total"] == 64
        assert math.isclose(acc["value"], r["train"]["val_acc"], abs_tol=1.5 / 64), name
        assert r["eval"]["clean"]["per_image"].count("1") == acc["successes"]
        for proto in ("crop", "circular"):
            c = r["eval"]["consistency"][proto]
            assert c["per_image"].count("1") == c["consistency"]["successes"]
            assert len(c["per_image"]) == c["consistency"]["total"] == 64


@needs_fashion
def test_second_invocation_reuses_runs_and_evaluations(tiny_run, monkeypatch):
    out, first, _ = tiny_run

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(E, "_consistency", boom)
    monkeypatch.setattr(E, "_accuracy", boom)
    monkeypatch.setattr(P, "corruption_available", lambda: (False, "missing"))
    second = reproduce(ReproduceConfig.from_preset("tiny", out=str(out), **TINY), stream=io.StringIO(), progress="none")
    assert {r["status"] for r in second["runs"].values()} == {"reused"}
    for name in first["runs"]:
        assert second["runs"][name]["eval"]["consistency"] == first["runs"][name]["eval"]["consistency"]


@needs_fashion
def test_other_settings_in_the_same_folder_are_refused(tiny_run):
    out, _, _ = tiny_run
    cfg = ReproduceConfig.from_preset("tiny", out=str(out), **TINY, epochs=2)
    with pytest.raises(ValueError, match=r"`reproduce`: `out` must hold runs of this configuration.*epochs: 1 -> 2"):
        reproduce(cfg, stream=io.StringIO(), progress="none")


@needs_fashion
def test_kill_9_then_rerun_loses_nothing(tiny_run, tmp_path, monkeypatch):
    """kill -9 in the middle of the second run; the rerun reuses the first, resumes the second, and every
    final model is bit-identical to the uninterrupted pipeline's."""
    ref_out, _, _ = tiny_run
    out = tmp_path / "out"
    code = ("import sys; from antialias.reproduce import ReproduceConfig, reproduce; "
            "reproduce(ReproduceConfig.from_preset('tiny', out=sys.argv[1], filters=('bin5',), augment=(False, True)), "
            "progress='log')")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    second = out / "runs" / "bin5-noaug" / "checkpoints"  # kill once the 2nd run has its first checkpoint
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if second.is_dir() and any(p.name.startswith("step-") for p in second.iterdir()):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the pipeline ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert not (out / "results.json").exists()
    monkeypatch.setattr(P, "corruption_available", lambda: (False, "skipped in this test"))
    results = reproduce(ReproduceConfig.from_preset("tiny", out=str(out), **TINY), stream=io.StringIO(), progress="none")
    status = {n: r["status"] for n, r in results["runs"].items()}
    assert status["baseline-noaug"] == "reused"
    assert status["bin5-noaug"] in ("resumed", "reused")  # "reused" only if the kill came after its last save
    assert status["bin5-aug"] == "trained"
    from antialias.checkpoint import load_checkpoint

    for name in ("baseline-noaug", "baseline-aug", "bin5-noaug", "bin5-aug"):
        a, _ = load_checkpoint(ref_out / "runs" / name / "model.safetensors")
        b, _ = load_checkpoint(out / "runs" / name / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


# ----------------------------------------------------------------------------------- statistics


def test_paired_difference_matches_the_variance_of_per_item_differences():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(500, generator=g) < 0.7
    b = torch.where(torch.rand(500, generator=g) < 0.2, ~a, a)
    d = E.paired_difference(a, b)
    diffs = b.double() - a.double()
    mean = float(diffs.mean())
    se = float(diffs.var(unbiased=False).sqrt()) / math.sqrt(500)
    assert d["diff"] == pytest.approx(mean)
    assert d["high"] - d["diff"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert d["n10"] == int((b & ~a).sum()) and d["n01"] == int((a & ~b).sum())
    assert E.paired_difference(E.bits(a), E.bits(b)) == d


def test_paired_mean_difference_matches_student_t():
    d = E.paired_mean_difference([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, t(0.975, 3) = 3.182446
    assert d["diff"] == 2.5
    assert d["low"] == pytest.approx(2.5 - 3.182446 * 1.290994 / 2, rel=1e-5)


def test_bits_round_trip():
    x = torch.tensor([True, False, False, True])
    assert torch.equal(E.from_bits(E.bits(x)), x)


# ----------------------------------------------------------------------------------- verdicts


def _synthetic(cons: dict[tuple[str | None, bool], float], acc: float = 0.8, n: int = 2000) -> dict:
    """Results whose per-image outcomes have exactly the given rates (the first k images succeed)."""

    def b(rate: float) -> str:
        k = round(rate * n)
        return "1" * k + "0" * (n - k)

    runs = {}
    for (f, aug), c in cons.items():
        prop = {"value": round(c * n) / n, "low": c - 0.01, "high": c + 0.01, "successes": round(c * n), "total": n}
        accp = {"value": acc, "low": acc - 0.01, "high": acc + 0.01, "successes": round(acc * n), "total": n}
        runs[run_name(f, aug)] = {"filter_size": f, "augment": aug, "eval": {
            "clean": {"accuracy": accp, "per_image": b(acc)},
            "consistency": {p: {"consistency": prop, "per_image": b(c)} for p in ("crop", "circular")},
        }}
    return {"runs": runs, "config": {"filters": ["rect2", "bin5"]}}


def test_verdicts_follow_the_rule():
    up = _synthetic({(None, False): 0.80, ("rect2", False): 0.85, ("bin5", False): 0.90,
                     (None, True): 0.88, ("rect2", True): 0.90, ("bin5", True): 0.92})
    claims = {c["id"]: c for c in V.judge(up)}
    assert claims["consistency"]["verdict"] == V.CONFIRMED
    assert claims["stronger_filters"]["verdict"] == V.CONFIRMED
    assert claims["augmentation"]["verdict"] == V.CONFIRMED  # baseline gains 8 points, bin5 only 2
    assert claims["accuracy_kept"]["verdict"] == V.CONFIRMED  # identical accuracy: nothing drops
    assert claims["accuracy_improves"]["verdict"] == V.INCONCLUSIVE
    assert claims["equivariance"]["verdict"] == V.NOT_MEASURED
    layers = [f"l{i}" for i in range(6)]
    for f, values in ((None, [0.0, 0.1, 0.3, 0.4, 0.5, 0.6]), ("bin5", [0.0, 0.05, 0.1, 0.2, 0.2, 0.3])):
        up["runs"][run_name(f, True)]["eval"]["equivariance"] = {
            "layers": layers, "means": dict(zip(layers, values)), "distance": "cosine", "num_images": 2, "step": 1}
    eq = {c["id"]: c for c in V.judge(up)}["equivariance"]
    assert eq["verdict"] == V.CONFIRMED and "lower for bin5 in 5 of 6 layers" in eq["sentence"]
    assert "+10.0 points" in claims["consistency"]["sentence"]  # bin5 without augmentation, crop

    down = _synthetic({(None, False): 0.90, ("rect2", False): 0.85, ("bin5", False): 0.80,
                       (None, True): 0.90, ("rect2", True): 0.85, ("bin5", True): 0.80})
    assert {c["id"]: c for c in V.judge(down)}["consistency"]["verdict"] == V.NOT_CONFIRMED
    flat = _synthetic({(f, a): 0.85 for f in (None, "rect2", "bin5") for a in (False, True)})
    assert {c["id"]: c for c in V.judge(flat)}["consistency"]["verdict"] == V.INCONCLUSIVE


def test_paper_tables_match_the_reference_file():
    text = REFERENCE.read_text()
    for model, values in V.PAPER_TABLES["accuracy_consistency"]["rows"].items():
        line = next(l for l in text.splitlines() if l.startswith(f"| {model} |"))
        pairs = re.findall(r"([\d.]+) / ([\d.]+)", line)
        assert [(float(a), float(c)) for a, c in pairs] == list(values)
    table = V.PAPER_TABLES["robustness"]["rows"]
    for label, values in table.items():
        line = next(l for l in text.splitlines() if l.startswith(f"| {label} |"))
        assert [float(x) for x in re.findall(r"\| ([\d.]+)", line)] == values


# ----------------------------------------------------------------------------------- command line


def test_cli_arguments_and_bad_input(tmp_path, capsys):
    import argparse

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
    from PIL import Image as PILImage

    from antialias.reproduce._data import imagenet_interleaved, resolve_data_spec

    for split in ("train", "val"):
        for cls, n in (("n01", 3), ("n02", 1), ("n03", 2)):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                PILImage.new("RGB", (40, 30), (10 * i, 0, 0)).save(folder / f"{i}.JPEG")
    spec, root = resolve_data_spec(f"imagenet:{tmp_path}")
    ds = imagenet_interleaved("train", root)
    assert ds.targets.tolist() == [0, 1, 2, 0, 2, 0]  # any prefix is balanced over the classes
    assert [int(p.stem) for p, _ in ds.samples] == [0, 0, 0, 1, 1, 2]
    image, label = ds[1]
    assert tuple(image.shape) == (3, 224, 224) and label == 1


def test_antialias_command_has_the_subcommand(tmp_path, capsys):
    from antialias.cli import build_parser, main

    args = build_parser().parse_args(["reproduce", "--quick", "--out", str(tmp_path)])
    assert args.preset == "quick" and args.out == str(tmp_path)
    code = main(["reproduce", "--tiny", "--out", str(tmp_path / "o"), "--data", "cifar10:" + str(tmp_path / "none"),
                 "--progress", "none"])
    assert code == 1 and "cifar" in capsys.readouterr().err.lower()
