"""antialias.eval.consistency: one implementation behind the CLI, the Python API and ``antialias reproduce``.

References are independent of the code under test: offsets recomputed from the documented formula
(``index_uniforms`` of ``derived_seed(seed, SHIFTS, pass)``, itself checked against a scalar
SplitMix64 in tests/data/test_data_seeding.py), shifts by ``torch.roll`` and slicing of ``F.pad``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from antialias._factory import import_factory
from antialias.cli import main
from antialias.data.seeding import SHIFTS, derived_seed, index_uniforms
from antialias.data.transforms import default_transform
from antialias.eval import ConsistencyConfig, ShiftConsistency, evaluate_consistency, shift_consistency
from antialias.eval._shifts import crop_at, roll_by
from antialias.eval.consistency import draw_offsets, offset_range
from antialias.eval.protocols import run_consistency
from antialias.reproduce._data import EvalData
from antialias.reproduce._evaluate import PartCache, evaluate_model
from antialias.reproduce.config import EvalSettings

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")

FACTORIES = textwrap.dedent(
    """
    import torch
    from torch import nn

    from antialias.data import ImageTensorDataset


    def images(split="test", root=None):
        g = torch.Generator().manual_seed(11)
        x = torch.randint(0, 256, (30, 1, 12, 12), dtype=torch.uint8, generator=g)
        return ImageTensorDataset(x, torch.randint(0, 3, (30,), generator=g), ["a", "b", "c"])


    def net(in_channels=1, num_classes=3):
        torch.manual_seed(0)  # a linear read-out of the pixels: every offset changes the logits
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 12 * 12, num_classes))
    """
)


@pytest.fixture(scope="module")
def factories(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("consistency") / "factories.py"
    path.write_text(FACTORIES)
    return path


def _load(path: Path):
    """The same factories the CLI imports."""
    return import_factory(f"{path}:images", "test", "data"), import_factory(f"{path}:net", "test", "model")


def counts(results: dict) -> dict[str, tuple[int, int]]:
    return {k: (v["successes"], v["total"]) for k, v in results.items() if k in ("consistency", "accuracy")}


@pytest.mark.parametrize("protocol", ["crop", "circular"])
def test_cli_python_api_and_reproduce_give_identical_numbers(factories, tmp_path, protocol):
    images, net = _load(factories)
    dataset = images()
    # The CLI, with batches of 4.
    out = tmp_path / "cli.json"
    assert main(["eval", "consistency", "--model", f"{factories}:net", "--data", f"{factories}:images", "--protocol",
                 protocol, "--max-shift", "3", "--seed", "5", "--normalize", "dataset", "--batch-size", "4",
                 "--device", "cpu", "--out", str(out)]) == 0
    cli = counts(json.loads(out.read_text())["results"])
    # The Python API, with batches of 16.
    api = counts(run_consistency(net(), dataset, config=ConsistencyConfig(protocol=protocol, max_shift=3, seed=5),
                                 normalize="dataset", batch_size=16, device="cpu")["results"])
    # antialias reproduce's evaluation of one model, with batches of 7.
    data = EvalData(dataset.images.float() / 255, dataset.targets, default_transform(dataset, train=False), 3, "toy")
    settings_ = EvalSettings(num_images=30, crop_max_shift=3, circular_max_shift=3, stability_images=2,
                             stability_max_shift=1, corruption_images=0, perturbation_images=0, seed=5, batch_size=7)
    measured = evaluate_model(net(), data, settings_, PartCache(tmp_path / "cache", "weights"), equivariance=False)
    part = measured["consistency"][protocol]
    reproduce = {"consistency": (part["consistency"]["successes"], part["consistency"]["total"]),
                 "accuracy": (part["shifted_accuracy"]["successes"], part["shifted_accuracy"]["total"])}
    assert cli == api == reproduce
    assert 0 < cli["consistency"][0] < 30  # shift-sensitive: the offsets matter, so equality is not luck
    assert part["per_image"].count("1") == cli["consistency"][0]


def reference_offsets(index: int, cfg: ConsistencyConfig, pass_index: int = 0) -> list[tuple[int, int]]:
    """The documented draw for one image: uniforms 2k, 2k+1 scaled to {low..high}."""
    low, high = offset_range(cfg)
    u = index_uniforms(derived_seed(cfg.seed, SHIFTS, pass_index), [index], 2 * cfg.copies)[0].tolist()
    span = high - low + 1
    return [(low + int(u[2 * k] * span), low + int(u[2 * k + 1] * span)) for k in range(cfg.copies)]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    m=st.integers(0, 6),
    copies=st.integers(2, 4),
    protocol=st.sampled_from(["crop", "circular"]),
    start=st.integers(0, 1000),
    n=st.integers(1, 9),
    pass_index=st.integers(0, 3),
)
def test_offsets_are_a_function_of_seed_pass_and_index(seed, m, copies, protocol, start, n, pass_index):
    cfg = ConsistencyConfig(protocol=protocol, max_shift=m, copies=copies, seed=seed)
    offsets = draw_offsets(torch.arange(start, start + n), cfg, pass_index)  # (K, n, 2)
    assert offsets.shape == (copies, n, 2)
    low, high = offset_range(cfg)
    assert int(offsets.min()) >= low and int(offsets.max()) <= high
    for j in range(n):
        assert [tuple(p) for p in offsets[:, j].tolist()] == reference_offsets(start + j, cfg, pass_index)


def test_per_batch_shares_the_first_images_offsets():
    cfg = ConsistencyConfig(max_shift=5, seed=2, per_batch=True)
    offsets = draw_offsets(torch.arange(7, 12), cfg)
    assert torch.equal(offsets, offsets[:, :1].expand(-1, 5, 2))
    assert [tuple(p) for p in offsets[:, 0].tolist()] == reference_offsets(7, cfg)


def tiny(n=23, size=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), torch.randint(0, 4, (n,), generator=g)


def readout():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(100, 4))  # position-dependent: sensitive to every offset


@pytest.mark.parametrize("cfg", [ConsistencyConfig(max_shift=3, copies=3, passes=2, seed=4),
                                 ConsistencyConfig(protocol="circular", max_shift=4, seed=1)])
def test_results_do_not_depend_on_batch_size_or_sharding(cfg):
    x, y = tiny()

    def run(batch, shards):
        metric = ShiftConsistency()
        for lo, hi in shards:
            evaluate_consistency(
                readout(),
                [(x[i : min(hi, i + batch)], y[i : min(hi, i + batch)]) for i in range(lo, hi, batch)],
                cfg,
                metric=metric,
                first_index=lo,
            )
        return {k: int(getattr(metric, k)) for k in ("agree", "compared", "correct", "labelled")}

    whole = run(23, [(0, 23)])
    assert whole == run(5, [(0, 23)]) == run(4, [(0, 8), (8, 23)])
    assert 0 < whole["agree"] < whole["compared"]
    # A shard numbered from the wrong first image draws other offsets: the numbering matters.
    metric = ShiftConsistency()
    evaluate_consistency(readout(), [(x[8:], y[8:])], cfg, metric=metric, first_index=0)
    evaluate_consistency(readout(), [(x[:8], y[:8])], cfg, metric=metric, first_index=15)
    assert int(metric.agree) != whole["agree"] or int(metric.correct) != whole["correct"]


def test_evaluate_consistency_matches_a_plain_loop():
    x, y = tiny()
    net = readout()
    for cfg in (ConsistencyConfig(max_shift=2, seed=9), ConsistencyConfig(protocol="circular", max_shift=3, seed=9)):
        m = cfg.max_shift
        agree = correct = 0
        with torch.no_grad():
            for i in range(len(x)):
                preds = []
                for r, c in reference_offsets(i, cfg):
                    if cfg.protocol == "circular":
                        shifted = x[i].roll((r, c), (-2, -1))
                    else:
                        shifted = F.pad(x[i : i + 1], (m, m, m, m))[0, :, r : r + 10, c : c + 10]
                    preds.append(int(net(shifted[None]).argmax()))
                agree += preds[0] == preds[1]
                correct += preds[0] == int(y[i])
        out = evaluate_consistency(net, [(x[:10], y[:10]), (x[10:], y[10:])], cfg)
        assert (out["consistency"].successes, out["accuracy"].successes) == (agree, correct)
        assert out["consistency"].total == out["accuracy"].total == 23


def test_imagenet_data_gets_the_papers_protocol():
    assert ConsistencyConfig.for_data("imagenet:/x") == ConsistencyConfig(crop_size=224, max_shift=31)
    assert ConsistencyConfig.for_data("imagenet:/x", crop_size=None).max_shift == 4
    assert ConsistencyConfig.for_data("cifar10", max_shift=None) == ConsistencyConfig()


@pytest.mark.parametrize(
    "values,match",
    [
        ({"copies": 1}, r"`ConsistencyConfig`: `copies` must be an integer >= 2, got 1\."),
        ({"protocol": "circulr"}, "Did you mean 'circular'"),
        ({"confidence": 1.5}, r"`confidence` must be a number in \(0, 1\)"),
        ({"max_shfit": 3}, "unknown key 'max_shfit'. Did you mean 'max_shift'"),
    ],
)
def test_bad_config_is_refused_clearly(values, match):
    with pytest.raises(ValueError, match=match):
        ConsistencyConfig.from_dict(values)


# --------------------------------------------------------------------------- helpers of the metric tests


def equivariant_net(classes=5):
    """Stride-1 circular convs + global pooling: exactly invariant to circular shifts."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    ).double()


def batches(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (n,), generator=g)
    return [(x[:6], y[:6]), (x[6:], y[6:])]


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


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 4), n=st.integers(1, 20), split=st.integers(0, 20), seed=st.integers(0, 1000))
def test_kept_outcomes_are_the_per_image_reference_in_order(k, n, split, seed):
    g = torch.Generator().manual_seed(seed)
    logits, target = torch.randn(k, n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)
    metric = ShiftConsistency(keep_outcomes=True)
    for part in (slice(0, min(split, n)), slice(min(split, n), n)):
        metric.update(logits[:, part], target[part])
    pred = [[int(logits[c, i].argmax()) for c in range(k)] for i in range(n)]
    out = metric.outcomes()
    assert out["consistent"].tolist() == [len(set(p)) == 1 for p in pred]
    assert out["correct"].tolist() == [p[0] == int(t) for p, t in zip(pred, target, strict=True)]
    assert int(out["consistent"].sum()) == metric.compute()["consistency"].successes


def test_outcomes_need_keep_outcomes():
    # Their merge across ranks (in rank order) is checked under torchrun in test_protocols.py.
    with pytest.raises(ValueError, match="`keep_outcomes` must be True"):
        ShiftConsistency().outcomes()


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
