"""A reproduction's results as one self-contained HTML page: images inline (base64), no scripts, no links out.

:func:`render_html` is a pure function (results and PNG bytes in, a string out); :func:`write_html`
reads the PNGs a results dict names and writes ``report.html`` atomically. The page opens offline
in any browser.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from antialias._io import atomic_write_text

__all__ = ["render_html", "write_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.3em .55em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.badge{display:inline-block;min-width:8.5em;text-align:center;border-radius:4px;padding:.1em .4em;font-weight:600;
font-size:.85em;margin-right:.5em}
.confirmed{background:#d7f2dc;color:#0b5d1e}.not-confirmed{background:#fbdada;color:#8a1111}
.inconclusive{background:#fff1c9;color:#6b5200}.not-measured{background:#e6e6e6;color:#444}
ul.claims{list-style:none;padding-left:0}ul.claims li{margin:.6em 0}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
.missing{background:#fff6e0;border-left:4px solid #e0a800;padding:.5em 1em}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}
.paper{color:#666}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(p: Mapping[str, float] | None) -> str:
    if not p:
        return "n/a"
    return f"{100 * p['value']:.1f} <span class=paper>[{100 * p['low']:.1f}, {100 * p['high']:.1f}]</span>"


def _num(e: Mapping[str, float] | None) -> str:
    if not e:
        return "n/a"
    return f"{e['value']:.1f} <span class=paper>[{e['low']:.1f}, {e['high']:.1f}]</span>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _runs_table(results: Mapping[str, Any]) -> str:
    rows = []
    for r in results["runs"].values():
        ev = r.get("eval", {})
        st = ev.get("stability", {})
        tr = r.get("train", {})
        rows.append(
            "<tr>"
            f"<td class=l>{_e(r['filter_size'] or 'baseline')}</td><td class=l>{'yes' if r['augment'] else 'no'}</td>"
            f"<td>{_e(r.get('seed', ''))}</td>"
            f"<td>{_pct(ev.get('clean', {}).get('accuracy'))}</td>"
            f"<td>{_pct(ev.get('consistency', {}).get('crop', {}).get('consistency'))}</td>"
            f"<td>{_pct(ev.get('consistency', {}).get('circular', {}).get('consistency'))}</td>"
            f"<td>{st.get('mean_abs_step_change', float('nan')):.4f}</td>"
            f"<td>{st.get('prediction_changes', float('nan')):.2f}</td>"
            f"<td>{tr.get('train_acc', float('nan')) * 100:.1f}</td>"
            f"<td>{r.get('train_seconds', 0):.0f} ({_e(r.get('status', ''))})</td>"
            "</tr>"
        )
    head = ("<tr><th class=l>filter</th><th class=l>shift aug.</th><th>seed</th><th>accuracy %</th>"
            "<th>consistency, crop %</th>"
            "<th>consistency, circular %</th><th>|&Delta;p| per 1-px step</th><th>top-1 changes along diagonal</th>"
            "<th>train acc. %</th><th>train s</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _paper_table(results: Mapping[str, Any]) -> str:
    paper = results.get("paper", {}).get("accuracy_consistency")
    if not paper:
        return ""
    runs = list(results["runs"].values())
    augs = sorted({r["augment"] for r in runs})
    cols = paper["columns"]
    head = "<tr><th class=l>model (data)</th>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
    body = []
    for aug in augs:
        by = {r["filter_size"] or "baseline": r for r in runs if r["augment"] == aug}
        cells = []
        for c in cols:
            r = by.get(c)
            if r is None:
                cells.append("<td>&ndash;</td>")
                continue
            ev = r["eval"]
            cells.append(f"<td>{100 * ev['clean']['accuracy']['value']:.1f} / "
                         f"{100 * ev['consistency']['crop']['consistency']['value']:.1f}</td>")
        body.append(f"<tr><td class=l><b>ours</b>, {'with' if aug else 'without'} shift aug. "
                    f"({_e(results.get('data_description', ''))})</td>{''.join(cells)}</tr>")
    for model, vals in paper["rows"].items():
        body.append(f"<tr class=paper><td class=l>paper: {_e(model)} (ImageNet)</td>"
                    + "".join(f"<td>{a:.2f} / {c:.2f}</td>" for a, c in vals) + "</tr>")
    return (f"<p>Accuracy / consistency (%), ours (crop protocol) beside the paper's {_e(paper['caption'])}. "
            "Different data, models and scale: for orientation only.</p><table>" + head + "".join(body) + "</table>")


def _robustness_table(results: Mapping[str, Any]) -> str:
    """The paper's Table 2 layout: a row per model, mCE / mFR normalised and unnormalised, ours beside the paper's."""
    tables = results.get("table2") or []
    labels = {"mce_normalised": "mCE, normalised", "mfr_normalised": "mFR, normalised", "mce": "mCE", "mfr": "mFR"}
    out = []
    for table in tables:
        cols = table["columns"]
        head = ("<tr><th class=l rowspan=2>model</th>" + "".join(f"<th colspan=2>{_e(labels[c])}</th>" for c in cols)
                + "</tr><tr>" + "<th>ours</th><th class=paper>paper</th>" * len(cols) + "</tr>")
        body = []
        for row in table["rows"]:
            paper = row.get("paper") or {}
            cells = "".join(
                f"<td>{'not measured' if row.get(c) is None else f'{row[c]:.1f}'}</td>"
                f"<td class=paper>{f'{paper[c]:.1f}' if c in paper else '&ndash;'}</td>"
                for c in cols)
            trainings = f" ({row['trainings']} trainings)" if row.get("trainings", 1) > 1 else ""
            body.append(f"<tr><td class=l>{_e(row['model'])}{trainings}</td>{cells}</tr>")
        out.append(f"<p>Table 2's layout, models trained {'with' if table['augment'] else 'without'} shift "
                   "augmentation (percent, lower is better). Ours: Fashion-MNIST-scale models, normalised by our "
                   "baseline (= 100), averaged over trainings; the paper's: ResNet50 on ImageNet-C / ImageNet-P, "
                   "normalised by AlexNet. The verdicts above give the intervals.</p><table>" + head + "".join(body)
                   + "</table>")
    return "".join(out)


def _power_table(results: Mapping[str, Any]) -> str:
    """Per claim: the verdict, the headline comparison with its interval, what it could detect, the paper's effect."""
    rows = []
    for c in results.get("claims", []):
        if "detectable" not in c:
            continue  # results of a version before power was stated
        comps = c.get("comparisons") or []
        d = comps[c["headline"]] if c.get("headline") is not None else None
        if d is None:
            rows.append(f"<tr><td class=l>{_e(c['claim'])}</td><td class=l>{_e(c['verdict'])}</td>"
                        f"<td>&ndash;</td><td>&ndash;</td><td class=l>{_e(c.get('paper_effect_text', ''))}</td></tr>")
            continue
        scale = 1.0 if c["id"] == "equivariance" else 100.0
        label = f"{d.get('model', '')} vs {d.get('reference', '')}"
        if d.get("trainings"):
            label += f", {d['trainings'][1]} vs {d['trainings'][0]} training(s)"
        effect = (f"{scale * d['diff']:+.2f} [{scale * d['low']:+.2f}, {scale * d['high']:+.2f}]"
                  f" <span class=paper>{_e(label)}</span>")
        rows.append(f"<tr><td class=l>{_e(c['claim'])}</td><td class=l>{_e(c['verdict'])}</td><td>{effect}</td>"
                    f"<td>{scale * d['detectable']:.2f}</td><td class=l>{_e(c.get('paper_effect_text', ''))}</td></tr>")
    if not rows:
        return ""
    head = ("<tr><th class=l>claim</th><th class=l>verdict</th><th>headline effect, 95% CI (points; distance for "
            "the feature maps)</th><th>detectable (80% power, 5% level)</th><th class=l>the paper</th></tr>")
    return ("<p>What this run could detect: for each claim its headline comparison, the smallest true difference "
            "that comparison finds 4 times in 5, and the paper's effect. A claim left inconclusive with a detectable "
            "effect larger than the paper's says little either way.</p><table>" + head + "".join(rows) + "</table>")


def _compute_text(results: Mapping[str, Any]) -> str:
    """How long the measurements took and where, including work done by earlier, resumed invocations."""
    compute, timing, machine = results.get("compute_seconds", {}), results.get("timing", {}), results.get("machine", {})
    text = []
    if compute:
        total = compute.get("training", 0.0) + compute.get("evaluation", 0.0)
        text.append(f"Compute: {total / 60:.0f} min ({compute.get('training', 0.0) / 60:.0f} min training, summed over "
                    f"every epoch of every run; {compute.get('evaluation', 0.0) / 60:.0f} min evaluation, summed over "
                    "every measured part, including parts measured by an earlier invocation and reused).")
    if "total" in timing:
        text.append(f"This invocation took {timing['total']:.0f} s.")
    if machine:
        load = machine.get("load_average_start") or [float("nan")]
        text.append(f"Machine: {_e(machine.get('cpu_model', '?'))}, {machine.get('cpu_count')} core(s), "
                    f"{machine.get('torch_threads')} PyTorch thread(s), {_e(machine.get('platform', ''))}; "
                    f"load average at start {load[0]:.1f}.")
    return " ".join(text)


def render_html(results: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """The report page for ``results`` (as in ``results.json``) with ``images`` (figure key -> PNG bytes).

    Args:
        results: Needs ``runs``, ``claims``, ``config``; uses ``figures``, ``paper``, ``missing``,
            ``timing``, ``machine`` and ``decision_rule`` when present.
        images: PNG bytes per key of ``results["figures"]``; figures without bytes are left out.

    Returns:
        A complete HTML document (UTF-8 text) with no external references.

    Examples:
        >>> page = render_html({"runs": {}, "claims": [], "config": {"filters": []}}, {})
        >>> page.startswith("<!DOCTYPE html>") and "<script" not in page
        True
    """
    cfg = results.get("config", {})
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>antialias reproduce: report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Making Convolutional Networks Shift-Invariant Again: a reproduction</h1>"]
    parts.append(
        f"<p class=meta>Zhang, ICML 2019, checked with <code>antialias reproduce</code> "
        f"(antialias {_e(results.get('antialias_version', '?'))}, torch {_e(results.get('torch_version', '?'))}). "
        f"Model {_e(cfg.get('model', '?'))} at width {_e(cfg.get('width', '?'))}, preset {_e(cfg.get('preset', '?'))}, "
        f"{_e(cfg.get('epochs', '?'))} epoch(s) on {_e(cfg.get('train_subset') or 'all')} training images of "
        f"{_e(cfg.get('data', '?'))}, seed {_e(cfg.get('seed', '?'))}; "
        f"evaluated on {_e(results.get('data_description', '?'))}. "
        + (f"{_e(cfg.get('seeds'))} trainings (seeds {_e(cfg.get('seed'))}, {_e(cfg.get('seed', 0) + 1)}, ...) of "
           f"{_e(', '.join(cfg.get('seeded', [])))}, one of the others. " if cfg.get("seeds", 1) > 1 else "")
        + _compute_text(results)
        + f" Created {_e(results.get('created_utc', ''))}.</p>")

    parts.append("<h2>Verdicts</h2><ul class=claims>")
    for c in results.get("claims", []):
        cls = c["verdict"].replace(" ", "-")
        parts.append(f'<li><span class="badge {cls}">{_e(c["verdict"])}</span>{_e(c["sentence"])}</li>')
    parts.append("</ul>")
    if results.get("decision_rule"):
        parts.append(f"<p class=meta><b>Decision rule.</b> {_e(results['decision_rule'])}</p>")
    parts.append(_power_table(results))
    for m in results.get("missing", []):
        parts.append(
            f"<p class=missing><b>Missing: {_e(m.get('table', m.get('part')))}.</b> {_e(m.get('reason', ''))}</p>"
        )

    figures = results.get("figures", {})

    def figure(key: str) -> None:
        if key in figures and key in images:
            f = figures[key]
            parts.append(f"<figure>{_img(images[key], f.get('caption', key))}<figcaption>{_e(f.get('caption', ''))}"
                         "</figcaption></figure>")

    parts.append("<h2>Training</h2>")
    figure("learning_curves")
    parts.append("<h2>Accuracy and consistency</h2>")
    figure("accuracy_vs_consistency")
    figure("accuracy_vs_consistency_aug")
    parts.append(_runs_table(results))
    parts.append(_paper_table(results))
    figure("accuracy_vs_consistency_circular")
    parts.append("<h2>Stability along diagonal shifts</h2>")
    figure("stability")
    parts.append("<h2>Internal shift-equivariance</h2>")
    figure("heatmaps")
    parts.append("<h2>Robustness</h2>")
    parts.append(_robustness_table(results) if results.get("runs") else "")
    parts.append("<h2>How anti-aliasing works</h2>")
    for key in ("toy_example", "frequency_response", "zone_plate", "photo"):
        figure(key)
    ev = results.get("eval_settings") or cfg.get("eval", {})
    parts.append("<h2>Deviations from the paper</h2><ul>"
                 "<li>Small scale: a narrow VGG13-bn, a subset of the training set and few epochs, "
                 "to fit a CPU budget.</li>"
                 "<li>Fashion-MNIST (28x28) is padded with zeros to 32x32 unless another data set is given; "
                 "the paper used CIFAR-10 for these experiments.</li>"
                 "<li>Consistency protocols for small images are our choice "
                 "(the paper's CIFAR protocol was not published): "
                 "crop = two crops of the zero-padded image at random offsets "
                 f"(up to {_e(ev.get('crop_max_shift', '?'))} px each way); circular = two random torch.roll shifts "
                 f"(up to {_e(ev.get('circular_max_shift', '?'))} px). "
                 "Offsets are drawn per image from a fixed seed, the same for every model.</li>"
                 "<li>Feature distance: cosine distance averaged over positions and images "
                 "(not confirmed in the paper).</li>"
                 "<li>Robustness is normalised by our baseline, not AlexNet; "
                 "corruptions are generated on the fly.</li></ul>")
    parts.append("<h2>Configuration</h2><details><summary>results.json header</summary><pre>"
                 + _e(json.dumps({k: results[k] for k in ("config", "machine", "timing") if k in results}, indent=1))
                 + "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(results: Mapping[str, Any], out_dir: str | os.PathLike, name: str = "report.html") -> Path:
    """Writes ``out_dir/report.html`` with the PNGs named in ``results["figures"]`` (paths relative to ``out_dir``)."""
    out = Path(out_dir)
    images = {}
    for key, f in results.get("figures", {}).items():
        path = out / f["path"]
        if path.is_file():
            images[key] = path.read_bytes()
    text = render_html(results, images)
    return atomic_write_text(out / name, text)
