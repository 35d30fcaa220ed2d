"""A one-node Slurm cluster (partitions cpu and gpu) for the tests marked ``slurm``.

The session fixture starts it with ``deploy/slurm/local-cluster.sh`` (which installs slurm-wlm and
munge from Debian when missing) in its own folder and on free ports, and stops it at the end; the
tests are skipped, with the script's one-line reason, only where Slurm cannot be had (not root, no
apt-get). Each test sees the cluster through ``SLURM_CONF``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "local-cluster.sh"
CANNOT_RUN_HERE = 3  # the script's exit code when Slurm cannot be installed or started here


@dataclass(frozen=True)
class LocalCluster:
    """The running cluster: its folder, ``slurm.conf`` and the environment of the script."""

    folder: Path
    conf: Path
    env: dict

    def script(self, action: str, *, folder: Path | None = None, env: dict | None = None, prefix=()):
        """Run ``local-cluster.sh ACTION`` (on this cluster's folder unless another is given).

        With a ``prefix`` that runs it as another user, the script's text goes in on stdin from
        ``/``, so that the test does not depend on that user being able to read the checkout.
        """
        target = [action, str(folder or self.folder)]
        as_other = bool(prefix)
        return subprocess.run(
            [*prefix, "bash", "-s", "--", *target] if as_other else ["bash", str(SCRIPT), *target],
            input=SCRIPT.read_text() if as_other else None,
            cwd="/" if as_other else None,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def _free_port_pair() -> int:
    """A port P with P and P + 1 free (slurmctld and slurmd)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports for slurmctld and slurmd")


@pytest.fixture(scope="session")
def local_cluster():
    # munged wants every folder above its socket open to all: not pytest's 0700 tmp folders
    folder = Path(tempfile.mkdtemp(prefix="epdi-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    env = dict(os.environ) | {"EPDI_SLURM_PORT": str(_free_port_pair())}
    cluster = LocalCluster(folder, folder / "etc" / "slurm.conf", env)
    started = cluster.script("start")
    if started.returncode == CANNOT_RUN_HERE:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(started.stderr.strip().splitlines()[-1])
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"export SLURM_CONF={cluster.conf}"
        yield cluster
    finally:
        cluster.script("stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def slurm(local_cluster, monkeypatch):
    """The cluster, with ``SLURM_CONF`` set for this test (sbatch, squeue, sacct, qlaunch)."""
    monkeypatch.setenv("SLURM_CONF", str(local_cluster.conf))
    return local_cluster
