"""``epdi query``: read documents back from the store (any process, any backend)."""

from __future__ import annotations

from typing import Annotated

import typer

from epdi_ml.analysis.hop_table import hop_rows
from epdi_ml.analysis.labels import class_labels, computed_labels
from epdi_ml.analysis.sanity import count_flags, flag_text
from epdi_ml.report.data import campaign_model_id, campaign_rounds, fraction_labelled
from stores.facade import StoreFacade
from stores.schemas.campaigns import CampaignDoc
from stores.settings import get_settings
from workflows.cli.common import emit_rows, fail, reports_input_errors
from workflows.cli.surfaces import SUMMARY_COLUMNS
from workflows.structures.hosts import check_dopant

app = typer.Typer(help="Query the store.", no_args_is_help=True)

#: exit code when something the query names is not in the store
EXIT_MISSING = 1


@app.command("surfaces")
@reports_input_errors
def surfaces(
    host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
    dopant: Annotated[str | None, typer.Option(help="Only this dopant ('none' for pristine).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List stored surfaces with their site counts."""
    criteria: dict = {}
    if host:
        criteria["host"] = host
    if dopant is not None:
        criteria["dopant"] = check_dopant(dopant)
    docs = StoreFacade(get_settings()).query(
        "surfaces",
        criteria,
        properties=list(SUMMARY_COLUMNS) + ["phase", "supercell", "vacuum_ang"],
        sort={"host": 1, "dopant": 1},
    )
    emit_rows(docs, SUMMARY_COLUMNS, as_json, as_csv)


#: columns of ``epdi query calculations``
CALCULATION_COLUMNS = ("calc_id", "kind", "engine", "functional", "final_energy_ev", "source_path")


@app.command("calculations")
@reports_input_errors
def calculations(
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (static, relax, neb, li_reference).")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Only this engine (vasp, gpaw, chgnet).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List stored calculations: id, kind, engine, functional, final energy (eV), source folder."""
    criteria: dict = {}
    if kind:
        criteria["kind"] = kind
    if engine:
        criteria["engine"] = engine
    docs = StoreFacade(get_settings()).query(
        "calculations", criteria, properties=list(CALCULATION_COLUMNS), sort={"calc_id": 1}
    )
    emit_rows(docs, CALCULATION_COLUMNS, as_json, as_csv)


#: columns of ``epdi query hops`` (energies in eV, distances in Angstrom); see epdi_ml.analysis.barriers
HOP_COLUMNS = (
    "surface_id",
    "hop_id",
    "index",
    "class_index",
    "multiplicity",
    "dopant_distance_ang",
    "source",
    "saddle_eb_ev",
    "saddle_ci68_ev",
    "forward_barrier_ev",
    "reverse_barrier_ev",
    "local_barrier_ev",
    "local_ci68_ev",
    "local_ci90_ev",
    "predicted_mean_ev",
    "predicted_ci68_ev",
    "model_id",
    "flags",
)


def _emit(rows: list[dict], columns: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """Like :func:`emit_rows`; the text table shows floats to 4 decimals (JSON and CSV keep all)."""
    if not (as_json or as_csv):
        rows = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    emit_rows(rows, columns, as_json, as_csv)


def _model_ids(facade: StoreFacade, model_id: str | None) -> list[str]:
    """``[model_id]`` when given (it must exist), else every current model, newest first."""
    if model_id:
        if not facade.count("models", {"model_id": model_id}):
            fail(f"model {model_id!r} is not registered; list models with `epdi query models`", EXIT_MISSING)
        return [model_id]
    current = facade.query("models", {"status": "current"}, properties=["model_id", "created_at"])
    return [d["model_id"] for d in sorted(current, key=lambda d: str(d["created_at"]), reverse=True)]


@app.command("hops")
@reports_input_errors
def hops(
    surface: Annotated[str | None, typer.Option(help="Only this surface id.")] = None,
    host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
    dopant: Annotated[str | None, typer.Option(help="Only this dopant ('none' for pristine).")] = None,
    labelled: Annotated[
        bool | None,
        typer.Option("--labelled/--unlabelled", help="Only hops with (without) a CINEB label."),
    ] = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="Only hops with a sanity flag.")] = False,
    model_id: Annotated[
        str | None, typer.Option("--model", help="Predictions of this model (default: the current ones).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List hops: saddle E_b and its barriers (CINEB label, else prediction), intervals, sanity flags.

    Barriers (eV): forward = saddle above the T_M valley, reverse = above the H valley, local = above
    the lower of the two. A CINEB of one hop labels every hop of its symmetry class; an unlabelled
    hop takes the prediction of the newest current model with one for its saddle (or of
    ``--model``), with calibrated half-widths (``*_ci68_ev``, ``*_ci90_ev``: 68 % and 90 %).
    Flags: saddle_below_valley, out_of_domain, endpoint_not_minimum, cineb_unconverged; counts
    follow the text table.
    """
    criteria: dict = {}
    if surface:
        criteria["surface_id"] = surface
    if host:
        criteria["host"] = host
    if dopant is not None:
        criteria["dopant"] = check_dopant(dopant)
    facade = StoreFacade(get_settings())
    surface_ids = sorted({h["surface_id"] for h in facade.query("hops", criteria, properties=["surface_id"])})
    rows = hop_rows(facade, surface_ids, _model_ids(facade, model_id)) if surface_ids else []
    if labelled is not None:
        rows = [r for r in rows if r["labelled"] == labelled]
    if flagged:
        rows = [r for r in rows if r["flags"]]
    if as_json:
        _emit(rows, HOP_COLUMNS, True, False)
        return
    shown = [r | {"flags": flag_text(r["flags"])} for r in rows]
    _emit(shown, HOP_COLUMNS, False, as_csv)
    if not as_csv:
        distinct = [r for r in rows if r["representative"]]
        counts = ", ".join(f"{k} {v}" for k, v in count_flags(distinct).items())
        typer.echo(f"flags over {len(distinct)} distinct hops: {counts}")


#: columns of ``epdi query predictions`` (eV)
PREDICTION_COLUMNS = ("model_id", "surface_id", "site_id", "kind", "mean_ev", "std_ev", "label_ev")


@app.command("predictions")
@reports_input_errors
def predictions(
    model_id: Annotated[
        str | None, typer.Option("--model", help="Only this model (default: every current model).")
    ] = None,
    surface: Annotated[str | None, typer.Option(help="Only this surface id.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this site kind (valley or saddle).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List predicted E_b (ensemble mean and spread, eV) with the DFT label where there is one."""
    if kind is not None and kind not in ("valley", "saddle"):
        fail(f"unknown site kind {kind!r}; accepted: valley, saddle")
    facade = StoreFacade(get_settings())
    criteria: dict = {"model_id": {"$in": _model_ids(facade, model_id)}}
    if surface:
        criteria["surface_id"] = surface
    if kind:
        criteria["kind"] = kind
    docs = facade.query("predictions", criteria)
    fragments = facade.query(
        "fragments",
        {"surface_id": {"$in": sorted({d["surface_id"] for d in docs})}},
        properties=["site_id", "representative_site_id"],
    )
    labels = class_labels(fragments, computed_labels(facade))
    rows = [d | {"label_ev": labels.get(d["site_id"])} for d in docs]
    rows.sort(key=lambda r: (r["model_id"], r["surface_id"], r["kind"], r["site_id"]))
    _emit(rows, PREDICTION_COLUMNS, as_json, as_csv)


#: columns of ``epdi query models``
MODEL_COLUMNS = (
    "model_id",
    "name",
    "version",
    "status",
    "architecture",
    "cv_mae_ev",
    "test_mae_ev",
    "n_labels",
    "created_at",
)


@app.command("models")
@reports_input_errors
def models(
    name: Annotated[str | None, typer.Option(help="Only this registry name.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status (current, candidate, retired).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List the model registry: versions, status, architecture, CV and test MAE (eV), labels used."""
    if status is not None and status not in ("current", "candidate", "retired"):
        fail(f"unknown model status {status!r}; accepted: current, candidate, retired")
    criteria: dict = {}
    if name:
        criteria["name"] = name
    if status:
        criteria["status"] = status
    docs = StoreFacade(get_settings()).query("models", criteria, properties=list(MODEL_COLUMNS))
    docs.sort(key=lambda d: (d["name"], d["version"]))
    _emit(docs, MODEL_COLUMNS, as_json, as_csv)


#: columns of ``epdi query campaigns``
CAMPAIGN_COLUMNS = (
    "campaign_id",
    "name",
    "status",
    "n_surfaces",
    "n_rounds",
    "fraction_labelled",
    "current_model_id",
    "stop_reason",
    "report_path",
)


@app.command("campaigns")
@reports_input_errors
def campaigns(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List campaigns: status, surfaces, rounds, fraction of distinct hops labelled now, model, report."""
    facade = StoreFacade(get_settings())
    rows = []
    for raw in sorted(facade.query("campaigns"), key=lambda d: d["name"]):
        doc = CampaignDoc(**raw)
        rounds = campaign_rounds(facade, doc.campaign_id)
        rows.append(
            {
                "campaign_id": doc.campaign_id,
                "name": doc.name,
                "status": doc.status,
                "n_surfaces": len(doc.surface_ids),
                "n_rounds": len(rounds),
                "fraction_labelled": round(fraction_labelled(facade, doc), 4),
                "current_model_id": campaign_model_id(doc, rounds),
                "stop_reason": doc.stop_reason,
                "report_path": doc.report_path,
            }
        )
    _emit(rows, CAMPAIGN_COLUMNS, as_json, as_csv)
