"""``epdi dataset``: export, load and summarise labelled datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.dataset_summary import dataset_summary
from stores.dataset_io import DatasetFormatError, export_dataset, load_dataset
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_mapping, emit_rows, fail, reports_input_errors

app = typer.Typer(help="Datasets: export to one archive, load into any store, summary.", no_args_is_help=True)

#: where the packaged reference dataset lives (shipped once it has been generated)
REFERENCE_ARCHIVE = Path(__file__).resolve().parents[2] / "epdi_ml" / "data" / "reference.tar.gz"


@app.command("export")
@reports_input_errors
def export(
    path: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz).")],
    surface: Annotated[
        list[str] | None, typer.Option("--surface", help="Only these surfaces (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Write surfaces, calculations, labels, maps, fragments and their arrays to one archive."""
    try:
        manifest = export_dataset(StoreFacade(get_settings()), path, surface)
    except DatasetFormatError as exc:
        fail(str(exc), code=1)
    emit_mapping(manifest | {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 2)}, as_json)


@app.command("load")
@reports_input_errors
def load(
    source: Annotated[str, typer.Argument(help="An archive path, or 'reference' for the packaged dataset.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Load an exported dataset into the configured store (loading twice changes nothing)."""
    path = REFERENCE_ARCHIVE if source == "reference" else Path(source)
    if not path.is_file():
        hint = (
            "the reference dataset is not packaged in this version"
            if source == "reference"
            else "no such file"
        )
        fail(f"{path}: {hint}; export one with `epdi dataset export PATH`", code=1)
    try:
        manifest = load_dataset(StoreFacade(get_settings()), path)
    except DatasetFormatError as exc:
        fail(str(exc), code=1)
    emit_mapping(manifest, as_json)


@app.command("summary")
@reports_input_errors
def summary(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Counts, barrier ranges per host, pristine barriers beside literature, outliers listed."""
    report = dataset_summary(StoreFacade(get_settings()))
    if as_json:
        emit_mapping(report, True)
        return
    emit_mapping(report["counts"], False)
    rows = [{"host": host} | info for host, info in report["hosts"].items()]
    emit_rows(
        rows,
        (
            "host",
            "surfaces",
            "valley_eb_range_ev",
            "hop_barrier_range_ev",
            "pristine_barrier_ev",
            "literature_ev",
            "literature_source",
        ),
        False,
        False,
    )
    typer.echo(f"outliers ({len(report['outliers'])}):")
    for item in report["outliers"]:
        where = item.get("site_id") or item.get("hop_id")
        typer.echo(f"  {item['kind']} {where} on {item['surface_id']}: {item['issue']}")
