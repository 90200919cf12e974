"""Internal shift-equivariance: per-layer feature distance maps (Zhang, ICML 2019, VGG13-bn on CIFAR).

For each chosen layer ``F_l`` and each circular shift ``(dh, dw)`` of the input ``X``, the distance
between ``Shift(F_l(X))`` and ``F_l(Shift(X))``, averaged over positions and images. Feature maps
smaller than the input are first upsampled to the input size by the author's recursive 2x circular
interpolation, per axis ``(A, B, C, D) -> (A, (A+B)/2, B, (B+C)/2, C, (C+D)/2, D, (D+A)/2)``, so a
shift of the input is a shift of every map. Max-pools are split into the dense (stride-1, circular)
max and the pool's output, as in the paper's figure.

The distance (not published) is a parameter: ``"cosine"`` (default; 1 - cosine similarity of the
channel vectors at each position) or ``"l2"`` (``|a - b| / (|a| + |b|)`` per position, in [0, 1]).
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from antialias.layers import _BlurPoolNd, _MaxBlurPoolNd

__all__ = ["EquivarianceResult", "circular_upsample", "default_layers", "feature_distance_maps", "rss_bytes"]

DISTANCES = ("cosine", "l2")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Mish, nn.Tanh, nn.Sigmoid)


def circular_upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample ``(N, C, h, w)`` to ``size`` by circular linear interpolation.

    For power-of-two factors this equals the author's recursive 2x scheme
    ``(A, B, ...) -> (A, (A+B)/2, B, ...)`` exactly (midpoints of a piecewise-linear periodic
    signal lie on it), computed in one pass per axis; other integer factors interpolate the same way.

    Examples:
        >>> circular_upsample(torch.tensor([[[[0., 2., 4., 6.]]]]), (1, 8))
        tensor([[[[0., 1., 2., 3., 4., 5., 6., 3.]]]])
    """
    h, w = x.shape[-2:]
    if size[0] % h or size[1] % w:
        raise ValueError(
            f"`circular_upsample`: a feature map of size {h}x{w} cannot be upsampled to {size[0]}x{size[1]} by "
            "an integer factor. Use an input size that is a power-of-two multiple of every layer's size "
            "(e.g. 32x32: pad 28x28 images by 2)."
        )
    if (h, w) == tuple(size):
        return x
    # Two small GEMMs with the (size, n) interpolation matrices: ~2x faster than F.interpolate here.
    rows = _interpolation_matrix(h, size[0], x.dtype, x.device)  # (H, h)
    cols = _interpolation_matrix(w, size[1], x.dtype, x.device)  # (W, w)
    return rows @ x @ cols.T


def _upsample_last(x: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`circular_upsample` of channels-last maps: ``(N, h, w, K) -> (N, H, W, K)``, two batched GEMMs."""
    n, hh, ww, k = x.shape
    if (hh, ww) == tuple(size):
        return x
    rows = _interpolation_matrix(hh, size[0], x.dtype, x.device)  # (H, h)
    cols = _interpolation_matrix(ww, size[1], x.dtype, x.device)  # (W, w)
    t = torch.matmul(cols, x.reshape(n * hh, ww, k))  # (N*h, W, K)
    return torch.matmul(rows, t.view(n, hh, size[1] * k)).view(n, size[0], size[1], k)


def _direct_distances(feats: Tensor, ref: Tensor, rolls: tuple[Tensor, Tensor | None], size: tuple[int, int],
                      cc: int, distance: str) -> Tensor:
    """Mean distance per shift, ``(B,)``, of ``feats`` ``(B*M, C, h', w')`` to ``ref`` ``(M, C, h', w')``,
    upsampling ``cc`` channels at a time.

    The mean over positions does not change when both maps are rolled back by the shift, so instead of rolling
    the base map once per shift, each shifted map is rolled back inside its upsampling (``rolls``: from
    :func:`_rolled_interpolation`) and compared with the unrolled base map. The layout is chosen so that the
    channel sums do not run over a strided channel dim (there they were ~10x slower than the products
    themselves: torch.profiler, vgg13_bn_cifar at 32x32): maps at the input size keep channels first
    (:func:`_same_size_distances`); maps upsampled 2x put channels between rows and columns, ``(B, H, M, k, W)``;
    smaller maps put them last (single-thread timings at 32x32 and 224x224: each layout wins where it is used,
    by up to 2.5x).
    """
    m, c, hf, wf = ref.shape
    b = feats.shape[0] // m
    h, w = size
    rows, cols = rolls  # (B, H, h'), (B, W, w'), or for maps at the input size positions (B, H*W) and None
    if cols is None:
        return _same_size_distances(feats, ref, rows, cc, distance)
    middle = 2 * hf >= h and 2 * wf >= w
    acc = na = nb = None
    for c0 in range(0, c, cc):
        k = min(cc, c - c0)
        low = feats[:, c0:c0 + k].float()  # (B*M, k, h', w')
        ref_low = ref[:, c0:c0 + k]  # (M, k, h', w')
        if middle:
            t = torch.bmm(low.reshape(b, m * k * hf, wf), cols.transpose(1, 2))  # (B, M*k*h', W)
            t = t.view(b, m * k, hf, w).transpose(1, 2).reshape(b, hf, m * k * w)  # (B, h', M*k*W)
            up = torch.bmm(rows, t).view(b, h, m, k, w)  # (B, H, M, k, W)
            del t
            ref_up = circular_upsample(ref_low, (h, w)).permute(2, 0, 1, 3).contiguous()  # (H, M, k, W)
            dim = 3
        else:
            low = low.view(b, m, k, hf, wf).permute(0, 3, 4, 1, 2).reshape(b, hf, wf, m * k)  # (B, h', w', M*k)
            up = torch.matmul(cols[:, None], low)  # (B, h', W, M*k)
            up = torch.bmm(rows, up.view(b, hf, w * m * k)).view(b, h * w, m, k)  # (B, H*W, M, k)
            ref_low = ref_low.permute(2, 3, 0, 1).reshape(1, hf, wf, m * k)
            ref_up = _upsample_last(ref_low, (h, w)).view(h * w, m, k)  # (H*W, M, k)
            dim = 3
        del low
        if middle:
            sq_a, sq_b = (up * up).sum(dim), (ref_up * ref_up).sum(dim - 1)
        else:  # a reduction over the last dim: no (B, H*W, M, k) temporary
            sq_a = torch.linalg.vector_norm(up, dim=dim).square_()
            sq_b = torch.linalg.vector_norm(ref_up, dim=dim - 1).square_()
        # the dot product (cosine) or the squared difference (l2)
        x = up.mul_(ref_up).sum(dim) if distance == "cosine" else up.sub_(ref_up).square_().sum(dim)
        del up, ref_up
        if acc is None or na is None or nb is None:
            acc, na, nb = x, sq_a, sq_b
        else:
            acc += x
            na += sq_a
            nb += sq_b
    if acc is None or na is None or nb is None:
        raise ValueError(f"`feature_distance_maps`: a map must have at least one channel, got {c}.")
    return _mean_distance(acc, na, nb, distance)


def _same_size_distances(feats: Tensor, ref: Tensor, index: Tensor, cc: int, distance: str) -> Tensor:
    """:func:`_direct_distances` for maps at the input size: nothing to upsample, so channels stay first and the
    shifted maps are rolled back by one gather along positions (``index``: ``(B, H*W)``); the channel sums then
    run over an outer dim, ~3x faster than channels last with few channels (measured, 8 channels at 32x32)."""
    m, c, h, w = ref.shape
    b = feats.shape[0] // m
    f = feats.reshape(b, m, c, h * w)
    g = ref.reshape(m, c, h * w)
    acc = na = nb = None
    for c0 in range(0, c, cc):
        k = min(cc, c - c0)
        up = f[:, :, c0:c0 + k].float().gather(3, index[:, None, None, :].expand(b, m, k, h * w))  # (B, M, k, H*W)
        ref_k = g[:, c0:c0 + k].float()  # (M, k, H*W)
        sq_a = (up * up).sum(2)  # (B, M, H*W)
        sq_b = (ref_k * ref_k).sum(1)  # (M, H*W)
        # the dot product (cosine) or the squared difference (l2)
        x = up.mul_(ref_k).sum(2) if distance == "cosine" else up.sub_(ref_k).square_().sum(2)
        del up
        if acc is None or na is None or nb is None:
            acc, na, nb = x, sq_a, sq_b
        else:
            acc += x
            na += sq_a
            nb += sq_b
    if acc is None or na is None or nb is None:
        raise ValueError(f"`feature_distance_maps`: a map must have at least one channel, got {c}.")
    return _mean_distance(acc, na, nb, distance)


def _mean_distance(acc: Tensor, na: Tensor, nb: Tensor, distance: str) -> Tensor:
    """``(B,)``: the per-position distance averaged over everything but the first dim.

    ``acc``: the channel dot product (cosine) or squared difference (l2) of the two maps at each position,
    overwritten; ``na``, ``nb``: their squared channel norms (``nb`` broadcast over the shifts).
    """
    eps = 1e-8
    if distance == "cosine":
        ratio = acc.div_(torch.mul(na, nb).sqrt_().clamp_min_(eps))  # a.b / max(|a| |b|, eps)
        # Two all-zero vectors (common after ReLU) are identical: distance 0, not 1 (|a|, |b| < eps).
        ratio.masked_fill_(torch.maximum(na, nb) < eps * eps, 1.0)
        return (1 - ratio.flatten(1).mean(1)).float()
    d = acc.sqrt_().div_((na.sqrt() + nb.sqrt()).clamp_min_(eps))  # |a - b| / max(|a| + |b|, eps)
    return d.flatten(1).mean(1).float()


def _gram_is_cheaper(channels: int, low: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether :func:`_gram_distances` beats :func:`_direct_distances` for maps of size ``low``.

    Per channel and shifted image the direct way costs about ``H W (h' + 24)`` (the upsampling GEMMs and ~6
    passes over the upsampled map), the Gram way, per shifted image, two Gram matrices ``C (h' w')^2`` and two
    pair-matrix products ``H h'^2 w'^2 + H w'^2 W``, all float64 GEMMs. Fitted to single-thread timings of both
    at 32x32 and 224x224 (maps 1..112, 16..64 channels).
    """
    (hf, wf), (h, w) = low, size
    if (hf, wf) == (h, w):
        return False
    gram = 2 * (channels * (hf * wf) ** 2 + h * hf**2 * wf**2 + h * wf**2 * w)
    direct = channels * h * w * (hf + 24)
    return 12 * gram < 7 * direct


def _gram_bytes_per_shift(m: int, c: int, low: tuple[int, int], size: tuple[int, int]) -> int:
    """What :func:`_gram_distances` holds per shift of the ``m`` images (float64): the features, two Gram
    matrices and a rearranged copy, the row stage and its gather, and ~8 full-size maps (the dot product and
    norms, and the distance's temporaries)."""
    (hf, wf), (h, w) = low, size
    n = hf * wf
    return 8 * m * (c * n + 3 * n * n + 2 * h * wf * wf + 8 * h * w)


def _gram_distances(feats: Tensor, ref: Tensor, mats: tuple[Tensor, ...], distance: str) -> Tensor:
    """What :func:`_direct_distances` computes, from the channel Gram matrices of the small maps.

    Upsampling is linear and each output sample reads 2x2 input samples, so the dot product of two upsampled
    maps at a position is a sum of 16 weighted entries of ``P = F^T G`` (``F``, ``G``: ``(C, h' w')``): one
    ``(h' w')^2 C`` GEMM and two small GEMMs per shifted image instead of ``O(H W C)`` work at the input size.
    ``mats``: from :func:`_gram_matrices` for the shifts of ``feats``.
    """
    m, c, hf, wf = ref.shape
    b = feats.shape[0] // m
    rows_ab, cols_ab, rows_aa, cols_aa, rows_bb, cols_bb = mats
    dt = rows_ab.dtype
    f = feats.to(dt).reshape(b, m, c, hf * wf)  # (B, M, C, h'w')
    g = ref.to(dt).reshape(m, c, hf * wf)  # (M, C, h'w')
    ft = f.transpose(-1, -2)  # (B, M, h'w', C)
    dot = _local_quadratic(ft @ g, rows_ab, cols_ab, (hf, wf))  # (B, M, H, W)
    na = _local_quadratic(ft @ f, rows_aa, cols_aa, (hf, wf)).clamp_min_(0)
    del f, ft
    nb = _local_quadratic((g.transpose(-1, -2) @ g)[None], rows_bb, cols_bb, (hf, wf)).clamp_min_(0)  # (1, M, H, W)
    acc = dot if distance == "cosine" else (na + nb - 2 * dot).clamp_min_(0)
    return _mean_distance(acc, na, nb, distance)


def _gram_matrices(shifts: Sequence[tuple[int, int]], low: tuple[int, int], size: tuple[int, int],
                   device: torch.device) -> tuple[Tensor, ...]:
    """The pair matrices (:func:`_pair_matrix`) :func:`_gram_distances` needs for ``shifts``: rows and columns
    for the dot product (the shifted map rolled back by its shift, as in :func:`_direct_distances`, against the
    base map), for the shifted map's norm and, ``(1, ...)``, for the base map's norm.

    float64: a position's squared norm or dot product is a weighted sum of 16 entries of a Gram matrix, which
    cancels where the upsampled values are small next to their neighbours (float32 was off by 4e-5 on signed
    single-channel maps), and l2's squared difference ``|a|^2 + |b|^2 - 2 a.b`` cancels where the maps agree.
    """
    dt = torch.float64
    dh = torch.tensor([s[0] for s in shifts], dtype=torch.long, device=device)
    dw = torch.tensor([s[1] for s in shifts], dtype=torch.long, device=device)
    zero = torch.zeros(1, dtype=torch.long, device=device)
    (hf, wf), (h, w) = low, size
    return (_pair_matrix(hf, h, dh, zero, dt), _pair_matrix(wf, w, dw, zero, dt),
            _pair_matrix(hf, h, dh, dh, dt), _pair_matrix(wf, w, dw, dw, dt),
            _pair_matrix(hf, h, zero, zero, dt), _pair_matrix(wf, w, zero, zero, dt))


def _pair_matrix(n: int, size: int, first: Tensor, second: Tensor, dtype: torch.dtype) -> Tensor:
    """``(B, size, n * n)``: the products of the taps of two upsamplings of an axis of ``n`` samples to
    ``size``, rolled back by ``first`` and ``second`` ``(B,)``; entry ``[b, y, i * n + i2]`` weighs the pair
    of input samples ``(i, i2)`` in output sample ``y`` (at most 4 nonzeros per row)."""
    idx, wt = _taps(n, size, first.device)  # (size, 2)
    pos = torch.arange(size, device=first.device)
    ya = (pos[None, :] + first[:, None]) % size  # (B, size)
    yb = (pos[None, :] + second[:, None]) % size
    index = (idx[ya][..., :, None] * n + idx[yb][..., None, :]).flatten(2)  # (B, size, 4)
    weight = (wt[ya][..., :, None] * wt[yb][..., None, :]).flatten(2)
    out = torch.zeros(len(first), size, n * n, dtype=torch.float64, device=first.device)
    return out.scatter_add_(2, index, weight).to(dtype)


@functools.lru_cache(maxsize=64)
def _taps(n: int, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(size, 2)`` input indices and float64 weights of each output sample of :func:`circular_upsample`
    (the nonzeros of the rows of :func:`_interpolation_matrix`)."""
    pos = torch.arange(size, dtype=torch.float64) * n / size
    low = pos.floor().long()
    frac = pos - low
    idx = torch.stack([low % n, (low + 1) % n], 1)
    return idx.to(device), torch.stack([1 - frac, frac], 1).to(device)


def _local_quadratic(p: Tensor, rows: Tensor, cols: Tensor, low: tuple[int, int]) -> Tensor:
    """``out[b, m] = rows[b] @ p'[b, m] @ cols[b].T``, ``(B, M, H, W)``, where ``p'[(i, i2), (j, j2)]`` is
    ``p[(i, j), (i2, j2)]``.

    ``p``: ``(B, M, h' w', h' w')``; ``rows``, ``cols``: ``(B, H, h'^2)``, ``(B, W, w'^2)`` from
    :func:`_pair_matrix` (dense: two small GEMMs beat gathers of the 4 nonzeros, measured).
    """
    hf, wf = low
    bb, mm = p.shape[:2]
    pp = p.view(bb, mm, hf, wf, hf, wf).permute(0, 1, 2, 4, 3, 5).reshape(bb, mm, hf * hf, wf * wf)
    return torch.matmul(torch.matmul(rows[:, None], pp), cols[:, None].transpose(-1, -2))


def _rolled_interpolation(shifts: Sequence[tuple[int, int]], low: tuple[int, int], size: tuple[int, int],
                          device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Per shift ``(dh, dw)``, the upsampling of ``low``-sized maps to ``size`` rolled back by the shift.

    Returns ``(rows, cols)``, ``(B, H, h)`` and ``(B, W, w)``: ``rows[i] @ x @ cols[i].T`` is
    ``circular_upsample(x, size).roll((-dh, -dw), (-2, -1))``; or, when ``low == size``, ``(index, None)``
    with ``index`` ``(B, H * W)``: ``x.flatten(-2)[..., index[i]]`` is ``x.roll((-dh, -dw), (-2, -1)).flatten(-2)``.
    """
    h, w = size
    dh = torch.tensor([s[0] for s in shifts], dtype=torch.long)
    dw = torch.tensor([s[1] for s in shifts], dtype=torch.long)
    ys = (torch.arange(h)[None, :] + dh[:, None]) % h  # (B, H): row y of the rolled-back map is row y + dh
    xs = (torch.arange(w)[None, :] + dw[:, None]) % w  # (B, W)
    if tuple(low) == tuple(size):
        return (ys[:, :, None] * w + xs[:, None, :]).flatten(1).to(device), None
    rows = _interpolation_matrix(low[0], h, torch.float32, device)[ys.to(device)]  # (B, H, h)
    cols = _interpolation_matrix(low[1], w, torch.float32, device)[xs.to(device)]  # (B, W, w)
    return rows, cols


@functools.lru_cache(maxsize=64)
def _interpolation_matrix(n: int, size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(size, n)``: row ``i`` linearly interpolates the circle of ``n`` samples at ``i * n / size``."""
    pos = torch.arange(size, dtype=torch.float64) * n / size
    low = pos.floor().long()
    frac = pos - low
    out = torch.zeros(size, n, dtype=torch.float64)
    out[torch.arange(size), low % n] += 1 - frac
    out[torch.arange(size), (low + 1) % n] += frac
    return out.to(dtype=dtype, device=device)


def default_layers(model: nn.Module) -> list[str]:
    """Names of every conv, norm, activation and pooling module, in module order."""
    kinds = (nn.Conv2d, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, *_ACTIVATIONS,
             nn.MaxPool2d, nn.AvgPool2d, _BlurPoolNd, _MaxBlurPoolNd)
    return [name for name, module in model.named_modules() if name and isinstance(module, kinds)]


def _dense_max(module: nn.Module, x: Tensor) -> Tensor | None:
    """The stride-1 circular max of a max-pool's input (the first half of the paper's split)."""
    if not isinstance(module, (nn.MaxPool2d, _MaxBlurPoolNd)):
        return None
    k = module.kernel_size
    kh, kw = (k, k) if isinstance(k, int) else k
    if (kh, kw) == (1, 1):
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, kw - 1, 0, kh - 1), mode="circular")  # (N, C, H + kh - 1, W + kw - 1)
    # Separable running max over shifted views: ~10x faster than F.max_pool2d(padded, (kh, kw), 1) on CPU,
    # which computes indices too (torch.profiler, vgg13_bn_cifar at 32x32); the same values.
    rows = padded[..., :h, :]
    for a in range(1, kh):
        rows = torch.maximum(rows, padded[..., a:a + h, :])
    out = rows[..., :w]
    for b in range(1, kw):
        out = torch.maximum(out, rows[..., b:b + w])
    return out


def _distance(a: Tensor, b: Tensor, norm_a: Tensor, norm_b: Tensor, kind: str) -> Tensor:
    """Mean over positions of the per-position distance of ``(N, C, H, W)`` maps -> ``(N,)``.

    ``norm_a``, ``norm_b``: the channel norms ``(N, H, W)``, computed once by the caller.
    """
    eps = 1e-8
    if kind == "cosine":
        d = 1 - (a * b).sum(1) / (norm_a * norm_b).clamp_min(eps)
        # Two all-zero vectors (common after ReLU) are identical: distance 0, not 1.
        d = d.masked_fill((norm_a < eps) & (norm_b < eps), 0.0)
    else:
        d = (a - b).norm(dim=1) / (norm_a + norm_b).clamp_min(eps)
    return d.flatten(1).mean(1)


@dataclass
class EquivarianceResult:
    """Distance maps: ``maps[l, i, j]`` for layer ``layers[l]`` and shift ``(shifts_h[i], shifts_w[j])``."""

    layers: list[str]
    maps: Tensor  # (L, Sh, Sw)
    shifts_h: list[int]
    shifts_w: list[int]
    distance: str
    num_images: int
    kinds: list[str]  # what each layer is: the module's class name, or "dense max"

    @property
    def means(self) -> dict[str, float]:
        return {name: float(m.mean()) for name, m in zip(self.layers, self.maps, strict=True)}

    def to_dict(self) -> dict:
        return {
            "layers": self.layers, "maps": self.maps.tolist(), "shifts_h": self.shifts_h, "shifts_w": self.shifts_w,
            "distance": self.distance, "num_images": self.num_images, "means": self.means, "kinds": self.kinds,
        }


def rss_bytes() -> int | None:
    """This process's resident memory now (Linux ``/proc/self/statm``), None where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@dataclass
class _Plan:
    """How a run fits in memory: shifts per forward, channels per upsampling step, forwards whose maps are
    compared together, the bytes it expects."""

    shifts_per_batch: int
    channels_per_step: int
    peak_bytes: int
    base_bytes: int
    forwards_per_reduction: int = 1


# Shifted images whose maps are compared in one go when memory allows (several forwards' maps kept): ~25%
# faster than 16 at a time for vgg13_bn_cifar at 32x32 (fewer, larger operations), 128 slower again (cache).
_REDUCTION_IMAGES = 64


def _plan(budget: int | None, baseline: int, base_bytes: int, act_bytes: int, channels: int, m: int, hw: int,
          n_shifts: int, requested: int | None) -> _Plan:
    """Shifts per forward ``B`` and channels per step ``cc`` so that the run's peak stays under ``budget``.

    Per shifted image the forward holds about 5 activations of the largest layer (``act_bytes``: input,
    output, a temporary, and a max-pool's padded input and dense max) and 4 accumulators of ``hw``
    floats; a step upsamples ``cc`` channels of the ``B * M`` shifted maps and of the ``M`` base maps,
    each with an intermediate of at most its size, plus a rolled copy and a product per shift of the
    ``M`` images. Half of what is left after ``baseline`` (the process now) and the base maps goes to
    each. (Measured: resnet18, 4 images at 224x224, ``budget`` 4 GiB: see the equivariance tests.) What is
    still left keeps the maps of several forwards (up to ``_REDUCTION_IMAGES`` shifted images) so that they
    are compared together.
    """
    per_image = 5 * act_bytes + 4 * 4 * hw
    def step_bytes(b: int) -> int:  # one upsampled channel of everything a step holds
        return (2 * b * m + 4 * m) * 4 * hw

    if budget is None:
        b = min(n_shifts, requested or 8)
        cc = channels
    else:
        room = budget - baseline - base_bytes
        if room < m * per_image + step_bytes(1):
            raise MemoryError(room)
        b = max(1, min(n_shifts, int(room / 2) // (m * per_image)))
        if requested is not None:
            b = min(b, requested)
        cc = max(1, min(channels, (room - b * m * per_image) // step_bytes(b)))
    # Then as many forwards per reduction as fit beside that: their maps (base_bytes per shift) are kept until
    # compared, and the comparison's step grows with the shifts it holds.
    r = 1
    max_r = max(1, min(_REDUCTION_IMAGES // (b * m), math.ceil(n_shifts / b)))

    def extra(r: int) -> int:
        return (r * b * base_bytes if r > 1 else 0) + step_bytes(r * b) * cc

    while r < max_r and (budget is None or baseline + base_bytes + b * m * per_image + extra(r + 1) <= budget):
        r += 1
    peak = baseline + base_bytes + b * m * per_image + extra(r)
    return _Plan(b, cc, peak, base_bytes, r)


def feature_distance_maps(
    model: nn.Module,
    images: Tensor,
    *,
    layers: Sequence[str] | None = None,
    step: int = 1,
    distance: str = "cosine",
    shifts_per_batch: int | None = None,
    split_max: bool = True,
    device: torch.device | str = "cpu",
    max_memory_gib: float | None = 4.0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> EquivarianceResult:
    """Feature distance between ``Shift(F_l(X))`` and ``F_l(Shift(X))`` for every shift on a grid.

    Memory stays bounded whatever the input size: the unshifted maps are kept at their own resolution,
    the shifts are streamed in batches, and each layer's distance is reduced on the fly inside its
    forward hook, upsampling a few channels at a time (never all layers' upsampled maps at once). How
    many shifts go through one forward and how many channels are upsampled per step are chosen from
    ``max_memory_gib`` after one forward of the unshifted images; ``log`` receives that plan and an
    estimate of the time (from that forward, which also measures the zero shift) before the shifts start.

    A module called several times in one forward (a shared activation) gives one map per call, named
    ``"<layer>#1"``, ``"<layer>#2"``...; a module called once keeps its name.

    Args:
        model: Any network; hooks read the outputs of the named modules.
        images: ``(M, C, H, W)`` inputs, already preprocessed as the model expects.
        layers: Module names (default :func:`default_layers`); unknown names get suggestions.
        step: Grid spacing of the shifts ``(dh, dw)`` in ``{0, step, 2 step, ...} < (H, W)``; 1 is
            every shift (the paper's 32x32 maps).
        distance: ``"cosine"`` or ``"l2"`` (see the module docstring).
        shifts_per_batch: At most this many shifted copies of all M images per forward (default: as
            many as fit in ``max_memory_gib``).
        split_max: Also record each max-pool's dense max (named ``"<layer>.densemax"``).
        device: Where to run.
        max_memory_gib: Peak memory (GiB) of the process the run plans for (the process's own memory
            included, on the CPU; on CUDA the same bound applies to the tensors); None: no bound.
        progress: Show a progress bar (tqdm) on stderr.
        log: Called with one line: the plan and the estimate.

    Returns:
        An :class:`EquivarianceResult` with one map per recorded layer call, in forward order.

    Raises:
        ValueError: bad arguments, or ``max_memory_gib`` too small for even one shift at a time.
    """
    where = "feature_distance_maps"
    if distance not in DISTANCES:
        raise ValueError(f"`{where}`: `distance` must be one of {DISTANCES}, got {distance!r}.")
    if images.ndim != 4:
        raise ValueError(f"`{where}`: `images` must be (M, C, H, W), got shape {tuple(images.shape)}.")
    if max_memory_gib is not None and (isinstance(max_memory_gib, bool) or not max_memory_gib > 0):
        raise ValueError(f"`{where}`: `max_memory_gib` must be a positive number or None, got {max_memory_gib!r}.")
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else default_layers(model)
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(f"`{where}`: no layer named {name!r}." + (f" Did you mean {close}?" if close else ""))
    h, w = images.shape[-2:]
    if not 1 <= step <= min(h, w):
        raise ValueError(f"`{where}`: `step` must be in 1..{min(h, w)}, got {step!r}.")
    shifts = [(dh, dw) for dh in range(0, h, step) for dw in range(0, w, step)]
    m = images.shape[0]

    base: dict[tuple[str, int, bool], Tensor] = {}  # (module, call, dense max) -> (M, C, h', w') at its own size
    order: list[tuple[str, int, bool]] = []
    calls: dict[str, int] = {}
    totals: dict[tuple[str, int, bool], Tensor] = {}  # -> (len(shifts),)
    # The unshifted forward upsamples at most ~256 MiB at a time; the plan sets the step for the shifts.
    state: dict[str, Any] = {"chunk": [(0, 0)], "first": 0, "channels": max(1, 2**28 // (6 * m * h * w * 4)),
                             "rolls": {}, "keep": False}
    kept: dict[tuple[str, int, bool], Tensor] = {}  # maps of the forwards not yet compared
    group: list[tuple[int, list[tuple[int, int]]]] = []  # (first index, shifts) of those forwards

    def reduce(key: tuple[str, int, bool], feats: Tensor, chunk: list[tuple[int, int]], first: int) -> None:
        """Distances of ``feats`` ``(B*M, C, h', w')`` (the shifted copies ``chunk``) to the shifted base maps."""
        ref = base[key]  # (M, C, h', w')
        b, c = len(chunk), ref.shape[1]
        cc = min(c, state["channels"])
        hf, wf = ref.shape[-2:]
        step_bytes = (2 * b * m + 4 * m) * 4 * h * w * state["channels"]  # what the plan lets one step hold
        per_shift = _gram_bytes_per_shift(m, c, (hf, wf), (h, w))
        rolls = state["rolls"]  # what depends only on the shifts and a map size, for these shifts
        if _gram_is_cheaper(c, (hf, wf), (h, w)) and per_shift <= step_bytes:
            sub = max(1, step_bytes // per_shift)
            if ("gram", hf, wf) not in rolls:  # shared by the layers of this size
                rolls["gram", hf, wf] = _gram_matrices(chunk, (hf, wf), (h, w), ref.device)
            mats = rolls["gram", hf, wf]
            d = torch.cat([_gram_distances(feats[lo * m:(lo + sub) * m], ref,
                                           tuple(t[lo:lo + sub] for t in mats[:4]) + mats[4:], distance)
                           for lo in range(0, b, sub)])
        else:
            if (hf, wf) not in rolls:
                rolls[hf, wf] = _rolled_interpolation(chunk, (hf, wf), (h, w), ref.device)
            d = _direct_distances(feats, ref, rolls[hf, wf], (h, w), cc, distance)
        totals[key][first:first + b] = d.cpu()

    def record(key: tuple[str, int, bool], out: Tensor) -> None:
        if state["first"] == 0:  # the unshifted forward
            if key not in base:
                base[key] = out.detach().float().clone()
                order.append(key)
                totals[key] = torch.zeros(len(shifts))
            reduce(key, out.detach(), state["chunk"], 0)
        elif state["keep"]:  # compared with the next forwards' maps; a copy, as later modules may work in place
            lo = (state["first"] - group[0][0]) * m  # this forward's place among the kept ones
            if key not in kept:  # one buffer per map for the whole run, (forwards * B * M, C, h', w')
                kept[key] = out.new_empty((state["keep"] * out.shape[0], *out.shape[1:]), dtype=torch.float32)
            kept[key][lo:lo + out.shape[0]].copy_(out.detach())
        else:
            reduce(key, out.detach(), state["chunk"], state["first"])

    def flush() -> None:
        """Compare the kept maps of the forwards since the last flush."""
        if not group:
            return
        chunk = [shift for _, part in group for shift in part]
        state["rolls"] = {}
        for key, maps in kept.items():
            reduce(key, maps[:len(chunk) * m], chunk, group[0][0])
        group.clear()

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            call = calls.get(name, 0)
            calls[name] = call + 1
            if split_max and (dense := _dense_max(module, inputs[0])) is not None:
                record((name, call, True), dense)
            record((name, call, False), output)
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    model = model.to(device).eval()
    images = images.to(device)
    try:
        with torch.inference_mode():
            baseline = rss_bytes() or 0
            start = time.perf_counter()
            model(images)  # the unshifted maps, and the zero shift's distances (exactly 0 up to rounding)
            seconds = time.perf_counter() - start
            base_bytes = sum(t.numel() * t.element_size() for t in base.values())
            act = max((t[:1].numel() * 4 for t in base.values()), default=0)
            channels = max((t.shape[1] for t in base.values()), default=1)
            budget = None if max_memory_gib is None else int(max_memory_gib * 2**30)
            try:
                plan = _plan(budget, baseline, base_bytes, act, channels, m, h * w, len(shifts), shifts_per_batch)
            except MemoryError:
                raise ValueError(
                    f"`{where}`: `max_memory_gib` must leave room for one shift of {m} images at {h}x{w} (the "
                    f"process holds {baseline / 2**30:.2f} GiB and the unshifted maps {base_bytes / 2**30:.2f} GiB), "
                    f"got {max_memory_gib!r}. Raise it, or measure fewer images or layers."
                ) from None
            state["channels"] = plan.channels_per_step
            # forwards whose maps are kept and compared together; 0: each forward's maps compared in its hooks
            state["keep"] = plan.forwards_per_reduction if plan.forwards_per_reduction > 1 else 0
            rest = shifts[1:]
            if log is not None:
                batches = math.ceil(len(rest) / plan.shifts_per_batch)
                log(f"{len(order)} maps x {len(shifts)} shifts (step {step}) x {m} images at {h}x{w}: "
                    f"{plan.shifts_per_batch} shifts per forward, {plan.channels_per_step} channels per upsampling "
                    f"step, {plan.forwards_per_reduction} forwards per comparison; planned peak "
                    f"{plan.peak_bytes / 2**30:.2f} GiB"
                    + (f" (limit {max_memory_gib:g} GiB)" if max_memory_gib is not None else "")
                    + f"; about {_duration(seconds * len(rest))} at most ({batches} forwards, "
                    f"{seconds:.2f} s per shift of all images)")
            bar = tqdm(total=len(shifts), initial=1, disable=not progress, file=sys.stderr, unit="shift",
                       desc="equivariance", dynamic_ncols=True)
            with bar:
                for lo in range(0, len(rest), plan.shifts_per_batch):
                    chunk = rest[lo:lo + plan.shifts_per_batch]
                    state.update(chunk=chunk, first=1 + lo, rolls={})
                    calls.clear()
                    if state["keep"]:
                        group.append((1 + lo, chunk))
                    model(torch.cat([images.roll(shift, (-2, -1)) for shift in chunk]))  # (B*M, C, H, W)
                    if len(group) == state["keep"]:
                        flush()
                    bar.update(len(chunk))
                flush()
    finally:
        for handle in handles:
            handle.remove()
    labels = _labels(order, modules)
    grid_h, grid_w = list(range(0, h, step)), list(range(0, w, step))
    maps = torch.stack([totals[k] for k in order]).view(len(order), len(grid_h), len(grid_w)) if order else \
        torch.zeros(0, len(grid_h), len(grid_w))
    return EquivarianceResult([lab for lab, _ in labels], maps, grid_h, grid_w, distance, m,
                              [kind for _, kind in labels])


def _labels(order: list[tuple[str, int, bool]], modules: dict[str, nn.Module]) -> list[tuple[str, str]]:
    """``(name, kind)`` per recorded map: ``layer``, or ``layer#k`` for the k-th call of a module called more
    than once; ``.densemax`` for the dense max of a max-pool."""
    count: dict[str, int] = {}
    for name, call, _ in order:
        count[name] = max(count.get(name, 0), call + 1)
    out = []
    for name, call, dense in order:
        label = f"{name}#{call + 1}" if count[name] > 1 else name
        out.append((label + ".densemax", "dense max") if dense else (label, type(modules[name]).__name__))
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
