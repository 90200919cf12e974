"""Every random stream in antialias takes its seed from here, derived from integers in one documented way.

The scheme:

- :func:`derived_seed` ``(*parts)``: SHA-256 of the decimal parts joined by commas, first 8 bytes,
  63 bits. Every seed is this function of the run's seed, a stream tag (the constants below, so
  two streams never share numbers) and the stream's own coordinates (epoch, pass, rank, ...).
  :func:`generator` and :func:`numpy_seed` hand it to torch's and NumPy's generators.
- :func:`index_uniforms` ``(key, indices, k)``: ``k`` uniform numbers per item index, a pure,
  vectorised function of ``(key, index)`` (SplitMix64 finaliser, Steele, Lea & Flood 2014), where
  ``key`` is a :func:`derived_seed`. Per-item randomness that must not depend on how items are
  batched, sharded over workers or ranks, or where a resumed run restarts uses it: training
  augmentation (:func:`antialias.data.transforms.keyed_uniforms`) and the random shifts of the
  consistency evaluation (:func:`antialias.eval.consistency.draw_offsets`).
- :func:`sampler_seed` ``(seed, epoch)`` is ``seed + epoch``: the seed of the epoch's permutation
  as :class:`torch.utils.data.DistributedSampler` computes it, kept so that one process visits the
  samples that ``W`` ranks visit (the one seed not derived by hashing, on purpose).

Examples:
    >>> derived_seed(0, 1) == derived_seed(0, 1) != derived_seed(1, 0)
    True
    >>> torch.equal(index_uniforms(7, [3, 9], 2)[1], index_uniforms(7, [9], 2)[0])
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "AUGMENT",
    "BOOTSTRAP",
    "CORRUPTION",
    "LOADER",
    "PERTURBATION",
    "SHIFTS",
    "TRAIN_RANK",
    "derived_seed",
    "generator",
    "index_uniforms",
    "numpy_seed",
    "sampler_seed",
]

# Stream tags: the second part of every derived seed (after the run seed). One per stream.
#: Training augmentation (random crop, flip), per sample: ``(seed, AUGMENT, epoch)``.
AUGMENT = 0xA06
#: DataLoader worker seeds of an epoch: ``(seed, LOADER, epoch)``.
LOADER = 0x10AD
#: Per-rank torch RNG of the trainer (dropout and the like): ``(seed, rank, TRAIN_RANK)``.
TRAIN_RANK = 0xD06
#: Random shifts of the consistency evaluation, per image: ``(seed, SHIFTS, pass)``.
SHIFTS = 0xE7A1
#: Random corruptions (ImageNet-C style), per image: ``(seed, CORRUPTION, corruption, severity, index)``.
CORRUPTION = 0xC022
#: Perturbation noise (ImageNet-P style), per image: ``(seed, PERTURBATION, perturbation, index)``.
PERTURBATION = 0x9E27
#: Bootstrap resampling of images for the intervals of means: ``(seed, BOOTSTRAP)``.
BOOTSTRAP = 0xB007

_MASK63 = (1 << 63) - 1
_M64 = 0xFFFFFFFFFFFFFFFF


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers; stable across processes, platforms and Python versions.

    Examples:
        >>> derived_seed(0, AUGMENT, 3) != derived_seed(0, SHIFTS, 3)
        True
    """
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & _MASK63


def generator(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` seeded with :func:`derived_seed` ``(*parts)``.

    Examples:
        >>> torch.equal(torch.rand(3, generator=generator(1, 2)), torch.rand(3, generator=generator(1, 2)))
        True
    """
    return torch.Generator(device=device).manual_seed(derived_seed(*parts))


def numpy_seed(*parts: int) -> int:
    """:func:`derived_seed` ``(*parts)`` reduced to 32 bits, for ``np.random.seed`` and ``RandomState``.

    Examples:
        >>> 0 <= numpy_seed(0, CORRUPTION, 1) < 2**32
        True
    """
    return derived_seed(*parts) & 0xFFFFFFFF


def sampler_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s permutation: ``seed + epoch``, as :class:`~torch.utils.data.DistributedSampler`.

    Examples:
        >>> sampler_seed(3, 2)
        5
    """
    return int(seed) + int(epoch)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    # SplitMix64's finaliser: a bijective 64-bit mix; uint64 arithmetic wraps (overflow is intended).
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def index_uniforms(key: int, indices: Tensor | Sequence[int], k: int) -> Tensor:
    """``k`` uniform numbers in ``[0, 1)`` per index: a pure function of ``(key, index)``.

    Item ``i`` with counter ``j`` gets ``mix(mix(key ^ mix(i)) + j * c) >> 11`` scaled by
    ``2**-53`` (``mix``: SplitMix64's finaliser, ``c`` an odd constant), so any subset or order of
    indices gets the same numbers per index.

    Args:
        key: a :func:`derived_seed` (any integer; reduced modulo ``2**64``).
        indices: item indices ``(N,)`` (negative ones are allowed).
        k: numbers per index.

    Returns:
        float64 tensor ``(N, k)``.

    Examples:
        >>> u = index_uniforms(derived_seed(0, AUGMENT, 1), [5, 7], 3)
        >>> u.shape, bool(((0 <= u) & (u < 1)).all())
        (torch.Size([2, 3]), True)
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"`index_uniforms`: `k` must be an int >= 0, got {k!r}.")
    idx = np.asarray(indices, dtype=np.int64).astype(np.uint64).reshape(-1, 1)  # (N, 1)
    with np.errstate(over="ignore"):
        mixed_key = _splitmix64(np.full((1, 1), np.uint64(int(key) & _M64)))
        z = _splitmix64(mixed_key ^ _splitmix64(idx))  # (N, 1)
        z = _splitmix64(z + np.arange(k, dtype=np.uint64).reshape(1, -1) * np.uint64(0x632BE59BD9B4E019))  # (N, k)
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)
