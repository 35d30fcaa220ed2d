"""``epdi bench slurm``: the tiny campaign through Slurm and FireWorks' qlaunch vs ``epdi campaign run``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import emit_mapping, fail, reports_input_errors


@reports_input_errors
def slurm(
    spec: Annotated[
        Path | None, typer.Argument(help="Campaign spec YAML (default: the tiny two-surface campaign).")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Folder for both data folders and the queue files (default: new).")
    ] = None,
    max_jobs_queue: Annotated[int, typer.Option(help="qlaunch -m: most jobs in the queue per kind.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Wall time of a campaign through Slurm (submit + qlaunch rounds) and of `campaign run`, in one run.

    Needs a Slurm cluster with partitions cpu and gpu that answers `squeue` (SLURM_CONF), e.g.
    `eval "$(deploy/slurm/local-cluster.sh start)"`. Prints the overhead per Firework: the extra wall
    time through the scheduler over the number of Fireworks, and the time outside the Fireworks.
    """
    from workflows.bench.slurm import compare_through_slurm
    from workflows.fireworks.qlaunch_rounds import TINY_SPEC, local_queue_files
    from workflows.fireworks.queue_jobs import squeue_jobs

    if squeue_jobs() is None:
        fail(
            "no Slurm cluster answers `squeue`: start one with `deploy/slurm/local-cluster.sh start` "
            "and export the SLURM_CONF it prints",
            code=1,
        )
    folder = work_dir or Path(tempfile.mkdtemp(prefix="epdi-bench-slurm-"))
    folder.mkdir(parents=True, exist_ok=True)
    if spec is None:
        spec = folder / "tinyslurm.yaml"
        spec.write_text(TINY_SPEC)
    elif not spec.is_file():
        fail(f"campaign spec {spec} does not exist; give a YAML file")
    comparison = compare_through_slurm(
        spec.resolve(), folder.resolve(), local_queue_files(folder / "queue"), max_jobs_queue=max_jobs_queue
    )
    emit_mapping({"spec": str(spec), "work_dir": str(folder)} | comparison.figures(), as_json)
