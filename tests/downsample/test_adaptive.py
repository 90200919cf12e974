"""Content-adaptive low-pass downsampling (after Zou et al., BMVC 2020)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from antialias.downsample import AdaptiveDownsample2d, adaptive_downsample2d
from antialias.functional import blur_pool2d


@pytest.mark.parametrize(
    ("k", "stride", "size"), [(3, 2, (9, 8)), (5, 2, (8, 8)), (2, 3, (7, 11)), (3, (2, 1), (6, 5))]
)
@pytest.mark.parametrize("padding_mode", ["reflect", "circular", "zeros"])
def test_untrained_layer_is_the_binomial_blurpool(k, stride, size, padding_mode):
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    layer = AdaptiveDownsample2d(8, stride, kernel_size=k, padding_mode=padding_mode).double()
    # the log-taps bias was set in float32 at construction: softmax recovers the taps to ~1e-8
    assert torch.allclose(layer(x), blur_pool2d(x, k, stride, padding_mode), atol=1e-7)


def test_filters_are_per_position_and_per_group_softmaxes():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    logits = torch.randn(1, 2 * 9, 3, 3, dtype=torch.float64)
    out = adaptive_downsample2d(x, logits, 3, 2, padding_mode="zeros")
    padded = F.pad(x, (1, 1, 1, 1))
    taps = logits.view(1, 2, 9, 3, 3).softmax(2)
    for g in range(2):
        for c in range(2 * g, 2 * g + 2):
            for i in range(3):
                for j in range(3):
                    window = padded[0, c, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].flatten()
                    assert torch.allclose(out[0, c, i, j], (window * taps[0, g, :, i, j]).sum())


def test_predictor_runs_only_at_kept_positions():
    layer = AdaptiveDownsample2d(16, 2, groups=4)
    seen = []
    layer.predictor.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    layer(torch.randn(1, 16, 32, 30))
    assert seen == [(1, 4 * 9, 16, 15)]


def test_gradcheck_keys_groups_and_layouts():
    layer = AdaptiveDownsample2d(6, 2, groups=4).double()  # gcd(6, 4) = 2 groups
    assert layer.groups == 2
    assert sorted(layer.state_dict()) == ["predictor.bias", "predictor.weight"]
    with torch.no_grad():
        layer.predictor.weight.normal_(0, 0.1)
    x = torch.randn(1, 6, 5, 6, dtype=torch.float64, requires_grad=True)
    assert gradcheck(layer, (x,))
    ref = layer(x)
    assert torch.allclose(layer(x.detach().to(memory_format=torch.channels_last)), ref)


def test_errors():
    with pytest.raises(ValueError, match=r"`AdaptiveDownsample2d`: `channels` must be a positive int"):
        AdaptiveDownsample2d(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`adaptive_downsample2d`: `logits` must have shape \(1, G \* 9, 2, 2\)"):
        adaptive_downsample2d(torch.randn(1, 4, 4, 4), torch.randn(1, 10, 2, 2))
