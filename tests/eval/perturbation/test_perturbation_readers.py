"""Reader of the released CIFAR-10-P files."""

import numpy as np
import pytest
import torch

from antialias.eval.perturbation.readers import cifar10p_names, read_cifar10p


def test_cifar10p_reader_batches(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (5, 16, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "translate.npy", array)
    batches = list(read_cifar10p(tmp_path / "translate.npy", batch_size=3))
    assert [tuple(b.shape) for b in batches] == [(3, 16, 3, 32, 32), (2, 16, 3, 32, 32)]
    assert torch.equal(batches[1][0, 7], torch.from_numpy(array[3, 7]).permute(2, 0, 1).float() / 255)
    assert [tuple(b.shape) for b in read_cifar10p(tmp_path / "translate.npy", limit=2)] == [(2, 16, 3, 32, 32)]


def test_cifar10p_names_in_canonical_order(tmp_path):
    for name in ("gaussian_noise_2", "translate"):
        np.save(tmp_path / f"{name}.npy", np.zeros((1, 2, 4, 4, 3), np.uint8))
    assert cifar10p_names(tmp_path, None) == (tmp_path, ("translate", "gaussian_noise_2"))
    with pytest.raises(ValueError, match="Did you mean 'translate'"):
        cifar10p_names(tmp_path, ["translation"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found none"):
        cifar10p_names(empty, None)


def test_bad_cifar10p_file(tmp_path):
    np.save(tmp_path / "rotate.npy", np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"must hold \(n, frames >= 2, H, W, 3\) uint8"):
        next(read_cifar10p(tmp_path / "rotate.npy"))
    with pytest.raises(ValueError, match="does not exist"):
        next(read_cifar10p(tmp_path / "tilt.npy"))
