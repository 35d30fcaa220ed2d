"""``epdi report CAMPAIGN``: the campaign's HTML report with its figures and barrier table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.report.build import build_report
from epdi_ml.report.data import BARRIER_COLUMNS, UnknownCampaign, find_campaign
from epdi_ml.report.page import PRISTINE
from stores.facade import StoreFacade
from stores.settings import get_settings
from stores.validation import check_output_dir
from workflows.cli.common import emit_mapping, emit_rows, fail, reports_input_errors

#: exit code when the campaign is not in the store
EXIT_MISSING = 1


def barrier_text_rows(rows: list[dict]) -> list[dict]:
    """Barrier-table rows for a terminal: energies to 1 meV, a pristine dopant named as in the report."""
    return [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        | ({"dopant": PRISTINE} if row.get("dopant") is None else {})
        for row in rows
    ]


@reports_input_errors
def report(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id (see `epdi query campaigns`).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default <data_dir>/reports/<campaign name>).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the index path, barrier table and notes as JSON.")
    ] = False,
) -> None:
    """Write the campaign report (index.html + PNGs); print its path and the barrier table (eV)."""
    if out is not None:
        check_output_dir(out, "--out")
    settings = get_settings()
    facade = StoreFacade(settings)
    try:
        doc = find_campaign(facade, campaign)
    except UnknownCampaign as exc:
        fail(str(exc), EXIT_MISSING)
    folder = out or settings.folder("reports", doc.name)
    result = build_report(facade, doc.campaign_id, folder)
    latest = find_campaign(facade, doc.campaign_id)  # a running campaign may have moved on meanwhile
    facade.upsert("campaigns", [latest.model_copy(update={"report_path": str(result.index)})])
    if as_json:
        emit_mapping(
            {
                "index": str(result.index),
                "figures": [str(f) for f in result.figures],
                "barriers": result.barriers,
                "notes": result.notes,
            },
            True,
        )
        return
    typer.echo(str(result.index))
    emit_rows(barrier_text_rows(result.barriers), BARRIER_COLUMNS, False, False)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
