"""``antialias eval worst-case``: the command line and the Python API give the same record, with intervals."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from PIL import Image

from antialias.cli import main
from antialias.eval.protocols import run_worst_case

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")

FACTORY = textwrap.dedent(
    """
    import torch
    from torch import nn

    def invariant(in_channels=3, num_classes=3):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(in_channels, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def strided(in_channels=3, num_classes=3):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(in_channels, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 4 * 4, num_classes))
    """
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("worst_case_cli")
    (root / "nets.py").write_text(FACTORY)
    g = torch.Generator().manual_seed(0)
    for c in ("ant", "bee", "cat"):
        folder = root / "images" / "test" / c
        folder.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=g).numpy()).save(
                folder / f"{i}.png"
            )
    return root


@pytest.mark.parametrize(("factory", "invariant"), [("invariant", True), ("strided", False)])
def test_cli_record_matches_the_python_api(workspace, tmp_path, capsys, factory, invariant):
    out = tmp_path / "w.json"
    model, data = f"{workspace / 'nets.py'}:{factory}", f"imagefolder:{workspace / 'images'}"
    argv = ["eval", "worst-case", "--model", model, "--data", data, "--families", "circular", "subpixel",
            "--max-shift", "8", "--k", "3", "--random-shift", "3", "--batch-size", "5", "--seed", "2",
            "--resamples", "300", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("worst-case: worst-case consistency circular ") and f"wrote {out}" in printed
    record = json.loads(out.read_text())
    res = record["results"]
    assert record["metric"] == "worst-case" and record["config"]["families"] == ["circular", "subpixel"]
    assert set(res["worst_case"]) == set(res["mac"]) == {"circular", "subpixel", "all"}
    assert res["grid_sizes"] == {"circular": 255, "subpixel": 24}  # every circular shift of 16x16
    assert res["worst_case"]["all"]["total"] == 12 and "bootstrap" in res["intervals"]
    for p in (*res["worst_case"].values(), res["k_way"], res["random_subpixel"]):
        assert p["low"] <= p["value"] <= p["high"]
    if invariant:
        assert res["worst_case"]["circular"]["value"] == 1.0 and res["mac"]["circular"]["value"] < 1e-6
    else:
        assert res["worst_case"]["circular"]["value"] < 1.0 and res["mac"]["circular"]["low"] > 0
    api = run_worst_case(model, data, families=("circular", "subpixel"), max_shift=8, k=3, random_shift=3,
                         batch_size=4, seed=2, resamples=300, device="cpu")["results"]
    assert api["worst_case"] == res["worst_case"] and api["k_way"] == res["k_way"]
    assert api["random_subpixel"] == res["random_subpixel"]
    for family, estimate in res["mac"].items():
        assert api["mac"][family] == pytest.approx(estimate, rel=1e-9, abs=1e-12)


def test_bad_values_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "worst-case", "--model", "m:f", "--families", "rotate", "--out", "x.json"])
    assert exc.value.code == 2
    assert "`families` must be one of 'circular', 'crop', 'subpixel', got 'rotate'" in capsys.readouterr().err
