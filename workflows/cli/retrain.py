"""``epdi retrain``: a new model version when enough new labels arrived (here, or on the LaunchPad)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.cluster import JsonOption, LaunchPadOption, emit_summary, launchpad_config, unreachable
from workflows.cli.common import fail, reports_input_errors
from workflows.fireworks.categories import TRAINING_CATEGORY


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
    from workflows.flows.retrain import RetrainMaker, previous_model

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
    maker = RetrainMaker(
        min_new_labels=if_new,
        registry_name=name,
        config_overrides=overrides,
        fraction=fraction,
        dataset=dataset,
    )
    # the previous model's recipe with the options, checked before anything is queued or trained
    config = maker.train_maker(facade, previous_model(facade, name)).config
    if submit_job:
        _submit_retrain(maker, launchpad, facade, as_json)
        return
    if facade.count("fragments") == 0:
        fail("no fragments in the store: run `epdi fragments build --all` and label hops first", code=1)
    _check_weights(config)
    outcome = _run_retrain(maker, facade)
    emit_summary(outcome.model_dump(), as_json)


def _check_weights(config) -> None:
    """Fail before training when pretrained weights are needed but not cached."""
    if not config.pretrained:
        return
    from epdi_ml.models.networks import build_model
    from epdi_ml.models.weights import WeightsError

    try:
        build_model(config.model, pretrained=True, weights_dir=config.weights_dir, in_pixels=config.pixels)
    except WeightsError as exc:
        fail(str(exc))


def _run_retrain(maker, facade: StoreFacade):
    from workflows.flows.local_run import run_flow
    from workflows.flows.retrain import outcome_of

    outcome = outcome_of(run_flow(maker.make(), facade.job_store(), what="retraining"))
    if outcome is None:
        fail("retraining ended without an outcome (too few labelled surfaces for the folds?)", code=1)
    return outcome


def _submit_retrain(maker, launchpad: Path | None, facade: StoreFacade, as_json: bool) -> None:
    from pymongo.errors import PyMongoError

    from workflows.fireworks.launcher_lock import LauncherBusy
    from workflows.fireworks.launchpad import LaunchPadError, submission_store, submit_flow

    config = launchpad_config(launchpad)
    metadata = {"kind": "retrain", "registry_name": maker.registry_name, "if_new": maker.min_new_labels}
    try:
        fw_ids = submit_flow(config, maker.make(), submission_store(facade), metadata)
    except LauncherBusy as exc:
        fail(f"{exc}; retrain without --submit, or use a MongoDB LaunchPad (deploy/README.md)", code=1)
    except (LaunchPadError, PyMongoError) as exc:
        unreachable(config, exc)
    emit_summary(
        {
            "launchpad": config.describe(),
            "fw_ids": fw_ids,
            "category": TRAINING_CATEGORY,
            "next": f"epdi launch --category {TRAINING_CATEGORY}  "
            "(or qlaunch with deploy/my_qadapter_slurm_gpu.yaml)",
        },
        as_json,
    )
