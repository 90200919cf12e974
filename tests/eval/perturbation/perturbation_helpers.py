"""Helpers for the perturbation tests (imported as `perturbation_helpers`): a plain reference loop and tiny models."""

from __future__ import annotations

import torch
from torch import nn


def reference_flips(logits, noise, step):
    """Plain loop: per sequence, the fraction of compared pairs whose argmax differs; then the mean."""
    per_sequence = []
    for seq in logits:
        pred = [int(f.argmax()) for f in seq]
        pairs = [(0, t) for t in range(1, len(pred))] if noise else [(t, t + step) for t in range(len(pred) - step)]
        per_sequence.append(sum(pred[a] != pred[b] for a, b in pairs) / len(pairs))
    return sum(per_sequence) / len(per_sequence)


class ConstantModel(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.register_buffer("logits", torch.linspace(1, 0, classes))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + 0 * x.flatten(1)[:, :1]


def tiny_model(classes=6):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))
