"""Flip probability and top-5 distance (ImageNet-P style): hand examples, the paper's formula, class == function."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from perturbation_helpers import reference_flips

from antialias.eval.perturbation.metric import (
    PerturbationStability,
    flip_probability,
    perturbation_stability,
    top5_distance,
)

# --------------------------------------------------------------------------- maths on hand examples


def ranked(*orders, k=7):
    """Logits whose descending ranking is each given class order (classes not listed follow by index)."""
    rows = []
    for order in orders:
        rest = [c for c in range(k) if c not in order]
        row = torch.empty(k)
        for position, c in enumerate(list(order) + rest):
            row[c] = float(k - position)
        rows.append(row)
    return torch.stack(rows)[None]  # (1, T, k)


def test_top5_distance_hand_examples():
    assert top5_distance(ranked([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])) == 0.0
    assert top5_distance(ranked([0, 1, 2, 3, 4], [1, 0, 2, 3, 4])) == 2.0  # a swap moves two classes by 1
    # the top class falls out of the top 5 (to rank 6): capped at 5; the other four each move up 1
    assert top5_distance(ranked([0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 0])) == 5 + 4
    # the top 5 reversed: |4-0| + |3-1| + 0 + |1-3| + |0-4|
    assert top5_distance(ranked([0, 1, 2, 3, 4], [4, 3, 2, 1, 0])) == 12.0
    # two pairs in a sequence of three frames are averaged
    assert top5_distance(ranked([0, 1, 2], [1, 0, 2], [1, 0, 2])) == 1.0


def paper_t5d(order_a, order_b):
    """Hendrycks & Dietterich: sum_{i=1..5} sum_{j=min(i,s(i))+1..max(i,s(i))} 1(1 <= j-1 <= 5), 1-based."""
    position_b = {c: p + 1 for p, c in enumerate(order_b)}
    total = 0
    for i in range(1, 6):
        sigma = position_b[order_a[i - 1]]
        total += sum(1 for j in range(min(i, sigma) + 1, max(i, sigma) + 1) if 1 <= j - 1 <= 5)
    return total


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(5, 12))
def test_top5_distance_matches_the_papers_double_sum(seed, k):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 2, k, generator=g)
    orders = [logits[0, t].argsort(descending=True).tolist() for t in range(2)]
    assert top5_distance(logits) == paper_t5d(*orders)


def test_flip_probability_hand_example():
    logits = ranked([0], [1], [1], [0], k=3)  # predictions 0, 1, 1, 0
    assert flip_probability(logits) == pytest.approx(2 / 3)
    assert flip_probability(logits, step=2) == pytest.approx(2 / 2)  # (0,2) and (1,3) both differ
    assert flip_probability(logits, noise=True) == pytest.approx(2 / 3)  # frames 1, 2 differ from frame 0


@pytest.mark.parametrize("noise,step", [(False, 1), (False, 3), (True, 1)])
def test_class_equals_function_equals_reference_loop(noise, step):
    g = torch.Generator().manual_seed(step)
    name = "gaussian_noise" if noise else "rotate"
    logits = torch.randn(9, 8, 3, generator=g)
    assert flip_probability(logits, noise=noise, step=step) == pytest.approx(reference_flips(logits, noise, step))
    metric = PerturbationStability([name], step=step)
    metric.update(logits[:4], name)
    metric.update(logits[4:], name)
    cls = metric.compute()
    fn = perturbation_stability({name: logits}, step=step)
    assert cls.flip_probability[name].value == pytest.approx(reference_flips(logits, noise, step))
    assert cls.to_dict() == fn.to_dict()
    assert cls.t5d[name].value == pytest.approx(top5_distance(logits, noise=noise, step=step))


def test_two_rank_merge_equals_one_process():
    g = torch.Generator().manual_seed(0)
    data = {"translate": torch.randn(10, 16, 5, generator=g), "shot_noise": torch.randn(10, 31, 5, generator=g)}
    whole = PerturbationStability(list(data))
    ranks = [PerturbationStability(list(data)) for _ in range(2)]
    for name, logits in data.items():
        whole.update(logits, name)
        ranks[0].update(logits[:3], name)
        ranks[1].update(logits[3:], name)
    ranks[0].merge_state(ranks[1])
    assert ranks[0].compute().to_dict() == whole.compute().to_dict()


def test_reference_normaliser_gives_fr_100(tmp_path):
    g = torch.Generator().manual_seed(1)
    data = {"rotate": torch.randn(6, 31, 4, generator=g), "scale": torch.randn(6, 31, 4, generator=g)}
    base = perturbation_stability(data)
    assert (
        base.fr == {}
        and base.mfr is None
        and base.unnormalised_mfr.value
        == pytest.approx(100 * (base.flip_probability["rotate"].value + base.flip_probability["scale"].value) / 2)
    )
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base.to_dict()))
    for normaliser in (base, path):
        r = perturbation_stability(data, normaliser=normaliser)
        assert r.mfr.value == pytest.approx(100.0) and r.mt5d.value == pytest.approx(100.0)
        assert r.mfr.low < 100 < r.mfr.high and r.to_dict()["normaliser"]["flip_probability"]["rotate"] > 0
    half = perturbation_stability(data, normaliser={p: 2 * e.value for p, e in base.flip_probability.items()})
    assert half.fr["scale"].value == pytest.approx(50.0)


# --------------------------------------------------------------------------- bad input


def test_unknown_perturbation_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'translate'"):
        PerturbationStability(["translation"])


def test_bad_logits_and_step():
    with pytest.raises(ValueError, match=r"`logits` must have shape \(N, frames, classes\)"):
        flip_probability(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="too short for `step` 5"):
        flip_probability(torch.zeros(2, 5, 3), step=5)
    with pytest.raises(ValueError, match="`step` must be an int >= 1"):
        PerturbationStability(["rotate"], step=0)


def test_every_pair_of_frames_is_compared_once():
    # step = 1 on a sequence whose prediction changes at every frame flips at every pair
    logits = torch.stack([torch.eye(4)[t % 4] for t in range(9)])[None]
    assert flip_probability(logits) == 1.0
    assert flip_probability(logits, step=4) == 0.0  # frames t and t + 4 share a class
