"""Tests of antialias.reproduce._verdicts: the decision rule on synthetic results, and the paper's tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from antialias.reproduce import _evaluate as E
from antialias.reproduce import _verdicts as V
from antialias.reproduce._runs import run_name

REFERENCE = Path(__file__).parents[1] / "reference" / "paper_results.md"


def _synthetic(cons: dict[tuple[str | None, bool], float], acc: float = 0.8, n: int = 2000) -> dict:
    """Results whose per-image outcomes have exactly the given rates (the first k images succeed)."""

    def b(rate: float) -> str:
        k = round(rate * n)
        return "1" * k + "0" * (n - k)

    runs = {}
    for (f, aug), c in cons.items():
        prop = {"value": round(c * n) / n, "low": c - 0.01, "high": c + 0.01, "successes": round(c * n), "total": n}
        accp = {"value": acc, "low": acc - 0.01, "high": acc + 0.01, "successes": round(acc * n), "total": n}
        runs[run_name(f, aug)] = {"filter_size": f, "augment": aug, "eval": {
            "clean": {"accuracy": accp, "per_image": b(acc)},
            "consistency": {p: {"consistency": prop, "per_image": b(c)} for p in ("crop", "circular")},
        }}
    return {"runs": runs, "config": {"filters": ["rect2", "bin5"]}}


def _by_id(results: dict) -> dict:
    return {c["id"]: c for c in V.judge(results)}


def test_verdicts_follow_the_rule():
    up = _synthetic({(None, False): 0.80, ("rect2", False): 0.85, ("bin5", False): 0.90,
                     (None, True): 0.88, ("rect2", True): 0.90, ("bin5", True): 0.92})
    claims = _by_id(up)
    assert claims["consistency"]["verdict"] == V.CONFIRMED
    assert claims["stronger_filters"]["verdict"] == V.CONFIRMED
    assert claims["augmentation"]["verdict"] == V.CONFIRMED  # baseline gains 8 points, bin5 only 2
    assert claims["accuracy_kept"]["verdict"] == V.CONFIRMED  # identical accuracy: nothing drops
    assert claims["accuracy_improves"]["verdict"] == V.INCONCLUSIVE
    assert claims["equivariance"]["verdict"] == V.NOT_MEASURED
    assert claims["corruption"]["verdict"] == claims["perturbation"]["verdict"] == V.NOT_MEASURED
    assert "+10.0 points" in claims["consistency"]["sentence"]  # bin5 without augmentation, crop
    layers = [f"l{i}" for i in range(6)]
    for f, values in ((None, [0.0, 0.1, 0.3, 0.4, 0.5, 0.6]), ("bin5", [0.0, 0.05, 0.1, 0.2, 0.2, 0.3])):
        up["runs"][run_name(f, True)]["eval"]["equivariance"] = {
            "layers": layers, "means": dict(zip(layers, values, strict=True)), "distance": "cosine",
            "num_images": 2, "step": 1}
    eq = _by_id(up)["equivariance"]
    assert eq["verdict"] == V.CONFIRMED and "lower for bin5 in 5 of 6 layers" in eq["sentence"]

    down = _synthetic({(None, False): 0.90, ("rect2", False): 0.85, ("bin5", False): 0.80,
                       (None, True): 0.90, ("rect2", True): 0.85, ("bin5", True): 0.80})
    assert _by_id(down)["consistency"]["verdict"] == V.NOT_CONFIRMED
    flat = _synthetic({(f, a): 0.85 for f in (None, "rect2", "bin5") for a in (False, True)})
    assert _by_id(flat)["consistency"]["verdict"] == V.INCONCLUSIVE


def test_a_comparison_is_up_only_when_its_paired_interval_excludes_zero():
    # 2000 images; bin5 consistent on 40 more (2 points): Newcombe's paired interval excludes 0,
    # 4 more (0.2 points) it does not. Every image the baseline gets right, bin5 does too.
    for extra, direction in ((40, "up"), (4, "flat")):
        rate = 0.85 + extra / 2000
        results = _synthetic({(None, False): 0.85, ("rect2", False): rate, ("bin5", False): rate})
        comps = _by_id(results)["consistency"]["comparisons"]
        assert {c["direction"] for c in comps} == {direction}
        assert all(c["n10"] == extra and c["n01"] == 0 for c in comps)
        assert all(0 < c["p_value"] < 1 for c in comps) and "Newcombe" in comps[0]["method"]


def test_augmentation_comparison_is_a_paired_t_interval_over_images():
    results = _synthetic({(None, False): 0.80, ("bin5", False): 0.90, (None, True): 0.88, ("bin5", True): 0.92})
    results["config"]["filters"] = ["bin5"]
    comps = _by_id(results)["augmentation"]["comparisons"]
    assert [c["protocol"] for c in comps] == ["crop", "circular"]
    for c in comps:  # baseline gains 160 images of 2000, bin5 gains 40: difference 0.06
        assert abs(c["diff"] - 0.06) < 1e-12 and c["method"] == "Student t (paired)" and c["n"] == 2000


def test_paper_tables_match_the_reference_file():
    text = REFERENCE.read_text()
    for model, values in V.PAPER_TABLES["accuracy_consistency"]["rows"].items():
        line = next(line for line in text.splitlines() if line.startswith(f"| {model} |"))
        pairs = re.findall(r"([\d.]+) / ([\d.]+)", line)
        assert [(float(a), float(c)) for a, c in pairs] == list(values)
    table = V.PAPER_TABLES["robustness"]["rows"]
    for label, values in table.items():
        line = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
        assert [float(x) for x in re.findall(r"\| ([\d.]+)", line)] == values


def test_per_image_outcome_strings_round_trip():
    x = torch.tensor([True, False, False, True])
    assert E.bits(x) == "1001" and torch.equal(E.from_bits(E.bits(x)), x)


def _replicated(cons: dict[tuple[str | None, bool], list[float]], n: int = 2000) -> dict:
    """Results with several trainings per configuration: training k has consistency cons[key][k]."""
    runs = {}
    for (f, aug), rates in cons.items():
        for k, c in enumerate(rates):
            one = _synthetic({(f, aug): c}, n=n)["runs"][run_name(f, aug)]
            runs[run_name(f, aug, k)] = {**one, "replicate": k}
    return {"runs": runs, "config": {"filters": ["bin5"]}}


def test_seed_variation_widens_the_interval_and_can_overturn_a_single_training_verdict():
    # One training each: bin5 is 2 points more consistent on 2000 images, significant on its own.
    single = _replicated({(None, False): [0.85], ("bin5", False): [0.87]})
    assert {c["direction"] for c in _by_id(single)["consistency"]["comparisons"]} == {"up"}
    # Three trainings each whose means scatter by +-3 points: the same 2-point difference is noise.
    seeds = _replicated({(None, False): [0.82, 0.85, 0.88], ("bin5", False): [0.84, 0.87, 0.90]})
    claim = _by_id(seeds)["consistency"]
    comp = claim["comparisons"][0]
    assert comp["trainings"] == [3, 3] and comp["seed_variance"] > 0 and comp["direction"] == "flat"
    assert comp["diff"] == pytest.approx(0.02)
    assert claim["verdict"] == V.INCONCLUSIVE and "3 + 3 trainings" in claim["sentence"]
    # A difference far beyond the scatter of the trainings stays significant.
    strong = _replicated({(None, False): [0.80, 0.81, 0.82], ("bin5", False): [0.90, 0.91, 0.92]})
    assert _by_id(strong)["consistency"]["verdict"] == V.CONFIRMED


def test_every_claim_states_its_detectable_effect_beside_the_papers():
    results = _replicated({(None, False): [0.85, 0.86], ("bin5", False): [0.87, 0.88],
                           (None, True): [0.88, 0.89], ("bin5", True): [0.9, 0.91]})
    for claim in V.judge(results):
        if claim["verdict"] == V.NOT_MEASURED:
            continue
        assert claim["detectable"] >= 0 and "could detect a difference of" in claim["sentence"]
        assert claim["paper_effect_text"] in claim["sentence"]
    consistency = _by_id(results)["consistency"]
    assert consistency["paper_effect"] == pytest.approx(0.0211)
    # 2000 images per training, scatter of 1 point between trainings: a 2-point effect is not detectable
    assert consistency["detectable"] > 0.0211 and "larger than the paper's effect" in consistency["sentence"]


def test_each_claim_names_its_headline_comparison():
    results = _replicated({(None, False): [0.85, 0.86], ("bin5", False): [0.87, 0.88]})
    for claim in V.judge(results):
        if claim["verdict"] == V.NOT_MEASURED:
            assert claim["headline"] is None
            continue
        head = claim["comparisons"][claim["headline"]]
        assert head["detectable"] == claim["detectable"]
