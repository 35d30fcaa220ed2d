#!/usr/bin/env bash
# What `make install` needs before it starts, checked in one place so that a missing piece stops it
# with what to do instead of a compiler or pip error minutes later.
#
# Usage: deploy/check_machine.sh PYTHON        (the interpreter make builds the venv from)
#
# Checks: PYTHON runs and is >= 3.11 with its venv module; a C and a C++ compiler (GPAW's extension);
# the Debian libraries GPAW builds against, or root with apt-get to install them. An existing venv
# with a working GPAW needs none of the build tools. Exit 0 when all is there, 1 with one line per
# missing piece and the route without root otherwise.
set -uo pipefail

PYTHON=${1:-python3}
VENV_PY=${VENV_PY:-.venv/bin/python}
problems=()

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    problems+=("no Python interpreter '$PYTHON': install Python >= 3.11 or run make PYTHON=/path/to/python3.11")
elif ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    found=$("$PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown)
    problems+=("$PYTHON is Python $found; EPDI needs >= 3.11: run make PYTHON=/path/to/python3.11")
elif [[ ! -x $VENV_PY ]] && ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    problems+=("$PYTHON has no venv/ensurepip module: apt-get install python3-venv (as root)")
fi

gpaw_ready() {
    [[ -x $VENV_PY ]] && "$VENV_PY" -c 'import gpaw, _gpaw, gpaw_data' >/dev/null 2>&1
}

if ! gpaw_ready; then
    for tool in cc c++; do
        command -v "$tool" >/dev/null 2>&1 \
            || problems+=("no $tool (C/C++ compiler, for GPAW's extension): apt-get install gcc g++ (as root)")
    done
    missing=()
    for pkg in libxc-dev libopenblas-dev libfftw3-dev; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -gt 0 ]] && ! { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }; then
        problems+=("GPAW builds against ${missing[*]}, missing, and this is not root with apt-get: apt-get install ${missing[*]} (as root)")
    fi
fi

if [[ ${#problems[@]} -gt 0 ]]; then
    echo "make: this machine cannot build the EPDI environment yet:" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    echo "  Without root: load a cluster's GPAW module into the venv (then only pip is needed), or set" >&2
    echo "  static.engine: vasp in the campaign specs (no GPAW needed); see the README's first screen." >&2
    exit 1
fi
exit 0
