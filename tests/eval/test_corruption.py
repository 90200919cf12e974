"""Corruption robustness (ImageNet-C style): CE/mCE maths without the library, then on-the-fly and pre-made sets."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from antialias.eval._imagenet_c import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    ALEXNET_MEAN_ERRORS,
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
)
from antialias.eval.corruption import (
    CorruptionError,
    CorruptionNormaliser,
    _corruption_compute,
    corrupt_images,
    corruption_error,
    evaluate_cifar10c,
    evaluate_corruptions,
    evaluate_imagenet_c,
    read_cifar10c,
)

HAS_LIBRARY = importlib.util.find_spec("imagecorruptions") is not None
needs_library = pytest.mark.skipif(not HAS_LIBRARY, reason='needs the corruptions extra: pip install "antialias[corruptions]"')
SEV = (1, 2, 3, 4, 5)
N_IMAGENET = 50_000  # ImageNet val: every published error is k / 50000


# --------------------------------------------------------------------------- constants and maths (no library)


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
    r = _corruption_compute(wrong, N_IMAGENET, 0, 0, EXTRA_CORRUPTIONS, SEV, CorruptionNormaliser.resolve("alexnet"), 0.95)
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
            errs.append(sum(int(logits[ci, si, i].argmax()) != int(target[i]) for i in range(len(target))) / len(target))
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
    with pytest.raises(ValueError, match="`severities` must be distinct ints in 1..5"):
        CorruptionError(["fog"], severities=[0, 1])
    with pytest.raises(ValueError, match="not a file"):
        CorruptionError(["fog"], normaliser="no/such/result.json")
    with pytest.raises(TypeError, match="`normaliser` must be"):
        CorruptionError(["fog"], normaliser=3.0)


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)  # makes `import imagecorruptions` fail
    with pytest.raises(ImportError, match=r'pip install "antialias\[corruptions\]"'):
        corrupt_images(torch.rand(1, 3, 32, 32), "fog", 1)
    with pytest.raises(ImportError, match=r"antialias\[corruptions\]"):
        evaluate_corruptions(nn.Flatten(), [], corruptions=["fog"])


class BadOutput(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)  # (N, C, 1, 1), not (N, classes)


# --------------------------------------------------------------------------- pre-made sets (no library)


def tiny_model(channels=3, classes=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes))


def write_cifar10c(root, names, n=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.tile(rng.integers(0, 4, n), 5).astype(np.int64)
    np.save(root / "labels.npy", labels)
    arrays = {c: rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8) for c in names}
    for c, a in arrays.items():
        np.save(root / f"{c}.npy", a)
    return arrays, labels[:n]


def test_cifar10c_reader_and_evaluation(tmp_path):
    arrays, labels = write_cifar10c(tmp_path, ["fog", "gaussian_noise"])
    grids = list(read_cifar10c(tmp_path, batch_size=4))
    assert [tuple(g.shape) for g, _ in grids] == [(2, 5, 4, 3, 32, 32), (2, 5, 2, 3, 32, 32)]
    grid, y = grids[1]
    # canonical order (gaussian_noise first); severity 3, image 5 is row 2 * 6 + 5
    expect = torch.from_numpy(arrays["gaussian_noise"][2 * 6 + 5]).permute(2, 0, 1).float() / 255
    assert torch.equal(grid[0, 2, 1], expect) and torch.equal(y, torch.from_numpy(labels[4:]))
    model = tiny_model()
    r = evaluate_cifar10c(model, tmp_path, batch_size=4)
    with torch.no_grad():
        for name in ("fog", "gaussian_noise"):
            x = torch.from_numpy(arrays[name]).permute(0, 3, 1, 2).float() / 255
            wrong = (model(x).argmax(1).view(5, 6) != torch.from_numpy(labels)).sum(1)
            assert [r.errors[name][s].successes for s in SEV] == wrong.tolist()
    assert r.corruptions == ["gaussian_noise", "fog"] and r.images == 6


def test_cifar10c_bad_files(tmp_path):
    write_cifar10c(tmp_path, ["fog"])
    np.save(tmp_path / "snow.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="snow.npy must be"):
        next(read_cifar10c(tmp_path, ["snow"]))
    with pytest.raises(ValueError, match="Did you mean 'frost'"):
        next(read_cifar10c(tmp_path, ["forst"]))
    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_cifar10c(BadOutput(), tmp_path, corruptions=["fog"])


def write_imagenet_c(root, names, classes=("n01", "n02"), per_class=2, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in names:
        for s in SEV:
            for wnid in classes:
                (root / c / str(s) / wnid).mkdir(parents=True)
                for i in range(per_class):
                    array = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(array).save(root / c / str(s) / wnid / f"img{i}.png")


def test_imagenet_c_folders(tmp_path):
    from antialias.data.folder import ImageFolder

    write_imagenet_c(tmp_path, ["fog", "snow"])
    model = tiny_model()
    r = evaluate_imagenet_c(model, tmp_path, batch_size=3, normaliser="alexnet")
    assert r.corruptions == ["snow", "fog"] and r.images == 4 and "snow" in r.ce and r.mce is None
    with torch.no_grad():
        ds = ImageFolder(tmp_path / "fog" / "4")
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        wrong = int((model(x).argmax(1) != ds.targets).sum())
    assert r.errors["fog"][4].successes == wrong
    (tmp_path / "fog" / "2" / "n02" / "img1.png").unlink()
    with pytest.raises(ValueError, match="must hold the same class folders and files"):
        evaluate_imagenet_c(model, tmp_path)


# --------------------------------------------------------------------------- on the fly (needs the library)


@needs_library
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32), (1, 1, 8, 8), (1, 3, 20, 40)])
def test_corrupt_images_any_size(shape):
    x = torch.rand(shape)
    y = corrupt_images(x, "gaussian_noise", 3, seed=1)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert not torch.allclose(x, y, atol=0.02)
    # brightness is deterministic and raises the image
    assert float(corrupt_images(x, "brightness", 5).mean()) > float(x.mean())


@needs_library
def test_corruption_seeding_is_per_image():
    x = torch.rand(4, 3, 32, 32)
    whole = corrupt_images(x, "shot_noise", 2, seed=5)
    parts = torch.cat([corrupt_images(x[:1], "shot_noise", 2, seed=5), corrupt_images(x[1:], "shot_noise", 2, seed=5, first_index=1)])
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, corrupt_images(x, "shot_noise", 2, seed=6))
    state = np.random.get_state()[1].copy()
    corrupt_images(x, "motion_blur", 1)
    assert np.array_equal(np.random.get_state()[1], state)  # the global NumPy state is restored


@needs_library
def test_evaluate_corruptions_equals_manual_loop():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32, generator=g), torch.randint(0, 4, (6,), generator=g)
    model = tiny_model()
    names, sev = ["gaussian_noise", "contrast"], [1, 4]
    r = evaluate_corruptions(model, [(x[:4], y[:4]), (x[4:], y[4:])], corruptions=names, severities=sev, seed=3)
    with torch.no_grad():
        for name in names:
            for s in sev:
                wrong = int((model(corrupt_images(x, name, s, seed=3)).argmax(1) != y).sum())
                assert r.errors[name][s].successes == wrong
        assert r.clean_error.successes == int((model(x).argmax(1) != y).sum())
    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_corruptions(BadOutput(), [(x, y)], corruptions=["contrast"], severities=[1])
