"""Pydantic documents for trained models (a versioned registry) and their predictions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.fragment_documents import ArrayRef


def _now() -> datetime:
    return datetime.now(UTC)


class ModelDoc(BaseModel):
    """A trained fold ensemble: weights in the ``data`` store, metrics, split, settings, versions."""

    model_id: str
    name: str = Field(..., description="Registry name (one line of versions), e.g. 'epdi'")
    version: int
    status: Literal["current", "candidate", "retired"] = "candidate"
    architecture: str
    dataset: str = Field(..., description="Colour-scale dataset the fragments came from")
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
    created_at: datetime = Field(default_factory=_now)


class PredictionDoc(BaseModel):
    """Ensemble prediction of E_b for one site (mean and spread of the fold models, eV)."""

    prediction_id: str
    model_id: str
    surface_id: str
    site_id: str
    kind: Literal["valley", "saddle"]
    mean_ev: float
    std_ev: float
    updated_at: datetime = Field(default_factory=_now)
