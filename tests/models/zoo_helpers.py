"""Model-zoo test helpers: the parity fill rule, the deterministic inputs, the logit check.

Written from ../shared/reference/zoo_layout.md, independently of ``antialias``; the reference's
``.filt`` buffers are rebuilt from ``math.comb``.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib

import torch

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
#: The reference files, copied into the repository (tests/reference/) so CI has them.
REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[1] / "reference" / "adobe_state_dict"
#: The originals, beside the repository on the development machine (absent in CI).
SHARED_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "adobe_state_dict"


@functools.cache
def reference_cases() -> dict[str, dict]:
    """The 50 reference files (``<arch>_lpf<k>`` -> contents) from tests/reference/."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(REFERENCE_DIR.glob("*.json"))}


@functools.cache
def torchvision_cases() -> dict[str, dict]:
    """torchvision's baseline layouts and parity logits (see data/make_torchvision_reference.py)."""
    return json.loads((DATA_DIR / "torchvision_keys.json").read_text())["models"]


def ref_filt(shape: list[int]) -> torch.Tensor:
    """The reference's ``(C, 1, k, k)`` buffer: outer product of the normalised binomial row."""
    k = shape[-1]
    row = torch.tensor([math.comb(k - 1, j) for j in range(k)], dtype=torch.float64)
    row = row / row.sum()
    return (row[:, None] * row).expand(shape).contiguous()


def fill_entry(i: int, name: str, shape: list[int], dtype: str) -> torch.Tensor:
    """Entry ``i`` of a state_dict, filled by the zoo_layout.md rule."""
    dt = getattr(torch, dtype)
    if not dt.is_floating_point:
        return torch.zeros(shape, dtype=dt)  # integer tensors "unchanged": a fresh model's 0
    if name.endswith(".filt"):
        return ref_filt(shape).to(dt)
    numel = math.prod(shape)
    out = torch.empty(numel, dtype=dt)
    chunk = 1 << 20  # float64 work in slices: no 0.8 GB temporaries for VGG's first linear layer
    for start in range(0, numel, chunk):
        n = torch.arange(start, min(start + chunk, numel), dtype=torch.float64)
        base = torch.sin(n.mul_(0.37).add_(i))
        if name.endswith("running_var"):
            value = base.abs_().mul_(0.1).add_(1)
        elif name.endswith("running_mean"):
            value = base.mul_(0.05)
        elif len(shape) == 1 and name.endswith("weight"):
            value = base.mul_(0.2).add_(1)
        elif len(shape) == 1:
            value = base.mul_(0.1)
        else:
            value = base.div_(math.sqrt(numel / shape[0]))
        out[start : start + chunk] = value
    return out.reshape(shape)


def parity_fill(keys: list[list]) -> dict[str, torch.Tensor]:
    """A state_dict for the ``[name, shape, dtype]`` list (index ``i`` counts ``.filt`` entries too)."""
    return {name: fill_entry(i, name, shape, dtype) for i, (name, shape, dtype) in enumerate(keys)}


def parity_input(size: int) -> torch.Tensor:
    return torch.sin(0.011 * torch.arange(3 * size * size, dtype=torch.float64)).reshape(1, 3, size, size).float()


def check_logits(logits: torch.Tensor, expected: dict, what: str) -> None:
    """first10, sum, l2 within 1e-3 x max|logit|; argmax equal (or tied within the tolerance)."""
    y = logits.double().flatten()
    tol = 1e-3 * y.abs().max().item()
    first10 = torch.tensor(expected["logits_first10"], dtype=torch.float64)
    errors = {
        "first10": (y[:10] - first10).abs().max().item(),
        "sum": abs(y.sum().item() - expected["logits_sum"]),
        "l2": abs(y.norm().item() - expected["logits_l2"]),
    }
    bad = {k: v for k, v in errors.items() if not v <= tol}
    assert not bad, f"{what}: logits differ beyond {tol:.3g}: {bad}"
    argmax = int(y.argmax())
    assert argmax == expected["argmax"] or y[expected["argmax"]] >= y.max() - tol, (
        f"{what}: argmax {argmax} != {expected['argmax']}"
    )
