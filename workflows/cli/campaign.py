"""``epdi campaign``: run an active-learning campaign from a spec (``run``; ``submit`` for FireWorks)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli import cluster
from workflows.cli.common import emit_mapping, emit_rows, fail, reports_input_errors
from workflows.engines import EngineUnavailable
from workflows.flows.campaign_spec import load_spec, packaged_specs

app = typer.Typer(help="Active-learning campaigns: surfaces -> DFT -> fragments -> select -> CINEB -> learn.")

SPEC_HELP = f"Campaign spec YAML, or a packaged spec name ({', '.join(packaged_specs())})."


@app.command("run")
@reports_input_errors
def run(spec: Annotated[str, typer.Argument(help=SPEC_HELP)]) -> None:
    """Run the whole campaign on this machine (embedded store by default); rerun to resume."""
    from epdi_ml.report.data import BARRIER_COLUMNS, barrier_table  # torch and plots: only when run
    from workflows.cli.report import barrier_text_rows
    from workflows.flows.campaign import run_campaign

    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    facade = StoreFacade(settings)
    try:
        doc = run_campaign(campaign, facade)
    except EngineUnavailable as exc:
        fail(str(exc))
    rows = barrier_text_rows(barrier_table(facade, doc.campaign_id))
    emit_rows(rows, BARRIER_COLUMNS, False, False)  # energies in eV
    typer.echo(f"campaign {doc.name}: {doc.status} ({doc.stop_reason}); report: {doc.report_path}")


@app.command("plan")
@reports_input_errors
def plan(
    spec: Annotated[str, typer.Argument(help=SPEC_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What the campaign would do (surfaces, hops, engines, jobs per step and category); runs nothing.

    The spec is checked as ``submit`` checks it: architecture, engines, GPAW setups and basis files
    of every element; engines that run on the workers (VASP) are reported, not required.
    """
    from workflows.flows.campaign_plan import plan_campaign

    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    campaign.check_runnable(settings.hosts_file, elsewhere=True)
    summary = plan_campaign(campaign, settings.hosts_file)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    emit_mapping(summary, False)


app.command("submit")(cluster.submit)


def quickstart() -> None:
    """Run the packaged ``quickstart`` campaign (3x3x1 MoS2 pristine, Zn, Al) and print the barriers."""
    run("quickstart")
