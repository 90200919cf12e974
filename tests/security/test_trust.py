"""Issue 11, defect 1: a run folder's files never name code to run.

Before the fix, ``antialias eval --checkpoint DIR`` and ``antialias train --resume`` imported and
called the factory named in ``model.json``/``config.json``: ``"os:system"`` with
``model_kwargs={"command": "touch PWNED"}`` created the file (checked by hand on the original code).
"""

from __future__ import annotations

import json

import pytest
from security_helpers import cli, poison_run, trained_run

from antialias._factory import INTERNAL_FACTORIES, UntrustedFactoryError, check_recorded_factory


@pytest.fixture
def poisoned(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "touch PWNED" would land here
    run = trained_run(tmp_path / "run", capsys)
    poison_run(run)
    return run


def test_eval_checkpoint_never_imports_a_factory_named_by_model_json(poisoned, tmp_path, capsys):
    rc, _, err = cli(["eval", "consistency", "--checkpoint", poisoned, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "e.json"], capsys)
    assert rc == 1 and not (tmp_path / "PWNED").exists()
    assert "antialias eval consistency: error:" in err and "'os:system'" in err and "--model os:system" in err
    assert "Traceback" not in err and not (tmp_path / "e.json").exists()


def test_train_resume_never_imports_a_factory_named_by_config_json(poisoned, tmp_path, capsys):
    rc, _, err = cli(["train", "--resume", "--out", poisoned, "--epochs", 2, "--force-resume"], capsys)
    assert rc == 1 and not (tmp_path / "PWNED").exists()
    assert "antialias train: error:" in err and "never imports code named by a file" in err and "--model" in err


def test_a_data_factory_named_by_config_json_is_refused_on_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run", capsys)
    record = json.loads((run / "config.json").read_text())
    record["config"]["data"] = "os:system"
    (run / "config.json").write_text(json.dumps(record))
    rc, _, err = cli(["train", "--resume", "--out", run, "--epochs", 2, "--force-resume"], capsys)
    assert rc == 1 and "`data`" in err and "--data os:system" in err


def test_a_factory_named_by_the_user_runs_and_allow_listed_ones_are_read_from_files(tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run", capsys)  # records antialias.train._demo:tiny_model (allow-listed)
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "a.json"], capsys)
    assert rc == 0, err
    (tmp_path / "fac.py").write_text("from antialias.train._demo import tiny_model\n\n"
                                     "def build(**kw):\n    return tiny_model(**kw)\n")
    poison_run(run, spec="fac.py:build")
    for name in ("model.json", "config.json"):  # a factory that takes no "command"
        record = json.loads((run / name).read_text())
        record["config"]["model_kwargs"] = {}
        (run / name).write_text(json.dumps(record))
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "b.json"], capsys)
    assert rc == 1 and "--model fac.py:build" in err  # named by the file: refused
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--model", "fac.py:build", "--data",
                      "antialias.train._demo:tiny_data", "--out", tmp_path / "c.json"], capsys)
    assert rc == 0, err  # named by the user: runs


def test_check_recorded_factory_rules():
    for spec in ("resnet20_cifar", "vgg13_bn", None, 3, *INTERNAL_FACTORIES):
        check_recorded_factory(spec, where="eval", param="model", source="f", flag="--model")
    check_recorded_factory("cifar10:/data", where="train", param="data", source="f", flag="--data",
                           reserved=("cifar10",))
    for spec in ("os:system", "subprocess:run", "evil.py:build", "antialias.cli:main"):
        with pytest.raises(UntrustedFactoryError, match=r"must be a zoo name when read from f.*--model "):
            check_recorded_factory(spec, where="eval", param="model", source="f", flag="--model")


def test_eval_does_not_import_the_data_factory_recorded_for_normalisation(tmp_path, capsys, monkeypatch):
    """The run's recorded data factory would be imported to recompute the normalisation: refused, warned."""
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run", capsys)
    for name in ("config.json", "model.json"):
        record = json.loads((run / name).read_text())
        record["config"]["data"] = "os:system"
        record.get("data", {}).pop("eval_transform", None)  # forces the recomputation path
        (run / name).write_text(json.dumps(record))
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "e.json"], capsys)
    assert rc == 0, err
    assert "never runs code named by a file" in err
