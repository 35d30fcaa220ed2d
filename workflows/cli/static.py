"""``epdi static``: the DFT-D3 static of a bare surface (energy, potential and density grids)."""

from __future__ import annotations

from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.schemas.calculations import CalculationDoc
from stores.settings import get_settings
from stores.validation import build_validated, check_choice
from workflows.cli.common import emit_mapping, fail, reports_input_errors
from workflows.engines import STATIC_ENGINES, EngineUnavailable, require_engine
from workflows.engines.gpaw_engine import require_gpaw
from workflows.engines.gpaw_settings import GpawSettings
from workflows.flows.local_run import run_flow
from workflows.jobs.static import gpaw_settings_for, static_workdir, surface_static
from workflows.structures.hosts import InputError, get_host, load_hosts
from workflows.structures.supercells import DEFAULT_SIZE
from workflows.structures.surfaces import (
    SurfaceBundle,
    describe_surface,
    store_surfaces,
    surface_from_request,
)


def resolve_surface(target: str, dopant: str | None, size: int, facade: StoreFacade) -> SurfaceBundle:
    """A surface from a stored id (``surf-...``) or from a host name, dopant and size."""
    table = load_hosts(facade.settings.hosts_file)
    if target.startswith("surf-"):
        docs = facade.query("surfaces", {"surface_id": target})
        if not docs:
            raise InputError(f"surface {target!r} is not in the store; build it with `epdi surfaces build`")
        doc = docs[0]
        bundle = describe_surface(
            get_host(doc["host"], table), doc["dopant"], doc["supercell"], doc["vacuum_ang"]
        )
        if bundle.surface.surface_id != target:
            raise InputError(f"surface {target!r} was built from another host table; rebuild it")
        return bundle
    return surface_from_request(target, dopant, size, hosts_file=facade.settings.hosts_file)


@reports_input_errors
def static(
    target: Annotated[str, typer.Argument(help="Surface id (surf-...) or host name, e.g. MoS2.")],
    dopant: Annotated[str | None, typer.Option(help="Dopant when TARGET is a host.")] = None,
    size: Annotated[int, typer.Option(help="Supercell n when TARGET is a host.")] = DEFAULT_SIZE,
    engine: Annotated[str, typer.Option(help="gpaw (embedded) or vasp.")] = "gpaw",
    h_ang: Annotated[float, typer.Option(help="GPAW grid spacing (Angstrom).")] = 0.2,
    basis: Annotated[str, typer.Option(help="GPAW LCAO basis.")] = "dzp",
    as_json: Annotated[bool, typer.Option("--json", help="Print the document summary as JSON.")] = False,
) -> None:
    """Run the surface static and store energy, potential (eV) and density (e/bohr^3) grids."""
    check_choice(engine, "--engine", STATIC_ENGINES)
    options = {"h_ang": h_ang, "basis": basis}
    if engine == "gpaw":  # the grid options, before the surface is built
        build_validated(GpawSettings, options, "invalid option", prefix="--")
    settings = get_settings()
    facade = StoreFacade(settings)
    bundle = resolve_surface(target, dopant, size, facade)
    gpaw = gpaw_settings_for(bundle.surface, **options) if engine == "gpaw" else None
    try:
        require_engine(engine)
        if gpaw is not None:
            require_gpaw(tuple(bundle.structure.symbol_set), gpaw)
    except EngineUnavailable as exc:
        fail(str(exc))
    store_surfaces([bundle], facade)
    workdir = static_workdir(settings.data_dir, bundle.surface.surface_id, engine)
    flow = surface_static(bundle, engine, gpaw, workdir=str(workdir))
    typer.echo(
        f"running the {engine} static of {bundle.surface.formula} ({bundle.surface.surface_id})", err=True
    )
    run_flow(flow, facade.job_store(), root_dir=workdir, what=f"static of {bundle.surface.surface_id}")
    (doc,) = facade.query(
        "calculations", {"surface_id": bundle.surface.surface_id, "kind": "static", "engine": engine}
    )
    doc = CalculationDoc(**doc)
    summary = {
        "calc_id": doc.calc_id,
        "surface_id": doc.surface_id,
        "engine": doc.engine,
        "functional": doc.functional,
        "energy_ev": doc.final_energy_ev,
        "vacuum_level_ev": doc.vacuum_level_ev,
        "grid_shape": list(doc.potential.shape) if doc.potential else None,
        "wall_time_s": doc.wall_time_s,
    }
    emit_mapping(summary, as_json)
