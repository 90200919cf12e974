"""Helpers for the corruption tests (imported as `corruption_helpers`): tiny models and fake released sets."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

HAS_LIBRARY = importlib.util.find_spec("imagecorruptions") is not None
# imagecorruptions is an optional extra: tests that generate corruptions skip without it.
needs_library = pytest.mark.skipif(
    not HAS_LIBRARY, reason='needs the corruptions extra: pip install "antialias[corruptions]"'
)
SEV = (1, 2, 3, 4, 5)


class BadOutput(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)  # (N, C, 1, 1), not (N, classes)


def tiny_model(channels=3, classes=4):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes)
    )


def write_cifar10c(root, names, n=6, seed=0):
    """CIFAR-10-C layout: ``<name>.npy`` (5 * n, 32, 32, 3) uint8 severity-major, ``labels.npy`` repeated 5 times."""
    rng = np.random.default_rng(seed)
    labels = np.tile(rng.integers(0, 4, n), 5).astype(np.int64)
    np.save(root / "labels.npy", labels)
    arrays = {c: rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8) for c in names}
    for c, a in arrays.items():
        np.save(root / f"{c}.npy", a)
    return arrays, labels[:n]


def write_imagenet_c(root, names, classes=("n01", "n02"), per_class=2, seed=0):
    """ImageNet-C layout: ``<name>/<severity>/<wnid>/img<i>.png``, 8x8 random images."""
    rng = np.random.default_rng(seed)
    for c in names:
        for s in SEV:
            for wnid in classes:
                (root / c / str(s) / wnid).mkdir(parents=True)
                for i in range(per_class):
                    array = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(array).save(root / c / str(s) / wnid / f"img{i}.png")
