"""The paper's claims, judged on a reproduction's results: one sentence each, with the numbers behind it.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019) claims that anti-aliasing
(1) increases shift consistency, (2) keeps and (3) even improves accuracy, (4) more so with stronger
filters, (5) largely removes the need for shift augmentation, (6) makes internal feature maps more
shift-equivariant, and (7, 8) improves robustness to corruptions and perturbations.

**Decision rule** (the same for every claim; written in the report). A *comparison* pits an
anti-aliased model against a reference (usually the baseline trained the same way) on the same test
images, with the same random shifts, so the test is paired: for 0/1 outcomes per image (correct,
consistent) the 95% interval of the difference is Newcombe's hybrid score interval for paired
proportions, reported with the exact McNemar p-value
(:func:`antialias.eval._stats.paired_proportion_difference`); for per-unit numbers (error rate per
image, flip rate per sequence, feature distance per layer, the change of an image's consistency with
augmentation), a paired Student-t interval (:func:`antialias.eval._stats.paired_mean_difference`).
Every quantile comes from scipy, so a verdict never depends on what else is installed. A comparison
is *up* when its interval lies above 0, *down* when below, *flat* otherwise. A claim with several
comparisons is **confirmed** when more than half are in the claimed direction and none against it,
**not confirmed** when more than half are against it, and **inconclusive** otherwise ("at this
scale": small models, short training, few images). "Accuracy does not drop" is confirmed when no
comparison is significantly down and not confirmed when more than half are. A claim whose
measurement is missing is **not measured**, with the reason. Seeds are never tuned: every run uses the configured seed.

**Several trainings.** When some configuration was trained more than once (``seeds``), every
comparison averages each model over its trainings and its interval adds the variation between
trainings (:mod:`antialias.reproduce._comparisons`), so a confirmed claim is one that would survive
retraining. Every comparison also states the smallest effect it could detect (80% power, 5% level),
shown beside the paper's effect (:data:`PAPER_EFFECTS`).

The published numbers (:data:`PAPER_TABLES`) are ImageNet's; they are shown for orientation only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from antialias.eval._stats import seed_aware_difference
from antialias.reproduce import _comparisons as M
from antialias.reproduce._comparisons import Comparer, Key, RunsBy, direction, runs_by

__all__ = ["CONFIRMED", "INCONCLUSIVE", "NOT_CONFIRMED", "NOT_MEASURED", "PAPER_EFFECTS", "PAPER_TABLES", "RULE",
           "judge"]

CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE, NOT_MEASURED = "confirmed", "not confirmed", "inconclusive", "not measured"

RULE = (
    "Each comparison pits a model against its reference on the same test images with the same random shifts; "
    "its paired 95% interval (Newcombe's hybrid score interval for per-image 0/1 outcomes; Student-t for "
    "per-image error rates, per-sequence flip rates, per-layer feature distances and per-image changes with "
    "augmentation) "
    "makes it 'up' (interval above 0), 'down' (below 0) or 'flat'. A claim is confirmed when more than half of "
    "its comparisons go the claimed way and none the other way, not confirmed when more than half go the "
    "other way, inconclusive otherwise. 'Accuracy does not drop' is confirmed when no comparison is "
    "significantly down. Seeds are fixed in the configuration and never tuned. When a configuration was trained "
    "several times, each model is averaged over its trainings and the interval adds the variation between trainings "
    "(pooled over the configurations trained more than once; Student t with Welch-Satterthwaite degrees of freedom). "
    "'Detectable' is the smallest true difference the comparison finds with 80% probability at the 5% level."
)

#: The paper's effect for each claim (ImageNet, from PAPER_TABLES), in the units of our comparisons
#: (points of percent); None where the paper shows it as a figure only.
_REPORTS, _FIGURE = "the paper reports", "the paper shows this only as a figure"
PAPER_EFFECTS: dict[str, dict[str, Any]] = {
    "consistency": {"value": 0.0211, "text": f"{_REPORTS} +2.1 points of consistency for Bin-5 (VGG16bn "
                                            "89.24 -> 91.35; ResNet50 89.20 -> 91.31)"},
    "accuracy_kept": {"value": 0.0069, "text": f"{_REPORTS} +0.7 points of accuracy for Bin-5 (VGG16bn "
                                               "73.36 -> 74.05; ResNet50 +0.9)"},
    "accuracy_improves": {"value": 0.0069, "text": f"{_REPORTS} +0.7 points of accuracy for Bin-5 (VGG16bn "
                                                   "73.36 -> 74.05; ResNet50 +0.9)"},
    "stronger_filters": {"value": 0.0063, "text": f"{_REPORTS} +0.6 points of consistency, Bin-5 over Rect-2 "
                                                  "(VGG16bn 90.72 -> 91.35; ResNet50 +1.4)"},
    "augmentation": {"value": None, "text": f"{_FIGURE} on CIFAR-10 (no number published)"},
    "equivariance": {"value": None, "text": f"{_FIGURE} (VGG13-bn on CIFAR-10; no number published)"},
    "corruption": {"value": -0.025, "text": f"{_REPORTS} -2.5 points of unnormalised mCE for Bin-5 (ResNet50 "
                                            "60.6 -> 58.1)"},
    "perturbation": {"value": -0.0102, "text": f"{_REPORTS} -1.0 point of unnormalised mFR for Bin-5 (ResNet50 "
                                               "7.92 -> 6.90)"},
}

#: Published numbers (ImageNet, from the paper and the reference's README), for orientation.
PAPER_TABLES: dict[str, Any] = {
    "accuracy_consistency": {
        "caption": "ImageNet accuracy / consistency (%), trained from scratch (Zhang, 2019)",
        "columns": ["baseline", "rect2", "tri3", "bin5", "tri4"],
        "rows": {
            "VGG16bn": [(73.36, 89.24), (74.01, 90.72), (73.91, 91.10), (74.05, 91.35), (74.12, 91.22)],
            "ResNet50": [(76.16, 89.20), (76.81, 89.96), (76.83, 90.91), (77.04, 91.31), (77.23, 91.29)],
        },
    },
    "robustness": {
        "caption": "ResNet50 robustness (the paper's Table 2), lower is better",
        "columns": ["baseline", "rect2", "tri3", "bin5"],
        "rows": {
            "ImageNet-C mCE, normalised by AlexNet": [76.4, 75.2, 73.7, 73.4],
            "ImageNet-P mFR, normalised by AlexNet": [58.0, 56.3, 51.9, 51.2],
            "ImageNet-C mCE, unnormalised": [60.6, 59.5, 58.4, 58.1],
            "ImageNet-P mFR, unnormalised": [7.92, 7.71, 7.05, 6.90],
        },
    },
}


# ----------------------------------------------------------------------------------- helpers


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _diff_text(d: Mapping[str, Any]) -> str:
    ci = "paired 95% CI" if d.get("trainings", [1, 1]) == [1, 1] else f"95% CI over {_trainings_text(d)}"
    return f"{_pts(d['diff'])} points ({ci} {_pts(d['low'])} to {_pts(d['high'])})"


def _trainings_text(d: Mapping[str, Any]) -> str:
    a, b = d["trainings"]
    return f"images and {a} + {b} trainings"


def _value_text(cmp: Comparer, key: Key, extract: M.Extract) -> str:
    """The mean over trainings, with the range of the trainings when there are several."""
    per = cmp.per_training(key, extract)
    if len(per) == 1:
        return _pct(per[0])
    return f"{_pct(sum(per) / len(per))} (trainings {100 * min(per):.1f} to {100 * max(per):.1f})"


def _majority(directions: Sequence[str], claimed: str) -> str:
    against = "down" if claimed == "up" else "up"
    n = len(directions)
    if n == 0:
        return NOT_MEASURED
    good, bad = directions.count(claimed), directions.count(against)
    if good > n / 2 and bad == 0:
        return CONFIRMED
    if bad > n / 2:
        return NOT_CONFIRMED
    return INCONCLUSIVE


def _aug_label(augment: bool) -> str:
    return "with augmentation" if augment else "without augmentation"


def _power_text(cid: str, d: Mapping[str, Any] | None, scale: float = 100.0, unit: str = "points") -> str:
    """'This comparison could detect ...; the paper reports ...' for the claim's headline comparison."""
    paper, effect = PAPER_EFFECTS[cid]["text"], PAPER_EFFECTS[cid]["value"]
    if d is None or not math.isfinite(d.get("detectable", math.inf)):
        return f" Power: not known; {paper}."
    if effect is None:
        verdict = ""
    elif d["detectable"] <= abs(effect):
        verdict = " (an effect of the paper's size would have been found)"
    elif d.get("direction") == "flat":
        verdict = " (larger than the paper's effect: this null result cannot rule that effect out)"
    else:
        verdict = " (larger than the paper's effect)"
    return (f" Power: this comparison could detect a difference of {scale * d['detectable']:.2f} {unit} "
            f"(80% power, 5% level){verdict}; {paper}.")


def _claim(cid: str, claim: str, verdict: str, sentence: str, comparisons: list[dict[str, Any]],
           headline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    index = next((i for i, c in enumerate(comparisons) if c is headline), None)
    return {"id": cid, "claim": claim, "verdict": verdict, "sentence": sentence, "comparisons": comparisons,
            "headline": index, "detectable": None if headline is None else headline.get("detectable"),
            "paper_effect": PAPER_EFFECTS[cid]["value"], "paper_effect_text": PAPER_EFFECTS[cid]["text"]}


def _count_text(dirs: Sequence[str], what: str) -> str:
    return (f"{what} in {dirs.count('up')} of {len(dirs)} comparisons significantly up, "
            f"{dirs.count('down')} significantly down, {dirs.count('flat')} within noise")


# ----------------------------------------------------------------------------------- claims


def _consistency_claims(cmp: Comparer, filters: Sequence[str], augs: Sequence[bool]) -> list[dict[str, Any]]:
    comps = []
    for aug in augs:
        for f in filters:
            for proto in ("crop", "circular"):
                d = cmp.compare((None, aug), (f, aug), M.consistency(proto), binary=True)
                comps.append({"model": f, "reference": "baseline", "augment": aug, "protocol": proto, **d,
                              "value": cmp.mean((f, aug), M.consistency(proto)),
                              "reference_value": cmp.mean((None, aug), M.consistency(proto))})
    dirs = [c["direction"] for c in comps]
    verdict = _majority(dirs, "up")
    ex = max(comps, key=lambda c: (c["model"] == filters[-1], not c["augment"], c["protocol"] == "crop"))
    crop = M.consistency(ex["protocol"])
    sentence = (f"Anti-aliasing increases shift consistency: {verdict.upper()}. "
                f"{_count_text(dirs, 'Consistency was')} (each filter against the baseline, "
                f"{len(augs)} augmentation setting(s), crop and circular protocols). For example {ex['model']} "
                f"{_aug_label(ex['augment'])}, {ex['protocol']} protocol: "
                f"{_value_text(cmp, (ex['model'], ex['augment']), crop)} vs baseline "
                f"{_value_text(cmp, (None, ex['augment']), crop)}, {_diff_text(ex)}."
                f"{_power_text('consistency', ex)}")
    out = [_claim("consistency", "Anti-aliasing increases shift consistency", verdict, sentence, comps, ex)]

    # stronger filters -> more consistent: the strongest vs the weakest filter
    weak, strong = filters[0], filters[-1]
    claim2 = "Stronger filters give more consistency"
    if len(filters) < 2:
        return [*out, _claim("stronger_filters", claim2, NOT_MEASURED,
                             f"{claim2}: NOT MEASURED (only one filter was trained).", [])]
    comps2 = []
    for aug in augs:
        for proto in ("crop", "circular"):
            d = cmp.compare((weak, aug), (strong, aug), M.consistency(proto), binary=True)
            comps2.append({"model": strong, "reference": weak, "augment": aug, "protocol": proto, **d})
    dirs2 = [c["direction"] for c in comps2]
    verdict2 = _majority(dirs2, "up")
    orders = []
    for aug in augs:
        vals = [(cmp.mean((f, aug), M.consistency("crop")), f) for f in (None, *filters)]
        ranked = sorted(vals, key=lambda t: t[0])
        orders.append(f"{_aug_label(aug)}: " + ", ".join(f"{f or 'baseline'} ({_pct(v)})" for v, f in ranked))
    sentence2 = (
        f"{claim2}: {verdict2.upper()}. {strong} against {weak}: "
        f"{_count_text(dirs2, 'consistency')}; e.g. {_diff_text(comps2[0])} "
        f"({_aug_label(comps2[0]['augment'])}, {comps2[0]['protocol']}). Crop-protocol consistency, lowest first, "
        f"{'; '.join(orders)}.{_power_text('stronger_filters', comps2[0])}"
    )
    out.append(_claim("stronger_filters", claim2, verdict2, sentence2, comps2, comps2[0]))
    return out


def _accuracy_claims(cmp: Comparer, filters: Sequence[str], augs: Sequence[bool]) -> list[dict[str, Any]]:
    comps = []
    for aug in augs:
        for f in filters:
            d = cmp.compare((None, aug), (f, aug), M.clean, binary=True)
            comps.append({"model": f, "reference": "baseline", "augment": aug, **d,
                          "value": cmp.mean((f, aug), M.clean), "reference_value": cmp.mean((None, aug), M.clean)})
    dirs = [c["direction"] for c in comps]
    n = len(dirs)
    keep = CONFIRMED if dirs.count("down") == 0 else NOT_CONFIRMED if dirs.count("down") > n / 2 else INCONCLUSIVE
    improve = _majority(dirs, "up")
    worst = min(comps, key=lambda c: c["diff"])
    best = max(comps, key=lambda c: c["diff"])
    strong = next(c for c in comps if c["model"] == filters[-1])

    def vs(c: Mapping[str, Any]) -> str:
        return (f"{_value_text(cmp, (c['model'], c['augment']), M.clean)} vs baseline "
                f"{_value_text(cmp, (None, c['augment']), M.clean)}")

    s1 = (f"Anti-aliasing does not reduce accuracy: {keep.upper()}. {_count_text(dirs, 'Accuracy was')}; the "
          f"largest drop is {worst['model']} {_aug_label(worst['augment'])}: {vs(worst)}, {_diff_text(worst)}."
          f"{_power_text('accuracy_kept', strong)}")
    s2 = (f"Anti-aliasing improves accuracy: {improve.upper()}. {_count_text(dirs, 'Accuracy was')}; the largest "
          f"gain is {best['model']} {_aug_label(best['augment'])}: {vs(best)}, {_diff_text(best)}."
          f"{_power_text('accuracy_improves', strong)}")
    return [_claim("accuracy_kept", "Accuracy does not drop", keep, s1, comps, strong),
            _claim("accuracy_improves", "Accuracy improves", improve, s2, comps, strong)]


def _gain(no_aug: str, aug: str) -> list[float]:
    """Per image: consistency with augmentation minus without (-1, 0 or 1)."""
    return [float(int(y) - int(x)) for x, y in zip(no_aug, aug, strict=True)]


def _gains(runs: RunsBy, f: str | None, proto: str) -> list[dict[str, Any]]:
    """Per training (paired by replicate): the per-image gain in consistency from augmentation."""
    no, yes = runs[(f, False)], runs[(f, True)]
    return [{"gain": _gain(a["eval"]["consistency"][proto]["per_image"], b["eval"]["consistency"][proto]["per_image"])}
            for a, b in zip(no, yes, strict=False)]


def _augmentation_claim(cmp: Comparer, filters: Sequence[str], augs: Sequence[bool]) -> dict[str, Any]:
    cid, claim = "augmentation", "Anti-aliasing reduces the need for shift augmentation"
    if set(augs) != {False, True}:
        return _claim(
            cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (needs runs with and without augmentation).", []
        )
    comps = []
    for proto in ("crop", "circular"):
        # configuration -> its trainings' gains; compared like any other metric: baseline's gain - filter's gain
        gains = Comparer({(f, True): _gains(cmp.runs, f, proto) for f in (None, *filters)})
        for f in filters:
            d = gains.compare((f, True), (None, True), lambda r: r["gain"], binary=False)
            comps.append({"model": f, "reference": "baseline", "protocol": proto, **d})
    comps.sort(key=lambda c: (filters.index(c["model"]), c["protocol"] != "crop"))
    dirs = [c["direction"] for c in comps]
    verdict = _majority(dirs, "up")
    strong = filters[-1]
    crop = M.consistency("crop")

    def c(key: Key) -> str:
        return _value_text(cmp, key, crop)

    ex = next(x for x in comps if x["model"] == strong and x["protocol"] == "crop")
    sentence = (f"{claim}: {verdict.upper()}. The gain in consistency from augmentation was larger for the baseline "
                f"than for the anti-aliased model in {dirs.count('up')} of {len(dirs)} comparisons (significantly; "
                f"{dirs.count('down')} significantly smaller). Crop protocol: baseline {c((None, False))} "
                f"without and {c((None, True))} with augmentation; {strong} {c((strong, False))} "
                f"without and {c((strong, True))} with; difference of the gains {_diff_text(ex)}."
                f"{_power_text(cid, ex)}")
    return _claim(cid, claim, verdict, sentence, comps, ex)


def _equivariance_claim(runs: RunsBy, filters: Sequence[str], augs: Sequence[bool]) -> dict[str, Any]:
    cid, claim = "equivariance", "Internal feature maps are more shift-equivariant"
    strong = filters[-1]
    aug = augs[-1]
    a, b = runs[(None, aug)][0]["eval"].get("equivariance"), runs[(strong, aug)][0]["eval"].get("equivariance")
    if a is None or b is None:
        return _claim(cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (no feature-distance maps).", [])
    la, lb = list(a["means"].values()), list(b["means"].values())
    if len(la) != len(lb) or len(la) < 2:
        return _claim(cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (the two models' layers do not pair up).", [])
    # Unit = layer: the claim is about the network's layers; each layer's distance is averaged over the
    # images and the shift grid, and the two models' layers pair up by position. One training each.
    # One training each: the two-level comparison without a seed term is the paired t interval, with its se.
    d = {"model": strong, "reference": "baseline", "augment": aug,
         **seed_aware_difference([la], [lb], seed_variance=math.nan, seed_df=0)}
    d["direction"] = direction(d)  # claimed: "down" (smaller distance)
    verdict = {"down": CONFIRMED, "up": NOT_CONFIRMED}.get(d["direction"], INCONCLUSIVE)
    layers_lower = sum(1 for x, y in zip(la, lb, strict=True) if y < x)
    sentence = (
        f"{claim}: {verdict.upper()}. Mean {a['distance']} distance between Shift(F(x)) and F(Shift(x)), "
        f"per layer over {a['num_images']} image(s) and the circular shifts (grid step {a.get('step', 1)}), "
        f"{_aug_label(aug)}, first training of each: {strong} {sum(lb) / len(lb):.4f} vs baseline "
        f"{sum(la) / len(la):.4f} on average over {len(la)} layers, paired difference {d['diff']:+.4f} (95% CI "
        f"{d['low']:+.4f} to {d['high']:+.4f}, layers as units); lower for {strong} in {layers_lower} of "
        f"{len(la)} layers.{_power_text(cid, d, scale=1.0, unit='(distance)')}"
    )
    return _claim(cid, claim, verdict, sentence, [d], d)


def _robustness_claims(results: Mapping[str, Any], cmp: Comparer, filters: Sequence[str],
                       augs: Sequence[bool]) -> list[dict[str, Any]]:
    out = []
    missing = {m["part"]: m for m in results.get("missing", [])}
    for part, claim, key, unit in (
        ("corruption", "Anti-aliasing improves robustness to corruptions (lower mCE)", "mce", "error rate per image"),
        ("perturbation", "Anti-aliasing improves stability under perturbations (lower mFR)", "mfr",
         "flip probability per sequence"),
    ):
        aug = augs[-1]
        if any(part not in r["eval"] for group in cmp.runs.values() for r in group):
            why = missing.get(part, {}).get("reason", "not evaluated")
            out.append(_claim(part, claim, NOT_MEASURED, f"{claim}: NOT MEASURED ({why}).", []))
            continue
        comps = []
        for f in filters:
            d = cmp.compare((None, aug), (f, aug), M.robustness(part), binary=False)
            comps.append({"model": f, "reference": "baseline", "augment": aug, **d,
                          "value": cmp.mean((f, aug), M.robustness(part)),
                          "reference_value": cmp.mean((None, aug), M.robustness(part))})
        dirs = [c["direction"] for c in comps]
        verdict = _majority(dirs, "down")
        ex = comps[-1]
        sentence = (
            f"{claim}: {verdict.upper()}. {_aug_label(aug).capitalize()}: unnormalised {key.upper()} (mean "
            f"{unit}) baseline {_value_text(cmp, (None, aug), M.robustness(part))} vs {filters[-1]} "
            f"{_value_text(cmp, (filters[-1], aug), M.robustness(part))}. "
            f"{dirs.count('down')} of {len(dirs)} filters significantly lower, {dirs.count('up')} higher; "
            f"{filters[-1]} {_diff_text(ex)}.{_power_text(part, ex)}"
        )
        out.append(_claim(part, claim, verdict, sentence, comps, ex))
    return out


def judge(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Verdicts on every claim from a reproduction's ``results.json`` contents.

    Args:
        results: Needs ``runs`` (name -> ``{"filter_size", "augment", "eval"}``, optionally
            ``replicate``) with per-image outcomes, as written by :func:`antialias.reproduce.reproduce`;
            ``missing`` optional.

    Returns:
        One dict per claim: ``id``, ``claim``, ``verdict`` (:data:`CONFIRMED`, :data:`NOT_CONFIRMED`,
        :data:`INCONCLUSIVE` or :data:`NOT_MEASURED`), ``sentence``, the ``comparisons`` behind it,
        ``detectable`` (of the headline comparison) and the paper's effect.
    """
    runs = runs_by(results)
    cmp = Comparer(runs)
    augs = sorted({aug for _, aug in runs})
    filters = list(results["config"]["filters"])
    claims = _consistency_claims(cmp, filters, augs)
    claims[1:1] = _accuracy_claims(cmp, filters, augs)
    claims.append(_augmentation_claim(cmp, filters, augs))
    claims.append(_equivariance_claim(runs, filters, augs))
    claims.extend(_robustness_claims(results, cmp, filters, augs))
    return claims
