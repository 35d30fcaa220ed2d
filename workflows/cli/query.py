"""``epdi query``: read documents back from the store (any process, any backend)."""

from __future__ import annotations

from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_rows, reports_input_errors
from workflows.cli.surfaces import SUMMARY_COLUMNS
from workflows.hosts import check_dopant

app = typer.Typer(help="Query the store.", no_args_is_help=True)


@app.command("surfaces")
@reports_input_errors
def surfaces(
    host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
    dopant: Annotated[str | None, typer.Option(help="Only this dopant ('none' for pristine).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List stored surfaces with their site counts."""
    criteria: dict = {}
    if host:
        criteria["host"] = host
    if dopant is not None:
        criteria["dopant"] = check_dopant(dopant)
    docs = StoreFacade(get_settings()).query(
        "surfaces",
        criteria,
        properties=list(SUMMARY_COLUMNS) + ["phase", "supercell", "vacuum_ang"],
        sort={"host": 1, "dopant": 1},
    )
    emit_rows(docs, SUMMARY_COLUMNS, as_json, as_csv)


#: columns of ``epdi query calculations``
CALCULATION_COLUMNS = ("calc_id", "kind", "engine", "functional", "final_energy_ev", "source_path")


@app.command("calculations")
@reports_input_errors
def calculations(
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (static, relax, neb, li_reference).")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Only this engine (vasp, gpaw, chgnet).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List stored calculations: id, kind, engine, functional, final energy (eV), source folder."""
    criteria: dict = {}
    if kind:
        criteria["kind"] = kind
    if engine:
        criteria["engine"] = engine
    docs = StoreFacade(get_settings()).query(
        "calculations", criteria, properties=list(CALCULATION_COLUMNS), sort={"calc_id": 1}
    )
    emit_rows(docs, CALCULATION_COLUMNS, as_json, as_csv)
