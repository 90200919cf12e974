"""Stride-aware default filters of convert(): the rule's frequency response, and its use at stride > 2 sites.

The rule (box(s) convolved three times, 3s-2 taps; tri4 at s = 2) is checked against its stated
properties numerically, from the DTFT computed here; patch-embedding stems (k4 s4, k16 s16) must get it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from antialias.convert import convert, stride_filter
from antialias.filters import binomial


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _response(row: torch.Tensor, w: np.ndarray) -> np.ndarray:
    taps = row.numpy()
    return np.abs(np.exp(-1j * np.outer(w, np.arange(taps.size))) @ taps)


def test_stride_two_is_the_papers_tri4_and_stride_one_no_blur():
    torch.testing.assert_close(stride_filter(2), binomial(4))
    torch.testing.assert_close(stride_filter(1), torch.ones(1, dtype=torch.float64))


@settings(max_examples=31, deadline=None)
@given(s=st.integers(2, 32))
def test_rule_cuts_near_pi_over_stride(s):
    row = stride_filter(s)
    assert row.numel() == 3 * s - 2
    assert math.isclose(float(row.sum()), 1.0, rel_tol=1e-12)
    torch.testing.assert_close(row, row.flip(0))  # symmetric: zero phase about its centre
    # Zero at every alias centre 2*pi*k/s: what would fold onto the output's DC is removed.
    centres = 2 * np.pi * np.arange(1, s) / s
    assert _response(row, centres).max() < 1e-9
    w = np.linspace(0, np.pi, 40001)
    h = _response(row, w)
    half = w[np.argmax(h < 0.5)] / (np.pi / s)  # -6 dB point in units of pi/s
    assert 0.73 <= half <= 0.84, half
    assert float(_response(row, np.array([np.pi / s]))[0]) <= math.cos(math.pi / 4) ** 3 + 1e-12
    assert h[w >= 1.5 * np.pi / s].max() < 0.06
    assert np.all(np.diff(h[w <= np.pi / s]) <= 1e-12)  # monotone pass band


def test_tri4_is_too_weak_for_stride_four():
    """The reason for the rule: at 1.5*pi/4 tri4 still passes over half the amplitude; the rule under 6%."""
    w = np.array([1.5 * np.pi / 4])
    assert _response(binomial(4), w)[0] > 0.5
    assert _response(stride_filter(4), w)[0] < 0.06


def test_stride_filter_errors():
    with pytest.raises(ValueError, match=r"`antialias.convert.stride_filter`: `stride` must be an int >= 1, got 0"):
        stride_filter(0)


# --------------------------------------------------------------------------- patch stems


class PatchStem(nn.Module):
    """ConvNeXt / ViT style: a k=s=patch conv, then a norm without activation, then a head."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, patch, patch)
        self.norm = nn.GroupNorm(1, 8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.norm(self.stem(x)))


def _taps(row: torch.Tensor) -> list[float]:
    return row.tolist()


@pytest.mark.parametrize("patch", [4, 16])
def test_patch_stem_gets_the_stride_aware_filter(patch, reference):
    model = PatchStem(patch).eval()
    x = torch.randn(2, 3, 4 * patch + 3, 5 * patch)
    new, report = convert(model, input_size=(1, 3, 4 * patch, 4 * patch))
    assert report.placements() == {"stem": "before-conv"}
    row = _taps(stride_filter(patch))
    with torch.no_grad():
        blurred = reference.blur_pool(x, [row, row], 1)
        expected = model.head(model.norm(F.conv2d(blurred, model.stem.weight, model.stem.bias, patch)))
        torch.testing.assert_close(new(x), expected, atol=1e-12, rtol=0)
    text = str(report)
    assert f"stride-{patch} sites" in text and f"{3 * patch - 2} taps (box{patch}^3)" in text


@pytest.mark.parametrize(
    ("filter_size", "taps_s4", "taps_s2"),
    [(4, 4, 4), ("tri3", 3, 3), ({4: 6}, 6, 4), ({2: "tri3"}, 10, 3), ("auto", 10, 4)],
)
def test_explicit_filter_wins_and_mapping_per_stride(filter_size, taps_s4, taps_s2):
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU())
    new, report = convert(model, filter_size=filter_size)
    assert report.placements() == {"0": "after-activation", "2": "drop-in", "3": "after-activation"}
    assert new[1][1].filter_h.numel() == taps_s4 and new[1][1].filter_w.numel() == taps_s4
    assert new[2].filter_h.numel() == taps_s2
    assert new[4][1].filter_h.numel() == taps_s2


def test_anisotropic_stride_gets_a_filter_per_axis():
    model = nn.Sequential(nn.Conv2d(3, 8, (4, 2), (4, 2)), nn.ReLU())
    new, _ = convert(model)
    assert new[1][1].filter_h.numel() == 10 and new[1][1].filter_w.numel() == 4


def test_mapping_errors_name_convert_and_the_fix():
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.ReLU())
    with pytest.raises(ValueError, match=r"`convert`: `filter_size` as a mapping must have int strides >= 2.*Example"):
        convert(model, filter_size={1: 3})
    with pytest.raises(ValueError, match=r"`convert`: `filter_size` must be"):
        convert(model, filter_size={4: 0})
