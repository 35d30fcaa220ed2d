"""``epdi status``: a campaign's Fireworks by state (with errors), its Slurm jobs, labels and model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.cluster import JsonOption, LaunchPadOption, emit_summary, launchpad_config, unreachable
from workflows.cli.common import fail, reports_input_errors


@reports_input_errors
def status(
    campaign: Annotated[
        str | None, typer.Argument(help="Campaign name, campaign id or spec (default: the whole LaunchPad).")
    ] = None,
    launchpad: LaunchPadOption = None,
    as_json: JsonOption = False,
) -> None:
    """A campaign's state: Fireworks by state (with errors), its Slurm jobs, labels, model and CV MAE.

    The Slurm jobs (when ``squeue`` is there) are the queued and running jobs that run the campaign's
    Fireworks, or that the queue adapters of ``deploy/`` submitted and have not picked one yet.
    """
    from pymongo.errors import PyMongoError

    from workflows.fireworks.launchpad import LaunchPadError

    facade = StoreFacade(get_settings())
    config = launchpad_config(launchpad)
    doc = None
    if campaign is not None:
        doc = _find_campaign(facade, campaign)
    try:
        fireworks = _fireworks_status(config, doc["campaign_id"] if doc else None)
    except (LaunchPadError, PyMongoError) as exc:
        unreachable(config, exc)
    summary: dict[str, Any] = {"launchpad": config.describe()} | fireworks
    summary |= _labels_status(facade, doc)
    summary |= _model_status(facade, doc)
    if as_json:
        emit_summary(summary, True)
        return
    errors = summary.pop("fizzled", [])
    failed_jobs = summary.pop("failed_jobs", [])
    if "slurm_jobs" in summary:
        summary["slurm_jobs"] = [_job_line(job) for job in summary["slurm_jobs"]]
    emit_summary(summary, False)
    for row in errors:
        typer.echo(f"FIZZLED {row['fw_id']} {row['name']}: {row['error']}")
    for row in failed_jobs:
        typer.echo(f"FAILED job '{row['job']}': {row['error']}")


def _find_campaign(facade: StoreFacade, value: str) -> dict:
    """A campaign document by id or name, else by spec (file or packaged name)."""
    docs = facade.query("campaigns", {"campaign_id": value}) or facade.query(
        "campaigns", {"name": value}, sort={"updated_at": -1}
    )
    if docs:
        return docs[0]
    from workflows.flows.campaign_hops import campaign_id
    from workflows.flows.campaign_spec import load_spec, packaged_specs
    from workflows.structures.hosts import InputError

    try:
        spec = load_spec(value, get_settings().hosts_file)
    except InputError:
        known = sorted({d["name"] for d in facade.query("campaigns", properties=["name"])})
        fail(
            f"no campaign {value!r} in the store (known: {', '.join(known) or 'none'}); give a name, "
            f"an id or a spec ({', '.join(packaged_specs())})",
            code=1,
        )
    cid = campaign_id(spec)
    docs = facade.query("campaigns", {"campaign_id": cid})
    return docs[0] if docs else {"campaign_id": cid, "name": spec.name, "status": "not started"}


def _job_line(job: dict[str, Any]) -> str:
    """One Slurm job: ``42 gpu RUNNING (Fireworks 7, 8)``, ``43 cpu PENDING (Priority)``."""
    if job["fw_ids"]:
        what = f"Fireworks {', '.join(map(str, job['fw_ids']))}"
    else:
        what = job["reason"] if job["state"] == "PENDING" else "no Firework yet"
    return f"{job['job_id']} {job['partition']} {job['state']} ({what})"


def _fireworks_status(config, campaign_id: str | None) -> dict[str, Any]:
    from workflows.fireworks.launchpad import (
        failed_fireworks,
        fireworks_by_state,
        open_launchpad,
        workflows_with,
    )
    from workflows.fireworks.queue_jobs import campaign_queue_jobs

    if config.kind == "embedded" and not config.path.exists():
        return {"fireworks": "none submitted", "fizzled": []}
    lp = open_launchpad(config, read_only=True)
    fw_ids = None
    if campaign_id is not None:
        fw_ids = [i for wf in workflows_with(lp, {"campaign_id": campaign_id}) for i in wf["nodes"]]
        if not fw_ids:
            return {"fireworks": "not on this LaunchPad", "fizzled": []}
    out = {"fireworks": fireworks_by_state(lp, fw_ids) or "none", "fizzled": failed_fireworks(lp, fw_ids)}
    jobs = campaign_queue_jobs(lp, fw_ids)
    if jobs is not None:
        out["slurm_jobs"] = jobs
    return out


def _labels_status(facade: StoreFacade, doc: dict | None) -> dict[str, Any]:
    """Valley and saddle labels computed (of the campaign's surfaces when one is given)."""
    criteria = {"surface_id": {"$in": doc.get("surface_ids", [])}} if doc else {}
    hops = {d["hop_id"] for d in facade.query("nebs", criteria, properties=["hop_id"])}
    valleys = {d["site_id"] for d in facade.query("valleys", criteria, properties=["site_id"])}
    out: dict[str, Any] = {}
    if doc:
        out |= {"campaign": doc["name"], "campaign_id": doc["campaign_id"], "campaign_status": doc["status"]}
        if doc.get("stop_reason"):
            out["stop_reason"] = doc["stop_reason"]
        if doc.get("failures"):
            out["failed_jobs"] = doc["failures"]
        rounds = facade.count("campaign_rounds", {"campaign_id": doc["campaign_id"]})
        out["rounds"] = rounds
    total = doc.get("n_hop_classes") if doc else None
    out["saddle_labels"] = f"{len(hops)} of {total} distinct hops" if total else len(hops)
    out["valley_labels"] = len(valleys)
    return out


def _model_status(facade: StoreFacade, doc: dict | None) -> dict[str, Any]:
    from epdi_ml.training.registry import NoModel, get_model

    if doc is not None and not doc.get("current_model_id"):
        return {"model": "none trained"}  # the campaign's own model, not another one of the registry
    try:
        model = get_model(facade, model_id=(doc or {}).get("current_model_id"))
    except NoModel:
        return {"model": "none trained"}
    return {
        "model": f"{model.name} v{model.version} ({model.model_id}, {model.status})",
        "model_cv_mae_ev": round(model.cv_mae_ev, 4),
        "model_n_labels": model.n_labels,
    }
