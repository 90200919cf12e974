"""Tests of the evaluation driver: model/data resolution, results records, sharding, bad input.

References are independent of the driver: plain loops over images with ``F.pad`` and slicing,
``hashlib`` for file hashes, the Wilson interval's closed form, the trainer's own recorded
validation accuracy. The offsets' formula itself is tested in test_consistency.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import antialias
from antialias.data import ImageTensorDataset
from antialias.data.seeding import SHIFTS, derived_seed, index_uniforms
from antialias.eval import ConsistencyConfig, ShiftConsistency, evaluate_consistency
from antialias.eval.config import EquivarianceConfig, StabilityConfig
from antialias.eval.protocols import run_consistency, run_equivariance, run_stability, shard_range

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")

ROOT = Path(__file__).resolve().parents[2]


def tiny_set(n=40, size=12, classes=3, seed=0) -> ImageTensorDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    return ImageTensorDataset(images, torch.randint(0, classes, (n,), generator=g), [str(i) for i in range(classes)])


def pooled_net(classes=3, circular=False) -> nn.Module:
    """Conv -> ReLU -> stride-2 max-pool -> conv -> global average: shift-sensitive through the pool."""
    torch.manual_seed(0)
    mode = "circular" if circular else "zeros"
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, padding_mode=mode), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3, padding=1, padding_mode=mode), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes),
    )


def equivariant_net(classes=3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes),
    ).double()


class _Double(nn.Module):
    """Feeds float images to a float64 network (the equivariance test needs exact arithmetic)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.double())


# ------------------------------------------------------------------------------ sharding, seeding


@pytest.mark.parametrize("n,bs,world", [(10, 4, 2), (7, 3, 3), (5, 8, 2), (100, 16, 4), (3, 1, 5)])
def test_shards_are_contiguous_whole_batches_covering_every_item_once(n, bs, world):
    shards = [shard_range(n, bs, rank=r, world_size=world) for r in range(world)]
    items = [i for lo, hi, _ in shards for i in range(lo, hi)]
    assert items == list(range(n))
    for lo, _, first in shards:
        assert lo == min(first * bs, n)  # starts at a global batch boundary with that batch's index


def reference_consistency(net, data, cfg: ConsistencyConfig, normalize) -> tuple[int, int]:
    """Plain loop: each image's offsets as documented (index_uniforms keyed by (seed, SHIFTS, pass 0)), pad, slice."""
    agree = correct = 0
    m = cfg.max_shift
    key = derived_seed(cfg.seed, SHIFTS, 0)
    for i in range(len(data)):
        x = data.images[i : i + 1].float() / 255
        u = index_uniforms(key, [i], 2 * cfg.copies)[0].tolist()
        padded = F.pad(x, (m, m, m, m))
        preds = []
        for k in range(cfg.copies):
            r, c = int(u[2 * k] * (2 * m + 1)), int(u[2 * k + 1] * (2 * m + 1))
            with torch.no_grad():
                preds.append(int(net(normalize(padded[:, :, r : r + x.shape[2], c : c + x.shape[3]])).argmax(1)))
        agree += preds[0] == preds[1]
        correct += preds[0] == int(data.targets[i])
    return agree, correct


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_run_consistency_matches_a_plain_loop_and_records_everything():
    data, net = tiny_set(), pooled_net()
    cfg = ConsistencyConfig(max_shift=3, seed=7)
    rec = run_consistency(net, data, config=cfg, batch_size=16, normalize="dataset")
    mean, std = rec["data"]["normalization"]["mean"][0], rec["data"]["normalization"]["std"][0]
    pixels = data.images.double() / 255
    assert mean == pytest.approx(float(pixels.mean()), abs=1e-9)
    assert std == pytest.approx(float(pixels.std(unbiased=False)), abs=1e-9)
    agree, correct = reference_consistency(net, data, cfg, lambda x: (x - mean) / std)
    res = rec["results"]
    assert (res["consistency"]["successes"], res["consistency"]["total"]) == (agree, 40)
    assert (res["accuracy"]["successes"], res["accuracy"]["total"]) == (correct, 40)
    low, high = wilson(agree, 40)
    assert res["consistency"]["value"] == agree / 40
    assert res["consistency"]["low"] == pytest.approx(low, abs=1e-12)
    assert res["consistency"]["high"] == pytest.approx(high, abs=1e-12)
    assert rec["environment"]["antialias_version"] == antialias.__version__
    assert rec["environment"]["torch_version"] == torch.__version__
    assert rec["config"]["max_shift"] == 3 and rec["config"]["batch_size"] == 16 and rec["seed"] == 7
    assert rec["data"]["size"] == 40 and rec["data"]["image_shape"] == [1, 12, 12]
    assert rec["model"]["spec"].endswith("Sequential") and rec["created_utc"].endswith("+00:00")


def test_circularly_equivariant_net_is_fully_consistent_and_has_zero_feature_distance(tmp_path):
    data = tiny_set(n=12, size=16)
    net = _Double(equivariant_net())
    rec = run_consistency(net, data, config=ConsistencyConfig(protocol="circular", max_shift=7, copies=3))
    assert rec["results"]["consistency"]["value"] == 1.0
    eq = run_equivariance(net, data, num_images=3, step=4, pad_to=None, normalize="none")
    assert eq["results"]["num_images"] == 3 and len(eq["results"]["shifts_h"]) == 4
    assert max(eq["results"]["means"].values()) < 1e-6
    # A net with a stride-2 pool is not: its pooled features move by half a pixel at odd shifts.
    sub = run_equivariance(pooled_net(circular=True), data, num_images=3, step=1, pad_to=None, layers=["2"],
                           out=tmp_path / "sub.json")
    assert sub["results"]["layers"] == ["2.densemax", "2"]
    pooled = np.load(tmp_path / "sub.npz")["maps"][1]  # (16, 16) over shifts (dh, dw)
    even = np.zeros_like(pooled, dtype=bool)
    even[::2, ::2] = True
    assert np.abs(pooled[even]).max() < 1e-5 and pooled[~even].min() > 1e-3
    assert np.abs(np.load(tmp_path / "sub.npz")["maps"][0]).max() < 1e-5  # the dense max is equivariant


def test_stability_matches_a_plain_loop(tmp_path):
    data, net = tiny_set(n=10), pooled_net()
    rec = run_stability(net, data, max_shift=3, normalize="none", batch_size=4, out=tmp_path / "s.json")
    x = data.images.float() / 255
    padded = F.pad(x, (0, 3, 0, 3))
    with torch.no_grad():
        preds = torch.stack([net(padded[:, :, d : d + 12, d : d + 12]).argmax(1) for d in range(4)], 1)  # (N, 4)
    expect_acc = (preds == data.targets[:, None]).sum(0).tolist()
    assert [a["successes"] for a in rec["results"]["accuracy"]] == expect_acc
    assert rec["results"]["unchanged_prediction"]["successes"] == int((preds == preds[:, :1]).all(1).sum())
    arrays = np.load(tmp_path / "s.npz")
    assert np.array_equal(arrays["prediction"], preds.numpy()) and arrays["prob_correct"].shape == (10, 4)
    assert json.loads((tmp_path / "s.json").read_text())["files"] == {"json": str(tmp_path / "s.json"),
                                                                      "npz": str(tmp_path / "s.npz")}
    assert not (tmp_path / "s.png").exists()  # evaluation draws nothing; the CLI renders the figure
    # The config object and its fields as keywords are the same call.
    again = run_stability(net, data, config=StabilityConfig(max_shift=3), normalize="none", batch_size=4)
    assert again["results"] == rec["results"]


def test_equivariance_pads_28_to_32_and_writes_arrays(tmp_path):
    data = tiny_set(n=4, size=28)
    rec = run_equivariance(pooled_net(), data, num_images=2, step=8, layers=["0", "2"], out=tmp_path / "e.json")
    assert rec["config"]["input_size"] == [32, 32] and rec["config"]["padding_ltrb"] == [2, 2, 2, 2]
    arrays = np.load(tmp_path / "e.npz")
    assert arrays["maps"].shape == (3, 4, 4) and list(arrays["layers"]) == ["0", "2.densemax", "2"]
    assert arrays["maps"][:, 0, 0] == pytest.approx(0.0, abs=1e-6)  # no shift, no distance
    assert rec["results"]["means"]["2"] == pytest.approx(float(arrays["maps"][2].mean()), rel=1e-6)
    assert not (tmp_path / "e.png").exists()
    cfg = EquivarianceConfig(num_images=2, step=8, layers=("0", "2"))
    assert run_equivariance(pooled_net(), data, config=cfg)["results"]["means"] == rec["results"]["means"]


def test_bf16_autocast_runs_on_cpu():
    rec = run_consistency(pooled_net(), tiny_set(n=8), amp="bf16")
    assert rec["environment"]["amp"] == "bf16" and rec["results"]["consistency"]["total"] == 8


# ------------------------------------------------------------------------------ files


def test_never_overwrites_silently(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("precious")
    with pytest.raises(FileExistsError, match="must not exist already"):
        run_consistency(pooled_net(), tiny_set(n=4), out=out)
    assert out.read_text() == "precious"
    rec = run_consistency(pooled_net(), tiny_set(n=4), out=out, overwrite=True)
    assert json.loads(out.read_text())["results"] == rec["results"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_checkpoint_run_dir_rebuilds_model_normalisation_and_hash(tmp_path):
    from antialias.train import TrainConfig, train

    cfg = TrainConfig(model="antialias.train._demo:tiny_model", filter_size=3, data="antialias.train._demo:tiny_data",
                      batch_size=16, epochs=1, progress="none", out=str(tmp_path / "run"))
    result = train(cfg)
    # max_shift 0: both copies are the image itself, so accuracy is the trainer's own validation accuracy.
    rec = run_consistency(checkpoint=str(tmp_path / "run"), data="antialias.train._demo:tiny_data",
                          config=ConsistencyConfig(max_shift=0), batch_size=32)
    assert rec["results"]["consistency"]["value"] == 1.0
    assert rec["results"]["accuracy"]["value"] == pytest.approx(result.metrics[-1]["val_acc"], abs=1e-9)
    weights = tmp_path / "run" / "model.safetensors"
    assert rec["model"]["checkpoint"] == str(weights)
    assert rec["model"]["checkpoint_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert rec["model"]["spec"] == cfg.model and rec["model"]["filter_size"] == 3
    assert rec["data"]["normalization_source"].startswith("run config")
    # The bare .safetensors file works too and finds the run's record next to it.
    again = run_consistency(checkpoint=str(weights), data="antialias.train._demo:tiny_data",
                            config=ConsistencyConfig(max_shift=0), batch_size=32)
    assert again["results"] == rec["results"]
    with pytest.raises(ValueError, match="must fit the model rebuilt"):
        run_consistency(checkpoint=str(weights), model="antialias.train._demo:tiny_model", filter_size=None,
                        data="antialias.train._demo:tiny_data")


# ------------------------------------------------------------------------------ bad input


class _Spatial(nn.Module):
    def forward(self, x):
        return x  # (N, C, H, W): not logits


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: run_consistency(_Spatial(), tiny_set(n=4)),
            ValueError,
            r"logits of shape \(N, classes\), got \(2, 1, 12, 12\)",
        ),
        (
            lambda: run_consistency(nn.Sequential(nn.Flatten(), nn.Linear(144, 2)), tiny_set(n=4)),
            ValueError,
            "at least the data's 3 classes",
        ),
        (
            lambda: run_consistency(pooled_net(), tiny_set(n=4), config=ConsistencyConfig(crop_size=20)),
            ValueError,
            r"`crop_size` must fit in the images \(12x12\)",
        ),
        (
            lambda: run_consistency(
                pooled_net(), tiny_set(n=4), config=ConsistencyConfig(protocol="circular", max_shift=12)
            ),
            ValueError,
            "smaller than the images",
        ),
        (lambda: run_stability(pooled_net(), tiny_set(n=4), max_shift=30), ValueError, "smaller than the images"),
        (
            lambda: run_equivariance(pooled_net(), tiny_set(n=4), layers=["conv1"], pad_to=None),
            ValueError,
            "must name modules of the model, got 'conv1'. Layers that",
        ),
        (
            lambda: run_equivariance(pooled_net(), tiny_set(n=4), layers=["22"], pad_to=None),
            ValueError,
            "Did you mean '2'",
        ),
        (lambda: run_consistency("resnt20_cifar", tiny_set(n=4)), ValueError, "Did you mean 'resnet20_cifar'"),
        (lambda: run_consistency(pooled_net(), "fashion-minst"), ValueError, "Did you mean 'fashion-mnist'"),
        (
            lambda: run_consistency(pooled_net(), tiny_set(n=4), amp="fp16", device="cpu"),
            ValueError,
            "fp16 autocast needs CUDA",
        ),
        (lambda: run_consistency(pooled_net(), tiny_set(n=4), out="r.txt"), ValueError, "ending in .json"),
        (lambda: run_consistency(pooled_net(), tiny_set(n=4), batchsize=4), TypeError, "Did you mean 'batch_size'"),
        (lambda: run_consistency(checkpoint="/nonexistent/run"), FileNotFoundError, "existing run directory"),
    ],
)
def test_bad_input_is_refused_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------ torchrun

_SCRIPT = """
import json, os, sys
from antialias.eval import ConsistencyConfig, ShiftConsistency, evaluate_consistency
from antialias.eval.protocols import run_consistency, run_stability
sys.path.insert(0, {tests!r})
from test_protocols import pooled_net, tiny_set
c = run_consistency(pooled_net(), tiny_set(n=37), config=ConsistencyConfig(max_shift=3, seed=3, passes=2), batch_size=4)
s = run_stability(pooled_net(), tiny_set(n=37), max_shift=2, batch_size=4, out={out!r})
# Per-image outcomes kept by each rank (uneven shares) gather in rank order = image order.
data, lo, hi = tiny_set(n=37), *((0, 20) if os.environ["RANK"] == "0" else (20, 37))
metric = ShiftConsistency(keep_outcomes=True)
evaluate_consistency(pooled_net(), [(data.images[lo:hi].float() / 255, data.targets[lo:hi])],
                     ConsistencyConfig(max_shift=3, seed=3), metric=metric, first_index=lo)
metric.sync()
outcomes = metric.outcomes()["consistent"].tolist()
if os.environ["RANK"] == "0":
    print("RESULT" + json.dumps([c["results"], c["environment"]["world_size"], outcomes]))
"""


@pytest.mark.xdist_group("subprocesses")  # never beside another torchrun/subprocess test (ports, CPU)
def test_two_gloo_processes_give_the_results_of_one(tmp_path):
    script = tmp_path / "shard.py"
    script.write_text(_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "two.json")))
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    two, world, outcomes = json.loads(line[len("RESULT"):])
    assert world == 2
    data = tiny_set(n=37)
    whole = ShiftConsistency(keep_outcomes=True)
    evaluate_consistency(
        pooled_net(), [(data.images.float() / 255, data.targets)], ConsistencyConfig(max_shift=3, seed=3), metric=whole
    )
    assert outcomes == whole.outcomes()["consistent"].tolist()
    one = run_consistency(
        pooled_net(), tiny_set(n=37), config=ConsistencyConfig(max_shift=3, seed=3, passes=2), batch_size=4
    )
    assert two == one["results"]
    one_s = run_stability(pooled_net(), tiny_set(n=37), max_shift=2, batch_size=4, out=tmp_path / "one.json")
    two_s = json.loads((tmp_path / "two.json").read_text())
    assert two_s["results"]["accuracy"] == one_s["results"]["accuracy"]
    assert np.array_equal(np.load(tmp_path / "two.npz")["prediction"], np.load(tmp_path / "one.npz")["prediction"])
    assert two_s["environment"]["world_size"] == 2
