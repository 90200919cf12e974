"""antialias.data.seeding: the one seed derivation, and its vectorised per-index counterpart."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from antialias.data import seeding
from antialias.data.transforms import keyed_uniforms


def test_derived_seed_is_the_documented_sha256():
    digest = hashlib.sha256(f"3,{seeding.AUGMENT},1".encode()).digest()
    assert seeding.derived_seed(3, seeding.AUGMENT, 1) == int.from_bytes(digest[:8], "little") & (2**63 - 1)


def test_stream_tags_are_distinct():
    tags = [
        seeding.AUGMENT,
        seeding.LOADER,
        seeding.TRAIN_RANK,
        seeding.SHIFTS,
        seeding.CORRUPTION,
        seeding.PERTURBATION,
    ]
    assert len(set(tags)) == len(tags)


def test_generator_and_numpy_seed_follow_derived_seed():
    g = seeding.generator(1, 2, 3)
    assert g.initial_seed() == seeding.derived_seed(1, 2, 3)
    assert seeding.numpy_seed(1, 2, 3) == seeding.derived_seed(1, 2, 3) % 2**32
    assert seeding.sampler_seed(5, 2) == 7


def reference_uniforms(key: int, index: int, j: int) -> float:
    """SplitMix64 in plain Python integers, one number at a time."""
    mask = 2**64 - 1

    def mix(z: int) -> int:
        z = (z + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    z = mix(mix(key & mask) ^ mix(index & mask))
    z = mix((z + j * 0x632BE59BD9B4E019) & mask)
    return (z >> 11) * 2.0**-53


@settings(max_examples=30, deadline=None)
@given(key=st.integers(0, 2**63 - 1), indices=st.lists(st.integers(-5, 10**9), min_size=1, max_size=6),
       k=st.integers(1, 4))
def test_index_uniforms_equal_a_scalar_reference_and_do_not_depend_on_the_batch(key, indices, k):
    u = seeding.index_uniforms(key, indices, k)
    assert u.shape == (len(indices), k) and u.dtype == torch.float64
    for row, i in enumerate(indices):
        assert u[row].tolist() == [reference_uniforms(key, i, j) for j in range(k)]
        assert torch.equal(u[row], seeding.index_uniforms(key, [i], k)[0])  # alone = within any batch


def test_index_uniforms_look_uniform():
    u = seeding.index_uniforms(seeding.derived_seed(0), np.arange(20000), 2)
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01) and float(u.min()) >= 0 and float(u.max()) < 1
    hist = torch.histc(u[:, 0].float(), bins=10, min=0, max=1)
    assert float(hist.min()) > 1800  # 2000 expected per bin


def test_keyed_uniforms_are_index_uniforms_of_the_augment_stream():
    key = seeding.derived_seed(4, seeding.AUGMENT, 2)
    assert torch.equal(keyed_uniforms(4, 2, [0, 9], 3), seeding.index_uniforms(key, [0, 9], 3))


def test_bad_count_is_refused():
    with pytest.raises(ValueError, match="`k` must be an int >= 0"):
        seeding.index_uniforms(0, [1], -1)
