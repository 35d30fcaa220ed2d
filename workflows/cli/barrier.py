"""``epdi barrier``: the quick check a user runs first."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from stores.validation import build_validated
from workflows.cli.common import fail, reports_input_errors
from workflows.engines import DEFAULT_CINEB_IMAGES, MIN_CINEB_IMAGES, EngineUnavailable, check_cineb_images
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.gpaw_dynamics import GpawDynamicsSettings
from workflows.engines.gpaw_settings import GpawSettings
from workflows.flows.barrier import LITERATURE_PRISTINE_BAND_EV, run_barrier
from workflows.flows.engine_settings import gpaw_settings_for
from workflows.structures.supercells import DEFAULT_SIZE
from workflows.structures.surfaces import surface_from_request

#: engines of the one-off barrier (VASP runs through campaigns or `epdi vasp inputs`)
BARRIER_ENGINES = ("chgnet", "gpaw")


@reports_input_errors
def barrier(
    host: Annotated[str, typer.Argument(help="Host monolayer, e.g. MoS2.")],
    dopant: Annotated[str | None, typer.Option(help="Metal dopant; omit for pristine.")] = None,
    size: Annotated[int, typer.Option(help="n of the n x n x 1 supercell (>= 2).")] = DEFAULT_SIZE,
    engine: Annotated[str, typer.Option(help="Engine for relaxations and CINEB: chgnet or gpaw.")] = "chgnet",
    preconverge: Annotated[
        str | None, typer.Option(help="Run this engine first and start from its path (chgnet).")
    ] = None,
    images: Annotated[
        int, typer.Option(help=f"Intermediate CINEB images (>= {MIN_CINEB_IMAGES}).")
    ] = DEFAULT_CINEB_IMAGES,
    fmax: Annotated[float, typer.Option(help="Force threshold (eV/Angstrom).")] = 0.05,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda (CHGNet).")] = "auto",
    h_ang: Annotated[float, typer.Option(help="GPAW grid spacing (Angstrom), engine gpaw.")] = 0.25,
    basis: Annotated[str, typer.Option(help="GPAW LCAO basis, engine gpaw.")] = "dzp",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Relax the valleys of the hop nearest the dopant, run its CINEB, print E_b and the barrier (eV).

    ``--engine gpaw`` gives DFT (PBE + D3) labels with the k-mesh of the statics (k = ceil(6/n));
    ``--preconverge chgnet`` runs CHGNet + D3 first and starts GPAW from its valleys and path.
    """
    check_cineb_images(images)
    if engine not in BARRIER_ENGINES:
        if engine == "vasp":
            fail("engine 'vasp' runs hops through campaigns or `epdi vasp inputs`; here: chgnet, gpaw")
        fail(f"unknown engine {engine!r}; accepted: {', '.join(BARRIER_ENGINES)}")
    if preconverge not in (None, "chgnet") or preconverge == engine:
        fail(f"--preconverge {preconverge}: only chgnet preconverges, and only a DFT engine (--engine gpaw)")
    chgnet = ChgnetSettings(
        fmax_ev_ang=fmax, device=None if device == "auto" else device, show_progress=not as_json
    )
    if device != "auto":
        from epdi_ml.training.config import resolve_device

        resolve_device(device)  # cuda without a GPU is refused here, not inside the first job
    if engine == "gpaw":  # the grid options, before the surface is built
        build_validated(GpawSettings, {"h_ang": h_ang, "basis": basis}, "invalid option", prefix="--")
    settings = get_settings()
    bundle = surface_from_request(host, dopant, size, hosts_file=settings.hosts_file)
    labels = chgnet
    if engine == "gpaw":
        gpaw = gpaw_settings_for(bundle.surface, h_ang=h_ang, basis=basis)
        labels = GpawDynamicsSettings(gpaw=gpaw, fmax_ev_ang=fmax, show_progress=not as_json)
    try:
        result = run_barrier(
            bundle,
            labels,
            n_images=images,
            preconverge=chgnet if preconverge else None,
            facade=StoreFacade(settings),
            echo=lambda line: typer.echo(f"[barrier] {line}", err=True),
        )
    except EngineUnavailable as exc:
        fail(str(exc))
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{summary['host']} {summary['dopant'] or 'pristine'} {size}x{size}x1, engine {engine} "
        f"({summary['functional']})"
    )
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
    if summary["preconverge"]:
        typer.echo(
            f"  preconverged  : {summary['preconverge']} local barrier "
            f"{summary['preconverge_local_barrier_ev']:.3f} eV, "
            f"{summary['preconverge_force_calls']} force calls"
        )
    if dopant is None:
        low, high = LITERATURE_PRISTINE_BAND_EV
        typer.echo(f"  literature    : {low:.2f}-{high:.2f} eV for pristine MX2 monolayers")
