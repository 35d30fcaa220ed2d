#!/usr/bin/env bash
# Install GPAW (serial build) and its PAW setups (gpaw-data) into a virtualenv.
#
# Usage: deploy/install_gpaw.sh PATH/TO/venv/bin/pip      (e.g. deploy/install_gpaw.sh .venv/bin/pip)
#
# Idempotent: exits at once when GPAW imports and finds its setups. Otherwise it
#   1. installs the Debian build dependencies libxc-dev libopenblas-dev libfftw3-dev
#      (only when running as root and dpkg shows them missing; else says what to install),
#   2. builds GPAW from source with deploy/gpaw-siteconfig.py (mpi = False, g++),
#   3. installs gpaw-data (PAW setups + dzp basis sets; GPAW finds them through the
#      gpaw_data package, so no GPAW_SETUP_PATH and no download at run time).
# Environment: GPAW_VERSION (pip requirement, default "gpaw"). GPAW_BUILD_JOBS is cleared: with
# a value > 1 GPAW 26.x switches to its Makefile build, meant for editable installs, and the
# wheel then lacks the compiled _gpaw extension.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/venv/bin/pip" >&2
    exit 2
fi
PIP="$1"
if [[ ! -x "$PIP" ]]; then
    echo "error: '$PIP' is not an executable pip" >&2
    exit 2
fi
PYTHON="$(dirname "$PIP")/python"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SITECONFIG="$HERE/gpaw-siteconfig.py"
GPAW_REQ="${GPAW_VERSION:-gpaw}"

check_gpaw() {
    "$PYTHON" - <<'PY' 2>/dev/null
import gpaw
from gpaw import setup_paths
from pathlib import Path
import gpaw_data  # noqa: F401
assert any(Path(p, "Mo.PBE.gz").is_file() for p in setup_paths), setup_paths
import _gpaw  # noqa: F401  (the compiled extension)
print(f"GPAW {gpaw.__version__} with setups in {[str(p) for p in setup_paths]}")
PY
}

if check_gpaw; then
    exit 0
fi

# 1. System libraries.
DEB_PKGS=(libxc-dev libopenblas-dev libfftw3-dev)
missing=()
for pkg in "${DEB_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "error: GPAW needs the system packages: ${missing[*]}" >&2
        echo "  run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
        echo "  then rerun: $0 $PIP" >&2
        exit 1
    fi
fi
if ! command -v g++ >/dev/null; then
    echo "error: GPAW needs a C++ compiler (g++): apt-get install -y g++" >&2
    exit 1
fi

# 2. GPAW, built serially against the libraries above.
# A GPAW that is installed but does not import (e.g. built without its extension) goes first.
"$PIP" uninstall -y -q gpaw >/dev/null 2>&1 || true
echo "building $GPAW_REQ with GPAW_CONFIG=$SITECONFIG"
env -u GPAW_BUILD_JOBS GPAW_CONFIG="$SITECONFIG" "$PIP" install --no-cache-dir "$GPAW_REQ"

# 3. PAW setups and basis sets.
"$PIP" install gpaw-data

if ! check_gpaw; then
    echo "error: GPAW was installed but does not import or find its setups:" >&2
    "$PYTHON" -c "import gpaw, _gpaw, gpaw_data" >&2 || true
    exit 1
fi
