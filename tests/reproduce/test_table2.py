"""Table 2 of a reproduction: per-filter mCE/mFR averaged over trainings, normalised by the baseline, and
rendered in the paper's layout beside the paper's numbers; the power table of the report."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antialias.report.html import render_html
from antialias.reproduce._runs import run_name
from antialias.reproduce._table2 import robustness_tables
from antialias.reproduce._verdicts import PAPER_TABLES

CORRUPTIONS, PERTURBATIONS = ("fog", "snow"), ("translate", "tilt")


def _run(f: str | None, k: int, ce: dict[str, float], fp: dict[str, float]) -> dict:
    return {"filter_size": f, "augment": True, "replicate": k, "eval": {
        "corruption": {"corruption_errors": {c: {"value": v} for c, v in ce.items()},
                       "mce": {"value": 100 * sum(ce.values()) / len(ce)}},
        "perturbation": {"flip_probability": {p: {"value": v} for p, v in fp.items()},
                         "mfr": 100 * sum(fp.values()) / len(fp)},
    }}


def _results(errors: dict[str | None, list[tuple[float, float]]]) -> dict:
    """Per filter, per training: (error of fog, flip probability of translate); snow/tilt fixed."""
    runs = {}
    for f, trainings in errors.items():
        for k, (e, p) in enumerate(trainings):
            runs[run_name(f, True, k)] = _run(f, k, {"fog": e, "snow": 0.5}, {"translate": p, "tilt": 0.1})
    return {"runs": runs, "config": {"filters": [f for f in errors if f is not None]}}


def test_rows_follow_the_papers_order_and_normalise_by_the_baseline_averaged_over_trainings():
    results = _results({None: [(0.4, 0.2), (0.6, 0.2)], "bin5": [(0.25, 0.1)], "rect2": [(0.5, 0.2), (0.5, 0.2)]})
    (table,) = robustness_tables(results)
    rows = {r["model"]: r for r in table["rows"]}
    assert [r["model"] for r in table["rows"]] == ["baseline", "rect2", "bin5"]
    assert rows["baseline"]["mce_normalised"] == pytest.approx(100.0)
    assert rows["baseline"]["trainings"] == 2 and rows["bin5"]["trainings"] == 1
    # bin5: fog 0.25 / mean(0.4, 0.6) = 0.5, snow 1.0 -> mean 75
    assert rows["bin5"]["mce_normalised"] == pytest.approx(75.0)
    # translate 0.1 / 0.2 = 0.5, tilt 1.0 -> 75
    assert rows["bin5"]["mfr_normalised"] == pytest.approx(75.0)
    assert rows["baseline"]["mce"] == pytest.approx(100 * (0.5 + 0.5) / 2)  # trainings' means averaged
    paper = PAPER_TABLES["robustness"]["rows"]
    assert rows["bin5"]["paper"]["mce_normalised"] == paper["ImageNet-C mCE, normalised by AlexNet"][3]
    assert rows["rect2"]["paper"]["mfr"] == paper["ImageNet-P mFR, unnormalised"][1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.05, 1.0), min_size=1, max_size=4), st.floats(0.1, 3.0))
def test_scaling_every_error_of_a_filter_scales_its_normalised_mce(base: list[float], factor: float):
    """CE is a ratio to the baseline: errors k times the baseline's give an mCE of 100 k."""
    results = _results({None: [(e, 0.2) for e in base],
                        "bin5": [(min(factor * sum(base) / len(base), 10.0), 0.2)]})
    results["runs"][run_name("bin5", True, 0)]["eval"]["corruption"]["corruption_errors"]["snow"]["value"] = \
        0.5 * factor
    rows = {r["model"]: r for r in robustness_tables(results)[0]["rows"]}
    assert rows["bin5"]["mce_normalised"] == pytest.approx(100 * factor, rel=1e-9)


def test_a_missing_part_is_not_measured_and_the_page_shows_the_layout():
    results = _results({None: [(0.4, 0.2)], "bin5": [(0.2, 0.1)]})
    del results["runs"][run_name("bin5", True)]["eval"]["perturbation"]
    results["table2"] = robustness_tables(results)
    rows = {r["model"]: r for r in results["table2"][0]["rows"]}
    assert rows["bin5"]["mfr"] is None and rows["bin5"]["mfr_normalised"] is None
    page = render_html({**results, "claims": []}, {})
    assert "mCE, normalised" in page and "not measured" in page and ">73.4<" in page  # the paper's Bin-5 mCE


def test_the_power_table_gives_each_claims_effect_detectable_size_and_the_papers_effect():
    comp = {"model": "bin5", "reference": "baseline", "diff": 0.05, "low": 0.03, "high": 0.07, "detectable": 0.0123,
            "trainings": [3, 3]}
    claim = {"id": "consistency", "claim": "Anti-aliasing increases shift consistency", "verdict": "confirmed",
             "sentence": "s", "comparisons": [comp], "headline": 0, "detectable": 0.0123,
             "paper_effect_text": "the paper: +2.1"}
    page = render_html({"runs": {}, "claims": [claim], "config": {"filters": []}}, {})
    assert "detectable (80% power, 5% level)" in page
    assert "<td>1.23</td>" in page and "+5.00 [+3.00, +7.00]" in page and "3 vs 3 training(s)" in page
    assert "the paper: +2.1" in page
