"""report.compare: the comparison table, figure and page from a results dict (no pipeline)."""

from __future__ import annotations

import pytest

from antialias.report.compare import COLUMNS, comparison_figure, comparison_html, comparison_markdown, comparison_rows


def _p(value: float, n: int = 100) -> dict:
    return {"value": value, "low": max(0.0, value - 0.05), "high": min(1.0, value + 0.05),
            "successes": round(value * n), "total": n}


def _method(acc: float, worst: float, step: float, mem: int) -> dict:
    return {"eval": {"accuracy": _p(acc), "consistency": {"circular": {"consistency": _p(0.9)},
                                                          "crop": {"consistency": _p(0.8)}},
                     "worst_case": {f: _p(worst) for f in ("circular", "crop", "subpixel", "all")},
                     "mac": {"all": {"value": 0.01, "low": 0.008, "high": 0.012, "n": 100}},
                     "k_way": _p(0.85), "every_circular_shift": _p(worst, 10)},
            "cost": {"train_step_seconds": step, "inference_seconds": step / 3, "activation_bytes": mem}}


RESULTS = {"methods": {"baseline": _method(0.88, 0.5, 0.1, 2**20), "aps<x>": _method(0.86, 1.0, 0.25, 3 * 2**19)},
           "claims": [{"verdict": "confirmed", "sentence": "APS is exact (confirmed)."}],
           "config": {"model": "vgg13_bn_cifar"}, "timing": {"total": 12.0}}


def test_rows_hold_intervals_and_cost_ratios():
    rows = comparison_rows(RESULTS)
    assert [len(r) for r in rows] == [len(COLUMNS)] * 2
    base, aps = rows
    assert base[1] == "88.0 [83.0, 93.0]" and base[-2] == "100.0" and base[-1] == "1.0 MB"
    assert aps[4] == "100.0 [95.0, 100.0]" and aps[-2] == "250.0 (2.50x)" and aps[-1] == "1.5 MB (1.50x)"


def test_markdown_page_and_figure():
    md = comparison_markdown(RESULTS)
    assert md.splitlines()[0] == "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    assert "- APS is exact (confirmed)." in md
    page = comparison_html(RESULTS, b"\x89PNG")
    assert "aps&lt;x&gt;" in page and "aps<x>" not in page and "data:image/png;base64,iVBORw" in page
    fig = comparison_figure(RESULTS)
    assert fig.axes[0].get_title().startswith("Accuracy against consistency")


@pytest.mark.parametrize("missing", ["cost", "every_circular_shift"])
def test_missing_parts_show_as_na(missing):
    results = {"methods": {"baseline": _method(0.9, 0.5, 0.1, 100)}}
    if missing == "cost":
        results["methods"]["baseline"].pop("cost")
    else:
        results["methods"]["baseline"]["eval"].pop(missing)
    row = comparison_rows(results)[0]
    assert "n/a" in row
    comparison_figure(results)  # draws without the missing part
