"""Cluster commands: ``epdi campaign submit``, ``epdi launch``, ``epdi retrain``, ``epdi status``.

FireWorks runs the jobflow flows: ``submit`` puts a campaign on a LaunchPad, ``launch`` runs
Fireworks on this machine (or on a compute node, from a queue script), ``retrain`` refreshes the
model when new labels have arrived, ``status`` reports a campaign from the LaunchPad and the store.
The LaunchPad is the embedded one-file LaunchPad in the data folder unless a MongoDB
``my_launchpad.yaml`` is given (see :mod:`workflows.fw_launchpad` and ``deploy/README.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.common import emit_mapping, fail, reports_input_errors

LaunchPadOption = Annotated[
    Path | None,
    typer.Option(
        "--launchpad",
        help="FireWorks my_launchpad.yaml (MongoDB). Default: EPDI_LAUNCHPAD_FILE, FW_CONFIG_FILE, "
        "else the embedded LaunchPad in the data folder.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _launchpad(launchpad: Path | None):
    from workflows.fw_launchpad import LaunchPadError, resolve_launchpad

    try:
        return resolve_launchpad(launchpad)
    except LaunchPadError as exc:
        fail(str(exc))


def _emit(summary: dict[str, Any], as_json: bool) -> None:
    """JSON as is; text with state counts as ``COMPLETED 4, FIZZLED 1`` and lists comma-separated."""
    if not as_json:
        summary = {
            key: ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            if isinstance(value, dict)
            else ", ".join(map(str, value)) or "none"
            if isinstance(value, list)
            else value
            for key, value in summary.items()
        }
    emit_mapping(summary, as_json)


def _unreachable(config, exc: Exception) -> None:
    """One line for a LaunchPad problem: ours as is, pymongo's without its topology dump."""
    from workflows.fw_launchpad import LaunchPadError

    if isinstance(exc, LaunchPadError):
        fail(str(exc), code=1)
    reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0][:300]
    fail(f"cannot reach the {config.describe()}: {reason}; check host, port and credentials", code=1)


@reports_input_errors
def submit(
    spec: Annotated[str, typer.Argument(help="Campaign spec YAML, or a packaged spec name.")],
    launchpad: LaunchPadOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Submit again although the campaign is already on the LaunchPad.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Put a campaign on the FireWorks LaunchPad as one workflow; run it with `epdi launch`."""
    from pymongo.errors import PyMongoError

    from workflows.campaign import build_campaign_flow, campaign_id
    from workflows.campaign_spec import load_spec
    from workflows.engines import EngineUnavailable
    from workflows.fw_launchpad import (
        LaunchPadError,
        open_launchpad,
        submission_store,
        submit_flow,
        workflows_with,
    )
    from workflows.launcher_lock import LauncherBusy

    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    facade = StoreFacade(settings)
    config = _launchpad(launchpad)
    cid = campaign_id(campaign)
    try:
        if config.path.exists() or config.kind == "mongodb":
            existing = workflows_with(open_launchpad(config, read_only=True), {"campaign_id": cid})
            if existing and not force:
                ids = sorted(i for wf in existing for i in wf["nodes"])
                fail(
                    f"campaign {campaign.name} ({cid}) is already on the {config.describe()} "
                    f"(Fireworks {ids[0]}-{ids[-1]}): see `epdi status {campaign.name}`; "
                    "--force submits it again",
                    code=1,
                )
        try:
            flow = build_campaign_flow(campaign, facade)
        except EngineUnavailable as exc:
            fail(str(exc))
        store = submission_store(facade)
        metadata = {"kind": "campaign", "campaign_id": cid, "campaign": campaign.name}
        fw_ids = submit_flow(config, flow, store, metadata)
    except LauncherBusy as exc:
        fail(f"{exc}; submit when it has finished, or use a MongoDB LaunchPad (deploy/README.md)", code=1)
    except (LaunchPadError, PyMongoError) as exc:
        _unreachable(config, exc)
    summary = {
        "campaign": campaign.name,
        "campaign_id": cid,
        "launchpad": config.describe(),
        "fireworks": len(fw_ids),
        "fw_ids": f"{fw_ids[0]}-{fw_ids[-1]}",
        "job_store": "embedded store (in the Fireworks)" if store else "the workers' JOBFLOW_CONFIG_FILE",
        "next": "epdi launch  (compute nodes: qlaunch, see deploy/README.md)",
    }
    _emit(summary, as_json)


@reports_input_errors
def launch(
    launchpad: LaunchPadOption = None,
    category: Annotated[
        str | None,
        typer.Option(
            help="dft: DFT/MLIP jobs (everything but gpu); gpu: CUDA training; default: every category."
        ),
    ] = None,
    worker: Annotated[
        Path | None,
        typer.Option("--worker", help="FireWorks my_fworker.yaml (overrides --category), e.g. from deploy/."),
    ] = None,
    max_jobs: Annotated[
        int, typer.Option(help="Stop after this many Fireworks (0: until none is left).")
    ] = 0,
    lost_after: Annotated[
        float | None,
        typer.Option(
            help="Rerun RUNNING Fireworks not pinged for this many seconds before starting "
            "(default: 0 on the embedded LaunchPad, whose lock proves they are lost; 14400 on MongoDB)."
        ),
    ] = None,
    rerun_lost: Annotated[bool, typer.Option(help="Look for lost runs (killed launchers) first.")] = True,
    launch_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the launcher_* run folders (default: <data_dir>/fireworks/launches on the "
            "embedded LaunchPad, here with MongoDB)."
        ),
    ] = None,
    sleep: Annotated[int, typer.Option(help="Seconds between polls while other workers run parents.")] = 60,
    timeout: Annotated[
        int | None, typer.Option(help="Start no new Firework after this many seconds (queue wall time).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only warnings from FireWorks.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run Fireworks from the LaunchPad on this machine until none is left (FireWorks rapidfire)."""
    from pymongo.errors import PyMongoError

    from workflows.fw_launchpad import LaunchPadError, launch_rockets, make_fworker
    from workflows.launcher_lock import LauncherBusy

    if lost_after is not None and lost_after < 0:
        fail(f"--lost-after {lost_after} is negative; give seconds >= 0")
    if worker is not None and not worker.is_file():
        fail(f"--worker {worker} does not exist; give a FireWorks my_fworker.yaml (see deploy/)")
    config = _launchpad(launchpad)
    try:
        report = launch_rockets(
            config,
            make_fworker(category, worker),
            max_jobs=max_jobs,
            lost_after_s=lost_after,
            rerun_lost=rerun_lost,
            launch_dir=launch_dir,
            sleep_s=sleep,
            timeout_s=timeout,
            strm_lvl="WARNING" if quiet or as_json else "INFO",
        )
    except LauncherBusy as exc:
        fail(str(exc), code=1)
    except (LaunchPadError, PyMongoError) as exc:
        _unreachable(config, exc)
    summary = {
        "launchpad": config.describe(),
        "launched": report.launched,
        "lost_runs_rerun": report.lost_reran,
        "states": report.states,
    }
    _emit(summary, as_json)
    if report.states.get("FIZZLED") and not as_json:
        typer.echo("some Fireworks FIZZLED: `epdi status` lists them with their errors", err=True)


@reports_input_errors
def retrain(
    if_new: Annotated[
        int, typer.Option("--if-new", help="Retrain only when at least N new saddle labels arrived.")
    ] = 0,
    model: Annotated[str | None, typer.Option(help="Architecture (default: the current model's).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs per fold.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience (epochs).")] = None,
    folds: Annotated[int | None, typer.Option(help="CV folds (split by surface).")] = None,
    pixels: Annotated[int | None, typer.Option(help="Input size in pixels.")] = None,
    fraction: Annotated[float | None, typer.Option(help="Fraction of labelled saddles for training.")] = None,
    pretrained: Annotated[bool | None, typer.Option(help="Start from cached ImageNet weights.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for splits and initialisation.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Colour-scale dataset of the fragments.")] = None,
    name: Annotated[str, typer.Option(help="Model line in the registry.")] = "epdi",
    submit_job: Annotated[
        bool, typer.Option("--submit", help="Put the retraining on the LaunchPad (gpu category) instead.")
    ] = False,
    launchpad: LaunchPadOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train a new model version when enough new labels arrived; promote it only if its CV MAE is not worse.

    Without a current model the recipe comes from the options (defaults: DenseNet121, pretrained);
    with one, from that model, options overriding. Meant for cron/systemd timers (deploy/).
    """
    from pydantic import ValidationError

    from epdi_ml.training import TrainConfig
    from workflows.retrain import RetrainMaker, previous_model

    if if_new < 0:
        fail(f"--if-new {if_new} is negative; give a number of labels >= 0")
    if fraction is not None and not 0 <= fraction <= 1:
        fail(f"fraction {fraction} is outside [0, 1]; accepted: a number from 0 to 1")
    given = {
        "model": model,
        "epochs": epochs,
        "patience": patience,
        "folds": folds,
        "pixels": pixels,
        "pretrained": pretrained,
        "device": device,
        "seed": seed,
    }
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    facade = StoreFacade(get_settings())
    try:
        TrainConfig(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = str(err["loc"][0]) if err["loc"] else "option"
        fail(f"invalid --{option} {overrides.get(option)!r}: {err['msg']}")
    maker = RetrainMaker(
        min_new_labels=if_new,
        registry_name=name,
        config_overrides=overrides,
        fraction=fraction,
        dataset=dataset,
    )
    if submit_job:
        _submit_retrain(maker, launchpad, facade, as_json)
        return
    if facade.count("fragments") == 0:
        fail("no fragments in the store: run `epdi fragments build --all` and label hops first", code=1)
    previous = previous_model(facade, name)
    _check_weights(maker.train_maker(facade, previous).config)
    outcome = _run_retrain(maker, facade)
    _emit(outcome.model_dump(), as_json)


def _check_weights(config) -> None:
    """Fail before training when pretrained weights are needed but not cached."""
    if not config.pretrained:
        return
    from epdi_ml.models import build_model
    from epdi_ml.weights import WeightsError

    try:
        build_model(config.model, pretrained=True, weights_dir=config.weights_dir, in_pixels=config.pixels)
    except WeightsError as exc:
        fail(str(exc))


def _run_retrain(maker, facade: StoreFacade):
    from workflows.retrain import outcome_of
    from workflows.stable_jobs import run_locally

    responses = run_locally(maker.make(), store=facade.job_store(), log=False, ensure_success=False)
    outcome = outcome_of(responses)
    if outcome is None:
        fail("retraining failed; see the message above (too few labelled surfaces for the folds?)", code=1)
    return outcome


def _submit_retrain(maker, launchpad: Path | None, facade: StoreFacade, as_json: bool) -> None:
    from pymongo.errors import PyMongoError

    from workflows.fw_launchpad import LaunchPadError, submission_store, submit_flow
    from workflows.launcher_lock import LauncherBusy

    config = _launchpad(launchpad)
    metadata = {"kind": "retrain", "registry_name": maker.registry_name, "if_new": maker.min_new_labels}
    try:
        fw_ids = submit_flow(config, maker.make(), submission_store(facade), metadata)
    except LauncherBusy as exc:
        fail(f"{exc}; retrain without --submit, or use a MongoDB LaunchPad (deploy/README.md)", code=1)
    except (LaunchPadError, PyMongoError) as exc:
        _unreachable(config, exc)
    _emit(
        {
            "launchpad": config.describe(),
            "fw_ids": fw_ids,
            "category": "gpu",
            "next": "epdi launch --category gpu  (or qlaunch with deploy/my_qadapter_slurm_gpu.yaml)",
        },
        as_json,
    )


@reports_input_errors
def status(
    campaign: Annotated[
        str | None, typer.Argument(help="Campaign name, campaign id or spec (default: the whole LaunchPad).")
    ] = None,
    launchpad: LaunchPadOption = None,
    as_json: JsonOption = False,
) -> None:
    """A campaign's state: Fireworks by state (with errors), labels computed, current model and CV MAE."""
    from pymongo.errors import PyMongoError

    from workflows.fw_launchpad import LaunchPadError

    facade = StoreFacade(get_settings())
    config = _launchpad(launchpad)
    doc = None
    if campaign is not None:
        doc = _find_campaign(facade, campaign)
    try:
        fireworks = _fireworks_status(config, doc["campaign_id"] if doc else None)
    except (LaunchPadError, PyMongoError) as exc:
        _unreachable(config, exc)
    summary: dict[str, Any] = {"launchpad": config.describe()} | fireworks
    summary |= _labels_status(facade, doc)
    summary |= _model_status(facade, doc)
    if as_json:
        _emit(summary, True)
        return
    errors = summary.pop("fizzled", [])
    _emit(summary, False)
    for row in errors:
        typer.echo(f"FIZZLED {row['fw_id']} {row['name']}: {row['error']}")


def _find_campaign(facade: StoreFacade, value: str) -> dict:
    """A campaign document by id or name, else by spec (file or packaged name)."""
    docs = facade.query("campaigns", {"campaign_id": value}) or facade.query(
        "campaigns", {"name": value}, sort={"updated_at": -1}
    )
    if docs:
        return docs[0]
    from workflows.campaign import campaign_id
    from workflows.campaign_spec import load_spec, packaged_specs
    from workflows.hosts import InputError

    try:
        spec = load_spec(value, get_settings().hosts_file)
    except InputError:
        known = sorted({d["name"] for d in facade.query("campaigns", properties=["name"])})
        fail(
            f"no campaign {value!r} in the store (known: {', '.join(known) or 'none'}); give a name, "
            f"an id or a spec ({', '.join(packaged_specs())})",
            code=1,
        )
    cid = campaign_id(spec)
    docs = facade.query("campaigns", {"campaign_id": cid})
    return docs[0] if docs else {"campaign_id": cid, "name": spec.name, "status": "not started"}


def _fireworks_status(config, campaign_id: str | None) -> dict[str, Any]:
    from workflows.fw_launchpad import failed_fireworks, fireworks_by_state, open_launchpad, workflows_with

    if config.kind == "embedded" and not config.path.exists():
        return {"fireworks": "none submitted", "fizzled": []}
    lp = open_launchpad(config, read_only=True)
    fw_ids = None
    if campaign_id is not None:
        fw_ids = [i for wf in workflows_with(lp, {"campaign_id": campaign_id}) for i in wf["nodes"]]
        if not fw_ids:
            return {"fireworks": "not on this LaunchPad", "fizzled": []}
    return {"fireworks": fireworks_by_state(lp, fw_ids) or "none", "fizzled": failed_fireworks(lp, fw_ids)}


def _labels_status(facade: StoreFacade, doc: dict | None) -> dict[str, Any]:
    """Valley and saddle labels computed (of the campaign's surfaces when one is given)."""
    criteria = {"surface_id": {"$in": doc.get("surface_ids", [])}} if doc else {}
    hops = {d["hop_id"] for d in facade.query("nebs", criteria, properties=["hop_id"])}
    valleys = {d["site_id"] for d in facade.query("valleys", criteria, properties=["site_id"])}
    out: dict[str, Any] = {}
    if doc:
        out |= {"campaign": doc["name"], "campaign_id": doc["campaign_id"], "campaign_status": doc["status"]}
        if doc.get("stop_reason"):
            out["stop_reason"] = doc["stop_reason"]
        rounds = facade.count("campaign_rounds", {"campaign_id": doc["campaign_id"]})
        out["rounds"] = rounds
    total = doc.get("n_hop_classes") if doc else None
    out["saddle_labels"] = f"{len(hops)} of {total} distinct hops" if total else len(hops)
    out["valley_labels"] = len(valleys)
    return out


def _model_status(facade: StoreFacade, doc: dict | None) -> dict[str, Any]:
    from epdi_ml.registry import NoModel, get_model

    if doc is not None and not doc.get("current_model_id"):
        return {"model": "none trained"}  # the campaign's own model, not another one of the registry
    try:
        model = get_model(facade, model_id=(doc or {}).get("current_model_id"))
    except NoModel:
        return {"model": "none trained"}
    return {
        "model": f"{model.name} v{model.version} ({model.model_id}, {model.status})",
        "model_cv_mae_ev": round(model.cv_mae_ev, 4),
        "model_n_labels": model.n_labels,
    }
