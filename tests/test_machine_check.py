"""`make` checks the machine first (deploy/check_machine.sh): what is missing and what to do, at once."""

import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "check_machine.sh"


def _check(python: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT), python],
        capture_output=True,
        text=True,
        env=env,
        cwd=SCRIPT.parents[1],
    )


def test_this_machine_passes():
    done = _check(sys.executable)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_missing_interpreter_is_named_with_what_to_do():
    done = _check("python3.99-not-here")
    assert done.returncode == 1
    assert "python3.99-not-here" in done.stderr and "make PYTHON=" in done.stderr
    assert "static.engine: vasp" in done.stderr  # the route without root


def test_missing_compilers_are_listed_before_any_build(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with the interpreter and the shell tools, but no compiler
    bin_dir.mkdir()
    for tool in ("dpkg-query", "grep", "id", "printf"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), "VENV_PY": str(tmp_path / "no-venv" / "python")}
    done = _check(sys.executable, env)
    assert done.returncode == 1
    assert "no cc" in done.stderr and "no c++" in done.stderr and "apt-get install gcc g++" in done.stderr
    assert "needs >= 3.11" not in done.stderr and "ensurepip" not in done.stderr  # the interpreter is fine
