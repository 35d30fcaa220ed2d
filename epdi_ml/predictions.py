"""Ensemble predictions of E_b for stored fragments, written as :class:`PredictionDoc` documents."""

from __future__ import annotations

import numpy as np

from epdi_ml.learning_data import StoreFragments
from epdi_ml.registry import load_ensemble
from epdi_ml.training import predict_ensemble
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.model_documents import ModelDoc, PredictionDoc


def predict_and_store(
    facade: StoreFacade, model: ModelDoc, fragments: StoreFragments
) -> tuple[np.ndarray, np.ndarray]:
    """Predict every fragment with ``model``'s fold ensemble; replace its stored predictions.

    Returns the ensemble mean and spread (population std over the folds), both in eV, in the order
    of ``fragments``.
    """
    mean, std = predict_ensemble(
        load_ensemble(facade, model), fragments.data.images, kinds=fragments.data.kinds
    )
    docs = [
        PredictionDoc(
            prediction_id=stable_id("pred", model_id=model.model_id, site_id=f["site_id"]),
            model_id=model.model_id,
            surface_id=f["surface_id"],
            site_id=f["site_id"],
            kind=f["kind"],
            mean_ev=float(m),
            std_ev=float(s),
        )
        for f, m, s in zip(fragments.docs, mean, std, strict=True)
    ]
    facade.replace_groups("predictions", "model_id", docs, [model.model_id])
    return mean, std
