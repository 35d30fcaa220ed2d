"""jobflow Maker for training a fold ensemble from the fragments and labels in the store."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jobflow import Job, Maker, job

from epdi_ml.training.config import TrainConfig, resolve_device
from epdi_ml.training.registry import DEFAULT_REGISTRY_NAME, register
from epdi_ml.training.splits import split_paper_protocol
from epdi_ml.training.store_data import load_fragments
from epdi_ml.training.trainer import train_ensemble
from stores.errors import InputError
from stores.facade import STORE_ACCESS, job_facade
from stores.schemas.models import ModelDoc
from workflows.fireworks.categories import TRAINING_CATEGORY


class NotEnoughLabels(InputError):
    """Too few labelled fragments (or surfaces) to train the requested folds."""


@dataclass
class TrainMaker(Maker):
    """Train a surface-grouped CV ensemble on the paper's split and register it.

    Parameters
    ----------
    config
        Model and optimiser settings.
    fraction
        Fraction f of the labelled saddles used for training/validation (with every valley);
        the other labelled saddles are the test set.
    dataset
        Colour-scale dataset of the fragments (``None``: all).
    source
        Label source (an engine or ``engine:hash``, :func:`epdi_ml.analysis.labels.label_source`);
        ``None``: the only one in the store (labels of two sources are never mixed).
    registry_name
        Name of the model line in the registry.
    """

    name: str = "train ensemble"
    config: TrainConfig = field(default_factory=TrainConfig)
    fraction: float = 0.33
    dataset: str | None = None
    source: str | None = None
    registry_name: str = DEFAULT_REGISTRY_NAME

    def make(self) -> Job:
        """The training job, tagged for GPU workers (``manager_config._category``)."""
        train_job = self._train()
        train_job.update_config({"manager_config": {"_category": TRAINING_CATEGORY}})
        return train_job

    @job(config=STORE_ACCESS)
    def _train(self) -> ModelDoc:
        facade = job_facade()
        fragments = load_fragments(facade, self.dataset, source=self.source, distinct_only=True)
        labelled = fragments.labelled
        data = fragments.data.subset(labelled)
        if len(set(data.surface_ids.tolist())) < self.config.folds:
            raise NotEnoughLabels(
                f"{len(labelled)} labelled fragments on {len(set(data.surface_ids.tolist()))} surfaces; "
                f"{self.config.folds}-fold CV by surface needs at least {self.config.folds} labelled surfaces"
            )
        train_idx, test_idx = split_paper_protocol(
            data.kinds, data.surface_ids, self.fraction, self.config.seed
        )
        result = train_ensemble(data.subset(train_idx), self.config, test=data.subset(test_idx))
        ids = np.asarray(data.ids)
        return register(
            facade,
            result,
            name=self.registry_name,
            dataset=self.dataset or "all",
            fraction=self.fraction,
            train_site_ids=ids[train_idx].tolist(),
            test_site_ids=ids[test_idx].tolist(),
            n_labels=len(labelled),
            device=str(resolve_device(self.config.device)),
            label_source=fragments.labels.source,
        )
