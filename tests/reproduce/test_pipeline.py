"""Tests of the ``antialias reproduce`` pipeline at a tiny size: what it writes, the verdicts it
reaches, caching, refusing other settings, and resuming after ``kill -9``.

The tiny pipeline trains 4 runs (baseline and bin5, with and without augmentation) on 128 images
for one epoch: seconds, and meaningless as science. It reads Fashion-MNIST when the files are
installed (Debian's dataset-fashion-mnist, see scripts/setup.sh) and otherwise a small generated
data set written as Fashion-MNIST IDX files to a temporary folder (``fashion-mnist:PATH``), so the
same code path runs either way. ANTIALIAS_TEST_GENERATED_DATA=1 forces the generated data.
"""

from __future__ import annotations

import html as htmllib
import io
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from antialias.checkpoint import load_checkpoint
from antialias.data import DatasetNotFoundError, load_dataset
from antialias.eval._stats import paired_mean_difference, paired_proportion_difference
from antialias.reproduce import ReproduceConfig, reproduce
from antialias.reproduce import _evaluate as E
from antialias.reproduce import _pipeline as P
from antialias.reproduce import _verdicts as V
from antialias.reproduce._data import fashion_mnist_32

RUNS = ("baseline-noaug", "bin5-noaug", "baseline-aug", "bin5-aug")  # the order they are trained in


# ----------------------------------------------------------------------------------- data


def _fashion_installed() -> bool:
    try:
        load_dataset("fashion-mnist", split="test")
    except DatasetNotFoundError:
        return False
    return True


def _write_idx(path: Path, array: np.ndarray) -> None:
    """One uint8 IDX file (magic 0x00000800 + ndim, big-endian sizes, data)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images of 10 learnable classes: stripes of period 2..6, horizontal (classes 0-4) or
    vertical (5-9), random phase, with noise; labels cycle through the classes. Learnable: trained on
    256 of them for 8 epochs, the tiny preset's models reach 63-83% test accuracy (chance: 10%)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    grid = np.arange(28)
    images = np.empty((n, 28, 28), dtype=np.float64)
    for i, label in enumerate(labels):
        period = 2 + label % 5
        wave = (((grid + rng.integers(period)) % period) < period / 2).astype(np.float64)  # (28,) e.g. 1,1,0
        images[i] = wave[:, None] * np.ones(28) if label < 5 else np.ones((28, 1)) * wave[None, :]
    images = 40 + 170 * images + rng.normal(0, 20, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="session")
def data_spec(tmp_path_factory) -> str:
    """``--data`` of the tiny runs: installed Fashion-MNIST, or generated stripes in its file format."""
    if _fashion_installed() and os.environ.get("ANTIALIAS_TEST_GENERATED_DATA") != "1":
        return "fashion-mnist"
    root = tmp_path_factory.mktemp("generated-fashion-mnist")
    for prefix, n, seed in (("train", 256, 0), ("t10k", 128, 1)):
        images, labels = stripes(n, seed)
        _write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return f"fashion-mnist:{root}"


def _tiny(out: Path, data: str, **changes: Any) -> ReproduceConfig:
    return ReproduceConfig.from_preset("tiny", out=str(out), data=data, filters=("bin5",), augment=(False, True),
                                       **changes)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_spec):
    """One complete tiny pipeline, corruption library reported missing (the message path)."""
    out = tmp_path_factory.mktemp("rep") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(P, "corruption_available", lambda: (False, "the optional corruption library is not installed; "
                                                          'install it with `pip install "antialias[corruptions]"`'))
    stream = io.StringIO()
    try:
        results = reproduce(_tiny(out, data_spec), stream=stream, progress="log")
    finally:
        mp.undo()
    return out, results, stream.getvalue()


# ----------------------------------------------------------------------------------- what is written


def test_generated_data_is_valid_fashion_mnist_files(tmp_path):
    images, labels = stripes(20, seed=3)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    ds = load_dataset("fashion-mnist", split="test", root=str(tmp_path))
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images)) and ds.targets.tolist() == labels.tolist()
    padded = fashion_mnist_32.__wrapped__("test", str(tmp_path))  # uncached: a fresh folder
    assert padded.images.shape == (20, 1, 32, 32)


def test_pipeline_writes_everything(tiny_run):
    out, _, log = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["config"]["filters"] == ["bin5"] and on_disk["seed"] == 0
    assert on_disk["antialias_version"] and on_disk["torch_version"] == torch.__version__
    assert sorted(on_disk["runs"]) == sorted(RUNS)
    for name, r in on_disk["runs"].items():
        run = out / "runs" / name
        assert (run / "model.safetensors").is_file() and (run / "config.json").is_file()
        stored = json.loads((run / "config.json").read_text())["config"]
        assert stored["augment"] == r["augment"] and stored["filter_size"] == r["filter_size"]
        assert stored["data"] == "antialias.reproduce._data:fashion_mnist_32"
        assert r["status"] == "trained"
    for key, fig in on_disk["figures"].items():
        assert (out / fig["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
    assert {"accuracy_vs_consistency", "stability", "heatmaps", "toy_example"} <= set(on_disk["figures"])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(on_disk["figures"])
    # the missing corruption table is named, with the install command
    assert [m["part"] for m in on_disk["missing"]] == ["corruption"]
    assert 'pip install "antialias[corruptions]"' in html.replace("&quot;", '"')
    assert "perturbation" in on_disk["runs"]["bin5-aug"]["eval"]
    assert "equivariance" in on_disk["runs"]["bin5-aug"]["eval"]
    assert "equivariance" not in on_disk["runs"]["bin5-noaug"]["eval"]  # maps of the last augmentation only
    assert [line.split("] ", 1)[1] for line in log.splitlines() if line.startswith("[") and "] training " in line] == [
        f"training {name}" for name in RUNS]  # plain progress lines when not a terminal, in plan order
    for c in on_disk["claims"]:  # the page renders the claims of results.json, badge and sentence
        assert (
            f'<span class="badge {c["verdict"].replace(" ", "-")}">{c["verdict"]}</span>{htmllib.escape(c["sentence"])}'
            in html
        )


def test_images_are_padded_to_32(tiny_run, data_spec):
    root = data_spec.partition(":")[2] or None
    padded, plain = fashion_mnist_32("test", root), load_dataset("fashion-mnist", split="test", root=root)
    assert padded.images.shape[-2:] == (32, 32)
    assert torch.equal(padded.images[:5, :, 2:30, 2:30], plain.images[:5])
    assert padded.images[:, :, :2].sum() == 0 and padded.images[:, :, :, 30:].sum() == 0


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


# ----------------------------------------------------------------------------------- the verdicts


def _rule(directions: list[str], claimed: str) -> str:
    """The documented decision rule, written out again."""
    against = {"up": "down", "down": "up"}[claimed]
    n = len(directions)
    if directions.count(claimed) > n / 2 and directions.count(against) == 0:
        return V.CONFIRMED
    if directions.count(against) > n / 2:
        return V.NOT_CONFIRMED
    return V.INCONCLUSIVE


def _direction(low: float, high: float) -> str:
    return "up" if low > 0 else "down" if high < 0 else "flat"


def test_tiny_run_verdicts_follow_the_rule_on_the_recorded_numbers(tiny_run):
    """Each verdict of the tiny run, recomputed here from the per-image outcomes in results.json."""
    out, _, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    ev = {name: r["eval"] for name, r in results["runs"].items()}
    claims = {c["id"]: c for c in results["claims"]}
    assert list(claims) == ["consistency", "accuracy_kept", "accuracy_improves", "stronger_filters", "augmentation",
                            "equivariance", "corruption", "perturbation"]
    # what the configuration decides: one filter, no corruption library
    assert claims["stronger_filters"]["verdict"] == V.NOT_MEASURED and claims["stronger_filters"]["comparisons"] == []
    assert claims["corruption"]["verdict"] == V.NOT_MEASURED and "corruptions" in claims["corruption"]["sentence"]

    def paired(kind: str, aug: str, proto: str | None = None) -> dict[str, Any]:
        get = (lambda e: e["clean"]["per_image"]) if kind == "clean" else (
            lambda e: e["consistency"][proto]["per_image"])
        a, b = get(ev[f"baseline-{aug}"]), get(ev[f"bin5-{aug}"])
        d = paired_proportion_difference(a, b)
        assert d["diff"] == (b.count("1") - a.count("1")) / len(a)  # counted directly from the bits
        return d

    # consistency: bin5 against the baseline, both augmentation settings, both protocols
    expected = [paired("consistency", aug, proto) for aug in ("noaug", "aug") for proto in ("crop", "circular")]
    got = claims["consistency"]["comparisons"]
    assert [(c["augment"], c["protocol"]) for c in got] == [(a, p) for a in (False, True) for p in ("crop", "circular")]
    for c, d in zip(got, expected, strict=True):
        assert (c["low"], c["high"], c["diff"]) == pytest.approx((d["low"], d["high"], d["diff"]))
        assert c["direction"] == _direction(d["low"], d["high"])
    assert claims["consistency"]["verdict"] == _rule([c["direction"] for c in got], "up")

    # accuracy: kept (none significantly down) and improves (the majority rule)
    dirs = [_direction(d["low"], d["high"]) for d in (paired("clean", "noaug"), paired("clean", "aug"))]
    assert [c["direction"] for c in claims["accuracy_kept"]["comparisons"]] == dirs
    kept = V.CONFIRMED if "down" not in dirs else V.NOT_CONFIRMED if dirs.count("down") > 1 else V.INCONCLUSIVE
    assert claims["accuracy_kept"]["verdict"] == kept
    assert claims["accuracy_improves"]["verdict"] == _rule(dirs, "up")

    # augmentation: per image, (baseline's gain from augmentation) - (bin5's gain), per protocol
    dirs = []
    for proto, c in zip(("crop", "circular"), claims["augmentation"]["comparisons"], strict=True):
        bits = {name: [int(x) for x in ev[name]["consistency"][proto]["per_image"]] for name in RUNS}
        gain_base = [y - x for x, y in zip(bits["baseline-noaug"], bits["baseline-aug"], strict=True)]
        gain_bin5 = [y - x for x, y in zip(bits["bin5-noaug"], bits["bin5-aug"], strict=True)]
        assert c["diff"] == pytest.approx(np.mean(gain_base) - np.mean(gain_bin5))
        d = paired_mean_difference(gain_bin5, gain_base)
        assert (c["low"], c["high"]) == pytest.approx((d["low"], d["high"]))
        dirs.append(_direction(d["low"], d["high"]))
    assert claims["augmentation"]["verdict"] == _rule(dirs, "up")

    # equivariance: per-layer mean distances of bin5 against the baseline (claimed: lower)
    base, bin5 = ev["baseline-aug"]["equivariance"]["means"], ev["bin5-aug"]["equivariance"]["means"]
    d = paired_mean_difference(list(base.values()), list(bin5.values()))
    want = {"down": V.CONFIRMED, "up": V.NOT_CONFIRMED, "flat": V.INCONCLUSIVE}[_direction(d["low"], d["high"])]
    assert claims["equivariance"]["verdict"] == want

    # perturbation: flip probability per sequence (claimed: lower), with augmentation
    d = paired_mean_difference(
        ev["baseline-aug"]["perturbation"]["per_unit"], ev["bin5-aug"]["perturbation"]["per_unit"]
    )
    assert claims["perturbation"]["verdict"] == _rule([_direction(d["low"], d["high"])], "down")


# ----------------------------------------------------------------------------------- caching and resuming


def test_second_invocation_reuses_runs_and_evaluations(tiny_run, data_spec, monkeypatch):
    out, first, _ = tiny_run

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(E, "_consistency", boom)
    monkeypatch.setattr(E, "_accuracy", boom)
    monkeypatch.setattr(P, "corruption_available", lambda: (False, "missing"))
    second = reproduce(_tiny(out, data_spec), stream=io.StringIO(), progress="none")
    assert {r["status"] for r in second["runs"].values()} == {"reused"}
    for name in first["runs"]:
        assert second["runs"][name]["eval"]["consistency"] == first["runs"][name]["eval"]["consistency"]


def test_other_settings_in_the_same_folder_are_refused(tiny_run, data_spec):
    out, _, _ = tiny_run
    with pytest.raises(ValueError, match=r"`reproduce`: `out` must hold runs of this configuration.*epochs: 1 -> 2"):
        reproduce(_tiny(out, data_spec, epochs=2), stream=io.StringIO(), progress="none")


# The child kills itself with SIGKILL right after the first checkpoint of the second run is on disk:
# a deterministic point in the middle of a run (each tiny run has 2 steps, a checkpoint after each).
KILLED_CHILD = """
import os, signal, sys
from antialias.reproduce import ReproduceConfig, reproduce
from antialias.runs import rundir

save = rundir.RunDir.save

def save_then_die(self, *args, **kwargs):
    path = save(self, *args, **kwargs)
    if self.path.name == "bin5-noaug":
        os.kill(os.getpid(), signal.SIGKILL)
    return path

rundir.RunDir.save = save_then_die
reproduce(ReproduceConfig.from_preset("tiny", out=sys.argv[1], data=sys.argv[2], filters=("bin5",),
                                      augment=(False, True)), progress="log")
"""


@pytest.mark.xdist_group("subprocesses")  # never beside another subprocess test (CPU)
def test_kill_9_then_rerun_loses_nothing(tiny_run, data_spec, tmp_path, monkeypatch):
    """kill -9 after the second run's first checkpoint; the rerun reuses the first run, resumes the
    second from that checkpoint, trains the rest, and every model is bit-identical to the
    uninterrupted pipeline's."""
    ref_out, _, _ = tiny_run
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(out), data_spec], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # the state the kill left: run 1 finished, run 2 at its first checkpoint, nothing after it
    assert (out / "runs" / "baseline-noaug" / "model.safetensors").is_file()
    second = out / "runs" / "bin5-noaug"
    assert [p.name for p in (second / "checkpoints").iterdir() if p.name.startswith("step-")] == ["step-00000001"]
    assert not (second / "model.safetensors").exists()
    assert not (out / "runs" / "baseline-aug").exists() and not (out / "results.json").exists()

    monkeypatch.setattr(P, "corruption_available", lambda: (False, "skipped in this test"))
    results = reproduce(_tiny(out, data_spec), stream=io.StringIO(), progress="none")
    status = {n: r["status"] for n, r in results["runs"].items()}
    assert status == {"baseline-noaug": "reused", "bin5-noaug": "resumed", "baseline-aug": "trained",
                      "bin5-aug": "trained"}
    for name in RUNS:
        a, _ = load_checkpoint(ref_out / "runs" / name / "model.safetensors")
        b, _ = load_checkpoint(out / "runs" / name / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
