"""LPS (learnable polyphase sampling): selection, Gumbel-softmax training, temperature schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from antialias.downsample import (
    LPS2d,
    PhaseFollow2d,
    lps_select2d,
    lps_temperature,
    polyphase_select2d,
    set_lps_temperature,
)


def test_eval_keeps_the_argmax_component_exactly():
    layer = LPS2d(6, stride=2).eval()
    x = torch.randn(3, 6, 9, 8)
    out = layer(x)
    assert out.shape == (3, 6, 5, 4)
    assert torch.equal(out, polyphase_select2d(x, layer.link.index, 2))
    padded = torch.cat([x, x[:, :, :1]], dim=2)  # circular padding of the odd height
    assert torch.equal(layer.link.index, layer.logits(padded).argmax(1))


def test_training_straight_through_keeps_one_component_and_trains_the_scorer():
    torch.manual_seed(0)
    layer = LPS2d(4, stride=2, tau=0.5).train()
    x = torch.randn(2, 4, 6, 6)
    out = layer(x)
    weights = layer.link.weights
    assert weights is not None and torch.allclose(weights.sum(1), torch.ones(2))
    assert set(weights.detach().flatten().tolist()) <= {0.0, 1.0}  # one-hot forward
    index = weights.argmax(1)
    assert torch.allclose(out, polyphase_select2d(x, index, 2))
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.score.parameters())


def test_soft_training_mixes_components():
    torch.manual_seed(0)
    layer = LPS2d(4, stride=2, hard=False).train()
    layer(torch.randn(2, 4, 6, 6))
    weights = layer.link.weights
    assert weights is not None and ((weights > 0) & (weights < 1)).any()


def test_functional_gradcheck_soft():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)

    def fn(t, lg):
        torch.manual_seed(0)  # the same Gumbel noise on every call
        return lps_select2d(t, lg, 2, tau=0.7, hard=False, training=True)[0]

    # gumbel_softmax runs in float32 internally: loose tolerances for the logits' path
    assert gradcheck(fn, (x, logits), eps=1e-3, atol=1e-3, rtol=1e-2)
    assert gradcheck(lambda t: lps_select2d(t, logits.detach(), 2)[0], (x,))


def test_follower_in_training_uses_the_same_weights():
    torch.manual_seed(0)
    lead = LPS2d(3, stride=2).train()
    follow = PhaseFollow2d(lead.link)
    x = torch.randn(2, 3, 8, 8)
    y = lead(x)
    assert torch.allclose(follow(x), y)  # the same input and weights give the same output


def test_temperature_hook_and_schedule():
    model = nn.Sequential(LPS2d(4), nn.ReLU(), LPS2d(4, tau=3.0))
    assert set_lps_temperature(model, 0.25) == 2
    assert all(m.tau == 0.25 for m in model if isinstance(m, LPS2d))
    taus = [lps_temperature(e, 5, 1.0, 0.01) for e in range(5)]
    assert taus[0] == 1.0 and math.isclose(taus[-1], 0.01)
    assert all(math.isclose(b / a, taus[1] / taus[0]) for a, b in itertools.pairwise(taus))  # exponential
    assert lps_temperature(0, 1, 2.0, 0.5) == 2.0 and lps_temperature(9, 3, 2.0, 0.5) == 0.5  # clamped


def test_lazy_channels_and_keys():
    layer = LPS2d(stride=2).eval()
    layer(torch.randn(1, 5, 4, 4))
    assert layer.score[0].in_channels == 5
    assert list(LPS2d(8).state_dict()) == ["score.0.weight", "score.0.bias", "score.2.weight"]


def test_errors():
    with pytest.raises(ValueError, match=r"`LPS2d`: `tau` must be a positive finite number"):
        LPS2d(4, tau=0)
    with pytest.raises(ValueError, match=r"`set_lps_temperature`: `tau`"):
        set_lps_temperature(nn.Identity(), -1.0)
    with pytest.raises(ValueError, match=r"`lps_select2d`: `logits` must have shape \(1, 4\)"):
        lps_select2d(torch.randn(1, 1, 4, 4), torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"`lps_temperature`: `epochs` must be a positive int"):
        lps_temperature(0, 0)


def test_models_copy_and_pickle_after_a_training_forward():
    """The recorded phase (with its autograd graph) is not copied: deepcopy and pickling work mid-training,
    and a copied leader/follower pair still shares one link."""
    import copy
    import io

    from torch import nn

    lead = LPS2d(3, stride=2).train()
    model = nn.ModuleDict({"lead": lead, "follow": PhaseFollow2d(lead.link)})
    model["lead"](torch.randn(2, 3, 4, 4))
    twin = copy.deepcopy(model)
    assert twin["lead"].link is twin["follow"].link and twin["lead"].link.size is None
    torch.save(model, io.BytesIO())
