"""Corruptions generated on the fly through the optional imagecorruptions library: sizes, seeding, the missing extra."""

import sys

import numpy as np
import pytest
import torch
from corruption_helpers import needs_library
from torch import nn

from antialias.eval._names import ALL_CORRUPTIONS
from antialias.eval.corruption import evaluate_corruptions
from antialias.eval.corruption.generate import corrupt_images, corruption_seed


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)  # makes `import imagecorruptions` fail
    with pytest.raises(ImportError, match=r'pip install "antialias\[corruptions\]"'):
        corrupt_images(torch.rand(1, 3, 32, 32), "fog", 1)
    with pytest.raises(ImportError, match=r"antialias\[corruptions\]"):
        evaluate_corruptions(nn.Flatten(), [], corruptions=["fog"])


def test_image_seeds_are_32_bit_and_distinct_per_cell():
    # every (corruption, severity, position) of one run gets its own seed NumPy's legacy seeding accepts
    seeds = {corruption_seed(7, c, s, i) for c in ALL_CORRUPTIONS for s in (1, 2, 3, 4, 5) for i in range(20)}
    assert len(seeds) == len(ALL_CORRUPTIONS) * 5 * 20
    assert all(0 <= s < 2**32 for s in seeds)
    assert corruption_seed(7, "fog", 1, 0) != corruption_seed(8, "fog", 1, 0)


@needs_library
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32), (1, 1, 8, 8), (1, 3, 20, 40)])
def test_corrupt_images_any_size(shape):
    x = torch.rand(shape)
    y = corrupt_images(x, "gaussian_noise", 3, seed=1)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.allclose(x, y, atol=0.02)
    # brightness is deterministic and raises the image
    assert float(corrupt_images(x, "brightness", 5).mean()) > float(x.mean())


@needs_library
def test_corruption_seeding_is_per_image():
    x = torch.rand(4, 3, 32, 32)
    whole = corrupt_images(x, "shot_noise", 2, seed=5)
    parts = torch.cat(
        [corrupt_images(x[:1], "shot_noise", 2, seed=5), corrupt_images(x[1:], "shot_noise", 2, seed=5, first_index=1)]
    )
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, corrupt_images(x, "shot_noise", 2, seed=6))
    state = np.random.get_state()[1].copy()
    corrupt_images(x, "motion_blur", 1)
    assert np.array_equal(np.random.get_state()[1], state)  # the global NumPy state is restored
