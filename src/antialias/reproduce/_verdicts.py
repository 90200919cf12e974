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

The published numbers (:data:`PAPER_TABLES`) are ImageNet's; they are shown for orientation only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from antialias.eval._stats import paired_mean_difference, paired_proportion_difference

__all__ = ["CONFIRMED", "INCONCLUSIVE", "NOT_CONFIRMED", "NOT_MEASURED", "PAPER_TABLES", "RULE", "judge"]

CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE, NOT_MEASURED = "confirmed", "not confirmed", "inconclusive", "not measured"

RULE = (
    "Each comparison pits a model against its reference on the same test images with the same random shifts; "
    "its paired 95% interval (Newcombe's hybrid score interval for per-image 0/1 outcomes; Student-t for "
    "per-image error rates, per-sequence flip rates, per-layer feature distances and per-image changes with "
    "augmentation) "
    "makes it 'up' (interval above 0), 'down' (below 0) or 'flat'. A claim is confirmed when more than half of "
    "its comparisons go the claimed way and none the other way, not confirmed when more than half go the "
    "other way, inconclusive otherwise. 'Accuracy does not drop' is confirmed when no comparison is "
    "significantly down. Seeds are fixed in the configuration and never tuned."
)

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


def _interval(p: Mapping[str, float]) -> str:
    return f"{_pct(p['value'])} [{100 * p['low']:.1f}, {100 * p['high']:.1f}]"


def _direction(d: Mapping[str, float]) -> str:
    if d["low"] > 0:
        return "up"
    if d["high"] < 0:
        return "down"
    return "flat"


def _diff_text(d: Mapping[str, float]) -> str:
    return f"{_pts(d['diff'])} points (paired 95% CI {_pts(d['low'])} to {_pts(d['high'])})"


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


#: Runs keyed by ``(filter_size, augment)``; ``None`` is the baseline.
Runs = Mapping[tuple[str | None, bool], Mapping[str, Any]]


def _runs_by(results: Mapping[str, Any]) -> dict[tuple[str | None, bool], Mapping[str, Any]]:
    return {(r["filter_size"], bool(r["augment"])): r for r in results["runs"].values()}


def _per_image(runs: Runs, key: tuple[str | None, bool], proto: str) -> str:
    """Per-image consistency outcomes (a 0/1 string) of one run under one protocol."""
    return str(runs[key]["eval"]["consistency"][proto]["per_image"])


def _gain(no_aug: str, aug: str) -> list[int]:
    """Per image: consistency with augmentation minus without (-1, 0 or 1)."""
    return [int(y) - int(x) for x, y in zip(no_aug, aug, strict=True)]


def _diff_in_diff(b_no: str, b_aug: str, f_no: str, f_aug: str) -> dict[str, Any]:
    """Mean over images of (baseline's gain from augmentation) - (filter's gain), paired Student-t interval."""
    return paired_mean_difference(_gain(f_no, f_aug), _gain(b_no, b_aug))


def _claim(cid: str, claim: str, verdict: str, sentence: str, comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": cid, "claim": claim, "verdict": verdict, "sentence": sentence, "comparisons": comparisons}


def _count_text(dirs: Sequence[str], what: str) -> str:
    return (f"{what} in {dirs.count('up')} of {len(dirs)} comparisons significantly up, "
            f"{dirs.count('down')} significantly down, {dirs.count('flat')} within noise")


# ----------------------------------------------------------------------------------- claims


def _consistency_claims(runs: Runs, filters: Sequence[str], augs: Sequence[bool]) -> list[dict[str, Any]]:
    comps = []
    for aug in augs:
        base = runs[(None, aug)]
        for f in filters:
            r = runs[(f, aug)]
            for proto in ("crop", "circular"):
                d = paired_proportion_difference(
                    _per_image(runs, (None, aug), proto), _per_image(runs, (f, aug), proto)
                )
                comps.append({"model": f, "reference": "baseline", "augment": aug, "protocol": proto, **d,
                              "direction": _direction(d),
                              "value": r["eval"]["consistency"][proto]["consistency"],
                              "reference_value": base["eval"]["consistency"][proto]["consistency"]})
    dirs = [c["direction"] for c in comps]
    verdict = _majority(dirs, "up")
    ex = max(comps, key=lambda c: (c["model"] == filters[-1], not c["augment"], c["protocol"] == "crop"))
    sentence = (f"Anti-aliasing increases shift consistency: {verdict.upper()}. "
                f"{_count_text(dirs, 'Consistency was')} (each filter against the baseline, "
                f"{len(augs)} augmentation setting(s), crop and circular protocols). For example {ex['model']} "
                f"{_aug_label(ex['augment'])}, {ex['protocol']} protocol: {_interval(ex['value'])} vs baseline "
                f"{_interval(ex['reference_value'])}, {_diff_text(ex)}.")
    out = [_claim("consistency", "Anti-aliasing increases shift consistency", verdict, sentence, comps)]

    # stronger filters -> more consistent: the strongest vs the weakest filter
    weak, strong = filters[0], filters[-1]
    if len(filters) < 2:
        claim2 = "Stronger filters give more consistency"
        return [*out, _claim("stronger_filters", claim2, NOT_MEASURED,
                             f"{claim2}: NOT MEASURED (only one filter was trained).", [])]
    comps2 = []
    for aug in augs:
        for proto in ("crop", "circular"):
            d = paired_proportion_difference(
                _per_image(runs, (weak, aug), proto), _per_image(runs, (strong, aug), proto)
            )
            comps2.append({"model": strong, "reference": weak, "augment": aug, "protocol": proto, **d,
                           "direction": _direction(d)})
    dirs2 = [c["direction"] for c in comps2]
    verdict2 = _majority(dirs2, "up")
    orders = []
    for aug in augs:
        vals = [(runs[(f, aug)]["eval"]["consistency"]["crop"]["consistency"]["value"], f) for f in (None, *filters)]
        ranked = sorted(vals, key=lambda t: t[0])
        orders.append(f"{_aug_label(aug)}: " + ", ".join(f"{f or 'baseline'} ({_pct(v)})" for v, f in ranked))
    sentence2 = (
        f"Stronger filters give more consistency: {verdict2.upper()}. {strong} against {weak}: "
        f"{_count_text(dirs2, 'consistency')}; e.g. {_diff_text(comps2[0])} "
        f"({_aug_label(comps2[0]['augment'])}, {comps2[0]['protocol']}). Crop-protocol consistency, lowest first, "
        f"{'; '.join(orders)}."
    )
    out.append(_claim("stronger_filters", "Stronger filters give more consistency", verdict2, sentence2, comps2))
    return out


def _accuracy_claims(runs: Runs, filters: Sequence[str], augs: Sequence[bool]) -> list[dict[str, Any]]:
    comps = []
    for aug in augs:
        base = runs[(None, aug)]
        for f in filters:
            r = runs[(f, aug)]
            d = paired_proportion_difference(base["eval"]["clean"]["per_image"], r["eval"]["clean"]["per_image"])
            comps.append(
                {
                    "model": f,
                    "reference": "baseline",
                    "augment": aug,
                    **d,
                    "direction": _direction(d),
                    "value": r["eval"]["clean"]["accuracy"],
                    "reference_value": base["eval"]["clean"]["accuracy"],
                }
            )
    dirs = [c["direction"] for c in comps]
    n = len(dirs)
    keep = CONFIRMED if dirs.count("down") == 0 else NOT_CONFIRMED if dirs.count("down") > n / 2 else INCONCLUSIVE
    improve = _majority(dirs, "up")
    worst = min(comps, key=lambda c: c["diff"])
    best = max(comps, key=lambda c: c["diff"])
    s1 = (f"Anti-aliasing does not reduce accuracy: {keep.upper()}. {_count_text(dirs, 'Accuracy was')}; the "
          f"largest drop is {worst['model']} {_aug_label(worst['augment'])}: {_interval(worst['value'])} vs baseline "
          f"{_interval(worst['reference_value'])}, {_diff_text(worst)}.")
    s2 = (f"Anti-aliasing improves accuracy: {improve.upper()}. {_count_text(dirs, 'Accuracy was')}; the largest "
          f"gain is {best['model']} {_aug_label(best['augment'])}: {_interval(best['value'])} vs baseline "
          f"{_interval(best['reference_value'])}, {_diff_text(best)}.")
    return [_claim("accuracy_kept", "Accuracy does not drop", keep, s1, comps),
            _claim("accuracy_improves", "Accuracy improves", improve, s2, comps)]


def _augmentation_claim(runs: Runs, filters: Sequence[str], augs: Sequence[bool]) -> dict[str, Any]:
    cid, claim = "augmentation", "Anti-aliasing reduces the need for shift augmentation"
    if set(augs) != {False, True}:
        return _claim(
            cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (needs runs with and without augmentation).", []
        )
    comps = []
    for f in filters:
        for proto in ("crop", "circular"):
            d = _diff_in_diff(
                *(_per_image(runs, key, proto) for key in ((None, False), (None, True), (f, False), (f, True)))
            )
            comps.append({"model": f, "reference": "baseline", "protocol": proto, **d, "direction": _direction(d)})
    dirs = [c["direction"] for c in comps]
    verdict = _majority(dirs, "up")
    strong = filters[-1]

    def c(key: tuple[str | None, bool]) -> Mapping[str, float]:
        return runs[key]["eval"]["consistency"]["crop"]["consistency"]

    ex = next(x for x in comps if x["model"] == strong and x["protocol"] == "crop")
    sentence = (f"{claim}: {verdict.upper()}. The gain in consistency from augmentation was larger for the baseline "
                f"than for the anti-aliased model in {dirs.count('up')} of {len(dirs)} comparisons (significantly; "
                f"{dirs.count('down')} significantly smaller). Crop protocol: baseline {_interval(c((None, False)))} "
                f"without and {_interval(c((None, True)))} with augmentation; {strong} {_interval(c((strong, False)))} "
                f"without and {_interval(c((strong, True)))} with; difference of the gains {_diff_text(ex)}.")
    return _claim(cid, claim, verdict, sentence, comps)


def _equivariance_claim(runs: Runs, filters: Sequence[str], augs: Sequence[bool]) -> dict[str, Any]:
    cid, claim = "equivariance", "Internal feature maps are more shift-equivariant"
    strong = filters[-1]
    aug = augs[-1]
    a, b = runs[(None, aug)]["eval"].get("equivariance"), runs[(strong, aug)]["eval"].get("equivariance")
    if a is None or b is None:
        return _claim(cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (no feature-distance maps).", [])
    la, lb = list(a["means"].values()), list(b["means"].values())
    if len(la) != len(lb) or len(la) < 2:
        return _claim(cid, claim, NOT_MEASURED, f"{claim}: NOT MEASURED (the two models' layers do not pair up).", [])
    # Unit = layer: the claim is about the network's layers; each layer's distance is averaged over the
    # images and the shift grid, and the two models' layers pair up by position.
    d = paired_mean_difference(la, lb)
    direction = _direction(d)  # claimed: "down" (smaller distance)
    verdict = {"down": CONFIRMED, "up": NOT_CONFIRMED}.get(direction, INCONCLUSIVE)
    layers_lower = sum(1 for x, y in zip(la, lb, strict=True) if y < x)
    sentence = (
        f"{claim}: {verdict.upper()}. Mean {a['distance']} distance between Shift(F(x)) and F(Shift(x)), "
        f"per layer over {a['num_images']} image(s) and the circular shifts (grid step {a.get('step', 1)}), "
        f"{_aug_label(aug)}: {strong} {sum(lb) / len(lb):.4f} vs baseline {sum(la) / len(la):.4f} on average "
        f"over {len(la)} layers, paired difference {d['diff']:+.4f} (95% CI {d['low']:+.4f} to {d['high']:+.4f}, "
        f"layers as units); lower for {strong} in {layers_lower} of {len(la)} layers."
    )
    return _claim(cid, claim, verdict, sentence,
                  [{"model": strong, "reference": "baseline", "augment": aug, **d, "direction": direction}])


def _robustness_claims(results: Mapping[str, Any], runs: Runs, filters: Sequence[str],
                       augs: Sequence[bool]) -> list[dict[str, Any]]:
    out = []
    missing = {m["part"]: m for m in results.get("missing", [])}
    for part, claim, key, unit in (
        ("corruption", "Anti-aliasing improves robustness to corruptions (lower mCE)", "mce", "error rate per image"),
        ("perturbation", "Anti-aliasing improves stability under perturbations (lower mFR)", "mfr",
         "flip probability per sequence"),
    ):
        aug = augs[-1]
        base = runs[(None, aug)]["eval"].get(part)
        if base is None:
            why = missing.get(part, {}).get("reason", "not evaluated")
            out.append(_claim(part, claim, NOT_MEASURED, f"{claim}: NOT MEASURED ({why}).", []))
            continue
        comps = []
        for f in filters:
            r = runs[(f, aug)]["eval"][part]
            d = paired_mean_difference(base["per_unit"], r["per_unit"])
            comps.append({"model": f, "reference": "baseline", "augment": aug, **d, "direction": _direction(d),
                          "value": r[key], "normalised": r[f"{key}_normalised"]})
        dirs = [c["direction"] for c in comps]
        verdict = _majority(dirs, "down")
        s = runs[(filters[-1], aug)]["eval"][part]
        ex = comps[-1]

        def est(e: Mapping[str, float] | None) -> str:
            return "n/a" if e is None else f"{e['value']:.1f} [{e['low']:.1f}, {e['high']:.1f}]"

        sentence = (
            f"{claim}: {verdict.upper()}. {_aug_label(aug).capitalize()}: "
            f"unnormalised {key.replace('m', 'm', 1).upper()} "
            f"baseline {est(base[key])} vs {filters[-1]} {est(s[key])} (percent); normalised by the baseline "
            f"(= 100): {filters[-1]} {est(s[key + '_normalised'])}. Paired over items ({unit}): "
            f"{dirs.count('down')} of {len(dirs)} filters significantly lower, {dirs.count('up')} higher; "
            f"{filters[-1]} {100 * ex['diff']:+.2f} points (95% CI {100 * ex['low']:+.2f} to {100 * ex['high']:+.2f})."
        )
        out.append(_claim(part, claim, verdict, sentence, comps))
    return out


def judge(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Verdicts on every claim from a reproduction's ``results.json`` contents.

    Args:
        results: Needs ``runs`` (name -> ``{"filter_size", "augment", "eval"}``) with per-image
            outcomes, as written by :func:`antialias.reproduce.reproduce`; ``missing`` optional.

    Returns:
        One dict per claim: ``id``, ``claim``, ``verdict`` (:data:`CONFIRMED`, :data:`NOT_CONFIRMED`,
        :data:`INCONCLUSIVE` or :data:`NOT_MEASURED`), ``sentence`` and the ``comparisons`` behind it.
    """
    runs = _runs_by(results)
    augs = sorted({aug for _, aug in runs})
    filters = list(results["config"]["filters"])
    claims = _consistency_claims(runs, filters, augs)
    claims[1:1] = _accuracy_claims(runs, filters, augs)
    claims.append(_augmentation_claim(runs, filters, augs))
    claims.append(_equivariance_claim(runs, filters, augs))
    claims.extend(_robustness_claims(results, runs, filters, augs))
    return claims
