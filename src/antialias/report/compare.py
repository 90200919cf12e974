"""The comparison of downsampling methods (``antialias compare``) as a table, a figure and one HTML page.

Pure functions of the results dict that :func:`antialias.reproduce.compare.compare` writes to
``results.json``: :func:`comparison_markdown` (the table and the verdicts, as in the README),
:func:`comparison_figure` (accuracy against consistency, worst-case consistency per shift family,
cost relative to the baseline) and :func:`write_comparison_report` (``comparison.md``,
``comparison.png`` and a self-contained ``report.html``).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from antialias._io import atomic_write_text
from antialias.report.figures import save_png

__all__ = ["COLUMNS", "comparison_figure", "comparison_html", "comparison_markdown", "comparison_rows",
           "write_comparison_report"]

#: Table columns: (header, what the cell shows).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("method", "downsampler"),
    ("accuracy", "top-1 accuracy on the unshifted test images"),
    ("consistency (circular)", "two random circular shifts agree"),
    ("consistency (crop)", "two random crops of the zero-padded image agree"),
    ("worst case (all)", "prediction unchanged under every shift of the circular, crop and sub-pixel grids"),
    ("every circular shift", "prediction unchanged under all H x W circular shifts (a subset of images)"),
    ("sub-pixel worst case", "unchanged under every 1/4- and 1/2-pixel Fourier shift of the grid"),
    ("MAC (all)", "mean absolute change of the top-class probability over the grids"),
    ("k-way", "k random circular shifts all agree"),
    ("ms/step", "median time of one training step (forward, backward, SGD)"),
    ("activations", "memory autograd saves for the backward pass of one step"),
)


def _pct(p: Mapping[str, Any] | None) -> str:
    if not p:
        return "n/a"
    return f"{100 * p['value']:.1f} [{100 * p['low']:.1f}, {100 * p['high']:.1f}]"


def _mac(e: Mapping[str, Any] | None) -> str:
    if not e:
        return "n/a"
    return f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"


def _consistency(ev: Mapping[str, Any], protocol: str) -> Mapping[str, Any] | None:
    """The random-shift consistency of ``protocol`` in a method's ``eval`` record."""
    part = ev.get("consistency", {}).get(protocol)
    return part.get("consistency") if part else None


def comparison_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row of cells (strings) per method, in the order of :data:`COLUMNS`."""
    rows = []
    for method, record in results["methods"].items():
        ev, cost = record["eval"], record.get("cost", {})
        ratio = ""
        base = results["methods"].get("baseline", {}).get("cost", {})
        if base.get("train_step_seconds") and method != "baseline" and cost.get("train_step_seconds"):
            ratio = f" ({cost['train_step_seconds'] / base['train_step_seconds']:.2f}x)"
        mem_ratio = ""
        if base.get("activation_bytes") and method != "baseline" and cost.get("activation_bytes"):
            mem_ratio = f" ({cost['activation_bytes'] / base['activation_bytes']:.2f}x)"
        rows.append([
            method,
            _pct(ev.get("accuracy")),
            _pct(_consistency(ev, "circular")),
            _pct(_consistency(ev, "crop")),
            _pct(ev["worst_case"].get("all")),
            _pct(ev.get("every_circular_shift")),
            _pct(ev["worst_case"].get("subpixel")),
            _mac(ev["mac"].get("all")),
            _pct(ev.get("k_way")),
            f"{1000 * cost['train_step_seconds']:.1f}{ratio}" if cost.get("train_step_seconds") else "n/a",
            f"{cost['activation_bytes'] / 2**20:.1f} MB{mem_ratio}" if cost.get("activation_bytes") else "n/a",
        ])
    return rows


def comparison_markdown(results: Mapping[str, Any]) -> str:
    """The table (percentages with 95% intervals) and one line per verdict, in Markdown."""
    header = [c for c, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(results)]
    lines.append("")
    for claim in results.get("claims", []):
        lines.append(f"- {claim['sentence']}")  # the sentence states its verdict
    return "\n".join(lines) + "\n"


def _figure(ncols: int, figsize: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _err(p: Mapping[str, Any]) -> tuple[float, float]:
    return 100 * (p["value"] - p["low"]), 100 * (p["high"] - p["value"])


def comparison_figure(results: Mapping[str, Any]) -> Figure:
    """Three panels: accuracy vs circular consistency, worst-case consistency per family, cost vs the baseline."""
    methods: Sequence[str] = list(results["methods"])
    fig, (ax_acc, ax_worst, ax_cost) = _figure(3, (16, 4.8))
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for m in methods:
        ev = results["methods"][m]["eval"]
        acc, con = ev["accuracy"], _consistency(ev, "circular")
        if con is None:
            continue
        ax_acc.errorbar(100 * con["value"], 100 * acc["value"], xerr=np.array(_err(con))[:, None],
                        yerr=np.array(_err(acc))[:, None], fmt="o", color=colors[m], capsize=3, label=m)
        worst = ev["worst_case"].get("all")
        if worst:
            ax_acc.plot(100 * worst["value"], 100 * acc["value"], marker="s", mfc="none", color=colors[m])
    ax_acc.set_xlabel("consistency, random circular shifts (%); squares: worst case over all grids")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("Accuracy against consistency (95% CI)")
    ax_acc.legend(fontsize=8)
    families = [f for f in ("circular", "crop", "subpixel", "all")
                if all(f in results["methods"][m]["eval"]["worst_case"] for m in methods)]
    extra = all("every_circular_shift" in results["methods"][m]["eval"] for m in methods)
    groups = [*families, *(["every circular"] if extra else [])]
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        ev = results["methods"][m]["eval"]
        ps = [ev["worst_case"][f] for f in families] + ([ev["every_circular_shift"]] if extra else [])
        x = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width
        ax_worst.bar(x, [100 * p["value"] for p in ps], width, yerr=np.array([_err(p) for p in ps]).T, capsize=2,
                     color=colors[m], label=m)
    ax_worst.set_xticks(np.arange(len(groups)), groups)
    ax_worst.set_ylabel("images unchanged under every shift (%)")
    ax_worst.set_title("Worst-case consistency per shift grid (95% CI)")
    base = results["methods"].get("baseline", {}).get("cost") or results["methods"][methods[0]].get("cost") or {}
    metrics = [("train_step_seconds", "time / step"), ("inference_seconds", "inference"),
               ("activation_bytes", "activation memory")]
    for i, m in enumerate(methods):
        cost = results["methods"][m].get("cost") or {}
        ratios = [cost.get(k, np.nan) / base[k] if base.get(k) else np.nan for k, _ in metrics]
        x = np.arange(len(metrics)) + (i - (len(methods) - 1) / 2) * width
        ax_cost.bar(x, ratios, width, color=colors[m], label=m)
    ax_cost.axhline(1.0, color="k", lw=0.8)
    ax_cost.set_xticks(np.arange(len(metrics)), [label for _, label in metrics])
    ax_cost.set_ylabel(f"relative to {'baseline' if 'baseline' in methods else methods[0]} "
                       "(time: medians; memory: saved activations)", fontsize=9)
    ax_cost.set_title("Cost per training step and inference")
    return fig


def comparison_html(results: Mapping[str, Any], png: bytes | None) -> str:
    """A self-contained page: setting, table, figure (inline), verdicts with the rule, timing."""
    e = html.escape
    head = "".join(f"<th title='{e(doc)}'>{e(name)}</th>" for name, doc in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in comparison_rows(results))
    claims = "".join(f"<li><b>{e(c['verdict'])}</b>: {e(c['sentence'])}</li>" for c in results.get("claims", []))
    figure = ("<img alt='comparison figure' src='data:image/png;base64,"
              f"{base64.b64encode(png).decode('ascii')}'>") if png else ""
    cfg = results.get("config", {})
    timing = results.get("timing", {})
    notes = "".join(f"<li>{e(n)}</li>" for n in results.get("notes", []))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>antialias compare</title>"
        "<style>body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #aaa;padding:3px 6px;font-size:13px}img{max-width:100%}</style></head><body>"
        f"<h1>Downsampling methods compared</h1><p>{e(str(results.get('data_description', '')))}; model "
        f"{e(str(cfg.get('model')))} (width {e(str(cfg.get('width')))}), {e(str(cfg.get('epochs')))} epochs on "
        f"{e(str(cfg.get('train_subset')))} training images, seed {e(str(cfg.get('seed')))} for every method; "
        f"circular padding: {e(str(cfg.get('circular')))}. Percentages with 95% intervals by image (Wilson).</p>"
        f"<table><tr>{head}</tr>{body}</table>{figure}<h2>Verdicts</h2><ul>{claims}</ul>"
        f"<p>{e(str(results.get('decision_rule', '')))}</p><h2>Notes</h2><ul>{notes}</ul>"
        f"<p>Total time {timing.get('total', float('nan')):.0f} s.</p></body></html>\n"
    )


def write_comparison_report(results: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes ``comparison.md``, ``comparison.png`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = comparison_figure(results)
    png_path = save_png(fig, out / "comparison.png")  # replaces only a PNG of ours
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    md_path, html_path = out / "comparison.md", out / "report.html"
    atomic_write_text(md_path, comparison_markdown(results))
    atomic_write_text(html_path, comparison_html(results, buffer.getvalue()))
    return {"markdown": md_path, "figure": png_path, "html": html_path}
