"""Shared test set-up: hypothesis profile, seeding and independent reference formulations.

The references here are written from the paper's definition (binomial rows from ``math.comb``,
padding ``[floor((k-1)/2), ceil((k-1)/2)]`` by explicit index arithmetic, then one depthwise
convolution with the full outer-product kernel). They share no code with ``antialias``, so a
test comparing against them can fail. They are handed to tests as session fixtures (hypothesis
forbids function-scoped ones).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import itertools
import math
import os
import socket
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from hypothesis import settings

# CI default: few examples, no deadline (2 shared cores), derandomized so a failure reproduces.
# HYPOTHESIS_PROFILE=thorough runs a randomized, 20x larger search.
settings.register_profile("antialias", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=600, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "antialias"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread for every test, restored afterwards.

    CI runs two xdist workers on two cores; on the small tensors of these tests ATen's thread pool
    is pure overhead, and OpenMP's spinning threads made the zoo and trainer tests several times
    slower (measured: ~3x the CPU time). Trainer subprocesses get OMP_NUM_THREADS=1 likewise.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Regenerating the torchvision facts needs torchvision; pytest must not import the script.
collect_ignore = ["models/data/make_torchvision_reference.py"]
# The integration tier needs torchvision and timm, which live in their own venv
# (scripts/setup_integration.sh; run by scripts/test_integration.sh); the unit suite's venv has neither.
if importlib.util.find_spec("torchvision") is None or importlib.util.find_spec("timm") is None:
    collect_ignore.append("integration")


def _loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test downloads: connecting anywhere but 127.0.0.1 / ::1 fails loudly (the download tests'
    servers on the loopback keep working)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):  # type: ignore[index]
            raise AssertionError(f"a test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def ref_row(spec) -> torch.Tensor:
    """float64 row for an int size (Pascal's row) or an explicit list/tensor of taps."""
    if isinstance(spec, int):
        taps = [math.comb(spec - 1, i) for i in range(spec)]
    else:
        taps = [float(t) for t in spec]
    row = torch.tensor(taps, dtype=torch.float64)
    return row / row.sum()


def ref_pad_index(length: int, before: int, after: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Source index and validity mask of each padded position along one axis."""
    i = torch.arange(-before, length + after)
    valid = torch.ones_like(i, dtype=torch.bool)
    if mode == "circular":
        src = i % length
    elif mode == "replicate":
        src = i.clamp(0, length - 1)
    elif mode == "reflect":
        src = i.abs()
        src = torch.where(src > length - 1, 2 * (length - 1) - src, src)
        if (src < 0).any() or (src > length - 1).any():
            raise ValueError("reference reflect needs before, after < length")
    elif mode == "zeros":
        valid = (i >= 0) & (i < length)
        src = i.clamp(0, length - 1)
    else:
        raise ValueError(mode)
    return src, valid


def ref_pad(x: torch.Tensor, pads: Sequence[tuple[int, int]], modes: Sequence[str]) -> torch.Tensor:
    """Pad every spatial axis of batched ``x`` with its own ``(before, after)`` and mode."""
    for axis, ((before, after), mode) in enumerate(zip(pads, modes, strict=True)):
        dim = 2 + axis
        src, valid = ref_pad_index(x.shape[dim], before, after, mode)
        x = x.index_select(dim, src)
        shape = [1] * x.ndim
        shape[dim] = -1
        x = torch.where(valid.reshape(shape), x, torch.zeros((), dtype=x.dtype))  # not x * mask: inf * 0 = nan
    return x


def ref_blur_pool(x: torch.Tensor, rows, stride, mode="reflect", modes=None) -> torch.Tensor:
    """The reference formulation: pad, then depthwise correlation with the full outer-product kernel.

    ``rows`` holds one spec per spatial axis (int size or explicit taps); ``stride`` an int or one
    per axis; ``modes`` optionally overrides the padding mode per axis. Works on batched input.
    The correlation is written out as a sum over the kernel's taps of strided slices (exactly what
    a depthwise ``conv2d`` computes; ATen's float64 depthwise conv is ~100x slower on CPU, and
    :func:`ref_conv` checks the two agree).
    """
    nd = x.ndim - 2
    rows = [ref_row(r) for r in rows]
    strides = [stride] * nd if isinstance(stride, int) else list(stride)
    modes = [mode] * nd if modes is None else list(modes)
    kernel = rows[0]
    for r in rows[1:]:
        kernel = torch.einsum("...i,j->...ij", kernel, r)
    pads = [((len(r) - 1) // 2, len(r) // 2) for r in rows]
    xp = ref_pad(x, pads, modes)
    out_len = [(n - len(r)) // s + 1 for n, r, s in zip(xp.shape[2:], rows, strides, strict=True)]
    out = torch.zeros(*x.shape[:2], *out_len, dtype=x.dtype)
    for taps in itertools.product(*(range(len(r)) for r in rows)):
        window = tuple(slice(t, t + s * (o - 1) + 1, s) for t, s, o in zip(taps, strides, out_len, strict=True))
        out = out + kernel[taps].to(x.dtype) * xp[(Ellipsis, *window)]
    return out


def ref_conv(x: torch.Tensor, rows, stride, mode="reflect") -> torch.Tensor:
    """The reference formulation literally: pad, then ``F.conv{1,2,3}d`` with the full kernel."""
    nd = x.ndim - 2
    rows = [ref_row(r) for r in rows]
    kernel = rows[0]
    for r in rows[1:]:
        kernel = torch.einsum("...i,j->...ij", kernel, r)
    xp = ref_pad(x, [((len(r) - 1) // 2, len(r) // 2) for r in rows], [mode] * nd)
    c = x.shape[1]
    weight = kernel.to(x.dtype).expand(c, 1, *kernel.shape).contiguous()
    return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd](xp, weight, stride=stride, groups=c)


@pytest.fixture(scope="session")
def reference():
    """Namespace of the reference helpers (session scope so hypothesis tests may use it)."""

    class _Ref:
        row = staticmethod(ref_row)
        pad = staticmethod(ref_pad)
        blur_pool = staticmethod(ref_blur_pool)
        conv = staticmethod(ref_conv)

    return _Ref
