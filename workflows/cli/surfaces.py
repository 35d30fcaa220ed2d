"""``epdi surfaces``: build doped TMD supercells, their Li site graphs, and store them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.progress import progress
from stores.settings import get_settings
from stores.validation import check_output_dir
from workflows.cli.common import emit_mapping, emit_rows, reports_input_errors
from workflows.structures.hosts import PAPER_DOPANTS, check_dopant, get_host, load_hosts
from workflows.structures.supercells import (
    DEFAULT_SIZE,
    DEFAULT_VACUUM_ANG,
    MAX_SUPERCELL,
    MIN_VACUUM_ANG,
    check_supercell,
    check_vacuum,
    symmetry_check_estimate_s,
)
from workflows.structures.surfaces import (
    COUNT_KEYS,
    describe_surface,
    store_surfaces,
    surface_from_request,
    write_surface_files,
)

app = typer.Typer(help="Build doped TMD monolayer supercells and their Li site graphs.", no_args_is_help=True)

SIZE_HELP = f"n of the n x n x 1 supercell (2 to {MAX_SUPERCELL})."
VACUUM_HELP = f"Vacuum thickness along z (Angstrom, >= {MIN_VACUUM_ANG:g})."
#: announce the symmetry cross-check when it is expected to take longer than this (s)
SLOW_CHECK_S = 30.0

SUMMARY_COLUMNS = ("host", "dopant", *COUNT_KEYS, "surface_id")


@app.command("build")
@reports_input_errors
def build(
    host: Annotated[str, typer.Argument(help="Host monolayer, e.g. MoS2 (see `epdi surfaces hosts`).")],
    dopant: Annotated[
        str | None, typer.Option(help="Metal substituted for one host metal; omit for pristine.")
    ] = None,
    size: Annotated[int, typer.Option(help=SIZE_HELP)] = DEFAULT_SIZE,
    vacuum: Annotated[float, typer.Option(help=VACUUM_HELP)] = DEFAULT_VACUUM_ANG,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for POSCAR and sites.json (default: <data_dir>/surfaces/<id>)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    check: Annotated[
        bool, typer.Option(help="Cross-check the symmetry classes by an independent isometry search.")
    ] = True,
) -> None:
    """Build one surface, store its documents, and write POSCAR + sites.json."""
    settings = get_settings()
    check_supercell(size, "--size")
    check_vacuum(vacuum, "--vacuum")
    if out is not None:
        check_output_dir(out, "--out")
    _announce_check(size, 1, check)
    bundle = surface_from_request(
        host, dopant, size, vacuum, check_symmetry=check, hosts_file=settings.hosts_file
    )
    folder = out or check_output_dir(settings.folder("surfaces", bundle.surface.surface_id), "surface folder")
    store_surfaces([bundle], StoreFacade(settings))
    write_surface_files(bundle, folder)
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
    size: Annotated[int, typer.Option(help=SIZE_HELP)] = DEFAULT_SIZE,
    vacuum: Annotated[float, typer.Option(help=VACUUM_HELP)] = DEFAULT_VACUUM_ANG,
    check: Annotated[
        bool, typer.Option(help="Also run the independent symmetry cross-check (about 2 s per 6x6 surface).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries as JSON.")] = False,
) -> None:
    """Build and store the campaign set (default: 12 hosts x (9 dopants + pristine))."""
    settings = get_settings()
    check_supercell(size, "--size")
    check_vacuum(vacuum, "--vacuum")
    table = load_hosts(settings.hosts_file)
    host_names = _split(hosts) or list(table)
    specs = [get_host(name, table) for name in host_names]
    dopant_names = _split(dopants) or ["none", *PAPER_DOPANTS]
    checked = [check_dopant(d) for d in dopant_names]
    facade = StoreFacade(settings)
    start = time.perf_counter()
    jobs = [(spec, d) for spec in specs for d in checked if d != spec.metal]
    _announce_check(size, len(jobs), check)
    bundles = [
        describe_surface(spec, dopant, size, vacuum, check_symmetry=check)
        for spec, dopant in progress(jobs, desc="surfaces", unit="surface", show=not as_json)
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


def _announce_check(size: int, n_surfaces: int, check: bool) -> None:
    """Say on stderr how long the symmetry cross-check will take when that is long."""
    seconds = symmetry_check_estimate_s(size) * n_surfaces
    if check and seconds > SLOW_CHECK_S:
        typer.echo(
            f"note: the symmetry cross-check of {n_surfaces} {size}x{size}x1 surface(s) ({3 * size * size} "
            f"atoms each) takes about {seconds / 60:.0f} min; --no-check skips it",
            err=True,
        )


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
