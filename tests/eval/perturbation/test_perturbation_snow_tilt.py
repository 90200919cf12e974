"""Snow and tilt, the two ImageNet-P perturbations generated last: geometry, seeding, appearance, devices."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from perturbation_helpers import ConstantModel

from antialias.data.seeding import PERTURBATION, derived_seed
from antialias.eval._names import GENERATED_PERTURBATIONS, NOISE_PERTURBATIONS, PERTURBATIONS, is_noise
from antialias.eval.perturbation.evaluate import evaluate_perturbations
from antialias.eval.perturbation.generate import _tilt_grid, _warp, perturbation_seed, perturbation_sequence

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]

# --------------------------------------------------------------------------- names and seeds


def test_all_ten_imagenet_p_perturbations_are_generated():
    assert GENERATED_PERTURBATIONS == PERTURBATIONS and len(GENERATED_PERTURBATIONS) == 10
    # snow is temporal in ImageNet-P (consecutive frames compared), not a noise sequence
    assert "snow" not in NOISE_PERTURBATIONS and not is_noise("snow") and not is_noise("tilt")


def test_noise_seeds_did_not_move_when_snow_and_tilt_joined():
    # the position in GENERATED_PERTURBATIONS is part of the seed: the noise frames of runs made with
    # eight generated perturbations must stay the same
    for position, name in enumerate(("gaussian_noise", "shot_noise")):
        assert perturbation_seed(7, name, 3) == derived_seed(7, PERTURBATION, position, 3)
    assert len({perturbation_seed(5, n, 0) for n in ("gaussian_noise", "shot_noise", "snow")}) == 3


# --------------------------------------------------------------------------- both: shapes, ranges, determinism


@pytest.mark.parametrize("name", ["snow", "tilt"])
@pytest.mark.parametrize("preset,side", [("cifar", 32), ("imagenet", 224)])
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_range_and_determinism(name, preset, side, channels):
    x = torch.rand(2, channels, side, side - 8)
    seq = perturbation_sequence(x, name, preset=preset, seed=1)
    assert seq.shape == (2, 31, channels, side, side - 8) and seq.dtype == x.dtype
    assert float(seq.min()) >= 0 and float(seq.max()) <= 1
    assert torch.equal(seq, perturbation_sequence(x, name, preset=preset, seed=1))


@pytest.mark.parametrize("name", ["snow", "tilt"])
def test_grey_is_each_rgb_channel_alone(name):
    # white flakes and a geometric warp treat every channel alike
    x = torch.rand(2, 3, 20, 28)
    rgb = perturbation_sequence(x, name, seed=2)
    for c in range(3):
        assert torch.allclose(rgb[:, :, c], perturbation_sequence(x[:, c : c + 1], name, seed=2)[:, :, 0], atol=1e-6)


@pytest.mark.parametrize("name", ["snow", "tilt"])
@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_inputs_device_in_its_dtype(name, device):
    x = torch.rand(2, 3, 24, 24, dtype=torch.float64)
    seq = perturbation_sequence(x.to(device), name, seed=3)
    assert seq.device.type == device and seq.dtype == torch.float64
    single = perturbation_sequence(x.float(), name, seed=3)
    assert torch.allclose(seq.cpu().float(), single, atol=1e-4)


# --------------------------------------------------------------------------- tilt


def _tilt(x, yaw, pitch):
    h, w = x.shape[-2:]
    return _warp(x, _tilt_grid(h, w, torch.tensor([float(yaw)]), torch.tensor([float(pitch)])))[:, 0]


@given(h=st.integers(2, 40), w=st.integers(2, 40), c=st.sampled_from([1, 3]))
def test_tilt_at_angle_zero_is_the_identity(h, w, c):
    x = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(h * 41 + w))
    assert torch.allclose(_tilt(x, 0, 0), x, atol=1e-5)


@given(h=st.integers(3, 30), w=st.integers(3, 30), yaw=st.floats(-20, 20), pitch=st.floats(-20, 20))
def test_tilt_commutes_with_a_half_turn(h, w, yaw, pitch):
    # turning the image by 180 degrees turns the view angles around: tilt(a, b) o flip = flip o tilt(-a, -b)
    x = torch.rand(1, 2, h, w, generator=torch.Generator().manual_seed(h * 31 + w), dtype=torch.float64)
    flipped = _tilt(x.flip(-2, -1), -yaw, -pitch).flip(-2, -1)
    assert torch.allclose(_tilt(x, yaw, pitch), flipped, atol=1e-9)


@given(h=st.integers(3, 30), w=st.integers(3, 30), yaw=st.floats(-20, 20), pitch=st.floats(-20, 20))
def test_tilt_yaw_and_pitch_mirror_alone(h, w, yaw, pitch):
    # a left-right mirror turns yaw around and keeps pitch; an up-down mirror the other way round
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(h * 29 + w), dtype=torch.float64)
    out = _tilt(x, yaw, pitch)
    assert torch.allclose(out, _tilt(x.flip(-1), -yaw, pitch).flip(-1), atol=1e-9)
    assert torch.allclose(out, _tilt(x.flip(-2), yaw, -pitch).flip(-2), atol=1e-9)


def _project(u, v, yaw_deg, pitch_deg, distance=2.0):
    """Where the plane point (u, v) lands: rotate the plane about y then x, look from `distance` (plain maths)."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    r_y = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    r_x = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    x, y, z = r_y @ r_x @ np.array([u, v, 0.0])
    return distance * x / (z + distance), distance * y / (z + distance)


@pytest.mark.parametrize("h,w", [(64, 64), (48, 80)])
@pytest.mark.parametrize("yaw,pitch", [(15, 0), (0, -15), (-12, -9)])
def test_tilt_moves_a_dot_where_the_camera_sees_it(h, w, yaw, pitch):
    half = max(h, w) / 2  # isotropic unit: half the longer side, origin at the centre
    row, col = 0.7 * h / 2 + h / 2, -0.5 * w / 2 + w / 2  # a dot low and to the left (pixel coordinates)
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    x = torch.exp(-((ys - row) ** 2 + (xs - col) ** 2) / (2 * 1.5**2)).double()[None, None]
    out = _tilt(x, yaw, pitch)[0, 0]
    centroid = ((out * ys).sum() / out.sum(), (out * xs).sum() / out.sum())
    pu, pv = _project((col - w / 2) / half, (row - h / 2) / half, yaw, pitch)
    assert float(centroid[1]) == pytest.approx(pu * half + w / 2, abs=0.15)
    assert float(centroid[0]) == pytest.approx(pv * half + h / 2, abs=0.15)
    assert abs(float(centroid[1]) - col) + abs(float(centroid[0]) - row) > 1  # it did move


def test_tilt_sequence_is_head_on_in_the_middle_and_changes_slowly():
    x = torch.rand(2, 3, 32, 32)
    seq = perturbation_sequence(x, "tilt")
    assert torch.allclose(seq[:, 15], x, atol=1e-5)  # yaw = pitch = 0
    ends = float((seq[:, 0] - x).abs().mean()), float((seq[:, 30] - x).abs().mean())
    steps = (seq[:, 1:] - seq[:, :-1]).abs().mean((0, 2, 3, 4))  # (30,)
    assert min(ends) > 0.1 and float(steps.max()) < min(ends) / 4
    # at the ends the turned plane no longer fills the frame: zero fill (x itself has no zeros)
    for t, filled in ((0, True), (15, False), (30, True)):
        assert [bool((seq[i, t].amax(0) == 0).any()) for i in range(2)] == [filled] * 2, t


# --------------------------------------------------------------------------- snow


def test_snow_brightens_and_covers_part_of_the_image():
    x = 0.6 * torch.rand(4, 3, 32, 32)
    seq = perturbation_sequence(x, "snow", seed=0)
    assert bool((seq >= x.unsqueeze(1) - 1e-6).all())  # haze (for x < 0.8) and white flakes only brighten
    flakes = (seq - x.unsqueeze(1)).amin(2) > 0.3  # (N, T, H, W): clearly whiter in every channel
    cover = flakes.float().mean((2, 3))  # per frame
    assert float(cover.min()) > 0.01 and float(cover.max()) < 0.5
    # every frame snows, frame 0 included, and frames differ from one another
    assert bool((cover > 0).all()) and not torch.equal(seq[:, 0], seq[:, 1])


def test_snow_on_black_is_haze_plus_flakes():
    seq = perturbation_sequence(torch.zeros(2, 1, 32, 32), "snow", seed=4)
    assert float(seq.min()) == pytest.approx(0.12, abs=1e-6)  # 0 + 0.15 (0.8 - 0) between the flakes
    assert float(seq.max()) > 0.6  # flakes have brightness 0.6..1


def test_snow_falls_down():
    # the flake layer of frame t + 4 is that of frame t moved down ~4 x 0.01 x side px (and sideways a little)
    side = 96
    seq = perturbation_sequence(torch.zeros(3, 1, side, side), "snow", seed=8)[:, :, 0]  # (N, T, H, W)
    a, b = seq[:, 10] - seq[:, 10].mean(), seq[:, 14] - seq[:, 14].mean()
    corr = torch.fft.irfft2(torch.fft.rfft2(b) * torch.fft.rfft2(a).conj(), s=(side, side))  # (N, H, W)
    for c in corr:
        dy, dx = np.unravel_index(int(c.argmax()), c.shape)
        dy, dx = (dy + side // 2) % side - side // 2, (dx + side // 2) % side - side // 2
        assert 2 <= dy <= 6 and abs(dx) <= 3, (dy, dx)


def test_snow_seeding_is_per_image():
    x = torch.rand(4, 3, 16, 16)
    whole = perturbation_sequence(x, "snow", seed=5)
    parts = torch.cat(
        [perturbation_sequence(x[:1], "snow", seed=5), perturbation_sequence(x[1:], "snow", seed=5, first_index=1)]
    )
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, perturbation_sequence(x, "snow", seed=6))
    # the same image at another position in the stream gets other snow
    assert not torch.equal(whole[1:2], perturbation_sequence(x[1:2], "snow", seed=5))


def test_snow_in_small_chunks_equals_one_chunk(monkeypatch):
    from antialias.eval.perturbation import generate

    x = torch.rand(5, 3, 16, 16)
    whole = perturbation_sequence(x, "snow", seed=9)
    monkeypatch.setattr(generate, "_SNOW_CHUNK", 1)  # one image per chunk
    assert torch.allclose(perturbation_sequence(x, "snow", seed=9), whole, atol=1e-6)


# --------------------------------------------------------------------------- the mean over all ten


def test_default_evaluation_covers_all_ten_so_the_mfr_is_imagenet_ps():
    x = torch.rand(2, 3, 32, 32)
    base = evaluate_perturbations(ConstantModel(), [x], preset="cifar")
    assert base.perturbations == list(PERTURBATIONS)
    assert not any("missing here" in note for note in base.notes)
    assert {"snow", "tilt"} <= set(base.flip_probability)
