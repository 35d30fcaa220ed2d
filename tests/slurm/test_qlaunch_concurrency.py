"""Several Slurm jobs at once against the embedded LaunchPad, through FireWorks' own qlaunch (both modes)."""

import subprocess
from pathlib import Path

import pytest
from fireworks import Firework, ScriptTask, Workflow

from workflows.fireworks import launchpad as fwl
from workflows.fireworks.qlaunch_rounds import (
    local_queue_files,
    qlaunch_command,
    queue_jobs_under,
    run_qlaunch_rounds,
)
from workflows.fireworks.queue_jobs import fireworks_by_job, job_of_worker, sacct_jobs

pytestmark = pytest.mark.slurm


def _script(name: str, log: Path, meet: Path | None) -> str:
    """Append ``name`` and the Slurm job to ``log``, then sleep 2 s.

    With ``meet``, the first Firework to run also waits (300 s at most) until Slurm runs a second of the
    queued jobs beside its own, and fails otherwise: the overlap of two jobs is then a requirement, not a
    matter of timing. The embedded LaunchPad runs one launcher at a time, so that second job waits on its
    lock (``epdi launch --wait``) and runs its Firework afterwards.
    """
    line = f"echo {name} $SLURM_JOB_ID >> {log}"
    if meet is None:
        return f"{line}; sleep 2"
    running = "$(squeue -h -t R -u $(id -un) -n epdi-dft | wc -l)"
    wait = (
        f"if mkdir {meet}/first 2>/dev/null; then n=0; "
        f"while [ {running} -lt 2 ] && [ $n -lt 600 ]; do sleep 0.5; n=$((n+1)); done; "
        f"[ {running} -ge 2 ] || {{ echo 'no second Slurm job ran within 300 s' >&2; exit 1; }}; fi"
    )
    return f"{line}; {wait}; sleep 2"


def _add_scripts(config, log: Path, names: list[str], meet: Path | None = None) -> list[int]:
    """Fireworks that append their name and Slurm job to ``log`` (so a second run would show)."""
    if meet is not None:
        meet.mkdir()
    fws = [
        Firework(ScriptTask.from_str(_script(n, log, meet)), name=n, spec={"_category": "dft"}) for n in names
    ]
    with fwl.writable_launchpad(config) as lp:
        return sorted(lp.add_wf(Workflow(fws)).values())


def _launch_states(lp, fw_ids):
    return sorted(
        (d["fw_id"], d["state"])
        for d in lp.launches.find({"fw_id": {"$in": fw_ids}}, {"fw_id": 1, "state": 1})
    )


def _job_windows(job_ids: list[str]) -> list[tuple[str, str]]:
    done = subprocess.run(
        ["sacct", "-c", "-n", "-P", "-j", ",".join(job_ids), "-o", "start,end"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [tuple(line.split("|")) for line in done.stdout.splitlines() if "|" in line]


def test_jobs_starting_at_once_run_every_firework_once_in_both_qlaunch_modes(slurm, data_dir, tmp_path):
    config = fwl.resolve_launchpad()
    log = tmp_path / "runs.log"
    files = local_queue_files(tmp_path / "queue")
    launches = tmp_path / "launches"

    # normal mode: qlaunch puts up to 6 jobs in the queue at once for 4 READY Fireworks; the first
    # Firework waits until Slurm runs a second job, so two jobs must run at once
    first = _add_scripts(config, log, ["a", "b", "c", "d"], meet=tmp_path / "started")
    report = run_qlaunch_rounds(config, data_dir, {"dft": files["dft"]}, launches, max_jobs_queue=6)
    lp = fwl.open_launchpad(config, read_only=True)
    assert report.states == {"COMPLETED": 4}
    assert _launch_states(lp, first) == [(i, "COMPLETED") for i in first]  # one launch each
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(name for name, _ in runs) == ["a", "b", "c", "d"]
    jobs = fireworks_by_job(lp, first)
    assert {job for _, job in runs} == set(jobs) and sorted(i for ids in jobs.values() for i in ids) == first
    records = sacct_jobs(list(jobs))
    assert {r["partition"] for r in records.values()} == {"cpu"}
    windows = sorted(_job_windows(list(jobs)))
    assert any(later[0] < earlier[1] for earlier, later in zip(windows, windows[1:], strict=False)), (
        "no two jobs ran at the same time"
    )

    # reservation mode: qlaunch -r reserves a Firework per job; `epdi launch ... singleshot --fw_id N` runs it
    second = _add_scripts(config, log, ["e", "f", "g"])
    command = qlaunch_command(
        files["dft"], launches, reserve=True, max_jobs_queue=3, fill=False, timeout_s=300
    )
    assert command[1] == "-r"
    report = run_qlaunch_rounds(
        config, data_dir, {"dft": files["dft"]}, launches, reserve=True, max_jobs_queue=3
    )
    lp = fwl.open_launchpad(config, read_only=True)
    assert report.states == {"COMPLETED": 7} and not queue_jobs_under(launches)
    assert _launch_states(lp, second) == [(i, "COMPLETED") for i in second]
    for launch in lp.launches.find({"fw_id": {"$in": second}}):
        reserved = [h for h in launch["state_history"] if h["state"] == "RESERVED"]
        assert reserved and str(reserved[0]["reservation_id"]) == job_of_worker(launch["fworker"]["name"])
    names = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(names) == ["a", "b", "c", "d", "e", "f", "g"]  # nothing ran twice
    assert fwl.fireworks_by_state(lp) == {"COMPLETED": 7}  # none left RESERVED or RUNNING
