"""``epdi bench``: commands that print measured figures (no assertions, no thresholds)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.barrier import run_barrier
from workflows.cli.common import reports_input_errors
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.hosts import check_dopant, get_host, load_hosts
from workflows.surfaces import describe_surface

app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)

#: force-call budget for one hop CINEB of a 6x6x1 cell with the embedded engine (issue target)
HOP_FORCE_CALL_TARGET = 200


@app.command("hop")
@reports_input_errors
def hop(
    host: Annotated[str, typer.Option(help="Host monolayer.")] = "MoS2",
    dopant: Annotated[str | None, typer.Option(help="Dopant ('none' for pristine).")] = "Co",
    size: Annotated[int, typer.Option(help="Supercell n.")] = 6,
    images: Annotated[int, typer.Option(help="Intermediate images.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Force calls and wall time of the hop nearest the dopant (embedded engine: CHGNet + D3)."""
    settings = get_settings()
    bundle = describe_surface(get_host(host, load_hosts(settings.hosts_file)), check_dopant(dopant), size)
    result = run_barrier(bundle, "chgnet", ChgnetSettings(show_progress=True), images, StoreFacade(settings))
    s = result.summary()
    figures = {
        "surface": f"{s['host']} {s['dopant'] or 'pristine'} {size}x{size}x1",
        "natoms_with_li": bundle.surface.natoms + 1,
        "neb_force_calls": s["neb_force_calls"],
        "neb_force_call_target": HOP_FORCE_CALL_TARGET,
        "valley_force_calls": s["total_force_calls"] - s["neb_force_calls"],
        "wall_time_s": s["wall_time_s"],
        "seconds_per_force_call": round(s["wall_time_s"] / max(1, s["total_force_calls"]), 2),
        "barrier_ev": s["barrier_ev"],
        "neb_converged": s["neb_converged"],
    }
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        typer.echo(f"{key:>24}: {value}")
