"""deploy/slurm/local-cluster.sh: idempotent start, two partitions, Slurm's job records, clear refusals."""

import subprocess
import time

import pytest

pytestmark = pytest.mark.slurm


def _sacct(job_id: str) -> list[str]:
    done = subprocess.run(
        ["sacct", "-c", "-n", "-P", "-j", job_id, "-o", "jobid,partition,state"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().split("|") if done.stdout.strip() else []


def test_second_start_reuses_the_running_cluster_and_jobs_land_in_their_partition(slurm, tmp_path):
    pids = {name: (slurm.folder / "run" / f"{name}.pid").read_text() for name in ("slurmctld", "slurmd")}
    again = slurm.script("start")
    assert again.returncode == 0 and again.stdout.strip() == f"export SLURM_CONF={slurm.conf}"
    assert {name: (slurm.folder / "run" / f"{name}.pid").read_text() for name in pids} == pids
    status = slurm.script("status")
    assert status.returncode == 0
    partitions = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, check=True)
    assert partitions.stdout.split("\n")[:2] == ["cpu* up", "gpu up"]

    ids = {}
    for partition in ("cpu", "gpu"):
        submitted = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-p",
                partition,
                "-o",
                str(tmp_path / f"{partition}.out"),
                "--wrap",
                "echo $SLURM_JOB_PARTITION",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        ids[partition] = submitted.stdout.strip()
    deadline = time.monotonic() + 120
    while any(len(_sacct(i)) < 3 for i in ids.values()):
        assert time.monotonic() < deadline, "the jobs did not finish within 120 s"
        time.sleep(0.5)
    for partition, job_id in ids.items():
        assert _sacct(job_id) == [job_id, partition, "COMPLETED"]
        assert (tmp_path / f"{partition}.out").read_text().strip() == partition


def test_refuses_with_one_line_when_not_root_and_status_of_a_stopped_cluster(slurm, tmp_path):
    other = tmp_path / "other"
    as_nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    refused = slurm.script("start", folder=other, prefix=as_nobody)
    assert refused.returncode == 3
    assert (
        refused.stderr.strip()
        == "local-cluster: cannot start Slurm here: not root (slurmd needs root to start jobs as their users)"
    )
    stopped = slurm.script("status", folder=other)
    assert stopped.returncode == 1 and "not running" in stopped.stderr
    assert slurm.script("stop", folder=other).returncode == 0  # stopping a cluster that never ran is fine
