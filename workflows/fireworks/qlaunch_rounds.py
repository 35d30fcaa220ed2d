"""Run a submitted campaign to the end through FireWorks' own ``qlaunch`` against a Slurm cluster.

One *round* starts ``qlaunch rapidfire`` for each worker kind (``dft`` on the ``cpu`` partition,
``gpu`` on the ``gpu`` partition, the queue scripts of ``deploy/``) and waits until both have
stopped and their queue jobs have ended; rounds repeat while Fireworks are left, as an operator runs
``qlaunch`` from cron (a campaign's rounds add Fireworks of the other kind as they go). This is what
``epdi bench slurm`` times and what the tests marked ``slurm`` run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stores.facade import StoreFacade
from stores.settings import Settings
from workflows.fireworks.categories import DFT_CATEGORY, TRAINING_CATEGORY
from workflows.fireworks.launchpad import (
    LaunchPadConfig,
    fireworks_by_state,
    open_launchpad,
    prepare_embedded,
)

#: ``deploy/`` of this checkout (queue scripts and workers)
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
#: worker kind -> (queue adapter, FireWorker) in ``deploy/``
QUEUE_FILES = {
    DFT_CATEGORY: ("my_qadapter_slurm.yaml", "my_fworker_dft.yaml"),
    TRAINING_CATEGORY: ("my_qadapter_slurm_gpu.yaml", "my_fworker_gpu.yaml"),
}

#: the tiny campaign of the benchmark and the tests: 2 surfaces, 1 CINEB in round 0, one training
#: (gpu), then round 1 stops at the budget (GPAW statics, CHGNet relaxations and CINEB)
TINY_SPEC = """\
name: tinyslurm
hosts: [MoS2]
dopants: [pristine, Zn]
supercell: 2
static: {engine: gpaw, h_ang: 0.3, kpts: [1, 1, 1]}
neb: {images: 3, fmax_ev_ang: 0.2}
fragments: {pixels: 16, symmetry_tol_ev: 0.15}
model: {arch: small_cnn, pretrained: false, pixels: 16, epochs: 2, folds: 2}
selection: {strategy: design, initial_fraction: 0.25, batch_size: 1, budget_fraction: 0.25, rounds: 2}
"""


@dataclass(frozen=True)
class QueueFiles:
    """The FireWorker and queue adapter of one worker kind."""

    fworker: Path
    qadapter: Path


def local_queue_files(
    folder: Path, deploy_dir: Path = DEPLOY_DIR, cpus_per_task: int = 1
) -> dict[str, QueueFiles]:
    """Copies of the ``deploy/`` queue scripts for a cluster on this machine.

    ``rocket_launch``, ``queue`` (partition) and ``job_name`` stay as shipped; the site's paths are
    replaced: the workers are those of ``deploy_dir``, ``pre_rocket`` puts this Python's ``bin``
    first on ``PATH`` (the job inherits the rest of the environment from ``qlaunch``, as ``sbatch``
    does), one CPU per job, no GPU request (the local ``gpu`` partition has none).
    """
    (folder / "logs").mkdir(parents=True, exist_ok=True)  # the adapter logs there; without it qlaunch hangs
    out = {}
    for kind, (qadapter, fworker) in QUEUE_FILES.items():
        content = yaml.safe_load((deploy_dir / qadapter).read_text())
        content["rocket_launch"] = content["rocket_launch"].replace("/opt/epdi/deploy", str(deploy_dir))
        content["pre_rocket"] = f"export PATH={Path(sys.executable).parent}:$PATH"
        content |= {"cpus_per_task": cpus_per_task, "walltime": "02:00:00", "logdir": str(folder / "logs")}
        content.pop("gres", None)
        path = folder / f"qadapter_{kind}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        out[kind] = QueueFiles(deploy_dir / fworker, path)
    return out


@dataclass
class RoundsReport:
    """What the qlaunch rounds did: rounds, seconds, final states."""

    rounds: int = 0
    wall_s: float = 0.0
    states: dict[str, int] = field(default_factory=dict)


def queue_jobs_under(folder: Path) -> list[str]:
    """Ids of this user's queued or running jobs whose working folder is under ``folder``."""
    done = subprocess.run(
        ["squeue", "--me", "-h", "-o", "%i|%Z"], capture_output=True, text=True, timeout=30, check=False
    )
    rows = [line.split("|", 1) for line in done.stdout.splitlines() if "|" in line]
    prefix = str(folder.resolve())
    return [job for job, workdir in rows if workdir.startswith(prefix)]


def qlaunch_env(config: LaunchPadConfig, data_dir: Path) -> dict[str, str]:
    """The environment of ``qlaunch`` (and so of its jobs): this data folder and LaunchPad."""
    env = dict(os.environ) | {"EPDI_DATA_DIR": str(data_dir)}
    if config.kind == "embedded":
        prepare_embedded(config.path)
        env["FW_CONFIG_FILE"] = str(config.path.parent / "FW_config.yaml")
    return env


def qlaunch_command(
    files: QueueFiles, launch_dir: Path, reserve: bool, max_jobs_queue: int, fill: bool, timeout_s: int
) -> list[str]:
    """``qlaunch [-r] [-fm] -w WORKER -q QADAPTER --launch_dir DIR rapidfire -m N --sleep 2 --timeout T``.

    ``fill`` (FireWorks' fill mode) submits one job although nothing is READY: its ``epdi launch``
    reruns the lost runs first (a Firework left RUNNING by a cancelled job, whose children wait).
    """
    qlaunch = shutil.which("qlaunch", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    mode = ["-fm"] if fill else (["-r"] if reserve else [])
    command = [qlaunch or "qlaunch", *mode, "-w", str(files.fworker), "-q", str(files.qadapter)]
    command += ["--launch_dir", str(launch_dir), "--loglvl", "WARNING", "rapidfire", "--sleep", "2"]
    if fill:
        return [*command, "--nlaunches", "1"]
    return [*command, "-m", str(max_jobs_queue), "--timeout", str(timeout_s)]


def _kinds_to_launch(
    config: LaunchPadConfig, files: dict[str, QueueFiles], launch_dir: Path
) -> dict[str, bool]:
    """Worker kind -> fill mode, for the kinds with a READY Firework or with a lost run to rerun."""
    from fireworks import FWorker

    lp = open_launchpad(config, read_only=True)
    plan = {}
    for kind, f in files.items():
        worker = FWorker.from_file(str(f.fworker))
        if lp.run_exists(worker):
            plan[kind] = False
        elif lp.fireworks.find_one(worker.query | {"state": "RUNNING"}) and not queue_jobs_under(launch_dir):
            plan[kind] = True  # RUNNING with no job left to run it: lost
    return plan


def run_qlaunch_rounds(
    config: LaunchPadConfig,
    data_dir: Path,
    files: dict[str, QueueFiles],
    launch_dir: Path,
    *,
    reserve: bool = False,
    max_jobs_queue: int = 2,
    max_rounds: int = 30,
    round_timeout_s: int = 300,
    timeout_s: float = 3600.0,
    while_running: Callable[[], None] | None = None,
) -> RoundsReport:
    """Run qlaunch rounds until no Firework is left to run or to wait for.

    Each round starts one ``qlaunch rapidfire`` per worker kind with work (READY Fireworks; a lost
    run: fill mode), and ends when they have stopped (at most ``round_timeout_s``) and their jobs
    have left the queue. ``while_running`` is called about once a second meanwhile.
    """
    env = qlaunch_env(config, data_dir)
    launch_dir.mkdir(parents=True, exist_ok=True)
    report = RoundsReport()
    start = time.perf_counter()
    while report.rounds < max_rounds:
        plan = _kinds_to_launch(config, files, launch_dir)
        if not plan:
            break
        report.rounds += 1
        procs = [
            subprocess.Popen(
                qlaunch_command(files[kind], launch_dir, reserve, max_jobs_queue, fill, round_timeout_s),
                env=env,
                cwd=launch_dir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for kind, fill in plan.items()
        ]
        while any(p.poll() is None for p in procs) or queue_jobs_under(launch_dir):
            if time.perf_counter() - start > timeout_s:
                for p in procs:
                    p.kill()
                raise TimeoutError(f"the qlaunch rounds ran longer than {timeout_s:.0f} s")
            if while_running is not None:
                while_running()
            time.sleep(1.0)
    report.wall_s = time.perf_counter() - start
    report.states = fireworks_by_state(open_launchpad(config, read_only=True))
    return report


def campaign_results(data_dir: Path) -> dict[str, Any]:
    """What a campaign left in a store, to compare two runs: labels, rounds and models.

    No run times or run ids; barriers and binding energies in eV, rounded to 1e-4 eV.
    """
    facade = StoreFacade(Settings(data_dir=data_dir))
    nebs = sorted(
        (d["hop_id"], round(d["forward_barrier_ev"], 4), d["engine"])
        for d in facade.query("nebs", properties=["hop_id", "forward_barrier_ev", "engine"])
    )
    valleys = sorted(
        (d["site_id"], round(d["binding_energy_ev"], 4))
        for d in facade.query("valleys", properties=["site_id", "binding_energy_ev"])
    )
    rounds = sorted(
        (d["round"], tuple(d["selected_hop_ids"]), d.get("stop_reason"))
        for d in facade.query("campaign_rounds", properties=["round", "selected_hop_ids", "stop_reason"])
    )
    fields = ["name", "version", "status", "n_labels", "train_site_ids"]
    models = sorted(
        (d["name"], d["version"], d["status"], d["n_labels"], tuple(sorted(d["train_site_ids"])))
        for d in facade.query("models", properties=fields)
    )
    return {"nebs": nebs, "valleys": valleys, "rounds": rounds, "models": models}
