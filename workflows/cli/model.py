"""``epdi train``, ``epdi predict``, ``epdi profiles``: the learning half on the stored fragments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from epdi_ml.analysis.profiles import learning_curves_plot, parity_plot, plot_profiles
from epdi_ml.fragments.crops import DEFAULT_PIXELS
from epdi_ml.models.weights import WeightsError
from epdi_ml.report.data import Energies, load_energies, path_results, surface_data
from epdi_ml.training.config import TrainConfig, resolve_device
from epdi_ml.training.ensemble import predict_ensemble
from epdi_ml.training.predictions import predict_and_store
from epdi_ml.training.registry import NoModel, get_model, load_ensemble
from epdi_ml.training.store_data import NoFragments, load_fragments
from stores.facade import StoreFacade
from stores.schemas.models import ModelDoc
from stores.settings import get_settings
from stores.validation import build_validated, check_output_dir
from workflows.cli.common import emit_mapping, fail, reports_input_errors
from workflows.flows.local_run import run_flow
from workflows.jobs.train import TrainMaker


def _facade() -> StoreFacade:
    return StoreFacade(get_settings())


@reports_input_errors
def train(
    model: Annotated[
        str,
        typer.Option(
            help="densenet121, resnet34/101/152, vgg19, densenet169, "
            "efficientnet_lite0 (offline ImageNet weights) or small_cnn."
        ),
    ] = "densenet121",
    fraction: Annotated[float, typer.Option(help="Fraction of labelled saddles for training.")] = 0.33,
    epochs: Annotated[int, typer.Option(help="Maximum epochs per fold (early stopping on the fold).")] = 100,
    patience: Annotated[int, typer.Option(help="Epochs without validation gain before stopping.")] = 20,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    pixels: Annotated[int, typer.Option(help="Input size in pixels.")] = DEFAULT_PIXELS,
    folds: Annotated[int, typer.Option(help="CV folds (split by surface).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for splits, initialisation and augmentation.")] = 0,
    pretrained: Annotated[
        bool, typer.Option(help="Start from ImageNet weights (cached; see `epdi weights`).")
    ] = True,
    dataset: Annotated[str | None, typer.Option(help="Colour-scale dataset of the fragments.")] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Label source: chgnet, gpaw, vasp or engine:hash (default: the only one stored)."),
    ] = None,
    keep_last: Annotated[
        bool,
        typer.Option(
            "--keep-last",
            help="Keep each fold's resumable checkpoint (last.pt, with the optimiser state) after the "
            "fold finished; by default only its best weights (best.pt) stay in the checkpoint folder.",
        ),
    ] = False,
    anchor: Annotated[
        str,
        typer.Option(help="none, or valley-midpoint (saddles learnt relative to their two valleys' mean)."),
    ] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print the model summary as JSON.")] = False,
) -> None:
    """Train a fold ensemble on all valley labels + a fraction of saddle labels; register it.

    Checkpoints go to ``<data dir>/checkpoints/<model>-f<fraction>-s<seed>/fold<k>/``.
    """
    if not 0 <= fraction <= 1:
        fail(f"fraction {fraction} is outside [0, 1]; accepted: a number from 0 to 1")
    settings = get_settings()
    options = {
        "model": model,
        "pretrained": pretrained,
        "epochs": epochs,
        "patience": patience,
        "device": device,
        "pixels": pixels,
        "folds": folds,
        "seed": seed,
        "checkpoint_dir": settings.folder("checkpoints", f"{model}-f{fraction}-s{seed}"),
        "keep_last": keep_last,
        "anchor": anchor,
    }
    config = build_validated(TrainConfig, options, "invalid option", prefix="--")
    resolve_device(config.device)  # cuda without a GPU is refused before any job
    facade = _facade()
    try:
        if pretrained:  # fail before any job starts when the weights are not cached
            from epdi_ml.models.networks import build_model

            build_model(model, pretrained=True, in_pixels=pixels)
        job = TrainMaker(config=config, fraction=fraction, dataset=dataset, source=labels).make()
        responses = run_flow(job, facade.job_store(), what="training")
    except (WeightsError, NoFragments) as exc:
        fail(str(exc))
    response = responses.get(job.uuid, {}).get(1)
    if response is None or response.output is None:
        fail(
            "training ended without a model (too few labels? run `epdi fragments build` and label more hops)",
            code=1,
        )
    doc: ModelDoc = response.output
    out = settings.folder("models", doc.model_id)
    figures = _training_figures(facade, doc, out)
    summary = {
        "model_id": doc.model_id,
        "version": doc.version,
        "status": doc.status,
        "architecture": doc.architecture,
        "cv_mae_ev": doc.cv_mae_ev,
        "test_mae_ev": doc.test_mae_ev,
        "n_train": doc.n_train,
        "n_test": doc.n_test,
        "device": doc.device,
        "figures": [str(f) for f in figures],
    }
    emit_mapping(summary, as_json)


def _training_figures(facade: StoreFacade, doc: ModelDoc, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        learning_curves_plot(
            out / "learning_curves.png", doc.curves["train_loss_ev"], doc.curves["val_mae_ev"]
        )
    ]
    if doc.test_site_ids:
        fragments = load_fragments(facade)
        index = {sid: i for i, sid in enumerate(fragments.data.ids)}
        test = fragments.data.subset(np.array([index[s] for s in doc.test_site_ids if s in index]))
        ensemble = load_ensemble(facade, doc)
        offsets = ensemble.offsets_ev(test)
        mean, std = predict_ensemble(ensemble, test.images, kinds=test.kinds, offsets_ev=offsets)
        figures.append(parity_plot(out / "parity.png", test.energies_ev, mean, std, title="test saddles"))
    return figures


@reports_input_errors
def predict(
    model_id: Annotated[
        str | None, typer.Option(help="Registered model id (default: the current model).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON.")] = False,
) -> None:
    """Predict E_b for every stored fragment: ensemble mean, calibrated 68 % / 90 % intervals, domain flag."""
    facade = _facade()
    try:
        doc = get_model(facade, model_id)
        fragments = load_fragments(facade)
    except (NoModel, NoFragments) as exc:
        fail(str(exc), code=1)
    intervals = predict_and_store(facade, doc, fragments)
    unlabelled = np.isnan(fragments.data.energies_ev) & (fragments.data.kinds == "saddle")
    saddle = intervals.calibration.kinds.get("saddle", intervals.calibration.kinds["pooled"])
    ci68, spread = intervals.ci_ev["68"][unlabelled], intervals.std_ev[unlabelled]
    summary = {
        "model_id": doc.model_id,
        "n_predictions": len(intervals.mean_ev),
        "n_unlabelled_saddles": int(unlabelled.sum()),
        "max_ci68_unlabelled_saddle_ev": float(ci68.max()) if unlabelled.any() else None,
        "max_spread_unlabelled_saddle_ev": float(spread.max()) if unlabelled.any() else None,
        "out_of_domain_unlabelled_saddles": int(intervals.out_of_domain[unlabelled].sum()),
        "calibration_residuals_saddle": saddle.n_residuals,
        "calibration_pooled_saddle": saddle.pooled,
    }
    emit_mapping(summary, as_json)


@reports_input_errors
def profiles(
    surface: Annotated[
        str | None, typer.Option(help="Surface id (default: every surface with fragments).")
    ] = None,
    model_id: Annotated[str | None, typer.Option(help="Model whose predictions fill missing labels.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the PNG profiles.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Energy profiles along zigzag paths vp -> sp -> vp through the dopant, with barriers (eV).

    ``global_barrier_ev`` is ``[value, 68 % half-width, 90 % half-width]``; ``local_barriers_ev``
    the local barrier (above the lower valley) of each hop along the path.
    """
    if out is not None:
        check_output_dir(out, "--out")
    facade = _facade()
    criteria = {"surface_id": surface} if surface else {}
    fragments = facade.query(
        "fragments", criteria, properties=["surface_id", "site_id", "representative_site_id"]
    )
    if not fragments:
        fail(f"no fragments for {surface or 'any surface'}: run `epdi fragments build` first", code=1)
    try:
        chosen = get_model(facade, model_id).model_id
    except NoModel:
        chosen = None
    surface_ids = sorted({f["surface_id"] for f in fragments})
    energies = load_energies(facade, surface_ids, chosen)
    folder = out or get_settings().folder("profiles")
    results = []
    for sid in surface_ids:
        results += _surface_profiles(facade, sid, energies, folder)
    if as_json:
        typer.echo(json.dumps(results))
        return
    for r in results:
        if "error" in r:
            typer.echo(f"{r['surface_id']} {r['angle_deg']:>5.0f} deg: {r['error']}")
            continue
        g = r["global_barrier_ev"]
        typer.echo(
            f"{r['surface_id']} {r['angle_deg']:>5.0f} deg: global barrier {g[0]:.3f} eV "
            f"(68 % +- {g[1]:.3f}, 90 % +- {g[2]:.3f}; {r['n_predicted']} of {r['n_sites']} sites "
            f"predicted) -> {r['figure']}"
        )


def _surface_profiles(facade, sid, energies: Energies, folder) -> list[dict]:
    data = surface_data(facade, sid)
    results = []
    for path in path_results(data, energies) if data is not None else []:
        row = {"surface_id": sid, "angle_deg": path.angle_deg, "n_sites": len(path.site_ids)}
        profile = path.mixed
        if profile is None:
            results.append(row | {"error": f"{path.error}; run `epdi predict` (or label them)"})
            continue
        folder.mkdir(parents=True, exist_ok=True)
        figure = plot_profiles(
            folder / f"{sid}-{int(path.angle_deg)}.png",
            profile,
            path.labels_only,
            title=f"{sid} {path.angle_deg:.0f} deg",
        )
        g = profile.global_barrier
        results.append(
            row
            | {
                "site_ids": path.site_ids,
                "energies_ev": profile.energies_ev,
                "energy_ci68_ev": profile.energy_ci68_ev,
                "energy_ci90_ev": profile.energy_ci90_ev,
                "local_barriers_ev": [h.local.barrier_ev for h in profile.hops],
                "saddle_below_valley": [h.saddle_index for h in profile.hops if h.saddle_below_valley],
                "global_barrier_ev": [g.barrier_ev, g.ci68_ev, g.ci90_ev],
                "n_predicted": sum(s.source == "predicted" for s in profile.sites),
                "figure": str(figure),
            }
        )
    return results
