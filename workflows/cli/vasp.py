"""``epdi vasp``: write VASP inputs (no POTCARs: ``POTCAR.spec``) for a surface's static, relax or CINEB.

``--kind neb --preconverge chgnet`` starts the VASP NEB from the converged CHGNet + D3 path of the hop
nearest the dopant (computed, or reused from the store), for users who run VASP by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pymatgen.core import Structure

from stores.settings import get_settings
from stores.validation import check_output_dir
from workflows.cli.common import reports_input_errors
from workflows.engines import DEFAULT_CINEB_IMAGES, MIN_CINEB_IMAGES, check_cineb_images, require_engine
from workflows.structures.hosts import InputError
from workflows.structures.li_sites import LI_HEIGHT_ANG, add_li, hop_nearest_dopant
from workflows.structures.supercells import DEFAULT_SIZE
from workflows.structures.surfaces import SurfaceBundle, surface_from_request

app = typer.Typer(
    help="VASP inputs for the EPDI steps (POTCAR.spec instead of POTCARs).", no_args_is_help=True
)


def nearest_dopant_valley(bundle: SurfaceBundle) -> int:
    """Index of the valley nearest the dopant (the first valley when pristine)."""
    valleys = [s for s in bundle.sites if s.kind == "valley"]
    distances = [s.dopant_distance_ang for s in valleys]
    if any(d is None for d in distances):
        return 0
    return int(np.argmin(distances))


def vasp_structures(bundle: SurfaceBundle, kind: str, images: int) -> list[Structure]:
    """Structures for a ``kind`` job on ``bundle``.

    ``static``: the bare slab. ``relax``: Li at the valley nearest the dopant. ``neb``: Li at both
    valleys of the hop nearest the dopant, with ``images`` IDPP images between them.
    """
    from workflows.engines.vasp_inputs import idpp_images  # pymatgen's VASP sets: at the command

    valleys = [s for s in bundle.sites if s.kind == "valley"]
    if kind == "static":
        return [bundle.structure]
    if kind == "relax":
        site = valleys[nearest_dopant_valley(bundle)]
        return [add_li(bundle.structure, site.cart_coords_ang, LI_HEIGHT_ANG)]
    hop = bundle.hops[hop_nearest_dopant(bundle)]
    start, end = (
        add_li(bundle.structure, valleys[i].cart_coords_ang, LI_HEIGHT_ANG) for i in hop.valley_indices
    )
    return idpp_images(start, end, images)


@app.command("inputs")
@reports_input_errors
def inputs(
    host: Annotated[str, typer.Argument(help="Host monolayer, e.g. MoS2.")],
    kind: Annotated[str, typer.Option(help="static (bare slab), relax (Li at a valley) or neb (CINEB).")],
    out: Annotated[Path, typer.Option(help="Folder to write the inputs into.")],
    dopant: Annotated[str | None, typer.Option(help="Substituted metal; omit for pristine.")] = None,
    size: Annotated[int, typer.Option(help="n of the n x n x 1 supercell (>= 2).")] = DEFAULT_SIZE,
    images: Annotated[
        int, typer.Option(help=f"Intermediate CINEB images (neb only, >= {MIN_CINEB_IMAGES}).")
    ] = DEFAULT_CINEB_IMAGES,
    kpoints: Annotated[
        int | None, typer.Option(help="In-plane k divisions of the Gamma k x k x 1 mesh (default ceil(6/n)).")
    ] = None,
    preconverge: Annotated[
        str | None,
        typer.Option(
            help="neb only: 'chgnet' runs the CHGNet + D3 valleys and CINEB first (reusing the store) and "
            "writes its converged path as the 00..0N POSCARs."
        ),
    ] = None,
    fmax: Annotated[
        float, typer.Option(help="CHGNet force threshold with --preconverge (eV/Angstrom).")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write INCAR, KPOINTS, POSCAR(s) and POTCAR.spec for one surface (no VASP or POTCARs needed).

    relax and neb inputs hold the bottom anion layer fixed (selective dynamics), as the neb step does.
    """
    # custodian, atomate2 and the CHGNet engine load here, not for `epdi vasp --help`
    from workflows.engines.vasp_engine import VASP_KINDS
    from workflows.engines.vasp_inputs import write_vasp_inputs

    if kind not in VASP_KINDS:
        raise InputError(f"unknown --kind {kind!r}; accepted: {', '.join(VASP_KINDS)}")
    if kind == "neb":
        check_cineb_images(images)
    if kpoints is not None and kpoints < 1:
        raise InputError(f"--kpoints {kpoints}: k divisions must be >= 1")
    if preconverge is not None and preconverge != "chgnet":
        raise InputError(f"--preconverge {preconverge!r}: accepted: chgnet")
    if preconverge is not None and kind != "neb":
        raise InputError(f"--preconverge chgnet needs --kind neb (got --kind {kind})")
    if preconverge is not None and not 0 < fmax <= 0.5:
        raise InputError(f"--fmax {fmax}: give a force threshold in (0, 0.5] eV/Angstrom")
    check_output_dir(out, "--out")
    settings = get_settings()
    bundle = surface_from_request(host, dopant, size, hosts_file=settings.hosts_file)
    extra: dict = {}
    if preconverge is None:
        structures = vasp_structures(bundle, kind, images)
    else:
        require_engine("chgnet")
        from workflows.engines.chgnet_engine import ChgnetSettings
        from workflows.flows.surface_hops import chgnet_path

        hop = hop_nearest_dopant(bundle)
        typer.echo(f"CHGNet+D3 valleys and CINEB of hop {hop}, {images} images (reuses the store)", err=True)
        chgnet = chgnet_path(bundle, hop, images, ChgnetSettings(fmax_ev_ang=fmax))
        structures = [Structure.from_dict(s) for s in chgnet.image_structures or []]
        extra = {
            "preconverge": "chgnet",
            "chgnet_neb_id": chgnet.neb_id,
            "chgnet_forward_barrier_ev": round(chgnet.forward_barrier_ev, 4),
            "chgnet_converged": chgnet.converged,
        }
    written = write_vasp_inputs(kind, structures, out, size=size, kpoints=kpoints)
    summary = {
        "kind": kind,
        "surface_id": bundle.surface.surface_id,
        "formula": structures[0].composition.formula,
        "natoms": len(structures[0]),
        "n_images": len(structures) - 2 if kind == "neb" else None,
        "out_dir": str(out),
        "files": len(written),
    } | extra
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        typer.echo(f"{key:>12}: {value}")
