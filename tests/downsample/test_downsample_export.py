"""APS, LPS (eval) and blur-upsampling export with ``torch.export`` (no Python control flow on data).

The ideal low-pass does not: its matrices are built from the input size at run time (FFTs of an identity).
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from antialias.downsample import APS2d, BlurUpsample2d, IdealDownsample2d, LPS2d


@pytest.mark.parametrize(
    "make",
    [lambda: APS2d(4, 2), lambda: LPS2d(4, 2).eval(), lambda: BlurUpsample2d(2)],
    ids=["aps", "lps-eval", "blur-upsample"],
)
def test_export_matches_eager(make):
    layer = make()
    x = torch.randn(2, 4, 8, 6)
    exported = torch.export.export(layer, (x,))
    y = torch.randn(2, 4, 8, 6)
    assert torch.equal(exported.module()(y), layer(y))


def test_ideal_after_a_failed_export_still_runs_eagerly():
    layer = IdealDownsample2d(4, 2, backend="matmul")
    x = torch.randn(2, 4, 8, 6)
    ref = layer(x)
    layer_fresh = IdealDownsample2d(4, 2, backend="matmul")
    x2 = torch.randn(2, 4, 10, 14)  # a size not cached yet
    with contextlib.suppress(Exception):  # not exportable (documented); what matters is the cache below
        torch.export.export(layer_fresh, (x2,))
    assert torch.equal(layer(x), ref)
    assert not layer(x2).requires_grad and torch.isfinite(layer(x2)).all()
