"""``epdi surfaces``: build doped TMD supercells, their Li site graphs, and store them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_mapping, emit_rows, reports_input_errors
from workflows.hosts import PAPER_DOPANTS, check_dopant, get_host, load_hosts
from workflows.structures import DEFAULT_SIZE, DEFAULT_VACUUM_ANG
from workflows.surfaces import describe_surface, store_surfaces, surface_from_request, write_surface_files

app = typer.Typer(help="Build doped TMD monolayer supercells and their Li site graphs.", no_args_is_help=True)

SUMMARY_COLUMNS = (
    "host",
    "dopant",
    "formula",
    "natoms",
    "n_valleys",
    "n_saddles",
    "n_hops",
    "n_distinct_valleys",
    "n_distinct_saddles",
    "n_distinct_hops",
    "surface_id",
)


@app.command("build")
@reports_input_errors
def build(
    host: Annotated[str, typer.Argument(help="Host monolayer, e.g. MoS2 (see `epdi surfaces hosts`).")],
    dopant: Annotated[
        str | None, typer.Option(help="Metal substituted for one host metal; omit for pristine.")
    ] = None,
    size: Annotated[int, typer.Option(help="n of the n x n x 1 supercell (>= 2).")] = DEFAULT_SIZE,
    vacuum: Annotated[
        float, typer.Option(help="Vacuum thickness along z (Angstrom, >= 0).")
    ] = DEFAULT_VACUUM_ANG,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for POSCAR and sites.json (default: <data_dir>/surfaces/<id>)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    check: Annotated[
        bool, typer.Option(help="Cross-check the symmetry classes by an independent isometry search.")
    ] = True,
) -> None:
    """Build one surface, write POSCAR + sites.json, and store its documents."""
    settings = get_settings()
    bundle = surface_from_request(
        host, dopant, size, vacuum, check_symmetry=check, hosts_file=settings.hosts_file
    )
    folder = out or settings.data_dir / "surfaces" / bundle.surface.surface_id
    write_surface_files(bundle, folder)
    store_surfaces([bundle], StoreFacade(settings))
    summary = bundle.summary() | {"out_dir": str(folder), "symmetry_checked": check}
    emit_mapping(summary, as_json)


@app.command("campaign-set")
@reports_input_errors
def campaign_set(
    hosts: Annotated[
        list[str] | None, typer.Option("--hosts", help="Hosts (repeat or comma-separate); default: all.")
    ] = None,
    dopants: Annotated[
        list[str] | None,
        typer.Option(
            "--dopants",
            help="Dopants (repeat or comma-separate; 'none' = pristine); default: the paper's 9 + pristine.",
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="n of the n x n x 1 supercell (>= 2).")] = DEFAULT_SIZE,
    vacuum: Annotated[
        float, typer.Option(help="Vacuum thickness along z (Angstrom, >= 0).")
    ] = DEFAULT_VACUUM_ANG,
    check: Annotated[
        bool, typer.Option(help="Also run the independent symmetry cross-check (about 2 s per 6x6 surface).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries as JSON.")] = False,
) -> None:
    """Build and store the campaign set (default: 12 hosts x (9 dopants + pristine))."""
    settings = get_settings()
    table = load_hosts(settings.hosts_file)
    host_names = _split(hosts) or list(table)
    specs = [get_host(name, table) for name in host_names]
    dopant_names = _split(dopants) or ["none", *PAPER_DOPANTS]
    checked = [check_dopant(d) for d in dopant_names]
    facade = StoreFacade(settings)
    start = time.perf_counter()
    jobs = [(spec, d) for spec in specs for d in checked if d != spec.metal]
    bundles = [
        describe_surface(spec, dopant, size, vacuum, check_symmetry=check)
        for spec, dopant in tqdm(jobs, desc="surfaces", unit="surface", disable=as_json)
    ]
    store_surfaces(bundles, facade)
    rows = [b.summary() for b in bundles]
    elapsed = time.perf_counter() - start
    if as_json:
        typer.echo(json.dumps(rows))
        return
    emit_rows(rows, SUMMARY_COLUMNS, as_json=False, as_csv=False)
    typer.echo(f"{len(rows)} surfaces built and stored in {elapsed:.1f} s ({settings.data_dir})")


@app.command("hosts")
@reports_input_errors
def hosts(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the host table (phase, lattice constant, layer geometry, source)."""
    rows = [h.model_dump() for h in load_hosts(get_settings().hosts_file).values()]
    emit_rows(
        rows,
        ("name", "phase", "metal", "anion", "a_ang", "anion_height_ang", "group", "source"),
        as_json,
        False,
    )


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
