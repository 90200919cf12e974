"""``antialias compare`` end to end on the tiny preset, its verdicts recomputed from the recorded numbers.

The tiny comparison trains the five default methods on 128 images for one epoch (seconds; meaningless
as science). It reads Fashion-MNIST when installed and otherwise generated images written as
Fashion-MNIST IDX files (``fashion-mnist:PATH``), as tests/reproduce/test_pipeline.py does;
ANTIALIAS_TEST_GENERATED_DATA=1 forces the generated data.
"""

from __future__ import annotations

import copy
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from antialias.cli import main
from antialias.data import DatasetNotFoundError, load_dataset
from antialias.eval._stats import paired_proportion_difference
from antialias.report.compare import comparison_figure, comparison_markdown
from antialias.reproduce import _verdicts as V
from antialias.reproduce._evaluate import from_bits
from antialias.reproduce.compare import (
    DEFAULT_METHODS,
    CompareConfig,
    _load,
    _train_config,
    compare,
    compare_model,
    judge_comparison,
    parse_methods,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images of 10 classes: a bright square whose size is the class, at a random place, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.normal(30, 15, (n, 28, 28))
    for i, label in enumerate(labels):
        side = 3 + int(label)
        r, c = rng.integers(0, 28 - side, 2)
        images[i, r : r + side, c : c + side] += 180
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="module")
def data_spec(tmp_path_factory) -> str:
    try:
        load_dataset("fashion-mnist", split="test")
        installed = True
    except DatasetNotFoundError:
        installed = False
    if installed and os.environ.get("ANTIALIAS_TEST_GENERATED_DATA") != "1":
        return "fashion-mnist"
    root = tmp_path_factory.mktemp("generated-fashion-mnist")
    for prefix, n, seed in (("train", 256, 0), ("t10k", 64, 1)):
        images, labels = _blobs(n, seed)
        _write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return f"fashion-mnist:{root}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data_spec):
    """The tiny comparison run through the command line, then its results."""
    out = tmp_path_factory.mktemp("cmp") / "out"
    argv = ["compare", "--tiny", "--data", data_spec, "--out", str(out), "--progress", "none"]
    assert main(argv) == 0
    return out, json.loads((out / "results.json").read_text()), data_spec


def test_writes_the_table_figure_page_and_runs(tiny):
    out, results, _ = tiny
    assert list(results["methods"]) == list(DEFAULT_METHODS) and results["config"]["preset"] == "tiny"
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "comparison.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == len(DEFAULT_METHODS) + 1  # header + rows
    page = (out / "report.html").read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "every circular shift" in page
    for method, record in results["methods"].items():
        stored = json.loads((out / "runs" / method / "config.json").read_text())["config"]
        assert stored["model"] == "antialias.reproduce.compare:compare_model"
        assert stored["model_kwargs"]["method"] == method and stored["seed"] == results["seed"] == 0
        ev = record["eval"]
        assert set(ev["worst_case"]) == {"circular", "crop", "subpixel", "all"}
        assert ev["every_circular_shift"]["total"] == 3 and ev["every_circular_shift_shifts"] == 32 * 32 - 1
        assert record["cost"]["train_step_seconds"] > 0 and record["cost"]["activation_bytes"] > 0
        # Every method saw the same images with the same shifts: the per-image strings have equal lengths.
        assert len(ev["per_image"]["correct"]) == len(ev["consistency"]["circular"]["per_image"]) == 32


def test_exact_claims_are_checked_against_the_numbers_and_the_model(tiny):
    out, results, data_spec = tiny
    claims = {(c["method"], c["claim"]): c for c in results["claims"]}
    for method in ("aps", "lps"):
        p = results["methods"][method]["eval"]["every_circular_shift"]
        claim = next(c for (m, text), c in claims.items() if m == method and "every circular shift" in text)
        assert claim["verdict"] == (V.CONFIRMED if p["successes"] == p["total"] else V.NOT_CONFIRMED)
    # And the model itself: the trained APS network, reloaded, gives identical logits under circular shifts.
    cfg = CompareConfig.from_preset("tiny", data=data_spec, out=str(out))
    model, _ = _load(_train_config(cfg, "aps", out / "runs" / "aps", "none"), out / "runs" / "aps", 1, 10)
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        reference = model(x)
        for shift in ((1, 0), (0, 3), (7, -5), (16, 16)):
            assert torch.equal(model(torch.roll(x, shift, dims=(2, 3))), reference)


def test_paired_verdicts_follow_reproduces_rule(tiny):
    _, results, _ = tiny
    base = results["methods"]["baseline"]["eval"]
    for claim in results["claims"]:
        if "more shift-consistent" not in claim["claim"]:
            continue
        ev = results["methods"][claim["method"]]["eval"]
        pairs = [(base["consistency"]["circular"]["per_image"], ev["consistency"]["circular"]["per_image"]),
                 (base["consistency"]["crop"]["per_image"], ev["consistency"]["crop"]["per_image"]),
                 (base["per_image"]["worst_case_all"], ev["per_image"]["worst_case_all"])]
        directions = []
        for a, b in pairs:
            d = paired_proportion_difference(from_bits(a).int().tolist(), from_bits(b).int().tolist())
            directions.append("up" if d["low"] > 0 else "down" if d["high"] < 0 else "flat")
        assert claim["verdict"] == V._majority(directions, "up")


def test_a_second_run_reuses_everything(tiny, capsys):
    out, results, data_spec = tiny
    again = compare(CompareConfig.from_preset("tiny", data=data_spec, out=str(out)), progress="none")
    assert {r["status"] for r in again["methods"].values()} == {"reused"}
    for method in DEFAULT_METHODS:
        assert again["methods"][method]["eval"]["worst_case"] == results["methods"][method]["eval"]["worst_case"]


def test_judge_on_crafted_results():
    def ev(successes: int) -> dict:
        p = {"value": successes / 10, "low": 0.0, "high": 1.0, "successes": successes, "total": 10}
        return {"every_circular_shift": p, "every_circular_shift_shifts": 1023, "worst_case": {"subpixel": p},
                "consistency": {}, "per_image": {}}

    results = {"config": {"circular": True}, "methods": {"aps": {"eval": ev(9)}, "lps": {"eval": ev(10)}}}
    verdicts = {(c["method"], "sub-pixel" in c["claim"]): c["verdict"] for c in judge_comparison(results)}
    assert verdicts[("aps", False)] == V.NOT_CONFIRMED and verdicts[("lps", False)] == V.CONFIRMED
    assert verdicts[("aps", True)] == V.CONFIRMED and verdicts[("lps", True)] == V.NOT_CONFIRMED
    results["config"]["circular"] = False
    assert {c["verdict"] for c in judge_comparison(results) if "every" in c["claim"]} == {V.NOT_MEASURED}


@pytest.mark.parametrize("method", ["baseline", "blurpool", "aps", "lps", "ideal", "adaptive"])
def test_compare_model_builds_every_method(method):
    torch.manual_seed(0)
    net = compare_model(method=method, width=0.0625, in_channels=1).eval()
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.padding != (0, 0)]
    assert convs and all(m.padding_mode == "circular" for m in convs)
    if method == "baseline":
        assert any(isinstance(m, nn.MaxPool2d) and m.stride == 2 for m in net.modules())
    else:
        assert not any(isinstance(m, nn.MaxPool2d) and m.stride in (2, (2, 2)) for m in net.modules())
    rebuilt = compare_model(method=method, width=0.0625, in_channels=1)
    rebuilt.load_state_dict(copy.deepcopy(net.state_dict()))  # same keys: a run's weights load back


def test_report_functions_on_the_results(tiny):
    _, results, _ = tiny
    assert comparison_markdown(results).splitlines()[0].startswith("| method | accuracy |")
    assert len(comparison_figure(results).axes) == 3


def test_bad_methods():
    with pytest.raises(ValueError, match=r"`methods` must be names from .*got 'blur'. Did you mean 'blurpool'\?"):
        parse_methods("baseline,blur")
    with pytest.raises(ValueError, match="each once"):
        CompareConfig(methods=("aps", "aps"))
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--methods", "nope"])
    assert exc.value.code == 2


@pytest.mark.parametrize("name", ["report.html", "results.json", "comparison.md"])
def test_refuses_report_files_it_did_not_write(tmp_path, capsys, data_spec, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("the user's own file")
    assert main(["compare", "--tiny", "--data", data_spec, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"holding {name}" in err and "--force" not in err
    assert (out / name).read_text() == "the user's own file" and sorted(p.name for p in out.iterdir()) == [name]


def test_records_its_report_files_in_the_manifest(tiny):
    out, _, _ = tiny
    manifest = json.loads((out / ".antialias-manifest.json").read_text())
    assert {"report.html", "results.json", "comparison.md"} <= set(manifest["files"])
