"""``epdi query``: read documents back from the store (any process, any backend)."""

from __future__ import annotations

from typing import Annotated

import typer

from epdi_ml.labels import class_labels, computed_labels
from epdi_ml.report import campaign_model_id, campaign_rounds, fraction_labelled, hop_class_nebs
from stores.campaign_documents import CampaignDoc
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_rows, fail, reports_input_errors
from workflows.cli.surfaces import SUMMARY_COLUMNS
from workflows.hosts import check_dopant

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


#: columns of ``epdi query hops`` (energies in eV, distances in Angstrom)
HOP_COLUMNS = (
    "surface_id",
    "hop_id",
    "index",
    "class_index",
    "multiplicity",
    "dopant_distance_ang",
    "labelled",
    "saddle_eb_ev",
    "forward_barrier_ev",
    "predicted_mean_ev",
    "predicted_std_ev",
    "model_id",
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


def _predictions_by_site(facade: StoreFacade, model_ids: list[str], criteria: dict) -> dict[str, dict]:
    """The prediction of each site by the first model of ``model_ids`` that has one."""
    out: dict[str, dict] = {}
    for mid in model_ids:
        for doc in facade.query("predictions", {"model_id": mid} | criteria):
            out.setdefault(doc["site_id"], doc)
    return out


def _hop_row(hop: dict, neb: dict | None, prediction: dict | None) -> dict:
    return {
        "surface_id": hop["surface_id"],
        "hop_id": hop["hop_id"],
        "index": hop["index"],
        "class_index": hop["symmetry"]["class_index"],
        "multiplicity": hop["symmetry"]["multiplicity"],
        "representative": hop["symmetry"]["representative_index"] == hop["index"],
        "dopant_distance_ang": hop.get("dopant_distance_ang"),
        "saddle_id": hop["saddle_id"],
        "labelled": neb is not None,
        "saddle_eb_ev": neb["saddle_binding_energy_ev"] if neb else None,
        "forward_barrier_ev": neb["forward_barrier_ev"] if neb else None,
        "predicted_mean_ev": prediction["mean_ev"] if prediction else None,
        "predicted_std_ev": prediction["std_ev"] if prediction else None,
        "model_id": prediction["model_id"] if prediction else None,
    }


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
    model_id: Annotated[
        str | None, typer.Option("--model", help="Predictions of this model (default: the current ones).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List hops: symmetry class, CINEB saddle E_b and forward barrier, predicted saddle E_b (eV).

    A CINEB of one hop labels every hop of its symmetry class. The prediction is that of the
    newest current model with one for the hop's saddle (or of ``--model``).
    """
    criteria: dict = {}
    if surface:
        criteria["surface_id"] = surface
    if host:
        criteria["host"] = host
    if dopant is not None:
        criteria["dopant"] = check_dopant(dopant)
    facade = StoreFacade(get_settings())
    docs = sorted(facade.query("hops", criteria), key=lambda h: (h["surface_id"], h["index"]))
    surface_ids = sorted({h["surface_id"] for h in docs})
    nebs = hop_class_nebs(facade, surface_ids)
    predictions = _predictions_by_site(
        facade, _model_ids(facade, model_id), {"surface_id": {"$in": surface_ids}, "kind": "saddle"}
    )
    rows = [_hop_row(h, nebs.get(h["hop_id"]), predictions.get(h["saddle_id"])) for h in docs]
    if labelled is not None:
        rows = [r for r in rows if r["labelled"] == labelled]
    _emit(rows, HOP_COLUMNS, as_json, as_csv)


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
