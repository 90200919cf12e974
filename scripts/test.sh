#!/usr/bin/env bash
# Run the checks CI runs, fastest first, stopping at the first that fails:
#   1. ruff (lint, configured in pyproject.toml [tool.ruff]) over src/, tests/ and benchmarks/;
#   2. mypy (types, configured in pyproject.toml [tool.mypy]) over src/antialias;
#   3. pytest: tests/ and the doctests in src/.
# Each step prints how long it took. Uses the venv made by scripts/setup.sh.
#
#   bash scripts/test.sh [extra pytest arguments]
#
# PYTEST_WORKERS sets the number of xdist workers (default 2, the CI machine's core count).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    echo "test: no .venv here; run 'bash scripts/setup.sh' first." >&2
    exit 1
fi
for tool in ruff mypy; do
    if [ ! -x ".venv/bin/$tool" ]; then
        echo "test: $tool is missing from .venv; run '.venv/bin/python -m pip install -e .[test]'." >&2
        exit 1
    fi
done

# now: seconds since the epoch, with microseconds where bash has EPOCHREALTIME (bash >= 5).
now() { echo "${EPOCHREALTIME:-$(date +%s)}"; }

# step NAME FIX-HINT COMMAND...: run COMMAND, print its duration, stop the script with a clear message if it fails.
step() {
    local name="$1" hint="$2"
    shift 2
    local start end status=0
    start=$(now)
    "$@" || status=$?
    end=$(now)
    awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "test: %s took %.1f s\n", n, e - s }'
    if [ "$status" -ne 0 ]; then
        echo "test: $name failed (exit $status); $hint" >&2
        exit "$status"
    fi
}

step ruff "fix the findings above ('.venv/bin/ruff check --fix' applies the safe ones)." \
    .venv/bin/ruff check src tests benchmarks
step mypy "fix the type errors above (configuration: pyproject.toml [tool.mypy])." \
    .venv/bin/mypy
# --dist loadgroup: tests marked xdist_group("subprocesses") (torchrun, SIGKILL/SIGINT) share one worker.
step pytest "see the failures above." \
    .venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
