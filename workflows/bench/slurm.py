"""A campaign through Slurm (``epdi campaign submit`` + FireWorks' ``qlaunch``) against ``epdi campaign run``.

Both run the same spec from a fresh data folder each, as a user runs them (``epdi`` subprocesses),
one after the other on the same machine; the figures are the two wall times and what the scheduler
path costs per Firework. ``epdi bench slurm`` prints them; the tests marked ``slurm`` check the
stores that both runs leave.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from workflows.fireworks.launchpad import LaunchPadConfig, open_launchpad
from workflows.fireworks.qlaunch_rounds import QueueFiles, RoundsReport, campaign_results, run_qlaunch_rounds
from workflows.fireworks.queue_jobs import fireworks_by_job


@dataclass
class SlurmComparison:
    """Where the two runs are and what they took."""

    local_data: Path
    slurm_data: Path
    config: LaunchPadConfig
    local_wall_s: float
    slurm_wall_s: float
    rounds: RoundsReport

    def figures(self) -> dict[str, Any]:
        """Wall times, Fireworks, Slurm jobs and the overhead per Firework (seconds)."""
        lp = open_launchpad(self.config, read_only=True)
        n_fireworks = lp.fireworks.count_documents({})
        runtimes = [d.get("runtime_secs") or 0.0 for d in lp.launches.find({"state": "COMPLETED"})]
        jobs = fireworks_by_job(lp)
        waits = _queue_waits_s(list(jobs))
        return {
            "fireworks": n_fireworks,
            "fireworks_by_state": self.rounds.states,
            "slurm_jobs": len(jobs),
            "qlaunch_rounds": self.rounds.rounds,
            "campaign_run_wall_s": round(self.local_wall_s, 1),
            "slurm_wall_s": round(self.slurm_wall_s, 1),
            "overhead_per_firework_s": round((self.slurm_wall_s - self.local_wall_s) / n_fireworks, 2),
            "inside_fireworks_s": round(sum(runtimes), 1),
            "outside_fireworks_per_firework_s": round((self.slurm_wall_s - sum(runtimes)) / n_fireworks, 2),
            "mean_queue_wait_s": round(mean(waits), 1) if waits else None,
            "same_results": campaign_results(self.local_data) == campaign_results(self.slurm_data),
        }


def _queue_waits_s(job_ids: list[str]) -> list[float]:
    """Seconds from submission to start of each job (Slurm's records)."""
    from datetime import datetime

    if not job_ids:
        return []
    fields = ["-n", "-P", "-j", ",".join(job_ids), "-o", "submit,start"]
    waits = []
    for flag in ("-X", "-c"):  # accounting, else the job completion records (local cluster)
        done = subprocess.run(["sacct", flag, *fields], capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            submit, _, start = line.partition("|")
            try:
                waits.append((datetime.fromisoformat(start) - datetime.fromisoformat(submit)).total_seconds())
            except ValueError:
                continue
        if waits:
            break
    return waits


def epdi(args: list[str], data_dir: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``epdi ARGS`` in a subprocess on ``data_dir``."""
    env = dict(os.environ) | {"EPDI_DATA_DIR": str(data_dir)}
    env.pop("FW_CONFIG_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", *args], env=env, capture_output=True, text=True, **kwargs
    )


def compare_through_slurm(
    spec: Path,
    folder: Path,
    files: dict[str, QueueFiles],
    *,
    max_jobs_queue: int = 2,
    timeout_s: float = 5400.0,
    while_running: Callable[[LaunchPadConfig, Path], None] | None = None,
) -> SlurmComparison:
    """Run ``spec`` with ``epdi campaign run``, then through Slurm, each in a fresh data folder.

    Raises
    ------
    RuntimeError
        One of the ``epdi`` commands failed (its last lines are in the message).
    """
    local, slurm = folder / "campaign-run", folder / "through-slurm"
    start = time.perf_counter()
    done = epdi(["campaign", "run", str(spec)], local, timeout=timeout_s)
    local_wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"epdi campaign run failed: {done.stderr.strip()[-800:]}")
    start = time.perf_counter()
    done = epdi(["campaign", "submit", str(spec)], slurm, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"epdi campaign submit failed: {done.stderr.strip()[-800:]}")
    config = LaunchPadConfig("embedded", slurm / "fireworks" / "launchpad.json", "the benchmark")
    hook = (lambda: while_running(config, slurm)) if while_running else None
    rounds = run_qlaunch_rounds(
        config,
        slurm,
        files,
        folder / "queue-launches",
        max_jobs_queue=max_jobs_queue,
        timeout_s=timeout_s,
        while_running=hook,
    )
    return SlurmComparison(local, slurm, config, local_wall_s, time.perf_counter() - start, rounds)
