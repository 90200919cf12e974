"""make_loader: same seed -> same batches, epochs differ, workers and resume do not change anything."""

from __future__ import annotations

import pytest
import torch

from antialias.data import ImageTensorDataset, make_loader
from antialias.data import transforms as T


@pytest.fixture(scope="module")
def ds() -> ImageTensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (37, 3, 8, 8), dtype=torch.uint8, generator=g)
    return ImageTensorDataset(images, torch.arange(37) % 5, [str(i) for i in range(5)], name="toy")


def run(ds, **kw) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in make_loader(ds, **kw)]


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=False)
    )


AUG = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip()])


def test_batches_shapes_and_content(ds):
    batches = run(ds, batch_size=8, shuffle=True, seed=0)
    assert [len(y) for _, y in batches] == [8, 8, 8, 8, 5]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (8, 3, 8, 8) and y.dtype == torch.int64
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == sorted(ds.targets.tolist())
    # Without a transform each image is exactly images[i] / 255 of its index (recover by label+pixels).
    perm = torch.randperm(
        37, generator=torch.Generator().manual_seed(0)
    )  # DistributedSampler's order
    torch.testing.assert_close(x, ds.images[perm[:8]].float() / 255, rtol=0, atol=0)
    assert len(run(ds, batch_size=8, shuffle=True, seed=0, drop_last=True)) == 4


def test_same_seed_same_batches_epochs_differ(ds):
    a = run(ds, batch_size=8, shuffle=True, seed=1, transform=AUG)
    assert same(a, run(ds, batch_size=8, shuffle=True, seed=1, transform=AUG))
    assert not same(a, run(ds, batch_size=8, shuffle=True, seed=1, epoch=1, transform=AUG))
    assert not same(a, run(ds, batch_size=8, shuffle=True, seed=2, transform=AUG))
    loader = make_loader(ds, batch_size=8, shuffle=True, seed=1, transform=AUG)
    loader.set_epoch(1)
    assert same(
        [(x, y) for x, y in loader],
        run(ds, batch_size=8, shuffle=True, seed=1, epoch=1, transform=AUG),
    )


def test_unshuffled_order(ds):
    ys = torch.cat([y for _, y in run(ds, batch_size=10, shuffle=False, seed=9)])
    assert torch.equal(ys, ds.targets)


def test_workers_do_not_change_batches(ds):
    a = run(ds, batch_size=8, shuffle=True, seed=3, transform=AUG, num_workers=0)
    b = run(ds, batch_size=8, shuffle=True, seed=3, transform=AUG, num_workers=2)
    assert same(a, b)


def test_resume_mid_epoch_reproduces_rest(ds):
    full = run(ds, batch_size=8, shuffle=True, seed=4, epoch=2, transform=AUG)
    for k in (0, 1, 3, 5):
        rest = run(ds, batch_size=8, shuffle=True, seed=4, epoch=2, transform=AUG, start_batch=k)
        assert same(full[k:], rest), k
    with pytest.raises(ValueError, match="`start_batch` must be <= the 5 batches"):
        make_loader(ds, batch_size=8, shuffle=True, seed=4, start_batch=6)


def test_augmentation_keyed_by_sample_not_batch(ds):
    # The same image gets the same crop/flip whatever the batch size: key = (seed, epoch, index).
    def by_index(batch_size):
        out = {}
        for x, _ in run(ds, batch_size=batch_size, shuffle=False, seed=5, transform=AUG):
            for img in x:
                out[len(out)] = img
        return out

    a, b = by_index(4), by_index(16)
    assert all(torch.equal(a[i], b[i]) for i in range(37))
    plain = run(ds, batch_size=37, shuffle=False, seed=5)[0][0]
    assert any(not torch.equal(a[i], plain[i]) for i in range(37))  # augmentation did something


def test_distributed_two_ranks_cover_global_batches(ds):
    single = run(ds, batch_size=8, shuffle=True, seed=6, drop_last=True, transform=AUG)
    ranks = [run(ds, batch_size=4, shuffle=True, seed=6, drop_last=True, transform=AUG,
                 distributed=True, num_replicas=2, rank=r) for r in range(2)]  # fmt: skip
    assert len(ranks[0]) == len(ranks[1]) == 4
    for step in range(4):
        x1, y1 = single[step]
        xs = torch.cat([ranks[0][step][0], ranks[1][step][0]])
        # Same samples with the same augmentation in the global batch (order: rank-interleaved).
        assert sorted(t.numpy().tobytes() for t in xs) == sorted(t.numpy().tobytes() for t in x1)
        assert torch.equal(torch.stack([ranks[0][step][1], ranks[1][step][1]], 1).flatten(), y1)
    with pytest.raises(ValueError, match="initialised process group"):
        make_loader(ds, batch_size=4, shuffle=True, seed=0, distributed=True)


def test_callable_transform_and_pin_default(ds):
    loader = make_loader(ds, batch_size=8, shuffle=False, seed=0, transform=lambda x: x * 2)
    assert loader.pin_memory == torch.cuda.is_available() and loader.source is ds
    x, _ = next(iter(loader))
    torch.testing.assert_close(x, ds.images[:8].float() / 255 * 2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"batch_size": 0}, "`batch_size` must be an int >= 1"),
        ({"num_workers": -1}, "`num_workers` must be an int >= 0"),
        ({"seed": 1.5}, "`seed` must be an int"),
    ],
)
def test_errors(ds, kw, match):
    args = {"batch_size": 8, "shuffle": True, "seed": 0, **kw}
    with pytest.raises(ValueError, match=match):
        make_loader(ds, **args)
