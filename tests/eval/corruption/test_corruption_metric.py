"""Corruption errors, CE and mCE (ImageNet-C style): the maths, without the imagecorruptions library."""

import json

import pytest
import torch
from corruption_helpers import SEV

from antialias.eval._names import ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS
from antialias.eval.corruption._alexnet import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, ALEXNET_MEAN_ERRORS
from antialias.eval.corruption.metric import (
    CorruptionError,
    CorruptionNormaliser,
    _corruption_compute,
    corruption_error,
)

N_IMAGENET = 50_000  # ImageNet val: every published error is k / 50000


# --------------------------------------------------------------------------- constants and maths


def test_alexnet_constants_are_consistent():
    assert set(ALEXNET_ERRORS) == set(CORRUPTIONS) and len(CORRUPTIONS) == 15 and len(EXTRA_CORRUPTIONS) == 4
    assert set(ALEXNET_MEAN_ERRORS) == set(ALL_CORRUPTIONS)
    for name, per in ALEXNET_ERRORS.items():  # the published means are the means of the published severities
        assert sum(per) / 5 == pytest.approx(ALEXNET_MEAN_ERRORS[name], abs=1e-6), name
        assert all(abs(e * N_IMAGENET - round(e * N_IMAGENET)) < 1e-6 for e in per)


def alexnet_counts(names=CORRUPTIONS):
    wrong = torch.tensor([[round(e * N_IMAGENET) for e in ALEXNET_ERRORS[c]] for c in names])
    return wrong, N_IMAGENET, round(ALEXNET_CLEAN_ERROR * N_IMAGENET), N_IMAGENET


def test_alexnet_gives_mce_100_and_relative_mce_100():
    alexnet = CorruptionNormaliser.resolve("alexnet")
    r = _corruption_compute(*alexnet_counts(), CORRUPTIONS, SEV, alexnet, 0.95)
    assert r.mce.value == pytest.approx(100.0, abs=1e-9)
    assert r.relative_mce.value == pytest.approx(100.0, abs=1e-9)
    for c in CORRUPTIONS:
        assert r.ce[c].value == pytest.approx(100.0, abs=1e-9) and r.ce[c].low < 100 < r.ce[c].high
    # unnormalised mCE = mean AlexNet error over the 15, in percent
    expect = 100 * sum(ALEXNET_MEAN_ERRORS[c] for c in CORRUPTIONS) / 15
    assert r.unnormalised_mce.value == pytest.approx(expect, abs=1e-9)
    assert r.clean_error.value == pytest.approx(ALEXNET_CLEAN_ERROR)
    json.dumps(r.to_dict())


def test_extra_corruptions_normalise_by_published_means():
    # The extra four have only a published mean: 5 severities summing to 5 * mean give CE = 100.
    totals = [round(5 * ALEXNET_MEAN_ERRORS[c] * N_IMAGENET) for c in EXTRA_CORRUPTIONS]  # exact integers
    wrong = torch.tensor([[t // 5 + t % 5] + [t // 5] * 4 for t in totals])
    r = _corruption_compute(
        wrong, N_IMAGENET, 0, 0, EXTRA_CORRUPTIONS, SEV, CorruptionNormaliser.resolve("alexnet"), 0.95
    )
    for c in EXTRA_CORRUPTIONS:
        assert r.ce[c].value == pytest.approx(100.0, abs=1e-9)
    assert r.mce is None and any("15 test corruptions" in note for note in r.notes)  # the extra 4 never make an mCE


def test_half_the_errors_give_mce_50_and_relative_mce_against_clean():
    wrong, n, _, _ = alexnet_counts()
    alexnet = CorruptionNormaliser.resolve("alexnet")
    r = _corruption_compute(wrong / 2, n, 0, n, CORRUPTIONS, SEV, alexnet, 0.95)  # (float halves are fine for counts)
    assert r.mce.value == pytest.approx(50.0, abs=1e-3)
    # relative CE with a perfect clean model: sum_s E / sum_s (A - A_clean), by hand for one corruption
    c = "fog"
    num = sum(e / 2 for e in ALEXNET_ERRORS[c])
    den = sum(e - ALEXNET_CLEAN_ERROR for e in ALEXNET_ERRORS[c])
    assert r.relative_ce[c].value == pytest.approx(100 * num / den, rel=1e-4)


def random_grid(c=3, s=5, n=20, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(c, s, n, k, generator=g), torch.randint(0, k, (n,), generator=g), torch.randn(n, k, generator=g)


def reference_result(logits, target, clean, names, ref):
    """Plain loops: errors per cell, CE_c = sum_s E / sum_s E_ref, relative CE, in percent."""
    out = {}
    clean_err = sum(int(clean[i].argmax()) != int(target[i]) for i in range(len(target))) / len(target)
    for ci, name in enumerate(names):
        errs = []
        for si in range(logits.shape[1]):
            errs.append(
                sum(int(logits[ci, si, i].argmax()) != int(target[i]) for i in range(len(target))) / len(target)
            )
        out[name] = (
            errs,
            100 * sum(errs) / sum(ref[name]),
            100 * sum(e - clean_err for e in errs) / sum(e - ref["clean"] for e in ref[name]),
        )
    return out, clean_err


def test_class_equals_function_equals_reference_loop():
    names = ["fog", "snow", "pixelate"]
    logits, target, clean = random_grid()
    ref = {"fog": [0.6, 0.7, 0.8, 0.85, 0.9], "snow": [0.5] * 5, "pixelate": [0.9, 0.8, 0.95, 0.99, 0.97], "clean": 0.3}
    expect, clean_err = reference_result(logits, target, clean, names, ref)
    fn = corruption_error(logits, target, clean_logits=clean, corruptions=names, normaliser=ref)
    metric = CorruptionError(names, normaliser=ref)
    for part in (slice(0, 7), slice(7, 20)):
        metric.update(logits[:, :, part], target[part], clean[part])
    cls = metric.compute()
    for r in (fn, cls):
        assert r.clean_error.value == pytest.approx(clean_err)
        for name in names:
            errs, ce, rel = expect[name]
            assert [r.errors[name][s].value for s in SEV] == pytest.approx(errs)
            assert r.ce[name].value == pytest.approx(ce) and r.relative_ce[name].value == pytest.approx(rel)
    assert fn.to_dict()["errors"] == cls.to_dict()["errors"]


def test_two_rank_merge_equals_one_process():
    names = ["gaussian_noise", "contrast"]
    logits, target, clean = random_grid(c=2, n=30, seed=1)
    whole = CorruptionError(names, normaliser="alexnet")
    whole.update(logits, target, clean)
    ranks = [CorruptionError(names, normaliser="alexnet") for _ in range(2)]
    ranks[0].update(logits[:, :, :11], target[:11], clean[:11])
    ranks[1].update(logits[:, :, 11:], target[11:], clean[11:])
    ranks[0].merge_state(ranks[1])
    assert ranks[0].compute().to_dict() == whole.compute().to_dict()


def test_reference_model_normaliser_roundtrip(tmp_path):
    names = ["fog", "snow"]
    logits, target, clean = random_grid(c=2, n=40, seed=2)
    base = corruption_error(logits, target, clean_logits=clean, corruptions=names)
    assert base.ce == {}  # no normaliser: no CE
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base.to_dict()))
    for normaliser in (base, path, base.to_dict()):
        r = corruption_error(logits, target, clean_logits=clean, corruptions=names, normaliser=normaliser)
        assert all(r.ce[c].value == pytest.approx(100.0) for c in names)
        assert all(r.relative_ce[c].value == pytest.approx(100.0) for c in names)
        assert r.normaliser.errors["fog"][3] == pytest.approx(base.errors["fog"][3].value)


# --------------------------------------------------------------------------- bad input


def test_unknown_corruption_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'gaussian_noise'"):
        CorruptionError(["gausian_noise"])
    with pytest.raises(ValueError, match="Did you mean 'jpeg_compression'"):
        corruption_error(torch.zeros(1, 5, 2, 3), torch.zeros(2, dtype=torch.long), corruptions=["jpeg"])


def test_bad_logits_severities_and_normaliser():
    with pytest.raises(ValueError, match=r"`logits` must have shape \(corruptions=2, severities=5"):
        corruption_error(torch.zeros(1, 5, 2, 3), torch.zeros(2, dtype=torch.long), corruptions=["fog", "snow"])
    with pytest.raises(ValueError, match=r"`severities` must be distinct ints in 1\.\.5"):
        CorruptionError(["fog"], severities=[0, 1])
    with pytest.raises(ValueError, match="not a file"):
        CorruptionError(["fog"], normaliser="no/such/result.json")
    with pytest.raises(TypeError, match="`normaliser` must be"):
        CorruptionError(["fog"], normaliser=3.0)
