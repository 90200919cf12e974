"""The stride-aware filter figure draws convert's default filter per stride and tri4 beside it."""

from __future__ import annotations

import numpy as np

from antialias.convert import stride_filter
from antialias.report import figures as figs


def test_stride_filter_figure_curves_are_the_rules_responses():
    fig = figs.stride_filter_figure((2, 4, 16))
    lin, db = fig.axes
    curves = [line for line in lin.lines if line.get_label().startswith("stride")]
    assert [c.get_label().split(":")[0] for c in curves] == ["stride 2", "stride 4", "stride 16"]
    for line, s in zip(curves, (2, 4, 16), strict=True):
        _, mag = figs.frequency_response(stride_filter(s), num=2049)
        np.testing.assert_allclose(line.get_ydata(), mag)
        assert f"{3 * s - 2} taps" in line.get_label()
        assert any(np.allclose(v.get_xdata(), 0.5 / s) for v in lin.lines)  # the stride's Nyquist is marked
    dotted = [line.get_label() for line in db.lines if line.get_label().startswith("tri4")]
    assert dotted == ["tri4 at stride 4: |H(0.125)| = 0.79", "tri4 at stride 16: |H(0.03125)| = 0.99"]


def test_write_figures_includes_the_stride_figure():
    assert figs.FIGURE_FILES["stride_filters"] == "filter_stride_aware.png"
