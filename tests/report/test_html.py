"""Tests of antialias.report.html: a pure, self-contained page, checked in headless Chromium.

The Chromium test wraps the page in a probe script (the report itself has none) that records, after
the load event, every <img>'s ``complete`` and ``naturalWidth`` and every error or ``console.error``,
then reads them back from ``--dump-dom``; it also takes a screenshot and checks it is not blank.
It is skipped when /usr/bin/chromium is absent (scripts/setup.sh installs Debian's chromium).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from antialias.report.html import render_html, write_html
from antialias.reproduce._verdicts import PAPER_TABLES, RULE

CHROMIUM = "/usr/bin/chromium"


def _png(color: str) -> bytes:
    fig = Figure(figsize=(2, 1.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 0], color=color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _proportion(v: float) -> dict:
    return {"value": v, "low": v - 0.02, "high": v + 0.02, "successes": int(v * 100), "total": 100}


def _results() -> dict:
    runs = {}
    for f in (None, "rect2", "bin5"):
        for aug in (False, True):
            runs[f"{f or 'baseline'}-{'aug' if aug else 'noaug'}"] = {
                "filter_size": f, "augment": aug, "status": "trained", "train_seconds": 3.0,
                "train": {"train_acc": 0.8},
                "eval": {"clean": {"accuracy": _proportion(0.8)},
                         "consistency": {"crop": {"consistency": _proportion(0.9)},
                                         "circular": {"consistency": _proportion(0.7)}},
                         "stability": {"mean_abs_step_change": 0.05, "prediction_changes": 1.2},
                         "corruption": {"mce": {"value": 60.0, "low": 55.0, "high": 65.0},
                                        "mce_normalised": {"value": 100.0, "low": 90.0, "high": 110.0}}},
            }
    return {
        "runs": runs,
        "config": {"filters": ["rect2", "bin5"], "model": "vgg13_bn_cifar", "width": 0.125, "preset": "tiny",
                   "epochs": 1, "data": "fashion-mnist", "seed": 0},
        "claims": [{"id": "consistency", "verdict": "confirmed",
                    "sentence": "Consistency <script>alert(1)</script> up."},
                   {"id": "accuracy_kept", "verdict": "not confirmed", "sentence": "Accuracy dropped."},
                   {"id": "equivariance", "verdict": "inconclusive", "sentence": "Too few images."},
                   {"id": "perturbation", "verdict": "not measured", "sentence": "No perturbations."}],
        "figures": {"accuracy_vs_consistency": {"path": "figures/a.png", "caption": "Headline"},
                    "stability": {"path": "figures/b.png", "caption": "Curves"}},
        "missing": [{"part": "perturbation", "table": "Perturbation stability (mFR)", "reason": "disabled"}],
        "paper": PAPER_TABLES, "decision_rule": RULE, "data_description": "64 test images",
        "timing": {"total": 12.0}, "machine": {"cpu_count": 2, "load_average_start": [1.0, 1.0, 1.0]},
    }


def test_render_is_pure_self_contained_and_escaped():
    results, images = _results(), {"accuracy_vs_consistency": _png("red"), "stability": _png("blue")}
    page = render_html(results, images)
    assert page == render_html(results, images)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "&lt;script&gt;" in page  # the sentence is escaped, not executed
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)  # nothing is fetched
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for verdict in ("confirmed", "not-confirmed", "inconclusive", "not-measured"):
        assert f'class="badge {verdict}"' in page
    assert "Missing: Perturbation stability (mFR)." in page
    assert "73.36 / 89.24" in page  # the paper's VGG16bn baseline beside ours


def test_figures_without_bytes_are_left_out(tmp_path):
    results = _results()
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(_png("green"))  # b.png is missing
    path = write_html(results, tmp_path)
    page = path.read_text()
    assert page.count("<img") == 1 and "Curves" not in page


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} not installed (apt-get install chromium)")
def test_page_renders_in_headless_chromium_with_every_image_loaded(tmp_path):
    images = {"accuracy_vs_consistency": _png("red"), "stability": _png("blue")}
    page = render_html(_results(), images)
    probe = (
        "<script>window.__errs=[];"
        "window.addEventListener('error',e=>window.__errs.push(String(e.message||e.type)),true);"
        "const _ce=console.error;console.error=(...a)=>{window.__errs.push(a.join(' '));_ce(...a)};"
        "window.addEventListener('load',()=>{const r={images:[...document.images].map(i=>[i.complete,i.naturalWidth]),"
        "errors:window.__errs,title:document.title};const p=document.createElement('pre');p.id='probe-result';"
        "p.textContent=JSON.stringify(r);document.body.appendChild(p);});</script>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + probe, 1), encoding="utf-8")
    plain = tmp_path / "report.html"
    plain.write_text(page, encoding="utf-8")
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout)
    assert match, dom.stderr[-2000:]
    report = json.loads(match.group(1).replace("&quot;", '"'))
    assert report["title"] == "antialias reproduce: report"
    assert len(report["images"]) == 2
    assert all(complete and width > 0 for complete, width in report["images"]), report
    assert report["errors"] == []
    shot = tmp_path / "shot.png"
    subprocess.run([*base, "--window-size=1000,1400", "--hide-scrollbars", f"--screenshot={shot}", plain.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        lo, hi = im.convert("L").getextrema()
    assert hi - lo > 100  # text and figures drawn, not a blank page
