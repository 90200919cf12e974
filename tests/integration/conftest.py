"""The integration tier's set-up: a summary of the 1-px shift changes at the end of the run.

The root conftest (one thread per worker, no outside network) applies here too. This directory is
collected only where torchvision and timm import (tests/conftest.py), i.e. in the venv made by
scripts/setup_integration.sh.
"""

from __future__ import annotations

import importlib.util
import statistics

import pytest

if importlib.util.find_spec("torchvision") is None or importlib.util.find_spec("timm") is None:
    raise pytest.UsageError(
        "tests/integration needs torchvision and timm: run 'bash scripts/setup_integration.sh', "
        "then 'bash scripts/test_integration.sh'."
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per architecture: the 1-px logit change before and after convert, and the median ratio.

    Read from the reports' user properties (``record_property``), which xdist sends back from its workers.
    """
    rows = []
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "shift_change" and report.when == "call":
                rows.append(value)
    if not rows:
        return
    title = "1-px shift change of the logits: mean |f(x) - f(roll(x, 1))| / mean |f(x) - f(y)|"
    terminalreporter.write_sep("-", title)
    for arch, before, after in sorted(rows):
        terminalreporter.write_line(f"{arch:40s} {before:9.3g} -> {after:9.3g}  (x{after / before:.3f})")
    ratios = [after / before for _, before, after in rows]
    terminalreporter.write_line(f"median ratio over {len(rows)} architectures: {statistics.median(ratios):.3f}")
