"""Tests of the evaluation metrics: exact equivariance gives perfect scores, subsampling does not."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from antialias.eval import (
    ConsistencyConfig,
    ShiftConsistency,
    circular_upsample,
    diagonal_stability,
    evaluate_consistency,
    feature_distance_maps,
    shift_consistency,
    wilson_interval,
)
from antialias.eval._shifts import crop_at, roll_by


def equivariant_net(classes=5):
    """Stride-1 circular convs + global pooling: exactly invariant to circular shifts."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    ).double()


class Subsample(nn.Module):
    def forward(self, x):
        return x[..., ::2, ::2]


def subsampling_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), Subsample()).double()


def batches(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (n,), generator=g)
    return [(x[:6], y[:6]), (x[6:], y[6:])]


# --------------------------------------------------------------------------- statistics


def test_wilson_matches_closed_form():
    lo, hi = wilson_interval(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-4) and hi == pytest.approx(0.9448, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0.05, 0.95), n=st.integers(10, 1000))
def test_intervals_shrink_with_more_samples(p, n):
    small = wilson_interval(round(p * n), n)
    big = wilson_interval(round(p * 4 * n), 4 * n)
    assert big[1] - big[0] < small[1] - small[0]
    assert small[0] <= round(p * n) / n <= small[1]


# --------------------------------------------------------------------------- consistency metric


def reference_consistency(logits, target):
    agree = correct = 0
    for i in range(logits.shape[1]):
        preds = [int(logits[k, i].argmax()) for k in range(logits.shape[0])]
        agree += all(p == preds[0] for p in preds)
        correct += preds[0] == int(target[i])
    return agree / logits.shape[1], correct / logits.shape[1]


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 4), n=st.integers(1, 20), seed=st.integers(0, 1000))
def test_class_equals_function_equals_loop(k, n, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(k, n, 3, generator=g)
    target = torch.randint(0, 3, (n,), generator=g)
    cons, acc = reference_consistency(logits, target)
    fn = shift_consistency(logits, target)
    metric = ShiftConsistency()
    for part in torch.arange(n).split(3):
        metric.update(logits[:, part], target[part])
    cls = metric.compute()
    assert fn["consistency"].value == pytest.approx(cons) == cls["consistency"].value
    assert fn["accuracy"].value == pytest.approx(acc) == cls["accuracy"].value


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_two_rank_merge_equals_one_process():
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(2, 30, 4, generator=g), torch.randint(0, 4, (30,), generator=g)
    ranks = [ShiftConsistency(), ShiftConsistency()]
    ranks[0].update(logits[:, :13], target[:13])
    ranks[1].update(logits[:, 13:], target[13:])
    merged = ShiftConsistency()
    for rank in ranks:  # applies each state's dist_reduce_fx ("sum"), as the DDP sync does
        merged.merge_state(rank)
    assert merged.compute() == shift_consistency(logits, target)


def test_only_correct_conditions_on_first_copy():
    logits = torch.tensor([[[1.0, 0], [1, 0], [0, 1]], [[1.0, 0], [0, 1], [0, 1]]])
    target = torch.tensor([0, 0, 0])
    out = shift_consistency(logits, target, only_correct=True)["consistency"]
    assert (out.successes, out.total) == (1, 2)


def test_bad_logits_shape():
    with pytest.raises(ValueError, match=r"shape \(copies >= 2, N, classes\)"):
        shift_consistency(torch.randn(5, 3))


# --------------------------------------------------------------------------- protocols


def test_shift_helpers_match_roll_and_slicing():
    x = torch.arange(2 * 1 * 5 * 6.0).view(2, 1, 5, 6)
    shifts = torch.tensor([[1, -2], [3, 4]])
    rolled = roll_by(x, shifts)
    for i in range(2):
        assert torch.equal(rolled[i], x[i].roll(tuple(shifts[i].tolist()), (-2, -1)))
    crops = crop_at(x, torch.tensor([[0, 1], [2, 3]]), (3, 2))
    assert torch.equal(crops[1], x[1, :, 2:5, 3:5])


@pytest.mark.parametrize("per_batch", [False, True])
def test_equivariant_net_is_perfectly_consistent_under_circular_shifts(per_batch):
    config = ConsistencyConfig(protocol="circular", max_shift=7, copies=3, per_batch=per_batch, seed=3)
    out = evaluate_consistency(equivariant_net(), batches(), config)
    assert out["consistency"].value == 1.0 and out["consistency"].total == 12


class PixelReadout(nn.Module):
    """Logits = five pixels of a 4x-subsampled image: as shift-sensitive as a classifier gets."""

    def forward(self, x):
        return x[:, 0, ::4, ::4].flatten(1)[:, :5]


def test_subsampling_is_not_consistent_and_results_are_seeded():
    net = PixelReadout()
    data = batches(n=40)
    config = ConsistencyConfig(protocol="crop", max_shift=3, seed=7)
    first = evaluate_consistency(net, data, config)
    again = evaluate_consistency(net, data, config)
    assert first == again
    assert first["consistency"].value < 0.9
    assert first != evaluate_consistency(net, data, ConsistencyConfig(protocol="crop", max_shift=3, seed=8))


def test_crop_protocol_errors():
    with pytest.raises(ValueError, match="need images of at least"):
        evaluate_consistency(equivariant_net(), batches(size=16), ConsistencyConfig(crop_size=14, max_shift=5))
    with pytest.raises(ValueError, match="protocol"):
        ConsistencyConfig(protocol="rolls")
    with pytest.raises(ValueError, match=r"logits of shape \(N, classes\)"):
        evaluate_consistency(nn.Identity(), batches(), ConsistencyConfig())


def test_diagonal_stability_of_invariant_net_is_flat():
    result = diagonal_stability(equivariant_net(), batches(), max_shift=5, protocol="circular")
    assert result.prob_correct.shape == (12, 6)
    torch.testing.assert_close(result.prob_correct, result.prob_correct[:, :1].expand(12, 6))
    assert result.mean_abs_step_change == pytest.approx(0.0, abs=1e-12)
    assert result.prediction_changes == 0


# --------------------------------------------------------------------------- equivariance maps


def test_upsampler_reproduces_the_authors_example():
    a, b, c, d = 1.0, 3.0, 7.0, 5.0
    out = circular_upsample(torch.tensor([[[[a, b, c, d]]]]), (1, 8))
    expected = [a, (a + b) / 2, b, (b + c) / 2, c, (c + d) / 2, d, (d + a) / 2]
    assert out.flatten().tolist() == expected
    with pytest.raises(ValueError, match="power-of-two"):
        circular_upsample(torch.zeros(1, 1, 3, 3), (8, 8))


def recursive_2x(x, size):
    """The author's description, literally: per axis, interleave each value with the mean of it and
    its circular successor, until the size is reached."""
    for dim, target in ((2, size[0]), (3, size[1])):
        while x.shape[dim] < target:
            mid = (x + x.roll(-1, dim)) / 2
            x = torch.stack((x, mid), dim=dim + 1).flatten(dim, dim + 1)
    return x


@pytest.mark.parametrize("h,w", [(1, 1), (2, 4), (4, 8), (8, 2), (16, 16)])
def test_upsampler_equals_recursive_doubling(h, w):
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    torch.testing.assert_close(circular_upsample(x, (16, 16)), recursive_2x(x, (16, 16)))


def test_equivariant_net_has_zero_feature_distance_everywhere():
    images = batches(n=4)[0][0][:4]
    result = feature_distance_maps(equivariant_net(), images, step=3)
    assert result.layers == ["0", "1", "2", "3"]  # convs and ReLUs; global pooling is not a default layer
    assert result.maps.shape == (4, 6, 6)
    assert result.maps.abs().max() < 1e-6


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_subsampling_is_equivariant_only_at_even_shifts(distance):
    images = batches(n=3)[0][0][:3]
    result = feature_distance_maps(subsampling_net(), images, layers=["1"], distance=distance)
    m = result.maps[0]  # (16, 16) over all shifts
    even = m[::2, ::2]
    odd = torch.cat([m[1::2].flatten(), m[::2, 1::2].flatten()])
    assert even.abs().max() < 1e-6
    assert odd.min() > 1e-3


def test_unknown_layer_suggests():
    with pytest.raises(ValueError, match="Did you mean"):
        feature_distance_maps(equivariant_net(), torch.zeros(1, 1, 8, 8, dtype=torch.float64), layers=["11"])
