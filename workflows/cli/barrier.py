"""``epdi barrier``: the quick check a user runs first."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.barrier import LITERATURE_PRISTINE_BAND_EV, run_barrier
from workflows.cli.common import fail, reports_input_errors
from workflows.engines import EngineUnavailable
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.surfaces import surface_from_request


@reports_input_errors
def barrier(
    host: Annotated[str, typer.Argument(help="Host monolayer, e.g. MoS2.")],
    dopant: Annotated[str | None, typer.Option(help="Metal dopant; omit for pristine.")] = None,
    size: Annotated[int, typer.Option(help="n of the n x n x 1 supercell (>= 2).")] = 4,
    engine: Annotated[str, typer.Option(help="Engine for relaxations and CINEB.")] = "chgnet",
    images: Annotated[int, typer.Option(help="Intermediate CINEB images (>= 3 recommended).")] = 3,
    fmax: Annotated[float, typer.Option(help="Force threshold (eV/Angstrom).")] = 0.05,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Relax the valleys of the hop nearest the dopant, run its CINEB, print E_b and the barrier (eV)."""
    settings = get_settings()
    bundle = surface_from_request(host, dopant, size, hosts_file=settings.hosts_file)
    chgnet = ChgnetSettings(fmax_ev_ang=fmax, device=None if device == "auto" else device, show_progress=True)
    try:
        result = run_barrier(bundle, engine, chgnet, n_images=images, facade=StoreFacade(settings))
    except EngineUnavailable as exc:
        fail(str(exc))
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"{summary['host']} {summary['dopant'] or 'pristine'} {size}x{size}x1, engine {engine}")
    for v in summary["valleys"]:
        flag = "  (Li left its valley)" if v["left_valley"] else ""
        typer.echo(f"  E_b valley {v['label']:>3}: {v['binding_energy_ev']:8.3f} eV{flag}")
    typer.echo(f"  E_b saddle    : {summary['saddle_binding_energy_ev']:8.3f} eV")
    typer.echo(
        f"  local barrier : {summary['local_barrier_ev']:8.3f} eV (saddle above the lower valley, "
        f"{summary['lowest_valley']})"
    )
    typer.echo(
        f"  forward / reverse: {summary['forward_barrier_ev']:.3f} / {summary['reverse_barrier_ev']:.3f} eV "
        "(saddle above the T_M / H valley)"
    )
    if summary["flags"]:
        typer.echo(f"  flags         : {', '.join(summary['flags'])}")
    typer.echo(
        f"  CINEB         : {'converged' if summary['neb_converged'] else 'NOT converged'}, "
        f"{summary['neb_force_calls']} force calls, {summary['wall_time_s']} s in all"
    )
    if dopant is None:
        low, high = LITERATURE_PRISTINE_BAND_EV
        typer.echo(f"  literature    : {low:.2f}-{high:.2f} eV for pristine MX2 monolayers")
