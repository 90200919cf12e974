"""Tests of antialias.report.figures: the data each figure shows, and atomic, careful PNG writing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from antialias.report import figures as figs

# The paper's Figure 4 values, as recorded in shared/reference/paper_results.md.
PAPER_SIGNAL = [0, 0, 1, 1, 0, 0, 1, 1]
PAPER_MAX_POOL = ([0, 1, 0, 1], [1, 1, 1, 1])
PAPER_MAX_BLUR_POOL = {
    "rect2": ([0.5, 1, 0.5, 1], [0.5, 1, 0.5, 1]),
    "tri3": ([0.5, 1, 0.5, 1], [0.75, 0.75, 0.75, 0.75]),
    "bin5": ([0.625, 0.875, 0.625, 0.875], [0.75, 0.75, 0.75, 0.75]),
}


def _circular_dense_max(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.roll(x, -1))  # window [i, i+1], wrapping


def _circular_blur(x: np.ndarray, taps: list[float]) -> np.ndarray:
    k = len(taps)
    before = (k - 1) // 2  # the smaller pad first, as the library documents
    w = np.asarray(taps, dtype=np.float64) / sum(taps)
    return np.array([sum(w[j] * x[(i - before + j) % x.size] for j in range(k)) for i in range(x.size)])


# --------------------------------------------------------------------------- (a) toy example


@pytest.mark.parametrize("name", sorted(PAPER_MAX_BLUR_POOL))
def test_toy_example_matches_paper(name):
    data = figs.toy_example(name)
    assert data.signal[0].tolist() == PAPER_SIGNAL
    assert data.signal[1].tolist() == np.roll(PAPER_SIGNAL, 1).tolist()
    assert data.max_pool.tolist() == [list(map(float, r)) for r in PAPER_MAX_POOL]
    np.testing.assert_allclose(data.max_blur_pool, np.array(PAPER_MAX_BLUR_POOL[name]), atol=1e-12)


def test_toy_example_stages_match_plain_numpy():
    taps = [1, 2, 1]
    data = figs.toy_example("tri3")
    for row in range(2):
        x = data.signal[row]
        dense = _circular_dense_max(x)
        blurred = _circular_blur(dense, taps)
        np.testing.assert_array_equal(data.dense_max[row], dense)
        np.testing.assert_allclose(data.blurred[row], blurred, atol=1e-12)
        np.testing.assert_allclose(data.max_blur_pool[row], blurred[::2], atol=1e-12)
        np.testing.assert_array_equal(data.max_pool[row], x.reshape(-1, 2).max(axis=1))


def test_toy_example_shift_by_stride_shifts_output_exactly():
    data = figs.toy_example("bin5", shift=2)
    np.testing.assert_allclose(data.max_blur_pool[1], np.roll(data.max_blur_pool[0], 1), atol=1e-12)


def _bar_heights(ax) -> list[list[float]]:
    """Heights of the two bar series of a panel: [x series, shifted series]."""
    heights = [p.get_height() for p in ax.patches]
    half = len(heights) // 2
    return [heights[:half], heights[half:]]


def test_toy_example_figure_plots_the_paper_values():
    fig = figs.toy_example_figure()
    assert isinstance(fig, Figure)
    signal_ax, max_pool_ax, _dense_ax, _blur_ax, mbp_ax = fig.axes[:5]
    assert _bar_heights(signal_ax) == [PAPER_SIGNAL, np.roll(PAPER_SIGNAL, 1).tolist()]
    assert _bar_heights(max_pool_ax) == [list(r) for r in PAPER_MAX_POOL]
    np.testing.assert_allclose(_bar_heights(mbp_ax), PAPER_MAX_BLUR_POOL["tri3"], atol=1e-12)
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "max |difference| = 1" in texts and "max |difference| = 0.25" in texts


# --------------------------------------------------------------------------- (b) downsampling


def test_zone_plate_range_symmetry_and_chirp():
    z = figs.zone_plate(64)
    assert z.shape == (64, 64) and z.dtype == np.float64
    assert z.min() >= 0 and z.max() <= 1
    np.testing.assert_allclose(z, z.T, atol=1e-12)
    np.testing.assert_allclose(z, z[::-1, ::-1], atol=1e-12)
    # Local frequency grows with the radius: the corner changes much faster than the centre, and
    # there, near 0.5 cycles/px, neighbours along the diagonal are close to opposite phase.
    centre = np.abs(np.diff(z[28:36, 28:36], axis=1)).mean()
    corner = np.abs(np.diff(z[:8, :8], axis=1)).mean()
    assert corner > 3 * centre
    assert z[1, 1] - 0.5 == pytest.approx(-(z[0, 0] - 0.5), abs=0.2)


@pytest.mark.parametrize("size", [0, 7, 16.0, True])
def test_zone_plate_bad_size(size):
    with pytest.raises(ValueError, match="`size` must be an int >= 8"):
        figs.zone_plate(size)


def test_load_photo_offline_and_unknown_name():
    photo = figs.load_photo("camera")
    assert photo.shape == (256, 256) and photo.min() >= 0 and photo.max() <= 1
    with pytest.raises(ValueError, match="`name` must be one of"):
        figs.load_photo("lena")


def test_downsampling_pyramid_naive_matches_reshape_max_and_blur_reduces_aliasing():
    image = figs.zone_plate(128)
    out = figs.downsampling_pyramid(image, levels=3, filter_size="tri4")
    ref = image
    for level, naive in enumerate(out["max_pool"], start=1):
        ref = ref.reshape(ref.shape[0] // 2, 2, ref.shape[1] // 2, 2).max(axis=(1, 3))
        np.testing.assert_allclose(naive, ref, atol=1e-12)
        assert out["max_blur_pool"][level - 1].shape == (128 >> level, 128 >> level)

    def high_band_energy(a: np.ndarray) -> float:
        spec = np.abs(np.fft.fftshift(np.fft.fft2(a - a.mean()))) ** 2
        n = a.shape[0]
        f = np.fft.fftshift(np.fft.fftfreq(n))
        radius = np.hypot(f[:, None], f[None, :])
        return float(spec[radius > 0.25].sum() / spec.sum())

    # Halving a chirp that reaches the input's Nyquist: the naive max-pool folds high frequencies
    # back as strong content near the new Nyquist; the blur suppresses it.
    assert high_band_energy(out["max_blur_pool"][0]) < 0.5 * high_band_energy(out["max_pool"][0])


def test_downsampling_pyramid_colour_layout_and_constant():
    image = np.full((32, 32, 3), 0.3)
    out = figs.downsampling_pyramid(image, levels=2)
    assert [a.shape for a in out["max_blur_pool"]] == [(16, 16, 3), (8, 8, 3)]
    np.testing.assert_allclose(out["max_blur_pool"][-1], 0.3, atol=1e-12)


def test_downsampling_figure_shows_the_pyramid():
    image = figs.zone_plate(32)
    fig = figs.downsampling_figure(image, "zone plate", levels=2, filter_size="bin5")
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    pyramid = figs.downsampling_pyramid(image, levels=2, filter_size="bin5")
    shown = [ax.images[0].get_array() for ax in fig.axes]
    np.testing.assert_allclose(shown[0], image)
    np.testing.assert_allclose(shown[1], pyramid["max_pool"][0])
    np.testing.assert_allclose(shown[5], pyramid["max_blur_pool"][1])
    assert "bin5" in fig.axes[3].get_ylabel()


# --------------------------------------------------------------------------- (c) frequency responses


@pytest.mark.parametrize("name,taps", [("rect2", 2), ("tri3", 3), ("tri4", 4), ("bin5", 5)])
def test_frequency_response_is_cosine_power(name, taps):
    # The binomial row of n taps is ((1 + z^-1) / 2)^(n-1): magnitude |cos(pi f)|^(n-1).
    freqs, mag = figs.frequency_response(name, num=101)
    assert freqs[0] == 0 and freqs[-1] == 0.5
    np.testing.assert_allclose(mag, np.abs(np.cos(np.pi * freqs)) ** (taps - 1), atol=1e-12)


def test_frequency_response_custom_filter():
    freqs, mag = figs.frequency_response(torch.tensor([1.0, 1.0, 1.0]), num=4)
    expected = np.abs(1 + 2 * np.cos(2 * np.pi * freqs)) / 3  # symmetric 3-tap box
    np.testing.assert_allclose(mag, expected, atol=1e-12)


def test_frequency_response_figure_lines_and_nyquist():
    fig = figs.frequency_response_figure(stride=4)
    lin = fig.axes[0]
    curves = [line for line in lin.lines if line.get_label() and not line.get_label().startswith("_")]
    assert len(curves) == 4
    for line, name in zip(curves, figs.PAPER_FILTERS, strict=True):
        _, mag = figs.frequency_response(name)
        np.testing.assert_allclose(line.get_ydata(), mag)
        assert line.get_label().startswith(name)
    vertical = [line for line in lin.lines if np.allclose(line.get_xdata(), 0.125)]
    assert vertical, "the stride-4 Nyquist (0.125) is not marked"


# --------------------------------------------------------------------------- writing


def _tiny_figure() -> Figure:
    fig = Figure(figsize=(1, 1), dpi=50)
    fig.add_subplot().plot([0, 1])
    return fig


def test_save_png_writes_marked_png_and_replaces_only_its_own(tmp_path):
    path = tmp_path / "a.png"
    figs.save_png(_tiny_figure(), path)
    assert figs.is_own_png(path)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (50, 50)
    inode = path.stat().st_ino
    figs.save_png(_tiny_figure(), path)  # ours: replaced by a new file
    assert path.stat().st_ino != inode
    foreign = tmp_path / "b.png"
    Image.new("RGB", (4, 4)).save(foreign)  # a PNG, but not ours
    before = foreign.read_bytes()
    with pytest.raises(FileExistsError, match="not written by `antialias figures`"):
        figs.save_png(_tiny_figure(), foreign)
    assert foreign.read_bytes() == before
    figs.save_png(_tiny_figure(), foreign, overwrite=True)
    assert figs.is_own_png(foreign)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp files left


def test_save_png_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    figs.save_png(_tiny_figure(), path)
    before = path.read_bytes()
    fig = _tiny_figure()

    def broken(fh, **kwargs):
        fh.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        figs.save_png(fig, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_save_png_refuses_directory_and_symlink(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(IsADirectoryError):
        figs.save_png(_tiny_figure(), tmp_path / "d.png")
    target = tmp_path / "real.png"
    figs.save_png(_tiny_figure(), target)
    link = tmp_path / "link.png"
    os.symlink(target, link)
    with pytest.raises(FileExistsError):
        figs.save_png(_tiny_figure(), link)
    assert link.is_symlink()


def test_write_figures_checks_all_targets_before_writing(tmp_path):
    foreign = tmp_path / figs.FIGURE_FILES["photo"]
    foreign.write_text("my notes")
    with pytest.raises(FileExistsError, match=r"downsampling_photo\.png"):
        figs.write_figures(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downsampling_photo.png"]
    assert foreign.read_text() == "my notes"


def test_write_figures_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`photo` must be one of"):
        figs.write_figures(tmp_path, photo="lena")
    with pytest.raises(ValueError, match="Did you mean 'tri3'"):
        figs.write_figures(tmp_path, filter_size="tri33")
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(FileExistsError, match="must be a folder"):
        figs.write_figures(file)
    assert list(tmp_path.iterdir()) == [file]

