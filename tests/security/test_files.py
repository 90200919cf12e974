"""Issue 11, defect 3: commands never touch files they did not write.

Before the fixes (checked on the original code): ``antialias train --overwrite --out DIR`` deleted
the whole ``DIR/checkpoints/`` (a user's ``best.pt`` there included); ``antialias reproduce --out DIR``
replaced a ``report.html``/``results.json`` it had not written, and its refusal for figures suggested
a ``--force`` flag that reproduce lacks.
"""

from __future__ import annotations

import json
import os

import pytest
from security_helpers import TINY, cli, trained_run

from antialias._manifest import MANIFEST_NAME, Manifest


def test_overwrite_refuses_a_folder_with_foreign_files_and_names_them(tmp_path, capsys):
    run = trained_run(tmp_path / "run", capsys)
    (run / "checkpoints" / "best.pt").write_bytes(b"my own weights")
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--out", run, "--overwrite"], capsys)
    assert rc == 1 and "checkpoints/best.pt" in err and "did not write" in err
    assert (run / "checkpoints" / "best.pt").read_bytes() == b"my own weights"
    assert (run / "model.safetensors").is_file()  # the earlier run is untouched too


def test_overwrite_replaces_exactly_the_files_of_the_earlier_run(tmp_path, capsys):
    run = trained_run(tmp_path / "run", capsys, "--save-every-steps", 2)
    manifest = json.loads((run / MANIFEST_NAME).read_text())
    assert {"config.json", "metrics.jsonl", "model.safetensors", "model.json"} <= set(manifest["files"])
    assert all(f in manifest["files"] for f in (f"checkpoints/{p.name}" for p in (run / "checkpoints").iterdir()))
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--out", run, "--overwrite", "--seed", 1], capsys)
    assert rc == 0, err
    assert json.loads((run / "config.json").read_text())["config"]["seed"] == 1


def test_a_step_folder_we_did_not_write_is_never_pruned(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000000").mkdir(parents=True)  # the user's, named like ours
    (run / "checkpoints" / "step-00000000" / "keep.txt").write_text("x")
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--out", run, "--overwrite", "--keep-checkpoints", 1], capsys)
    assert rc == 1 and "checkpoints/step-00000000/keep.txt" in err
    assert (run / "checkpoints" / "step-00000000" / "keep.txt").exists()


def test_manifest_counts_own_temporary_files_and_nothing_else(tmp_path):
    m = Manifest(tmp_path, "test")
    m.add("a.json", "sub/b.bin")
    for rel in ("a.json", ".a.json.x1y2.tmp", "sub/b.bin", "checkpoints/.tmp-step-00000003-123/state.pt",
                "mine.txt", "sub/other.txt", ".a.jsonx.tmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert m.foreign() == [".a.jsonx.tmp", "mine.txt", "sub/other.txt"]
    (tmp_path / MANIFEST_NAME).write_text("not json")  # a damaged record owns nothing
    assert "a.json" in Manifest(tmp_path, "test").foreign()
    with pytest.raises(ValueError, match="relative"):
        m.add("../escape")


@pytest.mark.parametrize("name", ["report.html", "results.json", "figures/toy_example.png"])
def test_reproduce_refuses_report_files_it_did_not_write_without_suggesting_force(name, tmp_path, capsys):
    out = tmp_path / "out"
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).write_text("mine")
    rc, _, err = cli(["reproduce", "--tiny", "--out", out, "--data", "antialias.train._demo:tiny_data",
                      "--progress", "none"], capsys)
    assert rc == 1 and name in err and "did not write" in err and "--force" not in err
    assert (out / name).read_text() == "mine" and not (out / "runs").exists()  # refused before any work


def test_reproduce_recognises_its_own_earlier_results(tmp_path):
    from antialias.reproduce._pipeline import _check_out

    (tmp_path / "results.json").write_text(json.dumps({"format": "antialias-reproduction", "runs": {}}, indent=1))
    (tmp_path / "report.html").write_text("<html><head><title>antialias reproduce: report</title></head></html>")
    _check_out(tmp_path)  # written by an earlier version (no manifest yet): ours
    os.remove(tmp_path / "report.html")
    Manifest(tmp_path, "antialias reproduce").add("report.html")
    (tmp_path / "report.html").write_text("anything")
    _check_out(tmp_path)  # listed in the manifest: ours
