"""Slurm jobs of the LaunchPad's Fireworks, from Slurm's own records (``squeue``, ``sacct``).

A launch names the queue job that ran it: in a queue job ``epdi launch`` puts the job id into its
worker's name (``cpu-dft [slurm 42]``, :func:`workflows.fireworks.launcher.make_fworker`), and in
FireWorks' reservation mode (``qlaunch -r``) its RESERVED state holds it as ``reservation_id``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from fireworks import LaunchPad

#: the job id in a worker's name
SLURM_WORKER_RE = re.compile(r"\[slurm (\d+)\]")
#: ``job_name`` prefix of the queue adapters in ``deploy/`` (jobs not yet running a Firework)
QUEUE_JOB_PREFIX = "epdi"
SQUEUE_FIELDS = ("job_id", "partition", "state", "name", "elapsed", "reason")


def _run(command: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def squeue_jobs() -> list[dict[str, str]] | None:
    """Jobs of this user in the queue (``job_id``, ``partition``, ``state``, ...); ``None`` without Slurm."""
    done = _run(["squeue", "--me", "-h", "-o", "%i|%P|%T|%j|%M|%R"])
    if done is None or done.returncode != 0:
        return None
    rows = [line.split("|", len(SQUEUE_FIELDS) - 1) for line in done.stdout.splitlines() if line.strip()]
    return [dict(zip(SQUEUE_FIELDS, row, strict=False)) for row in rows]


def active_job_ids() -> set[str] | None:
    """Ids of the jobs Slurm has now (pending, running, completing; every user), ``None`` without Slurm."""
    done = _run(["squeue", "-h", "-o", "%i"])
    if done is None or done.returncode != 0:
        return None
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def launches_of_ended_jobs(lp: LaunchPad) -> list[int]:
    """RUNNING launches whose Slurm job has ended: lost for sure (Slurm kills a job's processes).

    Empty where Slurm cannot be asked (no guessing).
    """
    named = {}
    for launch in lp.launches.find({"state": "RUNNING"}, {"launch_id": 1, "fworker": 1}):
        job = job_of_worker((launch.get("fworker") or {}).get("name"))
        if job:
            named[launch["launch_id"]] = job
    if not named:
        return []
    active = active_job_ids()
    if active is None:
        return []
    return sorted(launch_id for launch_id, job in named.items() if job not in active)


def sacct_jobs(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """``partition``, ``state`` and ``name`` of finished and running jobs, by job id.

    Reads Slurm's accounting (``sacct``) or, where accounting storage is off (the local cluster of
    ``deploy/slurm``), its job completion records (``sacct -c``).
    """
    if not job_ids:
        return {}
    fields = ["-n", "-P", "-j", ",".join(job_ids), "-o", "jobid,partition,state,jobname"]
    done = _run(["sacct", "-X", *fields])
    if done is None:
        return {}
    if done.returncode != 0 or not done.stdout.strip():
        done = _run(["sacct", "-c", *fields])
    out: dict[str, dict[str, str]] = {}
    for line in (done.stdout if done else "").splitlines():
        parts = line.split("|")
        if len(parts) >= 4 and parts[0] in job_ids:
            out[parts[0]] = {"partition": parts[1], "state": parts[2].split()[0], "name": parts[3]}
    return out


def job_of_worker(name: str | None) -> str | None:
    """The Slurm job id in a worker's name, else ``None``."""
    match = SLURM_WORKER_RE.search(name or "")
    return match.group(1) if match else None


def fireworks_by_job(lp: LaunchPad, fw_ids: list[int] | None = None) -> dict[str, list[int]]:
    """Slurm job id -> the Fireworks its launches ran or reserved (launches of ``fw_ids``, or all)."""
    criteria: dict[str, Any] = {} if fw_ids is None else {"fw_id": {"$in": fw_ids}}
    out: dict[str, set[int]] = {}
    for launch in lp.launches.find(criteria, {"fw_id": 1, "fworker": 1, "state_history": 1}):
        jobs = {job_of_worker((launch.get("fworker") or {}).get("name"))}
        jobs |= {h.get("reservation_id") for h in launch.get("state_history") or []}
        for job in jobs - {None}:
            out.setdefault(str(job), set()).add(launch["fw_id"])
    return {job: sorted(ids) for job, ids in sorted(out.items(), key=lambda kv: int(kv[0]))}


def campaign_queue_jobs(lp: LaunchPad, fw_ids: list[int] | None) -> list[dict[str, Any]] | None:
    """Queued and running Slurm jobs for these Fireworks; ``None`` where ``squeue`` is not there.

    A job belongs to them when one of their launches names it, or when it is a job of the
    ``deploy/`` queue adapters (``epdi-*``) that has not picked a Firework yet.
    """
    queue = squeue_jobs()
    if queue is None:
        return None
    ran = fireworks_by_job(lp)
    wanted = None if fw_ids is None else set(fw_ids)
    rows = []
    for job in queue:
        mine = [i for i in ran.get(job["job_id"], []) if wanted is None or i in wanted]
        if mine or (job["name"].startswith(QUEUE_JOB_PREFIX) and job["job_id"] not in ran):
            rows.append(job | {"fw_ids": mine})
    return rows
