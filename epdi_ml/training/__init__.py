"""Training fold ensembles of CNN regressors on potential-image fragments, and what comes of them.

:mod:`~epdi_ml.training.config` (settings, device, mixed precision), :mod:`~epdi_ml.training.data`
(fragments in memory and the torch dataset), :mod:`~epdi_ml.training.splits` (paper split,
surface-grouped folds), :mod:`~epdi_ml.training.checkpoints`, :mod:`~epdi_ml.training.trainer`
(the protocol: L1 loss, AdamW lr 5e-5, best validation epoch per fold),
:mod:`~epdi_ml.training.ensemble` (fold results, predictions with spread, embeddings),
:mod:`~epdi_ml.training.calibration`, :mod:`~epdi_ml.training.registry` (versioned models),
:mod:`~epdi_ml.training.predictions` and :mod:`~epdi_ml.training.store_data` (fragments and
labels from the store).
"""
