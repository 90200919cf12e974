"""Tensor transforms: reference crops by numpy slicing, determinism with a seeded generator, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from antialias.data import ImageTensorDataset
from antialias.data import transforms as T


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("padding", [0, 2, 4])
def test_random_crop_matches_numpy_reference(padding, padding_mode):
    x = torch.rand(6, 3, 9, 11)
    t = T.RandomCrop((7, 8), padding=padding, padding_mode=padding_mode)
    u = torch.rand(6, 2, generator=gen(1), dtype=torch.float64)
    out = t.apply(x, u)
    assert out.shape == (6, 3, 7, 8)
    mode = "constant" if padding_mode == "zeros" else "reflect"
    for i in range(6):
        ref = np.pad(x[i].numpy(), ((0, 0), (padding, padding), (padding, padding)), mode=mode)
        hp, wp = ref.shape[1:]
        top = min(int(u[i, 0] * (hp - 7 + 1)), hp - 7)
        left = min(int(u[i, 1] * (wp - 8 + 1)), wp - 8)
        np.testing.assert_array_equal(out[i].numpy(), ref[:, top : top + 7, left : left + 8])


def test_random_crop_offsets_cover_range():
    # Uniforms spread over [0, 1) must reach every offset 0..2p, each about equally often.
    t = T.RandomCrop(4, padding=2)
    u = torch.linspace(0, 1 - 1e-9, 1000, dtype=torch.float64)[:, None].repeat(1, 2)
    x = (torch.arange(16.0) + 1).view(1, 1, 4, 4).expand(1000, 1, 4, 4)
    out = t.apply(x, u)
    padded = np.pad(x[0, 0].numpy(), 2)
    counts = {}
    for crop in out[:, 0].numpy():
        hits = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if (padded[i : i + 4, j : j + 4] == crop).all()
        ]
        assert len(hits) == 1
        counts[hits[0][0]] = counts.get(hits[0][0], 0) + 1
    assert sorted(counts) == [0, 1, 2, 3, 4] and min(counts.values()) == 200


def test_flip_and_single_image_forms():
    x = torch.rand(3, 5, 7)
    torch.testing.assert_close(T.horizontal_flip(x, p=1.0), x.flip(-1))
    torch.testing.assert_close(T.horizontal_flip(x, p=0.0), x)
    xb = torch.rand(200, 1, 2, 3)
    out = T.horizontal_flip(xb, generator=gen(0))
    flipped = (out == xb.flip(-1)).flatten(1).all(1) & ~(out == xb).flatten(1).all(1)
    assert 60 < int(flipped.sum()) < 140  # about half
    assert T.random_crop(x, 5, padding=1, generator=gen(0)).shape == (3, 5, 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: T.RandomCrop(8, padding=2, padding_mode="reflect"),
        lambda: T.RandomHorizontalFlip(),
        lambda: T.Compose(
            [
                T.RandomCrop(8, padding=1),
                T.RandomHorizontalFlip(),
                T.Normalize([0.5] * 3, [0.2] * 3),
            ]
        ),
    ],
)
def test_determinism_with_generator(make):
    x = torch.rand(16, 3, 8, 8)
    t = make()
    a, b = t(x, gen(5)), t(x, gen(5))
    assert torch.equal(a, b)
    c = t(x, gen(6))
    assert not torch.equal(a, c)
    # Global RNG untouched when a generator is given.
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    t(x, gen(5))
    assert torch.equal(torch.rand(1), before)


def test_resize_center_crop_imagenet_eval():
    x = torch.rand(2, 3, 300, 400)
    out = T.resize_center_crop(x)
    assert out.shape == (2, 3, 224, 224)
    assert T.resize(x, 256).shape == (2, 3, 256, 341)  # shorter side 256, aspect kept
    assert T.resize(x[0], (10, 20)).shape == (3, 10, 20)
    const = torch.full((3, 500, 333), 0.25)
    torch.testing.assert_close(T.resize_center_crop(const), torch.full((3, 224, 224), 0.25))
    # Centre crop = the middle of the resized image.
    r = T.resize(x, 256)
    torch.testing.assert_close(out, r[..., 16:240, 58:282])


def test_normalize_and_stats():
    x = torch.rand(4, 3, 5, 5)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ref = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(T.normalize(x, mean, std), ref)
    imgs = torch.randint(0, 256, (10, 2, 4, 4), dtype=torch.uint8)
    m, s = T.channel_stats(imgs)
    f = imgs.double() / 255
    torch.testing.assert_close(torch.tensor(m, dtype=torch.float64), f.mean((0, 2, 3)))
    torch.testing.assert_close(
        torch.tensor(s, dtype=torch.float64),
        f.transpose(0, 1).reshape(2, -1).std(1, unbiased=False),
    )


def test_keyed_uniforms_pure_and_distinct():
    a = T.keyed_uniforms(3, 0, torch.arange(1000), 2)
    assert a.shape == (1000, 2) and a.dtype == torch.float64 and a.min() >= 0 and a.max() < 1
    assert torch.equal(a[500:], T.keyed_uniforms(3, 0, torch.arange(500, 1000), 2))
    assert not torch.equal(a, T.keyed_uniforms(3, 1, torch.arange(1000), 2))
    assert not torch.equal(a, T.keyed_uniforms(4, 0, torch.arange(1000), 2))
    assert abs(float(a.mean()) - 0.5) < 0.03 and abs(float(torch.corrcoef(a.T)[0, 1])) < 0.1


def test_default_transform():
    ds = ImageTensorDataset(
        torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8),
        torch.zeros(20, dtype=torch.long),
        ["a"],
        name="cifar10-train",
    )
    train = T.default_transform(ds, train=True)
    kinds = [type(t).__name__ for t in train.transforms]
    assert (
        kinds == ["RandomCrop", "RandomHorizontalFlip", "Normalize"]
        and train.transforms[0].padding == 4
    )
    out = T.default_transform(ds, train=False)(ds.images.float() / 255)
    torch.testing.assert_close(
        out.mean((0, 2, 3)), torch.zeros(3, dtype=out.dtype), atol=1e-5, rtol=0
    )
    mnist = ImageTensorDataset(
        torch.zeros(2, 1, 28, 28, dtype=torch.uint8),
        torch.zeros(2, dtype=torch.long),
        ["a"],
        name="mnist-train",
    )
    assert [
        type(t).__name__ for t in T.default_transform(mnist, train=True, normalize=False).transforms
    ] == ["RandomCrop"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: T.RandomCrop(0), "`size` must be a positive int"),
        (lambda: T.RandomCrop(4, padding=-1), "`padding` must be an int >= 0"),
        (
            lambda: T.RandomCrop(4, padding_mode="circular"),
            "`padding_mode` must be 'zeros' or 'reflect'",
        ),
        (lambda: T.RandomHorizontalFlip(1.5), r"`p` must be a number in \[0, 1\]"),
        (lambda: T.random_crop(torch.rand(1, 3, 3), 5), "must fit the padded image"),
        (lambda: T.center_crop(torch.rand(1, 3, 3), 5), "must fit the image"),
        (lambda: T.normalize(torch.rand(2, 3, 3), [0.5], [0.0]), "`std` must be positive"),
        (lambda: T.horizontal_flip(torch.rand(3, 3)), r"shape \(C, H, W\) or \(N, C, H, W\)"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
