"""The README's promises: its Python example runs and prints what it says; two set-up commands; CI runs the test one."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str, text: str = README) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_every_python_block_runs():
    blocks = _blocks("python")
    assert len(blocks) >= 3
    for code in blocks[1:]:  # the first is checked line by line below
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_python_example_runs_and_prints_its_comments():
    code = _blocks("python")[0]
    # Each `print(...)  # expected` line promises the printed text.
    expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)[ \t]+#[ \t]*(.+)$", code, flags=re.M)]
    assert expected, "the example should show its output"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert buf.getvalue().splitlines() == expected
    assert 8 <= len(code.strip().splitlines()) <= 16


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in _blocks("bash", setup)]
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main_job, tests = commands
    assert main_job.startswith("bash scripts/setup.sh && ") and "antialias reproduce --quick" in main_job
    assert tests == "bash scripts/setup.sh && bash scripts/test.sh"
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    ci_lines = [line.strip() for line in ci.read_text().splitlines() if line.strip() and not line.startswith("#")]
    # .ci/run: the README's test command (set-up, then the unit suite), then the integration tier.
    runs = [line.split('" ', 1)[1] for line in ci_lines if line.startswith('part "')]
    assert runs[:2] == ["bash scripts/setup.sh", "bash scripts/test.sh"], runs
    assert runs[2:] == ["bash scripts/setup_integration.sh", "bash scripts/test_integration.sh"], runs
    for script in ("setup.sh", "test.sh"):
        assert (ROOT / "scripts" / script).is_file()
