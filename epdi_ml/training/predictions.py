"""Ensemble predictions of E_b for stored fragments with calibrated intervals (:class:`PredictionDoc`).

Each fold model predicts every fragment and gives its penultimate embedding; the out-of-fold
residuals of the model's training sites calibrate the intervals (:mod:`epdi_ml.training.calibration`). The
predictions of a model are replaced as a whole, and the model document records its calibration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from epdi_ml.training.calibration import EnsembleIntervals, calibrate_ensemble
from epdi_ml.training.config import resolve_device
from epdi_ml.training.data import augment_module_prepare, images_to_tensor
from epdi_ml.training.ensemble import EnsembleResult
from epdi_ml.training.registry import load_ensemble
from epdi_ml.training.store_data import StoreFragments
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.models import ModelDoc, PredictionDoc


@torch.no_grad()
def ensemble_outputs(
    result: EnsembleResult,
    images: np.ndarray,
    kinds: Sequence[str],
    batch_size: int = 32,
    device: str = "auto",
    offsets_ev: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Predictions ``(K, N)`` in eV and penultimate embeddings (one ``(N, d)`` array per fold model).

    ``offsets_ev`` (per fragment) is added to every model's output: the valley anchors of a
    valley-anchored ensemble (:meth:`epdi_ml.training.data.FragmentData.offsets_ev`).
    """
    dev = resolve_device(device)
    models = result.models(dev)
    x_all = images_to_tensor(augment_module_prepare(np.asarray(images), list(kinds)), result.config.pixels)
    preds = np.zeros((len(models), len(x_all)))
    embeddings = [np.zeros((len(x_all), m.embedding_dim)) for m in models]
    for start in range(0, len(x_all), batch_size):
        x = x_all[start : start + batch_size].to(dev)
        for m, model in enumerate(models):
            features = model.embedding(x)
            preds[m, start : start + len(x)] = model.head(features).squeeze(-1).float().cpu().numpy()
            embeddings[m][start : start + len(x)] = features.float().cpu().numpy()
    if offsets_ev is not None:
        preds += np.asarray(offsets_ev, dtype=float)[None, :]
    return preds, embeddings


def training_folds(
    model: ModelDoc, result: EnsembleResult, site_ids: Sequence[str], surface_ids: Sequence[str]
) -> np.ndarray:
    """For each row: the fold whose model did not see it (its validation fold), -1 outside training."""
    train = set(model.train_site_ids)
    fold_by_surface = {s: m for m, fold in enumerate(result.folds) for s in fold.val_surfaces}
    return np.array(
        [
            fold_by_surface.get(surface, -1) if site in train else -1
            for site, surface in zip(site_ids, surface_ids, strict=True)
        ],
        dtype=int,
    )


def predict_and_store(facade: StoreFacade, model: ModelDoc, fragments: StoreFragments) -> EnsembleIntervals:
    """Predict every fragment with ``model``'s fold ensemble; replace its stored predictions.

    Returns the calibrated predictions of ``fragments`` in their order (mean, raw spread, member
    predictions, calibrated half-widths, difficulty, nearest-label distance, out-of-domain flag).
    The model document gets the calibration (``ModelDoc.calibration``).
    """
    result = load_ensemble(facade, model)
    data = fragments.data
    offsets = result.offsets_ev(data)  # a valley-anchored model needs every saddle's anchor
    members, embeddings = ensemble_outputs(result, data.images, data.kinds, offsets_ev=offsets)
    fold_of = training_folds(model, result, data.ids.tolist(), data.surface_ids.tolist())
    intervals = calibrate_ensemble(members, data.energies_ev, data.kinds, fold_of, embeddings)
    docs = [
        PredictionDoc(
            prediction_id=stable_id("pred", model_id=model.model_id, site_id=f["site_id"]),
            model_id=model.model_id,
            surface_id=f["surface_id"],
            site_id=f["site_id"],
            kind=f["kind"],
            mean_ev=float(intervals.mean_ev[i]),
            std_ev=float(intervals.std_ev[i]),
            members_ev=[float(v) for v in intervals.members_ev[:, i]],
            ci68_ev=_finite(intervals.ci_ev["68"][i]),
            ci90_ev=_finite(intervals.ci_ev["90"][i]),
            difficulty=float(intervals.difficulty[i]),
            nearest_label_distance=_finite(intervals.nearest_label[i]),
            out_of_domain=bool(intervals.out_of_domain[i]),
        )
        for i, f in enumerate(fragments.docs)
    ]
    facade.replace_groups("predictions", "model_id", docs, [model.model_id])
    stored = ModelDoc(**facade.query("models", {"model_id": model.model_id})[0])
    calibration = intervals.calibration.model_dump(mode="json")
    facade.upsert("models", [stored.model_copy(update={"calibration": calibration})])
    return intervals


def _finite(value: float) -> float | None:
    """``value`` as a float, ``None`` when it is not finite (no calibration, no label of its kind)."""
    return float(value) if np.isfinite(value) else None
