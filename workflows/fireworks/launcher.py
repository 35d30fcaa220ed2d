"""Running Fireworks on this machine or in a queue job: workers, lost runs, ``rapidfire``/``singleshot``.

``epdi launch`` is the launcher of the queue scripts in ``deploy/``. It takes FireWorks' ``rlaunch``
forms, so ``qlaunch`` accepts it in both modes: ``epdi launch ... rapidfire`` runs Fireworks until
none is left; ``epdi launch ... singleshot`` runs one, and ``qlaunch -r`` (reservation mode) appends
``--fw_id N`` to run the Firework it reserved for that queue job.

Inside a queue job the worker's name carries the job id (``cpu-dft [slurm 42]``), so every launch
names the queue job that ran it (``epdi status``, ``lpad get_launches``, ``sacct``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fireworks import FWorker, LaunchPad

from workflows.engines import EngineUnavailable, require_engine
from workflows.fireworks.launchpad import (
    DFT_CATEGORY,
    ENGINE_KEY,
    GPU_CATEGORY,
    LOST_RUN_EXPIRATION_S,
    EmbeddedLaunchPad,
    LaunchPadConfig,
    fireworks_by_state,
    writable_launchpad,
)
from workflows.fireworks.queue_jobs import launches_of_ended_jobs

#: queue systems whose job id a worker's name carries: environment variable and label
QUEUE_JOB_VARIABLES = (("SLURM_JOB_ID", "slurm"), ("PBS_JOBID", "pbs"))


def queue_job_label() -> str | None:
    """``slurm 42`` inside a Slurm job (``pbs 42.server`` under PBS), else ``None``."""
    for variable, label in QUEUE_JOB_VARIABLES:
        if os.environ.get(variable):
            return f"{label} {os.environ[variable]}"
    return None


def make_fworker(category: str | None = None, worker_file: Path | None = None) -> FWorker:
    """The FireWorker of a launcher.

    Parameters
    ----------
    category
        ``dft``: every Firework that is not ``gpu`` (DFT/MLIP, and jobs added later without a
        category); ``gpu``: CUDA training only; any other value: exactly that category;
        ``None``: everything (the embedded default, one machine).
    worker_file
        A FireWorks ``my_fworker.yaml`` (overrides ``category``), e.g. from ``deploy/``.

    In a queue job the name ends with the job, e.g. ``cpu-dft [slurm 42]``.
    """
    host = socket.gethostname()
    if worker_file is not None:
        worker = FWorker.from_file(str(worker_file))
    elif category is None:
        worker = FWorker(name=f"{host} (all categories)")
    elif category == DFT_CATEGORY:
        worker = FWorker(name=f"{host} dft", query={"spec._category": {"$ne": GPU_CATEGORY}})
    else:
        worker = FWorker(name=f"{host} {category}", category=category)
    job = queue_job_label()
    if job is not None:
        worker.name = f"{worker.name} [{job}]"
    return worker


def missing_engines(lp: LaunchPad, fworker: FWorker) -> dict[str, tuple[list[int], str]]:
    """Engines that READY Fireworks of ``fworker`` need and this machine lacks.

    Returns ``{engine: (fw_ids, require_engine's message)}``.
    """
    query = dict(fworker.query) | {"state": "READY", f"spec.{ENGINE_KEY}": {"$exists": True}}
    needed: dict[str, list[int]] = {}
    for doc in lp.fireworks.find(query, {"fw_id": 1, f"spec.{ENGINE_KEY}": 1}):
        needed.setdefault(doc["spec"][ENGINE_KEY], []).append(doc["fw_id"])
    missing = {}
    for engine, fw_ids in needed.items():
        try:
            require_engine(engine)
        except EngineUnavailable as exc:
            missing[engine] = (sorted(fw_ids), str(exc))
    return missing


def _without(fworker: FWorker, engines: list[str]) -> FWorker:
    """``fworker`` that does not pull Fireworks needing ``engines``."""
    query = dict(fworker._query) | {f"spec.{ENGINE_KEY}": {"$nin": engines}}
    return FWorker(name=fworker.name, category=fworker.category, query=query, env=fworker.env)


class EnginesMissing(EngineUnavailable):
    """READY Fireworks need an engine this launcher's machine lacks; they were left READY."""

    def __init__(self, missing: dict[str, tuple[list[int], str]], launched: int):
        self.missing = missing
        parts = [
            f"{len(ids)} Firework(s) ({', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''}) "
            f"need {message}"
            for ids, message in missing.values()
        ]
        super().__init__(
            f"{'; '.join(parts)}; they were left READY ({launched} other Firework(s) ran): launch them "
            "on workers where the engine is installed"
        )


@dataclass
class LaunchReport:
    """What one launcher did: Fireworks started, lost runs it reran, states at the end."""

    launched: int = 0
    lost_reran: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def rerun_lost_runs(lp: LaunchPad, expiration_s: float) -> list[int]:
    """Put lost runs back to READY (``lpad detect_lostruns --rerun``); return their Firework ids.

    Lost: RUNNING Fireworks not pinged for ``expiration_s`` seconds, and those whose launch names a
    Slurm job that Slurm no longer has (cancelled, out of wall time, node lost), at once.
    """
    _, lost_fw_ids, _ = lp.detect_lostruns(expiration_secs=expiration_s, rerun=True)
    ended = launches_of_ended_jobs(lp)
    if ended:
        query = {"launch_id": {"$in": ended}}
        _, more, _ = lp.detect_lostruns(expiration_secs=0, rerun=True, launch_query=query)
        lost_fw_ids = [*lost_fw_ids, *more]
    return sorted(set(lost_fw_ids))


def launch_rockets(
    config: LaunchPadConfig,
    fworker: FWorker,
    *,
    mode: Literal["rapidfire", "singleshot"] = "rapidfire",
    fw_id: int | None = None,
    max_jobs: int = 0,
    lost_after_s: float | None = None,
    rerun_lost: bool = True,
    launch_dir: Path | None = None,
    sleep_s: int = 60,
    timeout_s: int | None = None,
    wait_s: float = 0.0,
    strm_lvl: str = "INFO",
) -> LaunchReport:
    """Run Fireworks for ``fworker``: until none is left (``rapidfire``) or one (``singleshot``).

    Parameters
    ----------
    config
        The LaunchPad; an embedded one is this launcher's alone for the whole run.
    fworker
        Which Fireworks to pull (see :func:`make_fworker`).
    mode
        ``rapidfire`` (FireWorks' ``rlaunch rapidfire``) or ``singleshot`` (one Firework).
    fw_id
        The Firework to run (``singleshot``; ``qlaunch -r`` passes the one it reserved).
    max_jobs
        Stop after this many Fireworks (``rapidfire``; 0: no limit).
    lost_after_s
        Rerun RUNNING Fireworks not pinged for this many seconds before starting. Default: 0 on the
        embedded LaunchPad (its lock proves that no other launcher is running them), FireWorks' 4 h
        on MongoDB (running launchers ping hourly).
    rerun_lost
        Look for lost runs at all.
    launch_dir
        Folder for the run folders. Default: ``launches`` beside the embedded LaunchPad for
        ``rapidfire``, else the working directory (queue scripts ``cd`` to their launch folder).
    sleep_s
        Seconds between polls while other launchers still run jobs that this one waits for
        (MongoDB; the embedded launcher stops when nothing is READY).
    timeout_s
        Start no new Firework after this many seconds (e.g. a queue job's wall time).
    wait_s
        Embedded LaunchPad: wait this long for another launcher to finish (0: refuse at once).
    strm_lvl
        FireWorks log level on the console.

    Raises
    ------
    workflows.fireworks.launcher_lock.LauncherBusy
        Another launcher still holds the embedded LaunchPad after ``wait_s`` seconds.
    """
    from fireworks.core.rocket_launcher import launch_rocket, rapidfire

    cwd = Path.cwd()
    with writable_launchpad(config, strm_lvl=strm_lvl, wait_s=wait_s) as lp:
        embedded = isinstance(lp, EmbeddedLaunchPad)
        try:
            report = LaunchReport()
            if rerun_lost:
                if lost_after_s is None:
                    lost_after_s = 0.0 if embedded else LOST_RUN_EXPIRATION_S
                report.lost_reran = rerun_lost_runs(lp, lost_after_s)
            if launch_dir is None:
                launch_dir = config.path.parent / "launches" if embedded and mode == "rapidfire" else cwd
            folder = Path(launch_dir)
            folder.mkdir(parents=True, exist_ok=True)
            missing = missing_engines(lp, fworker)  # refused before they run, not a FIZZLE per job
            if missing:
                fworker = _without(fworker, sorted(missing))
                if fw_id is not None and any(fw_id in ids for ids, _ in missing.values()):
                    raise EnginesMissing({k: v for k, v in missing.items() if fw_id in v[0]}, 0)
            if mode == "singleshot":
                os.chdir(folder)
                report.launched = int(bool(launch_rocket(lp, fworker, fw_id=fw_id, strm_lvl=strm_lvl)))
            else:
                before = lp.launches.count_documents({})
                # On the embedded LaunchPad this launcher is the only one (it holds the lock): no other
                # process can finish a RUNNING Firework, so waiting for "future" work would wait forever.
                rapidfire(
                    lp,
                    fworker,
                    m_dir=str(folder),
                    nlaunches=max_jobs,
                    max_loops=1 if embedded else -1,
                    sleep_time=sleep_s,
                    timeout=timeout_s,
                    strm_lvl=strm_lvl,
                )
                report.launched = lp.launches.count_documents({}) - before
            report.states = fireworks_by_state(lp)
            if missing:
                raise EnginesMissing(missing, report.launched)
            return report
        finally:
            os.chdir(cwd)
