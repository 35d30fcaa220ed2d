"""``epdi campaign``: run an active-learning campaign from a spec (``run``; ``submit`` for FireWorks)."""

from __future__ import annotations

from typing import Annotated

import typer

from epdi_ml.report_data import BARRIER_COLUMNS, barrier_table
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.campaign import run_campaign
from workflows.campaign_spec import load_spec, packaged_specs
from workflows.cli import cluster
from workflows.cli.common import emit_rows, fail, reports_input_errors
from workflows.engines import EngineUnavailable

app = typer.Typer(help="Active-learning campaigns: surfaces -> DFT -> fragments -> select -> CINEB -> learn.")

SPEC_HELP = f"Campaign spec YAML, or a packaged spec name ({', '.join(packaged_specs())})."


@app.command("run")
@reports_input_errors
def run(spec: Annotated[str, typer.Argument(help=SPEC_HELP)]) -> None:
    """Run the whole campaign on this machine (embedded store by default); rerun to resume."""
    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    facade = StoreFacade(settings)
    try:
        doc = run_campaign(campaign, facade)
    except EngineUnavailable as exc:
        fail(str(exc))
    rows = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        for row in barrier_table(facade, doc.campaign_id)
    ]
    emit_rows(rows, BARRIER_COLUMNS, False, False)  # energies in eV
    typer.echo(f"campaign {doc.name}: {doc.status} ({doc.stop_reason}); report: {doc.report_path}")


app.command("submit")(cluster.submit)
