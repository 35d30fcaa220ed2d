"""``epdi dataset``: export, load and summarise labelled datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.analysis.dataset_summary import dataset_summary
from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from epdi_ml.fragments import errors as fragment_errors
from stores.dataset_io import DatasetFormatError, export_dataset, load_dataset
from stores.facade import StoreFacade
from stores.progress import progress
from stores.settings import get_settings
from stores.validation import check_output_dir, check_output_file
from workflows.cli.common import emit_mapping, emit_rows, fail, reports_input_errors
from workflows.flows.campaign_spec import load_spec
from workflows.flows.dataset import ALL_STEPS, STEPS, generate

app = typer.Typer(help="Datasets: export to one archive, load into any store, summary.", no_args_is_help=True)

#: folder of the packaged datasets: one compact archive per surface (``epdi dataset generate NAME``)
PACKAGED_DIR = Path(__file__).resolve().parents[2] / "epdi_ml" / "data"

#: packaged datasets: the CHGNet-labelled reference set and the GPAW-labelled DFT check set
PACKAGED_SETS = ("reference", "dft-check")


@app.command("generate")
@reports_input_errors
def generate_cmd(
    spec: Annotated[str, typer.Argument(help="Campaign spec YAML, or a packaged spec name (reference).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the per-surface archives (default DATA_DIR/datasets/NAME)."),
    ] = None,
    steps: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated steps to run, in order: {','.join(STEPS)}; `partial` writes what a "
            "surface holds so far to OUT/partial/ (a later run resumes from it on any machine)."
        ),
    ] = ",".join(STEPS),
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only this surface, e.g. MoS2-Co (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Progress bars of each optimisation.")] = True,
) -> None:
    """Compute a labelled dataset: statics, every distinct hop by CINEB, fragments; one archive per surface.

    Rerun the same command to resume: finished jobs are reused from the store and surfaces whose
    archive exists are skipped. Failures are listed at the end; the other surfaces go on.
    """
    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    chosen = tuple(s.strip() for s in steps.split(",") if s.strip())
    unknown = [s for s in chosen if s not in ALL_STEPS]
    if unknown:
        fail(f"unknown step(s) {', '.join(unknown)}; accepted: {', '.join(ALL_STEPS)}")
    names = [f"{host}-{dopant or 'pristine'}" for host, dopant in campaign.surfaces()]
    strangers = [name for name in only or [] if name not in names]
    if strangers:
        fail(f"--only {', '.join(strangers)}: not a surface of {campaign.name}; accepted: {', '.join(names)}")
    campaign.check_runnable(settings.hosts_file)
    folder = check_output_dir(out or settings.folder("datasets", campaign.name), "--out")
    outcomes = generate(
        campaign,
        StoreFacade(settings),
        folder,
        chosen,
        only,
        progress,
        echo=lambda m: typer.echo(m, err=True),
    )
    rows = [
        {
            "surface": o.name,
            "status": o.status,
            "seconds": round(sum(o.seconds.values()), 1),
            "message": o.message,
        }
        for o in outcomes
    ]
    emit_rows(rows, ("surface", "status", "seconds", "message"), False, False)
    failed = [o.name for o in outcomes if o.status == "failed"]
    typer.echo(f"archives in {folder}; failed: {', '.join(failed) or 'none'}")
    if failed:
        raise typer.Exit(1)


@app.command("export")
@reports_input_errors
def export(
    path: Annotated[Path, typer.Argument(help="Archive to write (.tar.gz).")],
    surface: Annotated[
        list[str] | None, typer.Option("--surface", help="Only these surfaces (repeatable).")
    ] = None,
    compact: Annotated[
        bool, typer.Option(help="Leave out 3D grids and fragment stacks (recut from the maps on load).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Write surfaces, calculations, labels, maps, fragments and their arrays to one archive."""
    check_output_file(path, "archive")
    facade = StoreFacade(get_settings())
    if surface:
        known = {
            d["surface_id"]
            for d in facade.query("surfaces", {"surface_id": {"$in": surface}}, ["surface_id"])
        }
        missing = [s for s in surface if s not in known]
        if missing:
            fail(f"--surface {', '.join(missing)} is not in the store; list them with `epdi query surfaces`")
    try:
        manifest = export_dataset(facade, path, surface, compact=compact)
    except DatasetFormatError as exc:
        fail(str(exc), code=1)
    emit_mapping(manifest | {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 2)}, as_json)


def _archives(source: str) -> list[Path]:
    if source in PACKAGED_SETS:
        folder = PACKAGED_DIR / source
        found = sorted(folder.glob("*.tar.gz"))
        if not found:
            fail(
                f"{folder} holds no archives: the {source} dataset is not packaged in this version; "
                f"generate it with `epdi dataset generate {source}`",
                code=1,
            )
        return found
    path = Path(source)
    if path.is_dir():
        found = sorted(path.glob("*.tar.gz"))
        if not found:
            fail(f"{path} holds no .tar.gz archives", code=1)
        return found
    if not path.is_file():
        fail(f"{path}: no such file; export one with `epdi dataset export PATH`", code=1)
    return [path]


@app.command("load")
@reports_input_errors
def load(
    source: Annotated[
        str,
        typer.Argument(help="An archive, a folder of archives, or a packaged set: reference, dft-check."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the totals as JSON.")] = False,
    max_expanded_mb: Annotated[
        float | None,
        typer.Option(
            "--max-expanded-mb",
            min=0.001,
            help="Refuse an archive that expands past this many MB (default: the archive_max_mb "
            "setting, 500).",
        ),
    ] = None,
) -> None:
    """Load exported datasets into the configured store (loading twice changes nothing).

    Compact archives have their fragments cut again from the loaded maps, checked against the
    archived MEPs, and coloured on the dataset's colour scale.
    """
    archives = _archives(source)
    facade = StoreFacade(get_settings())
    totals: dict[str, int] = {}
    rebuild: list[str] = []
    try:
        for path in progress(archives, desc="loading", unit="archive", show=len(archives) >= 2):
            manifest = load_dataset(facade, path, max_expanded_mb)
            for name, count in manifest["counts"].items():
                totals[name] = totals.get(name, 0) + count
            if "fragments.array" in manifest.get("omitted", []) and manifest["counts"].get("fragments"):
                rebuild += manifest.get("surface_ids", [])  # surfaces without fragments have none to recut
    except DatasetFormatError as exc:
        fail(str(exc), code=1)
    worst = 0.0
    if rebuild:
        dataset = source if source in PACKAGED_SETS else colour_scales.DEFAULT_DATASET
        try:
            worst = max(fb.rebuild_fragments(facade, sorted(set(rebuild)), dataset).values(), default=0.0)
        except (fragment_errors.MissingInputError, fragment_errors.RebuildMismatchError) as exc:
            fail(str(exc), code=1)
    emit_mapping(
        {"archives": len(archives)}
        | totals
        | {"fragments_recut_surfaces": len(set(rebuild)), "recut_max_mep_diff_ev": worst},
        as_json,
    )


@app.command("summary")
@reports_input_errors
def summary(
    predictions: Annotated[
        bool, typer.Option(help="Assess unlabelled hops with the current models' stored predictions.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts, E_b and barrier ranges per host, pristine barriers beside literature, flags, outliers.

    Barriers (eV): local = saddle above the lower of a hop's two valleys, forward = above its T_M
    valley, from the CINEB images of the distinct labelled hops.
    """
    facade = StoreFacade(get_settings())
    model_ids = (
        [d["model_id"] for d in facade.query("models", {"status": "current"}, properties=["model_id"])]
        if predictions
        else []
    )
    report = dataset_summary(facade, model_ids)
    if as_json:
        emit_mapping(report, True)
        return
    emit_mapping(report["counts"], False)
    rows = [
        {"host": host} | info | {"flags": ", ".join(f"{k} {v}" for k, v in info["flags"].items() if v) or "-"}
        for host, info in report["hosts"].items()
    ]
    emit_rows(
        rows,
        (
            "host",
            "surfaces",
            "valley_eb_range_ev",
            "local_barrier_range_ev",
            "forward_barrier_range_ev",
            "pristine_local_barrier_ev",
            "literature_ev",
            "literature_source",
            "flags",
        ),
        False,
        False,
    )
    for text in report["barrier_definitions"].values():
        typer.echo(f"  {text}")
    typer.echo("flags (distinct hops; valleys): " + ", ".join(f"{k} {v}" for k, v in report["flags"].items()))
    typer.echo(f"outliers ({len(report['outliers'])}):")
    for item in report["outliers"]:
        where = item.get("site_id") or item.get("hop_id")
        typer.echo(f"  {item['kind']} {where} on {item['surface_id']}: [{item['flag']}] {item['issue']}")
