"""``epdi hops compute``: every distinct valley and hop of a surface (the labels of a dataset)."""

from __future__ import annotations

from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.schemas.calculations import NebDoc, ValleyDoc
from stores.settings import get_settings
from workflows.cli.common import emit_rows, fail, reports_input_errors
from workflows.cli.static import resolve_surface
from workflows.engines import (
    DEFAULT_CINEB_IMAGES,
    MIN_CINEB_IMAGES,
    EngineUnavailable,
    check_cineb_images,
    require_engine,
)
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.flows.local_run import run_flow
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.structures.supercells import DEFAULT_SIZE
from workflows.structures.surfaces import store_surfaces

app = typer.Typer(help="Li hops: CINEB labels of surfaces.", no_args_is_help=True)

COLUMNS = (
    "hop_index",
    "multiplicity",
    "dopant_distance_ang",
    "start_eb_ev",
    "end_eb_ev",
    "saddle_eb_ev",
    "forward_barrier_ev",
    "reverse_barrier_ev",
    "converged",
    "left_valley",
    "force_calls",
)


@app.command("compute")
@reports_input_errors
def compute(
    target: Annotated[str, typer.Argument(help="Surface id (surf-...) or host name, e.g. MoS2.")],
    dopant: Annotated[str | None, typer.Option(help="Dopant when TARGET is a host.")] = None,
    size: Annotated[int, typer.Option(help="Supercell n when TARGET is a host.")] = DEFAULT_SIZE,
    images: Annotated[
        int, typer.Option(help=f"Intermediate CINEB images (>= {MIN_CINEB_IMAGES}).")
    ] = DEFAULT_CINEB_IMAGES,
    fmax: Annotated[float, typer.Option(help="Force threshold (eV/Angstrom).")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Relax every valley class and run one CINEB per distinct hop (CHGNet + D3); rerun to resume."""
    check_cineb_images(images)
    settings = ChgnetSettings(fmax_ev_ang=fmax, show_progress=not (as_json or as_csv))
    facade = StoreFacade(get_settings())
    bundle = resolve_surface(target, dopant, size, facade)
    try:
        require_engine("chgnet")
    except EngineUnavailable as exc:
        fail(str(exc))
    store_surfaces([bundle], facade)
    flow = SurfaceHopsMaker(settings=settings, n_images=images).make(bundle)
    responses = run_flow(flow, facade.job_store(), what=f"hops of {bundle.surface.surface_id}")
    outputs = [responses[job.uuid][1].output for job in flow.jobs]
    valleys = {v.site_index: v for v in outputs if isinstance(v, ValleyDoc)}
    nebs = {n.hop_id: n for n in outputs if isinstance(n, NebDoc)}
    rows = []
    for hop in bundle.hops:
        neb = nebs.get(hop.hop_id)
        if neb is None:
            continue
        ends = [valleys[v] for v in hop.valley_indices]
        rows.append(
            {
                "hop_index": hop.index,
                "hop_id": hop.hop_id,
                "multiplicity": hop.symmetry.multiplicity,
                "dopant_distance_ang": hop.dopant_distance_ang,
                "start_eb_ev": round(ends[0].binding_energy_ev, 4),
                "end_eb_ev": round(ends[1].binding_energy_ev, 4),
                "saddle_eb_ev": round(neb.saddle_binding_energy_ev, 4),
                "forward_barrier_ev": round(neb.forward_barrier_ev, 4),
                "reverse_barrier_ev": round(neb.reverse_barrier_ev, 4),
                "converged": neb.converged,
                "left_valley": any(e.left_valley for e in ends),
                "force_calls": neb.force_calls,
            }
        )
    emit_rows(rows, COLUMNS, as_json, as_csv)
    if not (as_json or as_csv):
        flagged = [r["hop_index"] for r in rows if not r["converged"] or r["left_valley"]]
        typer.echo(
            f"{len(rows)} distinct hops of {bundle.surface.formula} ({bundle.surface.surface_id}); "
            f"flagged (unconverged or Li left its valley): {flagged or 'none'}"
        )
