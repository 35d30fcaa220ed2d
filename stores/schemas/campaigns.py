"""Pydantic documents of active-learning campaigns: the campaign and each of its rounds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.schemas.fields import utc_now


class JobFailureDoc(BaseModel):
    """A job of a campaign that raised: its name and its error (the exception's last line)."""

    job: str
    error: str


class CampaignDoc(BaseModel):
    """One campaign (``epdi campaign run|submit SPEC``): its spec, surfaces and state."""

    campaign_id: str = Field(..., description="Deterministic id from the spec's name and content")
    name: str
    spec: dict = Field(..., description="The validated campaign spec (workflows.flows.campaign_spec)")
    surface_ids: list[str]
    n_hop_classes: int = Field(..., description="Distinct hops (CINEB candidates) over all surfaces")
    status: Literal["running", "finished", "failed"] = "running"
    stop_reason: str | None = None
    failures: list[JobFailureDoc] = Field(
        default_factory=list,
        description="Jobs that raised in the last run (status 'failed'); a rerun clears them",
    )
    current_model_id: str | None = None
    report_path: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class RoundDoc(BaseModel):
    """One select -> CINEB -> retrain round of a campaign (round 0: the initial labels)."""

    round_id: str
    campaign_id: str
    round: int
    strategy: str
    labelled_hop_ids: list[str] = Field(..., description="Distinct hops labelled before this round's model")
    selected_hop_ids: list[str] = Field(..., description="Hops chosen for CINEB at the end of this round")
    n_hop_classes: int
    fraction_labelled: float = Field(..., description="Labelled distinct hops / all distinct hops")
    model_id: str | None = Field(None, description="Ensemble trained on the labels of this round")
    cv_mae_ev: float | None = Field(None, description="Cross-validation MAE of that ensemble (eV)")
    max_spread_ev: float | None = Field(
        None, description="Largest raw ensemble spread on unlabelled saddles (eV, uncalibrated)"
    )
    mean_spread_ev: float | None = Field(None, description="Mean raw ensemble spread (eV, uncalibrated)")
    max_ci68_ev: float | None = Field(
        None, description="Largest calibrated 68 % half-width on unlabelled saddles (eV): the stop figure"
    )
    mean_ci68_ev: float | None = Field(None, description="Mean calibrated 68 % half-width (eV)")
    stop_reason: str | None = Field(None, description="Why the loop stopped after this round, if it did")
    wall_time_s: float | None = None
    created_at: datetime = Field(default_factory=utc_now)
