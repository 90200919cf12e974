"""The forward pass of every protocol: autocast by name, and the check that a model returns logits."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

__all__ = ["AMP_CHOICES", "autocast", "check_logits"]

AMP_CHOICES = ("none", "bf16", "fp16")


def autocast(device: torch.device | str, amp: str) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for ``amp`` in :data:`AMP_CHOICES` (``"none"``: no autocast)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"`eval`: `amp` must be one of {AMP_CHOICES}, got {amp!r}.")
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def check_logits(logits: Any, rows: int, where: str, num_classes: int | None = None) -> None:
    """Raise unless ``logits`` is ``(rows, classes)`` with at least ``num_classes`` classes."""
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != rows:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"`{where}`: the model must return logits of shape (N, classes), got {got} for a batch of {rows}. "
            "Wrap the model so that forward returns the class scores only."
        )
    if num_classes is not None and logits.shape[1] < num_classes:
        raise ValueError(
            f"`{where}`: the model must score at least the data's {num_classes} classes, got {logits.shape[1]} "
            "outputs. Build it with num_classes matching the data (--model-kwargs '{\"num_classes\": N}')."
        )
