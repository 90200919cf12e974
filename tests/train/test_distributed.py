"""torchrun: 2 gloo processes reach the weights of 1 process with the same global batch.

Why the model has no BatchNorm and no dropout: with DDP each rank normalises its own half-batch
(SyncBatchNorm, which would fix that, runs only on GPUs in PyTorch), and dropout masks come from
per-rank RNG streams; both legitimately differ from one process. Everything else (data order,
keyed augmentation, loss scaling, gradient averaging) is built to match, so the only difference
left is float summation order (the gradient all-reduce).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from train_helpers import cli_args, env, tiny_config, weights

from antialias.train import train


@pytest.mark.xdist_group("subprocesses")  # never beside another torchrun/subprocess test (ports, CPU)
def test_two_gloo_processes_match_one(tmp_path):
    cfg = tiny_config(epochs=2, batch_size=16, filter_size=3, momentum=0.9, weight_decay=1e-3,
                      warmup_epochs=0.5, label_smoothing=0.1, progress="log")
    one = train(cfg.replace(out=str(tmp_path / "one"), progress="none"))
    two_out = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "antialias.train", *cli_args(cfg.replace(out=str(two_out)))]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Only rank 0 shows progress: each epoch's summary line appears once.
    assert proc.stdout.count("epoch 1/2 done") == 1, proc.stdout
    record = json.loads((two_out / "config.json").read_text())
    assert record["world_size"] == 2
    w1, w2 = weights(one.weights), weights(two_out / "model.safetensors")
    assert sorted(w1) == sorted(w2)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6)
    # Metrics are reduced over both ranks: the same numbers as one process (up to float order).
    m1 = one.metrics
    m2 = [json.loads(line) for line in (two_out / "metrics.jsonl").read_text().splitlines()]
    assert [m["global_step"] for m in m2] == [m["global_step"] for m in m1] == [6, 12]
    for a, b in zip(m1, m2, strict=True):
        for key in ("loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert abs(a[key] - b[key]) < 1e-5, (key, a[key], b[key])
