"""Tests of the `antialias` command line: parsing, exit codes, and `antialias figures`."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomllib
from PIL import Image

import antialias
from antialias.cli import main
from antialias.report import figures as figs
from antialias.report.figures import FIGURE_FILES, is_own_png

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "figures" in out and "Zhang" in out and "--version" in out


def test_figures_help_explains_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["figures", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--out", "--filter-size", "--photo", "--force"):
        assert option in out
    assert "toy_example.png" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip().startswith(f"antialias {antialias.__version__} (kernels: ")


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["paint"], "invalid choice: 'paint'"),
        (["figures", "--bogus"], "unrecognized arguments: --bogus"),
        (["figures", "--photo", "lena"], "invalid choice: 'lena'"),
        (["figures", "--filter-size", "tri33"], "Did you mean 'tri3'"),
        (["figures", "--filter-size", "0"], "`filter_size` must be >= 1"),
        (["figures", "--out"], "expected one argument"),
    ],
)
def test_bad_arguments_exit_2_with_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("usage: antialias")


def test_console_script_declared_and_installed():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["antialias"] == "antialias.cli:main"
    (script,) = entry_points(group="console_scripts", name="antialias")
    assert script.load() is main


def test_figures_writes_pngs_and_reruns_atomically(tmp_path, capsys):
    out = tmp_path / "new" / "figs"  # created, parents too
    unrelated = tmp_path / "new" / "keep.txt"
    out.parent.mkdir()
    unrelated.write_text("mine")

    assert main(["figures", "--out", str(out), "--filter-size", "tri3", "--photo", "camera"]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [out / name for name in FIGURE_FILES.values()]
    assert printed == [f"wrote {p}" for p in expected]
    assert len(expected) >= 3
    inodes = {}
    for path in expected:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and min(img.size) >= 300
        assert is_own_png(path)
        inodes[path] = path.stat().st_ino

    # Running again replaces its own files (new inodes: written elsewhere, then renamed in place).
    assert main(["figures", "--out", str(out)]) == 0
    capsys.readouterr()
    for path in expected:
        assert path.stat().st_ino != inodes[path]
        assert is_own_png(path)
    assert sorted(p.name for p in out.iterdir()) == sorted(FIGURE_FILES.values())  # no temp files
    assert unrelated.read_text() == "mine"


def _tiny_figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), dpi=20)
    fig.add_subplot()
    return fig


def test_figures_refuses_foreign_file_unless_forced(tmp_path, capsys, monkeypatch):
    foreign = tmp_path / FIGURE_FILES["toy_example"]
    foreign.write_bytes(b"someone else's picture")

    assert main(["figures", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "antialias figures: error:" in captured.err and "--force" in captured.err
    assert str(foreign) in captured.err
    assert foreign.read_bytes() == b"someone else's picture"
    assert [p.name for p in tmp_path.iterdir()] == [foreign.name]  # nothing else was written

    # --force replaces it (rendering stubbed out: the real figures are checked above).
    for name in ("toy_example_figure", "downsampling_figure", "frequency_response_figure"):
        monkeypatch.setattr(figs, name, lambda *args, **kwargs: _tiny_figure())
    assert main(["figures", "--out", str(tmp_path), "--force"]) == 0
    assert is_own_png(foreign)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURE_FILES.values())


def test_figures_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "figures"
    target.write_text("x")
    assert main(["figures", "--out", str(target)]) == 1
    assert "must be a folder" in capsys.readouterr().err
    assert target.read_text() == "x"
