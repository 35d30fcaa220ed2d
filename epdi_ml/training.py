"""Training a fold ensemble of CNN regressors on potential-image fragments: the public names in one place.

The code lives in modules that say what they hold; this module re-exports their public names so
that ``from epdi_ml.training import X`` keeps working:

* :mod:`epdi_ml.training_config`: :class:`TrainConfig`, :func:`clone_config`, :func:`resolve_device`,
  :func:`use_amp`;
* :mod:`epdi_ml.training_data`: :class:`FragmentData`, :class:`FragmentDataset`, :func:`to_rgb`,
  :func:`images_to_tensor`, :func:`augment_module_prepare`;
* :mod:`epdi_ml.training_splits`: :func:`split_paper_protocol`, :func:`group_kfold`;
* :mod:`epdi_ml.checkpoints`: the per-fold checkpoint files and the RNG states they carry;
* :mod:`epdi_ml.trainer`: :func:`train_fold`, :func:`train_ensemble`, :func:`train_step`,
  :func:`autocast`, :func:`recalibrate_batchnorm`, :func:`seed_everything`;
* :mod:`epdi_ml.ensemble`: :class:`FoldResult`, :class:`EnsembleResult`, :func:`predict_ensemble`,
  :func:`compute_embeddings`.

The protocol (paper split, surface-grouped 5-fold CV, L1 loss, AdamW lr 5e-5, best validation
epoch per fold) is described in :mod:`epdi_ml.trainer`.
"""

from __future__ import annotations

from epdi_ml.checkpoints import CHECKPOINT_FORMAT
from epdi_ml.ensemble import (
    EnsembleResult,
    FoldResult,
    compute_embeddings,
    models_from_state_dicts,
    predict_ensemble,
)
from epdi_ml.trainer import (
    AMP_DTYPE,
    autocast,
    recalibrate_batchnorm,
    seed_everything,
    train_ensemble,
    train_fold,
    train_step,
)
from epdi_ml.training_config import TrainConfig, clone_config, resolve_device, use_amp
from epdi_ml.training_data import (
    FragmentData,
    FragmentDataset,
    augment_module_prepare,
    images_to_tensor,
    to_rgb,
)
from epdi_ml.training_splits import group_kfold, split_paper_protocol

__all__ = [
    "AMP_DTYPE",
    "CHECKPOINT_FORMAT",
    "EnsembleResult",
    "FoldResult",
    "FragmentData",
    "FragmentDataset",
    "TrainConfig",
    "augment_module_prepare",
    "autocast",
    "clone_config",
    "compute_embeddings",
    "group_kfold",
    "images_to_tensor",
    "models_from_state_dicts",
    "predict_ensemble",
    "recalibrate_batchnorm",
    "resolve_device",
    "seed_everything",
    "split_paper_protocol",
    "to_rgb",
    "train_ensemble",
    "train_fold",
    "train_step",
    "use_amp",
]
