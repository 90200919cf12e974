"""Perturbation stability (ImageNet-P style): flip probability, top-5 distance, sequences, CIFAR-10-P files."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from antialias.eval.perturbation import (
    GENERATED_PERTURBATIONS,
    PerturbationStability,
    evaluate_cifar10p,
    evaluate_perturbations,
    flip_probability,
    perturbation_sequence,
    perturbation_stability,
    read_cifar10p,
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


def reference_flips(logits, noise, step):
    """Plain loop: per sequence, the fraction of compared pairs whose argmax differs; then the mean."""
    per_sequence = []
    for seq in logits:
        pred = [int(f.argmax()) for f in seq]
        pairs = [(0, t) for t in range(1, len(pred))] if noise else [(t, t + step) for t in range(len(pred) - step)]
        per_sequence.append(sum(pred[a] != pred[b] for a, b in pairs) / len(pairs))
    return sum(per_sequence) / len(per_sequence)


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
    assert base.fr == {} and base.mfr is None and base.unnormalised_mfr.value == pytest.approx(
        100 * (base.flip_probability["rotate"].value + base.flip_probability["scale"].value) / 2
    )
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base.to_dict()))
    for normaliser in (base, path):
        r = perturbation_stability(data, normaliser=normaliser)
        assert r.mfr.value == pytest.approx(100.0) and r.mt5d.value == pytest.approx(100.0)
        assert r.mfr.low < 100 < r.mfr.high and r.to_dict()["normaliser"]["flip_probability"]["rotate"] > 0
    half = perturbation_stability(data, normaliser={p: 2 * e.value for p, e in base.flip_probability.items()})
    assert half.fr["scale"].value == pytest.approx(50.0)


# --------------------------------------------------------------------------- sequences


@pytest.mark.parametrize("name", GENERATED_PERTURBATIONS)
@pytest.mark.parametrize("preset,frames_translate", [("cifar", 16), ("imagenet", 41)])
def test_sequence_frame_counts_and_range(name, preset, frames_translate):
    x = torch.rand(2, 3, 24, 30)
    seq = perturbation_sequence(x, name, preset=preset)
    assert seq.shape == (2, frames_translate if name == "translate" else 31, 3, 24, 30)
    assert float(seq.min()) >= 0 and float(seq.max()) <= 1 + 1e-6


def test_translate_is_exactly_the_shifted_image():
    x = torch.rand(2, 3, 12, 20)
    seq = perturbation_sequence(x, "translate", preset="cifar")
    for t, d in enumerate(range(-7, 9)):
        expect = torch.zeros_like(x)
        for col in range(20):
            if 0 <= col - d < 20:
                expect[..., col] = x[..., col - d]
        assert torch.equal(seq[:, t], expect), d


def test_identity_frames_equal_the_image():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(perturbation_sequence(x, "rotate")[:, 15], x, atol=1e-5)  # 0 degrees
    assert torch.allclose(perturbation_sequence(x, "scale")[:, 24], x, atol=1e-5)  # factor 0.40 + 24 * 0.025 = 1
    assert torch.allclose(perturbation_sequence(x, "zoom_blur")[:, 0], x, atol=1e-5)
    for noise in ("gaussian_noise", "shot_noise"):
        seq = perturbation_sequence(x, noise, seed=3)
        assert torch.equal(seq[:, 0], x) and not torch.allclose(seq[:, 1], x)
        assert torch.equal(seq, perturbation_sequence(x, noise, seed=3))


def test_brightness_matches_hsv_value_offset():
    from skimage.color import hsv2rgb, rgb2hsv

    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    seq = perturbation_sequence(x, "brightness")
    for t, offset in [(0, -0.30), (20, 0.10), (30, 0.30)]:
        hsv = rgb2hsv(x.permute(0, 2, 3, 1).numpy())
        hsv[..., 2] = np.clip(hsv[..., 2] + offset, 0, 1)
        expect = torch.from_numpy(hsv2rgb(hsv)).permute(0, 3, 1, 2)
        assert torch.allclose(seq[:, t], expect, atol=1e-6)


def test_rotation_turns_a_square_image_a_quarter():
    # rotate a centred bar: the -15 and +15 degree frames are mirror images of each other
    x = torch.zeros(1, 1, 21, 21)
    x[..., 10, 3:18] = 1.0
    seq = perturbation_sequence(x, "rotate")
    assert torch.allclose(seq[:, 0], seq[:, 30].flip(-2), atol=1e-5)
    assert not torch.allclose(seq[:, 0], x, atol=0.1)


# --------------------------------------------------------------------------- protocols


class ConstantModel(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.register_buffer("logits", torch.linspace(1, 0, classes))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + 0 * x.flatten(1)[:, :1]


def test_constant_model_never_flips():
    x = torch.rand(3, 3, 16, 16)
    r = evaluate_perturbations(ConstantModel(), [(x, torch.zeros(3))])
    assert r.perturbations == list(GENERATED_PERTURBATIONS)
    for name in GENERATED_PERTURBATIONS:
        assert r.flip_probability[name].value == 0.0 and r.t5d[name].value == 0.0
        assert r.flip_probability[name].high > 0  # still an interval, not a point
    json.dumps(r.to_dict())


def tiny_model(classes=6):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))


def test_generated_evaluation_equals_manual_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 16, 16, generator=g)
    model = tiny_model()
    r = evaluate_perturbations(model, [x[:2], x[2:]], perturbations=["translate", "shot_noise"], seed=4)
    with torch.no_grad():
        for name in ("translate", "shot_noise"):
            seq = torch.cat([perturbation_sequence(x[:2], name, seed=4), perturbation_sequence(x[2:], name, seed=4, first_index=2)])
            logits = model(seq.flatten(0, 1)).view(5, seq.shape[1], -1)
            assert r.flip_probability[name].value == pytest.approx(reference_flips(logits, name == "shot_noise", 1))


def test_cifar10p_reader_and_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"translate": rng.integers(0, 256, (5, 16, 32, 32, 3), dtype=np.uint8),
              "gaussian_noise_2": rng.integers(0, 256, (5, 31, 32, 32, 3), dtype=np.uint8)}  # fmt: skip
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
    batches = list(read_cifar10p(tmp_path / "translate.npy", batch_size=3))
    assert [tuple(b.shape) for b in batches] == [(3, 16, 3, 32, 32), (2, 16, 3, 32, 32)]
    assert torch.equal(batches[1][0, 7], torch.from_numpy(arrays["translate"][3, 7]).permute(2, 0, 1).float() / 255)
    model = tiny_model()
    r = evaluate_cifar10p(model, tmp_path, batch_size=3)
    assert r.perturbations == ["translate", "gaussian_noise_2"]
    with torch.no_grad():
        for name, a in arrays.items():
            frames = torch.from_numpy(a).permute(0, 1, 4, 2, 3).float() / 255
            logits = model(frames.flatten(0, 1)).view(5, a.shape[1], -1)
            assert r.flip_probability[name].value == pytest.approx(reference_flips(logits, name != "translate", 1))


# --------------------------------------------------------------------------- bad input


def test_unknown_perturbation_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'rotate'"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "rotat")
    with pytest.raises(ValueError, match="Did you mean 'translate'"):
        PerturbationStability(["translation"])
    with pytest.raises(ValueError, match="Did you mean 'motion_blur'"):
        evaluate_perturbations(ConstantModel(), [], perturbations=["motion"])


def test_bad_logits_step_and_images():
    with pytest.raises(ValueError, match=r"`logits` must have shape \(N, frames, classes\)"):
        flip_probability(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="too short for `step` 5"):
        flip_probability(torch.zeros(2, 5, 3), step=5)
    with pytest.raises(ValueError, match="`step` must be an int >= 1"):
        PerturbationStability(["rotate"], step=0)
    with pytest.raises(ValueError, match="need images wider than that"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "translate")
    with pytest.raises(ValueError, match="`preset` must be one of"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "rotate", preset="mnist")


def test_bad_cifar10p_file(tmp_path):
    np.save(tmp_path / "rotate.npy", np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"must hold \(n, frames >= 2, H, W, 3\) uint8"):
        next(read_cifar10p(tmp_path / "rotate.npy"))
    with pytest.raises(ValueError, match="does not exist"):
        next(read_cifar10p(tmp_path / "tilt.npy"))


def test_model_with_wrong_output_shape():
    class BadOutput(nn.Module):
        def forward(self, x):
            return x.mean((2, 3), keepdim=True)

    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_perturbations(BadOutput(), [torch.rand(2, 3, 16, 16)], perturbations=["rotate"])


def test_every_pair_of_frames_is_compared_once():
    # step = 1 on a sequence whose prediction changes at every frame flips at every pair
    logits = torch.stack([torch.eye(4)[t % 4] for t in range(9)])[None]
    assert flip_probability(logits) == 1.0
    assert flip_probability(logits, step=4) == 0.0  # frames t and t + 4 share a class
