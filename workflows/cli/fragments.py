"""``epdi fragments`` (potential maps and image fragments) and ``epdi analyze`` (MEP correlations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from epdi_ml.fragments import errors as fragment_errors
from epdi_ml.fragments.colour_scales import DEFAULT_DATASET
from epdi_ml.fragments.crops import DEFAULT_PIXELS, check_crop
from epdi_ml.fragments.mep_analysis import (
    NoBindingEnergies,
    collect_rows,
    correlations,
    plot_mep_vs_eb,
    plot_nve_mep_vs_eb,
)
from epdi_ml.fragments.potential_map import NoVacuumError
from stores.facade import StoreFacade
from stores.progress import progress
from stores.settings import get_settings
from stores.validation import check_choice, check_output_dir, check_output_file, check_positive
from workflows.cli.common import fail, reports_input_errors
from workflows.engines import ENGINES

app = typer.Typer(
    help="Potential maps on the density isosurface and fragments at Li sites.", no_args_is_help=True
)
analyze_app = typer.Typer(help="Analyses of the stored fragments and energies.", no_args_is_help=True)

#: exit code when an input the command needs is not in the store yet
EXIT_MISSING = 1


@app.command("build")
@reports_input_errors
def build(
    surface: Annotated[list[str] | None, typer.Option("--surface", help="Surface id (repeatable).")] = None,
    all_surfaces: Annotated[
        bool, typer.Option("--all", help="Every surface with a static calculation.")
    ] = False,
    size_ang: Annotated[
        float | None, typer.Option(help="Crop side (Angstrom); default 2 x the anion-anion distance.")
    ] = None,
    pixels: Annotated[int, typer.Option(help="Pixels along each crop side.")] = DEFAULT_PIXELS,
    dataset: Annotated[str, typer.Option(help="Dataset whose colour scale is used.")] = DEFAULT_DATASET,
    rescale: Annotated[
        bool, typer.Option(help="Recompute the dataset colour scale from every stored map.")
    ] = False,
    symmetry_tol: Annotated[
        float, typer.Option(help="Largest pixel difference (eV) allowed between symmetry duplicates.")
    ] = fb.SYMMETRY_TOLERANCE_EV,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compute the potential map and the valley/saddle fragments of surfaces and store them."""
    if not surface and not all_surfaces:
        fail("give --surface ID (repeatable) or --all")
    check_crop(size_ang, pixels, ("--size-ang", "--pixels"))
    check_positive(symmetry_tol, "--symmetry-tol", " eV")
    facade = StoreFacade(get_settings())
    if all_surfaces:
        ids = sorted(
            {d["surface_id"] for d in facade.query("calculations", {"kind": "static"}) if d.get("surface_id")}
        )
        ids = [i for i in ids if fb.find_static(facade, i) is not None]
        if not ids:
            fail(
                "no surface has a static calculation with its grids in the store (a compact archive "
                "carries none): run `epdi static SURFACE_ID` first",
                EXIT_MISSING,
            )
    else:
        ids = list(surface or [])
    results = []
    try:
        for sid in progress(ids, desc="maps and fragments", unit="surface", show=len(ids) >= 2):
            results.append(fb.cut_surface(facade, sid, size_ang, pixels, tolerance_ev=symmetry_tol))
    except fragment_errors.MissingInputError as exc:
        fail(str(exc), EXIT_MISSING)
    except (NoVacuumError, fragment_errors.SymmetryCheckError) as exc:
        fail(str(exc))
    scale, created = colour_scales.choose_colour_scale(facade, [r.map_doc for r in results], dataset, rescale)
    summary = []
    for result in results:
        fb.store_fragments(facade, result, scale)
        docs = result.docs
        summary.append(
            {
                "surface_id": result.surface["surface_id"],
                "map_id": result.map_doc.map_id,
                "map_shape": list(result.map_doc.shape),
                "n_fragments": len(docs),
                "n_valleys": sum(d.kind == "valley" for d in docs),
                "n_saddles": sum(d.kind == "saddle" for d in docs),
                "n_distinct": sum(d.is_representative for d in docs),
                "size_ang": round(result.size_ang, 4),
                "pixels": pixels,
                "clipped_pixels": result.clipped_pixels,
                "symmetry_max_diff_ev": round(max(result.symmetry_diff_ev.values(), default=0.0), 6),
                "mep_range_ev": [round(float(result.meps.min()), 4), round(float(result.meps.max()), 4)],
            }
        )
    report = {
        "colour_scale": {
            "scale_id": scale.scale_id,
            "vmin_ev": scale.vmin_ev,
            "vmax_ev": scale.vmax_ev,
            "cmap": scale.cmap,
            "created": created,
        },
        "surfaces": summary,
    }
    built_ids = {r["surface_id"] for r in summary}
    stale = sorted(
        {
            d["surface_id"]
            for d in facade.query("fragments", properties=["surface_id", "colour_scale"])
            if d["surface_id"] not in built_ids
            and tuple(d["colour_scale"]) != (scale.vmin_ev, scale.vmax_ev, scale.cmap)
        }
    )
    report["surfaces_on_another_scale"] = stale
    if as_json:
        typer.echo(json.dumps(report))
        return
    if stale:
        typer.echo(
            f"warning: {len(stale)} other surfaces were coloured on an earlier scale; "
            "run `epdi fragments build --all` to recolour them",
            err=True,
        )
    c = report["colour_scale"]
    typer.echo(
        f"colour scale {c['scale_id']} ({'new' if created else 'stored'}): "
        f"{c['vmin_ev']:.4f} .. {c['vmax_ev']:.4f} eV, {c['cmap']}"
    )
    for row in summary:
        typer.echo(
            f"{row['surface_id']}: {row['n_fragments']} fragments ({row['n_valleys']} valleys, "
            f"{row['n_saddles']} saddles, {row['n_distinct']} distinct), {row['clipped_pixels']} pixels "
            f"clipped, symmetry max diff {row['symmetry_max_diff_ev']:.2e} eV"
        )


def _find_map(facade: StoreFacade, ident: str) -> dict | None:
    for criteria in ({"map_id": ident}, {"surface_id": ident}):
        docs = facade.query("potential_maps", criteria)
        if docs:
            return max(docs, key=lambda d: str(d.get("updated_at", "")))
    return None


@app.command("show")
@reports_input_errors
def show(
    ident: Annotated[str, typer.Argument(help="Surface id or potential-map id.")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    tile: Annotated[int, typer.Option(help="Cells drawn along a and b (periodic tiling).")] = 1,
) -> None:
    """Draw a stored potential map with its valleys (T_M, H), saddles, hop segments and dopant."""
    from epdi_ml.report.plots import site_map_plot

    if tile < 1:
        fail(f"--tile must be >= 1, got {tile}")
    check_output_file(out, "--out")
    facade = StoreFacade(get_settings())
    doc = _find_map(facade, ident)
    if doc is None:
        fail(
            f"no potential map for {ident}: run `epdi fragments build --surface {ident}` first", EXIT_MISSING
        )
    pmap = fb.load_map(facade, doc)
    sid = doc.get("surface_id")
    sites = facade.query("sites", {"surface_id": sid}) if sid else []
    hops = facade.query("hops", {"surface_id": sid}) if sid else []
    surfaces = facade.query("surfaces", {"surface_id": sid}) if sid else []
    surface = surfaces[0] if surfaces else {}
    index = surface.get("dopant_site_index")
    scale = colour_scales.get_colour_scale(facade)
    out.parent.mkdir(parents=True, exist_ok=True)
    site_map_plot(
        out,
        pmap,
        sites,
        hops,
        colour_scale=(scale.vmin_ev, scale.vmax_ev, scale.cmap) if scale else None,
        dopant_xy=None if index is None else surface["structure"]["sites"][index]["xyz"][:2],
        dopant=surface.get("dopant"),
        title=f"{sid}  isovalue {doc['isovalue_e_per_bohr3']} e/bohr^3",
        tile=tile,
    )
    typer.echo(str(out))


@analyze_app.command("mep")
@reports_input_errors
def analyze_mep(
    as_json: Annotated[bool, typer.Option("--json", help="Print the correlations as JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for the JSON and the PNG figures.")] = None,
    engine: Annotated[str | None, typer.Option(help="Only energies from this engine.")] = None,
) -> None:
    """Pearson R(MEP, E_b) per kind, host group and dopant, and R(N_ve x MEP, E_b) (paper Figs. 2-3)."""
    if engine is not None:
        check_choice(engine, "--engine", ENGINES)
    if out is not None:
        check_output_dir(out, "--out")
    facade = StoreFacade(get_settings())
    try:
        rows = collect_rows(facade, engine)
    except NoBindingEnergies as exc:
        fail(str(exc), EXIT_MISSING)
    result = correlations(rows)
    folder = out or get_settings().folder("analysis", "mep")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mep_correlations.json").write_text(json.dumps(result | {"rows": rows}, indent=1))
    figures = [
        plot_mep_vs_eb(rows, folder / "mep_vs_eb.png"),
        plot_nve_mep_vs_eb(rows, folder / "nve_mep_vs_eb.png"),
    ]
    result["files"] = [str(folder / "mep_correlations.json"), *map(str, figures)]
    if as_json:
        typer.echo(json.dumps(result))
        return
    for kind, stats in result["mep"].items():
        typer.echo(f"{kind}: R(MEP, E_b) = {stats['all']['r']} (n = {stats['all']['n']})")
        for group, s in stats["by_group"].items():
            typer.echo(f"  {group}: R = {s['r']} (n = {s['n']})")
    both = result["nve_mep"]["both"]
    typer.echo(f"R(N_ve x MEP, E_b) = {both['all']['r']}; without Al and V: {both['without_Al_V']['r']}")
    for path in result["files"]:
        typer.echo(f"wrote {path}")
