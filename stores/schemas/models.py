"""Pydantic documents for trained models (a versioned registry) and their predictions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.schemas.fields import ArrayRef, utc_now


class ModelDoc(BaseModel):
    """A trained fold ensemble: weights in the ``data`` store, metrics, split, settings, versions."""

    model_id: str
    name: str = Field(..., description="Registry name (one line of versions), e.g. 'epdi'")
    version: int
    status: Literal["current", "candidate", "retired"] = "candidate"
    architecture: str
    dataset: str = Field(..., description="Colour-scale dataset the fragments came from")
    label_source: str | None = Field(
        None,
        description="Source of the labels trained on (engine:settings hash; epdi_ml.analysis.labels)",
    )
    weights: ArrayRef = Field(..., description="torch.save bytes of the ensemble (weights_only loadable)")
    config: dict
    fraction: float | None = Field(None, description="Fraction of saddle labels used for training")
    n_train: int
    n_test: int
    train_site_ids: list[str]
    test_site_ids: list[str]
    val_mae_ev: list[float] = Field(..., description="Validation MAE of each fold (eV)")
    cv_mae_ev: float = Field(..., description="Mean of the fold validation MAEs (eV)")
    test_mae_ev: float | None = Field(None, description="Ensemble-mean MAE on the test saddles (eV)")
    best_epochs: list[int]
    curves: dict = Field(default_factory=dict, description="Per-fold train loss / val MAE per epoch (eV)")
    images_per_second: float | None = None
    device: str
    n_labels: int = Field(..., description="Labelled fragments available when trained")
    code_version: str
    calibration: dict | None = Field(
        None,
        description="Conformal quantiles of its predictions per site kind (epdi_ml.training.calibration)",
    )
    created_at: datetime = Field(default_factory=utc_now)


class PredictionDoc(BaseModel):
    """Ensemble prediction of E_b for one site with its calibrated intervals (eV).

    ``ci68_ev`` / ``ci90_ev`` are the half-widths of the calibrated 68 % / 90 % intervals around
    ``mean_ev`` (normalised split-conformal on the model's out-of-fold residuals, see
    :mod:`epdi_ml.training.calibration`); ``std_ev`` is the raw, uncalibrated spread of the fold models.
    """

    prediction_id: str
    model_id: str
    surface_id: str
    site_id: str
    kind: Literal["valley", "saddle"]
    mean_ev: float = Field(..., description="Ensemble mean of E_b (eV)")
    std_ev: float = Field(..., description="Raw spread of the fold models, population std (eV)")
    members_ev: list[float] | None = Field(None, description="Prediction of each fold model (eV)")
    ci68_ev: float | None = Field(None, description="Half-width of the calibrated 68 % interval (eV)")
    ci90_ev: float | None = Field(None, description="Half-width of the calibrated 90 % interval (eV)")
    difficulty: float | None = Field(None, description="Posterior sd of the linear model / noise sd")
    nearest_label_distance: float | None = Field(
        None, description="Distance to the nearest training site of its kind (standardised embeddings)"
    )
    out_of_domain: bool = Field(False, description="Farther from the labels than any calibration site")
    updated_at: datetime = Field(default_factory=utc_now)
