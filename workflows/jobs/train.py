"""jobflow Maker for training a fold ensemble from the fragments and labels in the store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import numpy as np
from jobflow import Job, Maker, job

from epdi_ml.training.config import TrainConfig, resolve_device
from epdi_ml.training.registry import DEFAULT_REGISTRY_NAME, promote, register
from epdi_ml.training.splits import split_paper_protocol
from epdi_ml.training.store_data import load_fragments
from epdi_ml.training.trainer import train_ensemble
from stores.errors import InputError
from stores.facade import STORE_ACCESS, StoreFacade, job_facade
from stores.schemas.models import ModelDoc
from workflows.fireworks.categories import TRAINING_CATEGORY


class NotEnoughLabels(InputError):
    """Too few labelled fragments (or surfaces) to train the requested folds."""


@dataclass
class TrainMaker(Maker):
    """Train a surface-grouped CV ensemble on the store's labels and register it.

    The one training path of the platform: ``epdi model train`` (the paper's split), the campaign's
    rounds (every label so far) and scheduled retraining build this Maker.

    Parameters
    ----------
    config
        Model and optimiser settings.
    fraction
        Fraction f of the labelled saddles used for training/validation (with every valley); the
        other labelled saddles are the test set. ``None``: train on every label, no test set (a
        campaign round).
    dataset
        Colour-scale dataset of the fragments (``None``: all).
    source
        Label source (an engine or ``engine:hash``, :func:`epdi_ml.analysis.labels.label_source`);
        ``None``: the only one in the store (labels of two sources are never mixed).
    registry_name
        Name of the model line in the registry.
    surfaces
        Train on the labels of these surfaces only (``None``: every surface of ``dataset``).
    campaign_round
        A campaign round: a model of ``registry_name`` already trained on exactly these labels is
        reused, the folds are capped at the number of labelled surfaces, a run cut short resumes its
        folds from ``config.checkpoint_dir``, the checkpoints are removed once the weights are in the
        registry, and the model becomes the line's current one.
    """

    name: str = "train ensemble"
    config: TrainConfig = field(default_factory=TrainConfig)
    fraction: float | None = 0.33
    dataset: str | None = None
    source: str | None = None
    registry_name: str = DEFAULT_REGISTRY_NAME
    surfaces: list[str] | None = None
    campaign_round: bool = False

    def make(self, after: list | None = None) -> Job:
        """The training job, tagged for GPU workers (``manager_config._category``).

        ``after`` only orders the job after those whose labels it uses (e.g. a round's CINEBs).
        """
        train_job = self._train(after)
        train_job.update_config({"manager_config": {"_category": TRAINING_CATEGORY}})
        return train_job

    @job(config=STORE_ACCESS)
    def _train(self, after: list | None = None) -> ModelDoc:
        return self.train(job_facade())

    def train(self, facade: StoreFacade) -> ModelDoc:
        """Train and register the ensemble in ``facade`` (the job's work, callable inside other jobs)."""
        fragments = load_fragments(
            facade, self.dataset, source=self.source, surfaces=self.surfaces, distinct_only=True
        )
        labelled = fragments.labelled
        data = fragments.data.subset(labelled)
        ids = np.asarray(data.ids)
        if self.campaign_round and (same := _trained_on(facade, self.registry_name, ids)):
            return promote(facade, same)
        n_surfaces = len(set(data.surface_ids.tolist()))
        config = self.config
        if self.campaign_round:
            config = TrainConfig(**(config.model_dump() | {"folds": min(config.folds, n_surfaces)}))
        if n_surfaces < config.folds:
            raise NotEnoughLabels(
                f"{len(labelled)} labelled fragments on {n_surfaces} surfaces; "
                f"{config.folds}-fold CV by surface needs at least {config.folds} labelled surfaces"
            )
        if self.fraction is None:
            train_idx, test_idx = np.arange(len(data)), np.arange(0)
        else:
            train_idx, test_idx = split_paper_protocol(
                data.kinds, data.surface_ids, self.fraction, config.seed
            )
        test = data.subset(test_idx) if len(test_idx) else None
        result = train_ensemble(
            data.subset(train_idx),
            config,
            progress=not self.campaign_round,
            resume=self.campaign_round,
            test=test,
        )
        doc = register(
            facade,
            result,
            name=self.registry_name,
            dataset=self.dataset or "all",
            fraction=self.fraction,
            train_site_ids=ids[train_idx].tolist(),
            test_site_ids=ids[test_idx].tolist(),
            n_labels=len(labelled),
            device=str(resolve_device(config.device)),
            label_source=fragments.labels.source,
        )
        if not self.campaign_round:
            return doc
        # the registry holds the fold weights now; the round's checkpoints are not read again
        if config.checkpoint_dir is not None:
            shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
        return promote(facade, doc.model_id)


def _trained_on(facade: StoreFacade, registry_name: str, site_ids: np.ndarray) -> str | None:
    """Id of the newest model of ``registry_name`` trained on exactly ``site_ids``, else ``None``."""
    wanted = set(site_ids.tolist())
    for doc in facade.query("models", {"name": registry_name}, sort={"version": -1}):
        if set(doc["train_site_ids"]) == wanted:
            return doc["model_id"]
    return None
