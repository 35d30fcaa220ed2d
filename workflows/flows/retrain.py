"""Scheduled retraining: a new model version when enough new saddle labels have arrived.

``epdi retrain --if-new N`` (from cron, a systemd timer or as a Firework) compares the labelled
distinct saddles now in the store with those the newest registered version saw (its training and
test site ids; ``ModelDoc.n_labels`` counts them with the valleys), trains a new fold ensemble with
the current model's recipe (:class:`~workflows.jobs.train.TrainMaker`), registers it as the next
version and promotes it only when its cross-validation MAE is not worse than the current model's.
The previous version stays in the registry (retired when replaced, current when kept). Counting from
the newest version, not the current one, means that a version kept as a candidate is not retrained
on the same labels at every scheduled run.

As jobflow jobs: :class:`RetrainMaker` makes a cheap gate job that either returns a ``skipped``
:class:`RetrainOutcome` or replaces itself by ``train -> promote_if_not_worse``. Every job of it
carries the ``gpu`` category, so on a cluster the whole chain runs on the GPU worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jobflow import Flow, Job, Maker, Response, job
from pydantic import BaseModel, Field

from epdi_ml.analysis.labels import class_labels, computed_labels
from epdi_ml.training.config import TrainConfig
from epdi_ml.training.registry import DEFAULT_REGISTRY_NAME, NoModel, get_model, promote
from stores.facade import STORE_ACCESS, StoreFacade, job_facade
from stores.schemas.models import ModelDoc
from stores.validation import build_validated
from workflows.jobs.train import TRAINING_CATEGORY, TrainMaker

#: fraction of labelled saddles used for training when neither the option nor a previous model says
DEFAULT_FRACTION = 0.33


class RetrainOutcome(BaseModel):
    """What one retraining did.

    ``action``: ``skipped`` (too few new labels), ``first`` (no model before; the new one is
    current), ``promoted`` (CV MAE not worse: the new version is current, the old one retired) or
    ``kept`` (CV MAE worse: the old version stays current, the new one stays a candidate).
    """

    action: Literal["skipped", "first", "promoted", "kept"]
    registry_name: str
    new_saddle_labels: int = Field(..., description="Labelled distinct saddles the newest version never saw")
    threshold: int = Field(..., description="New saddle labels needed to retrain (--if-new)")
    previous_model_id: str | None = None
    previous_cv_mae_ev: float | None = None
    model_id: str | None = Field(None, description="The version trained now (None when skipped)")
    version: int | None = None
    cv_mae_ev: float | None = None
    current_model_id: str | None = Field(None, description="The current model after this run")
    reason: str


def labelled_saddle_ids(facade: StoreFacade, dataset: str | None = None) -> set[str]:
    """Site ids of the distinct (class-representative) saddle fragments that have an E_b label."""
    docs = facade.query(
        "fragments",
        {"kind": "saddle", "is_representative": True},
        properties=["site_id", "representative_site_id", "colour_scale_id", "kind"],
    )
    if dataset is not None:
        scale_ids = {d["scale_id"] for d in facade.query("colour_scales", {"dataset": dataset})}
        docs = [d for d in docs if d["colour_scale_id"] in scale_ids]
    return set(class_labels(docs, computed_labels(facade)))


def previous_model(facade: StoreFacade, name: str = DEFAULT_REGISTRY_NAME) -> ModelDoc | None:
    """The current model of ``name`` (else its newest version), or ``None`` when none is registered."""
    try:
        return get_model(facade, name=name)
    except NoModel:
        return None


def newest_model(facade: StoreFacade, name: str = DEFAULT_REGISTRY_NAME) -> ModelDoc | None:
    """The highest version of ``name`` whatever its status, or ``None``."""
    docs = facade.query("models", {"name": name}, sort={"version": -1})
    return ModelDoc(**docs[0]) if docs else None


def new_saddle_labels(facade: StoreFacade, model: ModelDoc | None, dataset: str | None = None) -> int:
    """Labelled distinct saddles that ``model`` neither trained nor was tested on (all when no model)."""
    seen = set(model.train_site_ids) | set(model.test_site_ids) if model else set()
    return len(labelled_saddle_ids(facade, dataset) - seen)


def _model_dataset(model: ModelDoc | None) -> str | None:
    return None if model is None or model.dataset == "all" else model.dataset


def decide(facade: StoreFacade, candidate: ModelDoc, new_labels: int, threshold: int) -> RetrainOutcome:
    """Promote ``candidate`` when its CV MAE is not worse than the current model's; report the outcome."""
    base = {
        "registry_name": candidate.name,
        "new_saddle_labels": new_labels,
        "threshold": threshold,
        "model_id": candidate.model_id,
        "version": candidate.version,
        "cv_mae_ev": candidate.cv_mae_ev,
    }
    if candidate.status == "current":
        return RetrainOutcome(
            action="first", current_model_id=candidate.model_id, reason="first model of this name", **base
        )
    current = previous_model(facade, candidate.name)
    if current is None or current.model_id == candidate.model_id:
        promote(facade, candidate.model_id)
        return RetrainOutcome(
            action="first", current_model_id=candidate.model_id, reason="no other model to compare", **base
        )
    base |= {"previous_model_id": current.model_id, "previous_cv_mae_ev": current.cv_mae_ev}
    versus = f"{candidate.cv_mae_ev:.4f} eV vs {current.cv_mae_ev:.4f} eV of version {current.version}"
    if candidate.cv_mae_ev <= current.cv_mae_ev:
        promote(facade, candidate.model_id)
        return RetrainOutcome(
            action="promoted",
            current_model_id=candidate.model_id,
            reason=f"CV MAE not worse: {versus}",
            **base,
        )
    return RetrainOutcome(
        action="kept",
        current_model_id=current.model_id,
        reason=f"CV MAE worse: {versus}",
        **base,
    )


@job(config=STORE_ACCESS)
def promote_if_not_worse(candidate: ModelDoc | dict, new_labels: int, threshold: int) -> RetrainOutcome:
    """Job wrapper of :func:`decide` (the candidate comes from the training job's output)."""
    model = candidate if isinstance(candidate, ModelDoc) else ModelDoc(**candidate)
    return decide(job_facade(), model, new_labels, threshold)


def _gpu(job_: Job) -> Job:
    job_.update_config({"manager_config": {"_category": TRAINING_CATEGORY}})
    return job_


@dataclass
class RetrainMaker(Maker):
    """Retrain when at least ``min_new_labels`` new saddle labels arrived since the current model.

    Parameters
    ----------
    min_new_labels
        The ``--if-new N`` threshold (0: always retrain).
    registry_name
        Model line in the registry.
    config_overrides
        :class:`~epdi_ml.training.TrainConfig` fields that replace the current model's recipe
        (model, epochs, pixels, folds, ...); the whole recipe when there is no model yet.
    fraction
        Fraction of labelled saddles for training (default: the current model's, else 0.33).
    dataset
        Colour-scale dataset (default: the current model's).
    """

    name: str = "retrain"
    min_new_labels: int = 0
    registry_name: str = DEFAULT_REGISTRY_NAME
    config_overrides: dict[str, Any] = field(default_factory=dict)
    fraction: float | None = None
    dataset: str | None = None

    def make(self) -> Job:
        """The gate job (``gpu`` category, like the training it may start)."""
        return _gpu(self._gate())

    def train_maker(self, facade: StoreFacade, previous: ModelDoc | None) -> TrainMaker:
        """The :class:`TrainMaker` with the previous model's recipe and the overrides."""
        recipe = dict(previous.config) if previous else {}
        existing = facade.query("models", {"name": self.registry_name}, properties=["version"])
        next_version = 1 + max((d["version"] for d in existing), default=0)
        checkpoints = facade.settings.folder("checkpoints", f"retrain-{self.registry_name}-v{next_version}")
        recipe |= self.config_overrides | {"checkpoint_dir": checkpoints}
        fraction = self.fraction
        if fraction is None:
            fraction = previous.fraction if previous and previous.fraction is not None else DEFAULT_FRACTION
        base = f"model {previous.model_id}" if previous else "defaults"
        what = f"invalid retraining recipe ({base} + options)"
        return TrainMaker(
            config=build_validated(TrainConfig, recipe, what, prefix="--"),
            fraction=fraction,
            dataset=self.dataset or _model_dataset(previous),
            registry_name=self.registry_name,
        )

    @job(config=STORE_ACCESS)
    def _gate(self) -> Response | RetrainOutcome:
        facade = job_facade()
        previous = previous_model(facade, self.registry_name)
        newest = newest_model(facade, self.registry_name)
        dataset = self.dataset or _model_dataset(previous)
        new = new_saddle_labels(facade, newest, dataset)
        if newest is not None and new < self.min_new_labels:
            return RetrainOutcome(
                action="skipped",
                registry_name=self.registry_name,
                new_saddle_labels=new,
                threshold=self.min_new_labels,
                previous_model_id=previous.model_id if previous else None,
                previous_cv_mae_ev=previous.cv_mae_ev if previous else None,
                current_model_id=previous.model_id if previous else None,
                reason=f"{new} new saddle labels since version {newest.version}; "
                f"{self.min_new_labels} needed",
            )
        train = self.train_maker(facade, previous).make()  # gpu category (TrainMaker)
        decision = _gpu(promote_if_not_worse(train.output, new, self.min_new_labels))
        decision.name = "promote if not worse"
        return Response(replace=Flow([train, decision], output=decision.output, name="retrain"))


def outcome_of(responses: dict) -> RetrainOutcome | None:
    """The :class:`RetrainOutcome` among ``run_locally``'s responses (``None`` when a job failed)."""
    found = None
    for by_index in responses.values():
        for response in by_index.values():
            if isinstance(response.output, RetrainOutcome):
                found = response.output
    return found
