"""Readers of the released corrupted sets: CIFAR-10-C files and ImageNet-C folders (no library needed)."""

import numpy as np
import pytest
import torch
from corruption_helpers import write_cifar10c, write_imagenet_c

from antialias.data.folder import ImageFolder
from antialias.eval.corruption.readers import open_imagenet_c, read_cifar10c


def test_cifar10c_reader_grids(tmp_path):
    arrays, labels = write_cifar10c(tmp_path, ["fog", "gaussian_noise"])
    grids = list(read_cifar10c(tmp_path, batch_size=4))
    assert [tuple(g.shape) for g, _ in grids] == [(2, 5, 4, 3, 32, 32), (2, 5, 2, 3, 32, 32)]
    grid, y = grids[1]
    # canonical order (gaussian_noise first); severity 3, image 5 is row 2 * 6 + 5
    expect = torch.from_numpy(arrays["gaussian_noise"][2 * 6 + 5]).permute(2, 0, 1).float() / 255
    assert torch.equal(grid[0, 2, 1], expect) and torch.equal(y, torch.from_numpy(labels[4:]))


def test_cifar10c_bad_files(tmp_path):
    write_cifar10c(tmp_path, ["fog"])
    np.save(tmp_path / "snow.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"snow\.npy must be"):
        next(read_cifar10c(tmp_path, ["snow"]))
    with pytest.raises(ValueError, match="Did you mean 'frost'"):
        next(read_cifar10c(tmp_path, ["forst"]))


def test_imagenet_c_folders_are_opened_aligned(tmp_path):
    write_imagenet_c(tmp_path, ["fog", "snow"])
    data = open_imagenet_c(tmp_path, severities=[2, 4])
    assert data.names == ("snow", "fog") and data.severities == (2, 4) and len(data) == 4  # canonical order
    ds = ImageFolder(tmp_path / "fog" / "4")
    stack = data.stack(1, [1, 3])  # (S, B, C, H, W)
    assert stack.shape == (2, 2, 3, 8, 8) and torch.equal(stack[1, 1], ds[3][0])
    assert data.labels([0, 3]).tolist() == [0, 1] and data.clean_images([0]) is None
    (tmp_path / "fog" / "2" / "n02" / "img1.png").unlink()
    with pytest.raises(ValueError, match="must hold the same class folders and files"):
        open_imagenet_c(tmp_path)
