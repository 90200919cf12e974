"""Perturbation sequences generated with torch ops: frame counts, exact frames, seeding, bad input."""

import numpy as np
import pytest
import torch

from antialias.eval._names import GENERATED_PERTURBATIONS
from antialias.eval.perturbation.generate import perturbation_seed, perturbation_sequence

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


def test_noise_seeding_is_per_image():
    x = torch.rand(4, 3, 8, 8)
    for name in ("gaussian_noise", "shot_noise"):
        whole = perturbation_sequence(x, name, seed=5)
        parts = torch.cat(
            [perturbation_sequence(x[:1], name, seed=5), perturbation_sequence(x[1:], name, seed=5, first_index=1)]
        )
        assert torch.equal(whole, parts)
        assert not torch.equal(whole, perturbation_sequence(x, name, seed=6))
        # the same image at another position in the stream gets other noise
        assert not torch.equal(whole[1:2], perturbation_sequence(x[1:2], name, seed=5))
    assert perturbation_seed(5, "shot_noise", 0) != perturbation_seed(5, "gaussian_noise", 0)


# --------------------------------------------------------------------------- bad input


def test_unknown_perturbation_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'rotate'"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "rotat")


def test_bad_images_and_preset():
    with pytest.raises(ValueError, match="need images wider than that"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "translate")
    with pytest.raises(ValueError, match="`preset` must be one of"):
        perturbation_sequence(torch.rand(1, 3, 8, 8), "rotate", preset="mnist")
