#!/usr/bin/env bash
# Run the integration tier (tests/integration/): antialias.convert on real torchvision and timm
# networks with random weights, and the zoo's baselines against live torchvision. Uses the venv made
# by scripts/setup_integration.sh (torch 2.14.1, torchvision 0.29.1, timm); nothing is downloaded.
#
#   bash scripts/test_integration.sh [extra pytest arguments]
#
# PYTEST_WORKERS sets the number of xdist workers (default 2, the CI machine's core count); the tests
# of one architecture share a worker (--dist loadgroup), so each network is built and converted once.
# ECO_TIMEOUT (seconds, default 2400) bounds the run: on a machine short of memory the kernel killed a
# worker once and xdist then waited forever, which in CI would use up the whole time limit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${ECO_VENV:-.venv-eco}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "test_integration: no $VENV here; run 'bash scripts/setup_integration.sh' first." >&2
    exit 1
fi

now() { echo "${EPOCHREALTIME:-$(date +%s)}"; }
start=$(now)
status=0
timeout "${ECO_TIMEOUT:-2400}" "$VENV/bin/python" -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist loadgroup \
    tests/integration "$@" || status=$?
end=$(now)
awk -v s="$start" -v e="$end" 'BEGIN { printf "test_integration: pytest took %.1f s\n", e - s }'
if [ "$status" -eq 124 ]; then
    echo "test_integration: stopped after ECO_TIMEOUT=${ECO_TIMEOUT:-2400} s (a worker killed for memory?)." >&2
fi
exit "$status"
