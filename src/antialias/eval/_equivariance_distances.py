"""The arithmetic behind :func:`antialias.eval.feature_distance_maps`: per map size, the mean distance per shift
between shifted maps and the base maps, both upsampled to the input size (see :mod:`antialias.eval.equivariance`).

Three ways, chosen per map size by measured cost; all give the same numbers as upsampling every channel of
every map and rolling the base map by each shift (tests/eval/test_equivariance_parity.py):

* maps at the input size (:func:`_same_size_distances`): channels first, one gather rolls the shifted maps back;
* larger maps (:func:`_direct_distances`): each shifted map upsampled and rolled back by per-shift interpolation
  matrices (two GEMMs), a few channels at a time, and compared with the upsampled base map;
* small maps (:func:`_gram_distances`): channel Gram matrices of the small maps and per-shift pair matrices, in
  float64, with no map upsampled channel by channel.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

_Sums = tuple[Tensor, Tensor, Tensor]  # (dot product or squared difference, |a|^2, |b|^2) per position


def _upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`antialias.eval.circular_upsample` without the checks: ``(..., h, w) -> (..., H, W)``."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
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
    sums: _Sums | None = None
    for c0 in range(0, c, cc):
        k = min(cc, c - c0)
        low = feats[:, c0:c0 + k].float()  # (B*M, k, h', w')
        ref_low = ref[:, c0:c0 + k]  # (M, k, h', w')
        if middle:
            t = torch.bmm(low.reshape(b, m * k * hf, wf), cols.transpose(1, 2))  # (B, M*k*h', W)
            t = t.view(b, m * k, hf, w).transpose(1, 2).reshape(b, hf, m * k * w)  # (B, h', M*k*W)
            up = torch.bmm(rows, t).view(b, h, m, k, w)  # (B, H, M, k, W)
            del t
            ref_up = _upsample(ref_low.float(), (h, w)).permute(2, 0, 1, 3).contiguous()  # (H, M, k, W)
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
        sums = _add_sums(sums, (x, sq_a, sq_b))
    return _mean_of_sums(sums, c, distance)


def _same_size_distances(feats: Tensor, ref: Tensor, index: Tensor, cc: int, distance: str) -> Tensor:
    """:func:`_direct_distances` for maps at the input size: nothing to upsample, so channels stay first and the
    shifted maps are rolled back by one gather along positions (``index``: ``(B, H*W)``); the channel sums then
    run over an outer dim, ~3x faster than channels last with few channels (measured, 8 channels at 32x32)."""
    m, c, h, w = ref.shape
    b = feats.shape[0] // m
    f = feats.reshape(b, m, c, h * w)
    g = ref.reshape(m, c, h * w)
    sums: _Sums | None = None
    for c0 in range(0, c, cc):
        k = min(cc, c - c0)
        up = f[:, :, c0:c0 + k].float().gather(3, index[:, None, None, :].expand(b, m, k, h * w))  # (B, M, k, H*W)
        ref_k = g[:, c0:c0 + k].float()  # (M, k, H*W)
        sq_a = (up * up).sum(2)  # (B, M, H*W)
        sq_b = (ref_k * ref_k).sum(1)  # (M, H*W)
        # the dot product (cosine) or the squared difference (l2)
        x = up.mul_(ref_k).sum(2) if distance == "cosine" else up.sub_(ref_k).square_().sum(2)
        del up
        sums = _add_sums(sums, (x, sq_a, sq_b))
    return _mean_of_sums(sums, c, distance)


def _add_sums(sums: _Sums | None, part: _Sums) -> _Sums:
    """``part``'s channel sums added to ``sums`` in place (the first chunk's become the sums)."""
    if sums is None:
        return part
    for total, value in zip(sums, part, strict=True):
        total += value
    return sums


def _mean_of_sums(sums: _Sums | None, channels: int, distance: str) -> Tensor:
    """:func:`_mean_distance` of the summed chunks; ``None`` (no chunk) means maps without channels."""
    if sums is None:
        raise ValueError(f"`feature_distance_maps`: a map must have at least one channel, got {channels}.")
    return _mean_distance(*sums, distance)


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
