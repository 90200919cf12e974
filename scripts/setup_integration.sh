#!/usr/bin/env bash
# Make the integration tier's venv, ./.venv-eco (created if missing); safe to run again.
#
#   bash scripts/setup_integration.sh
#
# The integration tier (tests/integration/, run by scripts/test_integration.sh) converts real
# torchvision and timm networks, so it needs a second environment beside the unit suite's .venv:
#   1. a virtual environment in .venv-eco (Python >= 3.10; PYTHON=/path/to/python3 to choose one);
#   2. torch and torchvision first, pinned (ECO_TORCH_SPEC, default torch==2.14.1, and
#      ECO_TORCHVISION_SPEC, default torchvision==0.29.1: a CUDA build that runs on the CPU and lies
#      on this project's machines' disk, about 5.5 GB with its nvidia-* libraries);
#   3. timm (ECO_TIMM_SPEC, default timm);
#   4. antialias itself, editable, with its test extra. torch and torchvision are installed first so
#      that the package's own `torch>=2.1` is already satisfied and pip pulls no other torch; the
#      script checks that afterwards.
# Each step prints how long it took.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV="${ECO_VENV:-.venv-eco}"
TORCH_SPEC="${ECO_TORCH_SPEC:-torch==2.14.1}"
TORCHVISION_SPEC="${ECO_TORCHVISION_SPEC:-torchvision==0.29.1}"
TIMM_SPEC="${ECO_TIMM_SPEC:-timm}"

log() { printf 'setup_integration: %s\n' "$*" >&2; }

# now: seconds since the epoch, with microseconds where bash has EPOCHREALTIME (bash >= 5).
now() { echo "${EPOCHREALTIME:-$(date +%s)}"; }

# step NAME COMMAND...: run COMMAND and print how long it took (set -e stops the script if it fails).
step() {
    local name="$1"
    shift
    local start end
    log "$name"
    start=$(now)
    "$@"
    end=$(now)
    awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "setup_integration: %s took %.1f s\n", n, e - s }' >&2
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    log "error: antialias needs Python >= 3.10; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)."
    log "  Set PYTHON=/path/to/python3.10+ and run again."
    exit 1
fi

total_start=$(now)
if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV with $("$PYTHON" --version 2>&1)" "$PYTHON" -m venv "$VENV"
fi

# pip_install ARGS...: `pip install -q ARGS`, without the one warning per package that pip prints for
# a configured index folder lacking that package (noise on machines whose pip.conf lists local ones).
pip_install() {
    local err status=0
    err=$(mktemp)
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q "$@" 2>"$err" || status=$?
    grep -v "is ignored: it is neither a file nor a directory" "$err" >&2 || true
    rm -f "$err"
    return "$status"
}

step "installing $TORCH_SPEC and $TORCHVISION_SPEC" pip_install "$TORCH_SPEC" "$TORCHVISION_SPEC"
step "installing $TIMM_SPEC" pip_install "$TIMM_SPEC"
step "installing antialias (editable) with its test extra" pip_install -e ".[test]"

# The pins must have survived the package's own requirements (a second torch would silently test
# something else than the tier claims).
"$VENV/bin/python" - "$TORCH_SPEC" "$TORCHVISION_SPEC" <<'EOF'
import sys

import timm
import torch
import torchvision

import antialias

want = {spec.split("==")[0]: spec.split("==")[1] for spec in sys.argv[1:] if "==" in spec}
have = {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
wrong = {name: (have[name], version) for name, version in want.items() if have.get(name) != version}
if wrong:
    sys.exit(f"setup_integration: error: installed versions differ from the pins: {wrong}")
print(
    f"setup_integration: torch {torch.__version__}, torchvision {torchvision.__version__}, "
    f"timm {timm.__version__}, antialias {antialias.__version__}",
    file=sys.stderr,
)
EOF
total_end=$(now)
awk -v s="$total_start" -v e="$total_end" 'BEGIN { printf "setup_integration: done in %.1f s\n", e - s }' >&2
