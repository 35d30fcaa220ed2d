"""``epdi import``: bring finished calculations from other codes into the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from stores.vasp_import import VaspImportError, import_vasp
from workflows.cli.common import fail, reports_input_errors

app = typer.Typer(help="Import finished calculations into the store.", no_args_is_help=True)

#: exit code when a file of the imported folder is bad. Not 2: the command line was fine, the data
#: was not (2 stays reserved for usage errors, as click uses it).
EXIT_BAD_FILE = 1

IMPORT_COLUMNS = ("calc_id", "kind", "formula", "natoms", "final_energy_ev", "functional", "source_path")


@app.command("vasp")
@reports_input_errors
def vasp(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="Static/relax folder, or NEB folder with 00..0N image folders."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stored document (without the structure).")
    ] = False,
) -> None:
    """Import one finished VASP folder (energy, structure, LOCPOT/CHGCAR grids) into ``calculations``.

    For an NEB folder (``00`` .. ``0N``) the image energies and ``barrier_ev`` (highest image minus
    image 00) are reported; end points without vasprun.xml/OUTCAR take their energy from an OSZICAR.
    A gap in the image folders or images with different atom counts is refused (exit 2); an
    unreadable or unfinished file is a bad-data error (exit 1).
    """
    try:
        doc = import_vasp(directory, StoreFacade(get_settings()))
    except VaspImportError as exc:
        fail(str(exc), code=EXIT_BAD_FILE)
    data = doc.model_dump(mode="json", exclude={"structure"})
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key in IMPORT_COLUMNS:
        typer.echo(f"{key:>17}: {data[key]}")
    if doc.kind == "neb":  # energies in eV; the barrier is the highest image minus image 00
        folders = doc.settings.get("image_folders", [])
        indices = doc.settings.get("image_indices", [])
        energies = ", ".join(
            f"{folders[i]} {e:.6f}" for i, e in zip(indices, doc.image_energies_ev or [], strict=True)
        )
        typer.echo(f"{'image_energies_ev':>17}: {energies}")
        typer.echo(f"{'barrier_ev':>17}: {'-' if doc.barrier_ev is None else round(doc.barrier_ev, 6)}")
    for warning in doc.settings.get("warnings", []):
        typer.echo(f"{'warning':>17}: {warning}")
