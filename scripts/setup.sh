#!/usr/bin/env bash
# Install everything antialias needs into ./.venv (created if missing); safe to run again.
#
#   bash scripts/setup.sh
#
# 1. Debian packages used by later stages (Fashion-MNIST data, Chromium for the HTML report tests),
#    installed only when running as root with apt-get available; skipped with a message otherwise.
#    Set ANTIALIAS_SKIP_APT=1 to skip them.
# 2. A virtual environment in .venv (Python >= 3.10; PYTHON=/path/to/python3 to choose one).
# 3. torch first, pinned (TORCH_SPEC, default torch==2.13.0: the CPU build lies on this project's
#    machines' disk, so the plain `torch` requirement is then already satisfied), then the package
#    itself in editable mode with its test extras.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
APT_PACKAGES=(dataset-fashion-mnist chromium)

log() { printf 'setup: %s\n' "$*" >&2; }

apt_install() {
    # Installs the given Debian packages that are missing; returns 1 if it cannot.
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages already installed: $*"
        return 0
    fi
    if [ "${ANTIALIAS_SKIP_APT:-0}" = "1" ]; then
        log "ANTIALIAS_SKIP_APT=1: not installing ${missing[*]}"
        return 1
    fi
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        log "not root or no apt-get: skipping Debian packages ${missing[*]}"
        log "  (as root: apt-get update && apt-get install -y ${missing[*]})"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

apt_install "${APT_PACKAGES[@]}" || true

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    log "error: antialias needs Python >= 3.10; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing)."
    log "  Set PYTHON=/path/to/python3.10+ and run again."
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian splits venv/ensurepip into python3-venv.
        rm -rf .venv
        apt_install python3-venv || { log "error: '$PYTHON -m venv' failed; install python3-venv."; exit 1; }
        "$PYTHON" -m venv .venv
    fi
fi

PIP=(.venv/bin/python -m pip --disable-pip-version-check)
log "installing $TORCH_SPEC"
"${PIP[@]}" install -q "$TORCH_SPEC"
log "installing antialias (editable) with its test, corruptions and video extras"
"${PIP[@]}" install -q -e ".[test,corruptions,video]"
log "done: $(.venv/bin/antialias --version)"
