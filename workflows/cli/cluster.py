"""Cluster commands ``epdi campaign submit`` and ``epdi launch``, and what the other cluster commands share.

FireWorks runs the jobflow flows: ``submit`` puts a campaign on a LaunchPad (``--dry-run``: only
counts its Fireworks), ``launch`` runs Fireworks on this machine or in a queue job (FireWorks'
``rlaunch`` forms, so ``qlaunch`` accepts it); ``epdi retrain`` (:mod:`workflows.cli.retrain`) and
``epdi status`` (:mod:`workflows.cli.status`) are beside them. The LaunchPad is the embedded one-file
LaunchPad in the data folder unless a LaunchPad file says otherwise (see :mod:`workflows.fireworks.location`
and ``deploy/README.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_mapping, fail, reports_input_errors
from workflows.cli.output import set_verbosity

LaunchPadOption = Annotated[
    Path | None,
    typer.Option(
        "--launchpad",
        help="FireWorks LaunchPad file (my_launchpad.yaml). Default: EPDI_LAUNCHPAD_FILE, the settings "
        "file when it has the LaunchPad keys, FW_CONFIG_FILE, else the embedded LaunchPad in data_dir.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def launchpad_config(launchpad: Path | None):
    """The LaunchPad to use (:func:`~workflows.fireworks.location.resolve_launchpad`), or one error line."""
    from workflows.fireworks.launchpad import LaunchPadError, resolve_launchpad

    try:
        return resolve_launchpad(launchpad)
    except LaunchPadError as exc:
        fail(str(exc))


def emit_summary(summary: dict[str, Any], as_json: bool) -> None:
    """JSON as is; text with state counts as ``COMPLETED 4, FIZZLED 1`` and lists comma-separated."""
    if not as_json:
        summary = {
            key: ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            if isinstance(value, dict)
            else ", ".join(map(str, value)) or "none"
            if isinstance(value, list)
            else value
            for key, value in summary.items()
        }
    emit_mapping(summary, as_json)


def unreachable(config, exc: Exception) -> None:
    """One line for a LaunchPad problem: ours as is, pymongo's without its topology dump."""
    from workflows.fireworks.launchpad import LaunchPadError

    if isinstance(exc, LaunchPadError):
        fail(str(exc), code=1)
    reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0][:300]
    fail(f"cannot reach the {config.describe()}: {reason}; check host, port and credentials", code=1)


def _dry_run_summary(workflow, campaign, cid: str, config, existing: list[dict]) -> dict[str, Any]:
    from collections import Counter

    from workflows.flows.local_run import job_kind

    categories = Counter(fw.spec.get("_category") for fw in workflow.fws)
    kinds = Counter(job_kind(fw.name) for fw in workflow.fws)
    return {
        "campaign": campaign.name,
        "campaign_id": cid,
        "launchpad": config.describe(),
        "dry_run": True,
        "n_fireworks": len(workflow.fws),
        "fireworks_per_category": dict(sorted(categories.items())),
        "fireworks_per_kind": dict(sorted(kinds.items())),
        "already_submitted": bool(existing),
        "note": "each round adds its CINEB, training (gpu) and next-round Fireworks when it runs",
    }


@reports_input_errors
def submit(
    spec: Annotated[str, typer.Argument(help="Campaign spec YAML, or a packaged spec name.")],
    launchpad: LaunchPadOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Submit again although the campaign is already on the LaunchPad.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Build the whole workflow, count its Fireworks, write nothing to the LaunchPad."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Put a campaign on the FireWorks LaunchPad as one workflow; run it with `epdi launch` or qlaunch."""
    from pymongo.errors import PyMongoError

    from workflows.engines import EngineUnavailable
    from workflows.fireworks.launcher_lock import LauncherBusy
    from workflows.fireworks.launchpad import (
        LaunchPadError,
        flow_workflow,
        open_launchpad,
        submission_store,
        submit_flow,
        workflows_with,
    )
    from workflows.flows.campaign import build_campaign_flow
    from workflows.flows.campaign_hops import campaign_id
    from workflows.flows.campaign_spec import load_spec

    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    facade = StoreFacade(settings)
    config = launchpad_config(launchpad)
    cid = campaign_id(campaign)
    metadata = {"kind": "campaign", "campaign_id": cid, "campaign": campaign.name}
    try:
        existing = []
        if config.path.exists() or config.kind == "mongodb":
            existing = workflows_with(open_launchpad(config, read_only=True), {"campaign_id": cid})
            if existing and not force and not dry_run:
                ids = sorted(i for wf in existing for i in wf["nodes"])
                fail(
                    f"campaign {campaign.name} ({cid}) is already on the {config.describe()} "
                    f"(Fireworks {ids[0]}-{ids[-1]}): see `epdi status {campaign.name}`; "
                    "--force submits it again",
                    code=1,
                )
        try:
            flow = build_campaign_flow(campaign, facade, elsewhere=True)
        except EngineUnavailable as exc:
            fail(str(exc))
        store = submission_store(facade)
        if dry_run:
            workflow = flow_workflow(flow, store, metadata)
            emit_summary(_dry_run_summary(workflow, campaign, cid, config, existing), as_json)
            return
        fw_ids = submit_flow(config, flow, store, metadata)
    except LauncherBusy as exc:
        fail(f"{exc}; submit when it has finished, or use a MongoDB LaunchPad (deploy/README.md)", code=1)
    except (LaunchPadError, PyMongoError) as exc:
        unreachable(config, exc)
    summary = {
        "campaign": campaign.name,
        "campaign_id": cid,
        "launchpad": config.describe(),
        "fireworks": len(fw_ids),
        "fw_ids": f"{fw_ids[0]}-{fw_ids[-1]}",
        "job_store": "embedded store (in the Fireworks)" if store else "the workers' store (their settings)",
        "next": "epdi launch  (queue jobs: qlaunch, see deploy/README.md)",
    }
    emit_summary(summary, as_json)


@reports_input_errors
def launch(
    mode: Annotated[
        str,
        typer.Argument(
            help="rapidfire: run Fireworks until none is left; singleshot: run one (FireWorks' rlaunch "
            "forms, so qlaunch accepts `epdi launch ... singleshot` also in reservation mode, -r)."
        ),
    ] = "rapidfire",
    fw_id: Annotated[
        int | None,
        typer.Option("--fw-id", "--fw_id", help="singleshot: run this Firework (qlaunch -r adds it)."),
    ] = None,
    launchpad: LaunchPadOption = None,
    category: Annotated[
        str | None,
        typer.Option(
            help="dft: DFT/MLIP jobs (everything but gpu); gpu: CUDA training; default: every category."
        ),
    ] = None,
    worker: Annotated[
        Path | None,
        typer.Option("--worker", help="FireWorks my_fworker.yaml (overrides --category), e.g. from deploy/."),
    ] = None,
    max_jobs: Annotated[
        int, typer.Option(help="rapidfire: stop after this many Fireworks (0: until none is left).")
    ] = 0,
    lost_after: Annotated[
        float | None,
        typer.Option(
            help="Rerun RUNNING Fireworks not pinged for this many seconds before starting "
            "(default: 0 on the embedded LaunchPad, whose lock proves they are lost; 14400 on MongoDB)."
        ),
    ] = None,
    rerun_lost: Annotated[bool, typer.Option(help="Look for lost runs (killed launchers) first.")] = True,
    launch_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the run folders (default: <data_dir>/fireworks/launches for rapidfire on the "
            "embedded LaunchPad, else here)."
        ),
    ] = None,
    sleep: Annotated[int, typer.Option(help="Seconds between polls while other workers run parents.")] = 60,
    timeout: Annotated[
        int | None, typer.Option(help="Start no new Firework after this many seconds (queue wall time).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Embedded LaunchPad: wait this many seconds for a running launcher to finish (0: refuse)."
        ),
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only warnings from FireWorks.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run Fireworks from the LaunchPad here (or in a queue job): rapidfire or singleshot."""
    from pymongo.errors import PyMongoError

    from workflows.fireworks.launcher import launch_rockets, make_fworker
    from workflows.fireworks.launcher_lock import LauncherBusy
    from workflows.fireworks.launchpad import LaunchPadError

    if mode not in ("rapidfire", "singleshot"):
        fail(f"launch mode {mode!r} is not known; accepted: rapidfire, singleshot")
    if fw_id is not None and mode != "singleshot":
        fail(f"--fw_id {fw_id} needs the singleshot mode (`epdi launch singleshot --fw_id {fw_id}`)")
    if lost_after is not None and lost_after < 0:
        fail(f"--lost-after {lost_after} is negative; give seconds >= 0")
    if wait < 0:
        fail(f"--wait {wait} is negative; give seconds >= 0")
    if worker is not None and not worker.is_file():
        fail(f"--worker {worker} does not exist; give a FireWorks my_fworker.yaml (see deploy/)")
    if quiet or as_json:  # also the LaunchPad's own INFO lines, not only the rockets'
        set_verbosity(verbose=False, quiet=True)
    config = launchpad_config(launchpad)
    try:
        report = launch_rockets(
            config,
            make_fworker(category, worker),
            mode=mode,
            fw_id=fw_id,
            max_jobs=max_jobs,
            lost_after_s=lost_after,
            rerun_lost=rerun_lost,
            launch_dir=launch_dir,
            sleep_s=sleep,
            timeout_s=timeout,
            wait_s=wait,
            strm_lvl="WARNING" if quiet or as_json else "INFO",
        )
    except LauncherBusy as exc:
        fail(str(exc), code=1)
    except (LaunchPadError, PyMongoError) as exc:
        unreachable(config, exc)
    summary = {
        "launchpad": config.describe(),
        "launched": report.launched,
        "lost_runs_rerun": report.lost_reran,
        "states": report.states,
    }
    emit_summary(summary, as_json)
    if report.states.get("FIZZLED") and not as_json:
        typer.echo("some Fireworks FIZZLED: `epdi status` lists them with their errors", err=True)
