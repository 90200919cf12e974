"""APS (adaptive polyphase sampling) and the phase-following shortcut sampler."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from antialias.downsample import APS2d, PhaseFollow2d, aps_downsample2d, aps_index2d, polyphase_select2d
from antialias.functional import blur2d


def _reference(x: torch.Tensor, s: tuple[int, int], norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force: every phase, its norm, the best one per sample (sizes multiples of the stride)."""
    phases = [(a, b) for a in range(s[0]) for b in range(s[1])]
    order = {"l2": 2, "l1": 1, "linf": math.inf}[norm]
    outs, idx = [], []
    for n in range(x.shape[0]):
        norms = [torch.linalg.vector_norm(x[n, :, a :: s[0], b :: s[1]].flatten(), order) for a, b in phases]
        best = int(torch.stack(norms).argmax())
        idx.append(best)
        a, b = phases[best]
        outs.append(x[n, :, a :: s[0], b :: s[1]])
    return torch.stack(outs), torch.tensor(idx)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11),
       sh=st.integers(1, 3), sw=st.integers(1, 3), norm=st.sampled_from(["l2", "l1", "linf"]),
       seed=st.integers(0, 2**16))
def test_matches_brute_force_any_size_and_stride(n, c, h, w, sh, sw, norm, seed):
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out, index = aps_downsample2d(x, (sh, sw), norm=norm, padding_mode="circular", return_index=True)
    assert out.shape == (n, c, math.ceil(h / sh), math.ceil(w / sw))
    hp, wp = h + (-h) % sh, w + (-w) % sw
    padded = x.repeat(1, 1, sh, sw)[:, :, :hp, :wp]  # circular padding at the end, wrapping as often as needed
    ref, ref_idx = _reference(padded, (sh, sw), norm)
    assert torch.equal(index, ref_idx)
    assert torch.equal(out, ref)


@settings(max_examples=20, deadline=None)
@given(dy=st.integers(0, 11), dx=st.integers(0, 11), s=st.integers(2, 3), seed=st.integers(0, 2**16))
def test_any_circular_shift_gives_a_circular_shift_of_the_output(dy, dx, s, seed):
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(seed))
    out = aps_downsample2d(x, s)
    shifted = aps_downsample2d(torch.roll(x, (dy, dx), (2, 3)), s)
    # the kept component moves with the input: each sample's output is its old one, circularly rolled
    for n in range(2):
        assert any(
            torch.equal(shifted[n], torch.roll(out[n], (a, b), (1, 2))) for a in range(12 // s) for b in range(12 // s)
        )


def test_pre_blur_equals_blur_then_select():
    x = torch.randn(2, 4, 9, 10)
    blurred = blur2d(x, 3, "circular")
    assert torch.allclose(aps_downsample2d(x, 2, filter_size=3), aps_downsample2d(blurred, 2), atol=1e-6)
    assert torch.equal(aps_downsample2d(x, 2, filter_size=1), aps_downsample2d(x, 2))  # 1 tap: no blur


def test_stride_one_is_identity():
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(aps_downsample2d(x, 1), x)


def test_module_equals_function_and_records_phase():
    x = torch.randn(3, 8, 10, 6)
    layer = APS2d(8, 2, filter_size="tri3", norm="l1")
    out, index = aps_downsample2d(x, 2, filter_size="tri3", norm="l1", return_index=True)
    assert torch.equal(layer(x), out)
    assert torch.equal(layer.link.index, index)
    assert layer.link.size == (10, 6)
    assert list(layer.state_dict()) == []  # no keys: baseline checkpoints load unchanged


def test_channels_last_and_noncontiguous():
    x = torch.randn(2, 6, 8, 10)
    ref = aps_downsample2d(x, 2)
    cl = aps_downsample2d(x.to(memory_format=torch.channels_last), 2)
    assert torch.equal(cl, ref) and cl.is_contiguous(memory_format=torch.channels_last)
    nc = torch.randn(2, 10, 8, 6).transpose(1, 3)  # (2, 6, 8, 10), not contiguous
    assert torch.equal(aps_downsample2d(nc, 2), aps_downsample2d(nc.contiguous(), 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(dtype):
    x = torch.randn(2, 3, 8, 8)
    out = aps_downsample2d(x.to(dtype), 2)
    assert out.dtype == dtype and out.shape == (2, 3, 4, 4)


def test_gradcheck():
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: aps_downsample2d(t, 2, filter_size=3), (x,))
    assert gradcheck(lambda t: polyphase_select2d(t, torch.tensor([3, 1]), (2, 3)), (x,))


def test_gradient_reaches_only_the_kept_component():
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    out, index = aps_downsample2d(x, 2, return_index=True)
    out.sum().backward()
    a, b = divmod(int(index), 2)
    mask = torch.zeros(4, 4)
    mask[a::2, b::2] = 1
    assert torch.equal(x.grad[0, 0], mask)


def test_follower_takes_the_leaders_phase():
    lead, follow = APS2d(stride=2), None
    follow = PhaseFollow2d(lead.link)
    x, y = torch.randn(4, 3, 8, 8), torch.randn(4, 5, 8, 8)
    lead(x)
    assert torch.equal(follow(y), polyphase_select2d(y, lead.link.index, 2))
    assert torch.equal(aps_index2d(x), lead.link.index)


def test_follower_errors():
    lead = APS2d(stride=2)
    follow = PhaseFollow2d(lead.link)
    with pytest.raises(RuntimeError, match="must run before"):
        follow(torch.randn(1, 2, 8, 8))
    lead(torch.randn(1, 2, 8, 8))
    with pytest.raises(RuntimeError, match="wrong layer"):
        follow(torch.randn(1, 2, 6, 8))
    with pytest.raises(TypeError, match="`PhaseFollow2d`: `link` must be a PhaseLink"):
        PhaseFollow2d(lead)  # type: ignore[arg-type]


def test_errors():
    with pytest.raises(ValueError, match=r"`aps_downsample2d`: `norm` must be one of"):
        aps_downsample2d(torch.randn(1, 1, 4, 4), norm="l3")
    with pytest.raises(ValueError, match=r"`aps_downsample2d`: `stride` must be >= 1"):
        aps_downsample2d(torch.randn(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"`aps_downsample2d`: `input` must have 4 dims"):
        aps_downsample2d(torch.randn(4, 4))
    with pytest.raises(TypeError, match=r"floating-point"):
        aps_downsample2d(torch.ones(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Did you mean 'circular'"):
        APS2d(padding_mode="circulr")
    with pytest.raises(ValueError, match=r"`APS2d`: expected 3 channels"):
        APS2d(3)(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"`index` must lie in \[0, 4\)"):
        polyphase_select2d(torch.randn(1, 1, 4, 4), torch.tensor([4]))


def test_compiles():
    layer = APS2d(stride=2)
    x = torch.randn(2, 3, 8, 8)
    compiled = torch.compile(layer, backend="eager", fullgraph=False)
    assert torch.equal(compiled(x), layer(x))
