"""Worst-case, k-way and random sub-pixel consistency and MAC: class == function == a plain loop, and properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from antialias.eval._stats import bootstrap_mean_interval
from antialias.eval.worst_case import (
    KWayConsistency,
    MeanAbsoluteChange,
    WorstCaseConfig,
    WorstCaseConsistency,
    WorstCaseMetrics,
    evaluate_worst_case,
    k_way_consistency,
    mean_absolute_change,
    shift_grid,
    worst_case_consistency,
)


def _logits(g: int, n: int, classes: int, seed: int) -> torch.Tensor:
    # Few distinct values so that agreements and disagreements both happen.
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (g, n, classes), generator=gen).float() + 0.01 * torch.rand(g, n, classes, generator=gen)


def _loop_unchanged(logits: torch.Tensor) -> list[bool]:
    out = []
    for i in range(logits.shape[1]):
        first = int(logits[0, i].argmax())
        out.append(all(int(logits[g, i].argmax()) == first for g in range(logits.shape[0])))
    return out


def _loop_mac(logits: torch.Tensor) -> list[float]:
    out = []
    for i in range(logits.shape[1]):
        p0 = torch.softmax(logits[0, i].double(), 0)
        c = int(p0.argmax())
        changes = [abs(float(torch.softmax(logits[g, i].double(), 0)[c] - p0[c])) for g in range(1, logits.shape[0])]
        out.append(sum(changes) / len(changes))
    return out


@settings(max_examples=30, deadline=None)
@given(g=st.integers(2, 6), n=st.integers(1, 30), split=st.integers(0, 30), seed=st.integers(0, 2**16))
def test_class_equals_function_equals_loop_batch_by_batch(g, n, split, seed):
    logits = _logits(g, n, 4, seed)
    split = min(split, n)
    expected = _loop_unchanged(logits)
    for fn, metric in ((worst_case_consistency, WorstCaseConsistency()), (k_way_consistency, KWayConsistency(g))):
        for part in (logits[:, :split], logits[:, split:]):
            if part.shape[1]:
                metric.update(part)
        p = fn(logits)
        assert (p.successes, p.total) == (sum(expected), n)
        assert metric.compute() == p
        assert metric.outcomes().tolist() == expected
    mac = MeanAbsoluteChange(seed=3)
    for part in (logits[:, :split], logits[:, split:]):
        if part.shape[1]:
            mac.update(part)
    torch.testing.assert_close(mac.values(), torch.tensor(_loop_mac(logits), dtype=torch.float64))
    assert mac.compute() == mean_absolute_change(logits, seed=3)
    assert mac.compute().value == pytest.approx(sum(_loop_mac(logits)) / n)


@pytest.mark.filterwarnings("ignore:The ..compute.. method")
def test_two_rank_merge_equals_one_process():
    logits = _logits(4, 23, 5, 0)
    ranks = [(WorstCaseConsistency(), MeanAbsoluteChange()), (WorstCaseConsistency(), MeanAbsoluteChange())]
    for (wc, mac), part in zip(ranks, (logits[:, :9], logits[:, 9:]), strict=True):
        wc.update(part)
        mac.update(part)
    merged_wc, merged_mac = WorstCaseConsistency(), MeanAbsoluteChange()
    # Each state's dist_reduce_fx ("sum", "cat"), as the DDP sync does; merge_state puts the incoming
    # list state first, so rank 1 is merged before rank 0 to get the rank order of a DDP gather.
    for wc, mac in reversed(ranks):
        merged_wc.merge_state(wc)
        merged_mac.merge_state(mac)
    assert merged_wc.compute() == worst_case_consistency(logits)
    assert merged_wc.outcomes().tolist() == _loop_unchanged(logits)
    assert merged_mac.compute() == mean_absolute_change(logits)


def test_k_way_checks_k_and_shapes():
    with pytest.raises(ValueError, match=r"`KWayConsistency`: `logits` must hold k = 3 copies, got 2"):
        KWayConsistency(3).update(torch.zeros(2, 4, 10))
    with pytest.raises(ValueError, match=r"`KWayConsistency`: `k` must be an integer >= 2, got 1"):
        KWayConsistency(1)
    with pytest.raises(ValueError, match=r"`worst_case_consistency`: `logits` must have shape \(copies >= 2"):
        worst_case_consistency(torch.zeros(1, 4, 10))
    with pytest.raises(ValueError, match=r"`mean_absolute_change`: `logits` must have shape"):
        mean_absolute_change(torch.zeros(4, 10))


def test_mac_interval_is_the_seeded_bootstrap_over_images():
    logits = _logits(3, 40, 6, 1)
    est = mean_absolute_change(logits, seed=5, resamples=500)
    mean, low, high = bootstrap_mean_interval(_loop_mac(logits), resamples=500, seed=5)
    assert (est.value, est.low, est.high, est.n) == pytest.approx((mean, low, high, 40))
    assert est.low < est.value < est.high
    assert mean_absolute_change(logits, seed=6, resamples=500).low != est.low  # the seed reaches the bootstrap


# --------------------------------------------------------------------------- the protocol on models


class _PointwiseGap(nn.Module):
    """Global average pool of a pointwise convolution: exactly invariant to circular shifts (and linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 1)
        torch.manual_seed(0)
        nn.init.normal_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


class _OnePixel(nn.Module):
    """Reads one pixel: not shift-invariant at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, 0, 3, 4]
        return torch.stack([v, 1 - v, 0.5 * torch.ones_like(v)], dim=1)


def _images(n: int = 12, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, size, size, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_circular_invariant_model_is_fully_consistent_with_zero_mac():
    x, y = _images()
    cfg = WorstCaseConfig(max_shift=4, k=4, random_shift=3)  # every circular shift of 8x8
    assert shift_grid("circular", cfg, (8, 8)).shape[0] == 63
    r = evaluate_worst_case(_PointwiseGap(), [(x[:5], y[:5]), (x[5:], y[5:])], cfg)
    assert r["worst_case"]["circular"].value == 1.0 and r["worst_case"]["circular"].total == 12
    assert r["mac"]["circular"].value < 1e-6 and r["mac"]["circular"].high < 1e-6
    assert r["k_way"].value == 1.0
    # The model is linear before the mean, and a Fourier shift keeps the mean: sub-pixel invariant too.
    assert r["worst_case"]["subpixel"].value == 1.0 and r["random_subpixel"].value == 1.0
    assert r["mac"]["subpixel"].value < 1e-6


def test_one_pixel_model_is_not_consistent():
    x, y = _images()
    r = evaluate_worst_case(_OnePixel(), [(x, y)], WorstCaseConfig(max_shift=1))
    for family in ("circular", "crop", "subpixel", "all"):
        assert r["worst_case"][family].value < 1.0
        assert r["mac"][family].value > 0.01
    # All families together are at most as consistent as each.
    assert r["worst_case"]["all"].value <= min(r["worst_case"][f].value for f in ("circular", "crop", "subpixel"))
    assert r["k_way"].value < 1.0 and r["random_subpixel"].value < 1.0


def _loop_reference(model: nn.Module, x: torch.Tensor, cfg: WorstCaseConfig) -> list[bool]:
    """Circular worst case by a plain loop over images and torch.roll."""
    out = []
    with torch.no_grad():
        for img in x:
            ref = int(model(img[None]).argmax())
            ok = True
            for dy in range(-cfg.max_shift, cfg.max_shift + 1):
                for dx in range(-cfg.max_shift, cfg.max_shift + 1):
                    ok &= int(model(torch.roll(img, (dy, dx), dims=(1, 2))[None]).argmax()) == ref
            out.append(ok)
    return out


def test_protocol_matches_a_plain_loop_and_does_not_depend_on_batches():
    x, y = _images(10)
    model = _OnePixel()
    cfg = WorstCaseConfig(families=("circular",), max_shift=1)
    metrics = WorstCaseMetrics.for_config(cfg)
    evaluate_worst_case(model, [(x[:3], y[:3]), (x[3:], y[3:])], cfg, metrics=metrics)
    assert metrics.per_image()["worst_case_circular"].tolist() == _loop_reference(model, x, cfg)
    assert "all" not in metrics.worst_case  # one family: no join
    other = WorstCaseMetrics.for_config(cfg)
    evaluate_worst_case(model, [(x[:7], y[:7]), (x[7:], y[7:])], cfg, metrics=other)
    for key, value in metrics.per_image().items():
        assert torch.equal(value, other.per_image()[key]), key


def test_random_shifts_depend_on_the_seed():
    x, y = _images(40)
    runs = [WorstCaseMetrics.for_config(WorstCaseConfig(families=("crop",), max_shift=1, seed=s)) for s in (0, 0, 1)]
    for m, s in zip(runs, (0, 0, 1), strict=True):
        evaluate_worst_case(_OnePixel(), [(x, y)], WorstCaseConfig(families=("crop",), max_shift=1, seed=s), metrics=m)
    a, b, c = (m.per_image() for m in runs)
    assert torch.equal(a["random_subpixel"], b["random_subpixel"]) and torch.equal(a["k_way"], b["k_way"])
    assert not (torch.equal(a["random_subpixel"], c["random_subpixel"]) and torch.equal(a["k_way"], c["k_way"]))


def test_grids():
    cfg = WorstCaseConfig(max_shift=2, subpixel_step=0.25, subpixel_max_shift=0.5)
    assert shift_grid("crop", cfg, (32, 32)).shape == (24, 2)
    sub = shift_grid("subpixel", cfg, (32, 32))
    assert sub.shape == (24, 2) and {0.25, 0.5, -0.25, -0.5} <= set(sub[:, 0].tolist())


@pytest.mark.parametrize(("values", "match"), [
    ({"families": ("circular", "rotate")}, r"`families` must be one of 'circular', 'crop', 'subpixel', got 'rotate'"),
    ({"families": ()}, "`families` must be a non-empty list"),
    ({"families": ("crop", "crop")}, "`families` must be a list without repeats"),
    ({"max_shift": -1}, r"`max_shift` must be an integer >= 0, got -1"),
    ({"subpixel_step": 0}, "`subpixel_step` must be a positive number, got 0"),
    ({"k": 1}, "`k` must be an integer >= 2"),
    ({"confidence": 1.5}, r"`confidence` must be a number in \(0, 1\)"),
    ({"pad_mode": "zero"}, "Did you mean 'zeros'"),
])
def test_bad_config_is_refused_clearly(values, match):
    with pytest.raises(ValueError, match=match):
        WorstCaseConfig(**values)
