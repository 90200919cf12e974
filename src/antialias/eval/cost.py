"""What a model costs to train and run: time per training step, activation memory, parameters.

Time is wall-clock and depends on the machine and on what else runs on it, so :func:`step_cost`
reports the median over timed steps after warm-up steps (the median resists the pauses of a shared
CPU). Memory is counted without a profiler: the bytes of the distinct storages that autograd saves
for the backward pass of one training step (:func:`torch.autograd.graph.saved_tensors_hooks`),
parameters excluded, i.e. the activation memory that grows with the batch. It is a property of the
model and the input shape, the same on any machine and device, unlike a peak allocation (which is
reported too on CUDA, from :func:`torch.cuda.max_memory_allocated`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["saved_activation_bytes", "step_cost"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_activation_bytes(model: nn.Module, images: Tensor, labels: Tensor) -> int:
    """Bytes of the distinct non-parameter storages autograd saves in one forward of a training step.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
        >>> saved_activation_bytes(net, torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long)) > 0
        True
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and ptr != 0:
            seen[ptr] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(images), labels)
    del loss
    return int(sum(seen.values()))


def step_cost(model: nn.Module, images: Tensor, labels: Tensor, *, steps: int = 10, warmup: int = 3,
              lr: float = 0.01) -> dict[str, Any]:
    """Time and memory of a training step (forward, cross-entropy, backward, SGD step) and of inference.

    The model is trained in place for ``warmup + steps`` steps of plain SGD (pass a copy to keep
    it); what is measured does not depend on the weights.

    Args:
        model: Returns ``(N, classes)`` logits.
        images: ``(N, C, H, W)`` batch on the model's device.
        labels: ``(N,)`` classes.
        steps: Timed steps (the median is reported).
        warmup: Untimed steps first.
        lr: Learning rate of the SGD steps.

    Returns:
        ``train_step_seconds`` (median), ``train_step_seconds_all`` (each timed step),
        ``inference_seconds`` (median per batch, in inference mode), ``activation_bytes``
        (:func:`saved_activation_bytes`), ``parameters``, ``batch_size``, ``device`` and, on CUDA,
        ``peak_memory_bytes``.

    Raises:
        ValueError: ``steps`` below 1 or ``warmup`` below 0.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`step_cost`: `steps` must be an int >= 1, got {steps!r}.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"`step_cost`: `warmup` must be an int >= 0, got {warmup!r}.")
    device = images.device
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"train_step_seconds": statistics.median(times), "train_step_seconds_all": times}
    if device.type == "cuda":
        out["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
    model.eval()
    infer = []
    with torch.inference_mode():
        for i in range(warmup + steps):
            _sync(device)
            t0 = time.perf_counter()
            model(images)
            _sync(device)
            if i >= warmup:
                infer.append(time.perf_counter() - t0)
    out["inference_seconds"] = statistics.median(infer)
    out["activation_bytes"] = saved_activation_bytes(model, images, labels)
    model.eval()
    out["parameters"] = sum(p.numel() for p in model.parameters())
    out["batch_size"] = int(images.shape[0])
    out["device"] = str(device)
    return out
