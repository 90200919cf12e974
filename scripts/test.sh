#!/usr/bin/env bash
# Run the whole test suite (tests/ and the doctests in src/) with the venv made by scripts/setup.sh.
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
# --dist loadgroup: tests marked xdist_group("subprocesses") (torchrun, SIGKILL/SIGINT) share one worker.
exec .venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
