"""Calibrated intervals for fold-ensemble predictions: normalised split-conformal on CV residuals.

Calibration set
    Every labelled training site, predicted by the one fold model that did not see it (folds are
    split by surface, so each residual ``r_i = y_i - f_m(i)(x_i)`` is an out-of-fold error).
Difficulty
    ``d(x) = sqrt(1 + v(x) / noise_var)``: the posterior predictive standard deviation, in units of
    the noise, of the Bayesian linear model of :mod:`epdi_ml.selection.linear_model` on a fold model's
    standardised embeddings, conditioned on that fold's training sites (the model behind the
    ``design`` selection). A residual site takes the difficulty from its own fold model; a new site
    the mean of ``v / noise_var`` over the fold models.
Intervals
    Per site kind, ``q_p`` is the ``ceil((n + 1) p)``-th smallest normalised score ``|r_i| / d_i``
    of the ``n`` residuals (the split-conformal quantile); the nominal-``p`` interval of a new site
    is ``mean +- c q_p d(x)``, ``mean`` being the ensemble mean and ``c <= 1`` the ensemble factor
    (:func:`ensemble_factor`: a residual is the error of one member, the mean of K members errs by
    less, by their spread). Levels: :data:`LEVELS` (68 % and
    90 %). A level that needs more residuals than there are (``ceil((n + 1) p) > n``) takes the
    largest score and is marked as not attained. A kind with fewer than :data:`MIN_RESIDUALS`
    residuals uses the scores of every kind pooled.
Domain
    The nearest-label distance of a site is its distance (standardised embeddings of a fold model)
    to the nearest training site of the same kind; a residual site uses its own fold model, a new
    site the mean over fold models. A new site farther than every residual site was from its fold's
    training sites (``domain_edge`` of its kind) is out of domain: no label is like it.
Differences (barriers)
    ``a - b`` of two predictions has half-width ``sqrt(h_a^2 + h_b^2 - 2 rho h_a h_b)`` at each level,
    ``rho`` the correlation of the fold members' predictions at both sites (:func:`difference_half_width`);
    a label has half-width 0.

The figure the campaign and the selection strategies use is the calibrated 68 % half-width
(``ci68_ev``), not the raw ensemble spread (``std_ev``, kept in the documents).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from epdi_ml.selection.linear_model import (
    DESIGN_NOISE,
    gram_nearest_distance,
    gram_variance_ratio,
    standardise,
)

#: nominal coverages of the stored intervals, by key
LEVELS = {"68": 0.68, "90": 0.90}
#: a kind with fewer out-of-fold residuals than this borrows the pooled scores of every kind
MIN_RESIDUALS = 9
METHOD = (
    "normalised split-conformal on surface-fold CV residuals per site kind; difficulty = posterior sd "
    "of a Bayesian linear model on the fold models' standardised embeddings"
)


class KindCalibration(BaseModel):
    """Conformal quantiles of one site kind."""

    n_residuals: int
    pooled: bool
    quantiles: dict[str, float | None]
    attained: dict[str, bool]
    oof_mae_ev: float | None
    domain_edge: float | None
    ensemble_factor: float = Field(
        1.0, description="Scale from one out-of-fold member's error to the ensemble mean's (<= 1)"
    )

    def quantile(self, key: str) -> float:
        """The score quantile of a level (inf without any residual)."""
        value = self.quantiles.get(key)
        return math.inf if value is None else float(value)

    def edge(self) -> float:
        """The domain edge (inf without any finite distance)."""
        return math.inf if self.domain_edge is None else float(self.domain_edge)


class Calibration(BaseModel):
    """Per-kind conformal quantiles of a fold ensemble (see the module docstring)."""

    method: str = METHOD
    levels: dict[str, float] = LEVELS
    kinds: dict[str, KindCalibration]

    def half_widths(self, kinds: Sequence[str], difficulty: np.ndarray) -> dict[str, np.ndarray]:
        """Half-widths (eV) of the nominal intervals, by level key, for sites of ``kinds``."""
        kinds = np.asarray(kinds).astype(str)
        out = {}
        for key in self.levels:
            q = np.array([self._kind(k).quantile(key) * self._kind(k).ensemble_factor for k in kinds])
            out[key] = q * np.asarray(difficulty, dtype=float)
        return out

    def out_of_domain(self, kinds: Sequence[str], nearest_ev: np.ndarray) -> np.ndarray:
        """True where a site is farther from the labels than any calibration site was."""
        edges = np.array([self._kind(k).edge() for k in np.asarray(kinds).astype(str)])
        return np.asarray(nearest_ev, dtype=float) > edges

    def _kind(self, kind: str) -> KindCalibration:
        if kind in self.kinds:
            return self.kinds[kind]
        return self.kinds["pooled"]


def conformal_quantile(scores: np.ndarray, level: float) -> tuple[float, bool]:
    """The ``ceil((n + 1) level)``-th smallest score and whether ``n`` is enough for it.

    Without enough scores the largest is returned (``attained`` False); without any, inf.
    """
    scores = np.sort(np.asarray(scores, dtype=float))
    n = len(scores)
    if n == 0:
        return math.inf, False
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return float(scores[-1]), False
    return float(scores[rank - 1]), True


def fit_calibration(
    residual_ev: np.ndarray, difficulty: np.ndarray, kinds: Sequence[str], nearest: np.ndarray
) -> Calibration:
    """Conformal quantiles per kind from out-of-fold residuals (eV), difficulties and distances."""
    residual_ev, difficulty = np.asarray(residual_ev, float), np.asarray(difficulty, float)
    kinds, nearest = np.asarray(kinds).astype(str), np.asarray(nearest, float)
    scores = np.abs(residual_ev) / difficulty

    def entry(rows: np.ndarray, pooled: bool) -> KindCalibration:
        fitted = {key: conformal_quantile(scores[rows], p) for key, p in LEVELS.items()}
        finite = nearest[rows][np.isfinite(nearest[rows])]
        return KindCalibration(
            n_residuals=int(rows.sum()),
            pooled=pooled,
            quantiles={k: (v[0] if math.isfinite(v[0]) else None) for k, v in fitted.items()},
            attained={k: v[1] for k, v in fitted.items()},
            oof_mae_ev=float(np.mean(np.abs(residual_ev[rows]))) if rows.any() else None,
            domain_edge=float(finite.max()) if finite.size else None,
        )

    everything = np.ones(len(scores), dtype=bool)
    out = {"pooled": entry(everything, True)}
    for kind in sorted(set(kinds.tolist())):
        rows = kinds == kind
        out[kind] = entry(rows, False) if rows.sum() >= MIN_RESIDUALS else out["pooled"].model_copy()
    return Calibration(kinds=out)


#: the ensemble correction never shrinks the quantiles below this factor
MIN_ENSEMBLE_FACTOR = 0.5


def ensemble_factor(scores: np.ndarray, spreads: np.ndarray) -> float:
    """``sqrt(1 - mean(spread^2) / mean(score^2))``, within [:data:`MIN_ENSEMBLE_FACTOR`, 1].

    Per site, the mean squared error of the K members equals the squared error of their mean plus
    their variance (the squared spread). The out-of-fold residuals ``scores`` are errors of one
    member; ``spreads`` are the member spreads at the new sites (both divided by the difficulty), so
    the ensemble mean's error is smaller by this factor. 1 without residuals or new sites.
    """
    scores, spreads = np.asarray(scores, float), np.asarray(spreads, float)
    if not scores.size or not spreads.size:
        return 1.0
    member = float(np.mean(scores**2))
    if member <= 0:
        return 1.0
    factor = math.sqrt(max(1.0 - float(np.mean(spreads**2)) / member, 0.0))
    return float(np.clip(factor, MIN_ENSEMBLE_FACTOR, 1.0))


def member_correlation(members_a: np.ndarray, members_b: np.ndarray) -> np.ndarray:
    """Correlation over fold members of the predictions at two sites, per column (0 if either is flat).

    Parameters
    ----------
    members_a, members_b : ndarray
        ``(K, n)`` member predictions (eV) at the first and second site of each pair.
    """
    a = np.asarray(members_a, float) - np.mean(members_a, axis=0)
    b = np.asarray(members_b, float) - np.mean(members_b, axis=0)
    norm = np.sqrt(np.sum(a * a, axis=0) * np.sum(b * b, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(norm > 0, np.sum(a * b, axis=0) / norm, 0.0)
    return np.clip(rho, -1.0, 1.0)


def difference_half_width(h_a, h_b, rho=0.0):
    """Half-width of ``a - b`` from the half-widths of ``a`` and ``b`` and their correlation.

    Floats in, float out (fast path for profiles); arrays broadcast.
    """
    if all(isinstance(v, float | int) for v in (h_a, h_b, rho)):
        return math.sqrt(max(h_a * h_a + h_b * h_b - 2.0 * rho * h_a * h_b, 0.0))
    h_a, h_b, rho = np.asarray(h_a, float), np.asarray(h_b, float), np.asarray(rho, float)
    return np.sqrt(np.maximum(h_a**2 + h_b**2 - 2.0 * rho * h_a * h_b, 0.0))


@dataclass
class EnsembleIntervals:
    """Calibrated predictions of every row (eV): mean, raw spread, half-widths, domain.

    Attributes
    ----------
    mean_ev, std_ev : ndarray
        Ensemble mean and raw spread (population std over the members).
    members_ev : ndarray
        ``(K, N)`` member predictions.
    ci_ev : dict of ndarray
        Calibrated half-widths by level key (``"68"``, ``"90"``).
    difficulty, nearest_label : ndarray
        Difficulty ``d`` and nearest-label distance of each row.
    out_of_domain : ndarray of bool
        Rows farther from the labels than any calibration site.
    calibration : Calibration
        The fitted quantiles.
    """

    mean_ev: np.ndarray
    std_ev: np.ndarray
    members_ev: np.ndarray
    ci_ev: dict[str, np.ndarray]
    difficulty: np.ndarray
    nearest_label: np.ndarray
    out_of_domain: np.ndarray
    calibration: Calibration


def calibrate_ensemble(
    members_ev: np.ndarray,
    labels_ev: np.ndarray,
    kinds: Sequence[str],
    fold_of: np.ndarray,
    features: Sequence[np.ndarray] | np.ndarray,
    *,
    noise: float = DESIGN_NOISE,
    standardise_features: bool = True,
    ensemble_correction: bool = True,
) -> EnsembleIntervals:
    """Calibrated intervals of every row of a fold ensemble (see the module docstring).

    Parameters
    ----------
    members_ev : ndarray
        ``(K, N)`` predictions of every fold model at every row (eV).
    labels_ev : ndarray
        ``(N,)`` labels (eV; NaN where unlabelled).
    kinds : sequence of str
        Site kind per row.
    fold_of : ndarray of int
        ``(N,)`` for each training row the fold (0..K-1) whose model did not see it; -1 for rows
        outside the training set.
    features : ndarray or sequence of ndarray
        ``(N, d)`` features of every row, one array per fold model (its embeddings) or one shared.
    noise : float
        Relative noise of the linear model (:func:`epdi_ml.selection.linear_model.default_noise_var`).
    standardise_features : bool
        Standardise each fold's features over all rows first.
    ensemble_correction : bool
        Scale the quantiles by :func:`ensemble_factor` (the ensemble mean errs less than the one
        out-of-fold member each residual comes from).
    """
    members = np.asarray(members_ev, dtype=float)
    n_folds, n_rows = members.shape
    labels = np.asarray(labels_ev, dtype=float)
    kinds = np.asarray(kinds).astype(str)
    fold_of = np.asarray(fold_of, dtype=int)
    shared = isinstance(features, np.ndarray)
    per_fold = [features] * n_folds if shared else list(features)
    if len(per_fold) != n_folds:
        raise ValueError(f"{len(per_fold)} feature blocks for {n_folds} fold models")

    def prepared(block) -> np.ndarray:
        block = np.asarray(block, dtype=float)
        return standardise(block)[0] if standardise_features else block

    common = prepared(features) if shared else None
    gram_common = common @ common.T if common is not None else None
    ratio = np.zeros((n_folds, n_rows))
    nearest = np.zeros((n_folds, n_rows))
    for m, block in enumerate(per_fold):
        if gram_common is not None:
            gram = gram_common
        else:
            x = prepared(block)
            gram = x @ x.T
        train = (fold_of >= 0) & (fold_of != m)
        # the design strategy's noise: DESIGN_NOISE times the mean prior variance of the training rows
        noise_var = noise * max(float(np.mean(np.diag(gram)[train])) if train.any() else 0.0, 1e-12)
        ratio[m] = gram_variance_ratio(gram, train, noise_var)
        for kind in set(kinds.tolist()):
            rows = kinds == kind
            nearest[m, rows] = gram_nearest_distance(gram, rows, train & rows)
    in_training = fold_of >= 0
    own = np.clip(fold_of, 0, n_folds - 1)
    cols = np.arange(n_rows)
    ratio_row = np.where(in_training, ratio[own, cols], ratio.mean(axis=0))
    nearest_row = np.where(in_training, nearest[own, cols], nearest.mean(axis=0))
    difficulty = np.sqrt(1.0 + ratio_row)
    calib_rows = in_training & np.isfinite(labels)
    oof = members[own, cols]
    calibration = fit_calibration(
        (labels - oof)[calib_rows], difficulty[calib_rows], kinds[calib_rows], nearest_row[calib_rows]
    )
    if ensemble_correction:
        spread = members.std(axis=0) / difficulty
        scores = (labels - oof) / difficulty
        for kind, entry in calibration.kinds.items():
            rows = calib_rows if entry.pooled else calib_rows & (kinds == kind)
            new = ~in_training if kind == "pooled" else ~in_training & (kinds == kind)
            entry.ensemble_factor = ensemble_factor(scores[rows], spread[new])
    return EnsembleIntervals(
        mean_ev=members.mean(axis=0),
        std_ev=members.std(axis=0),
        members_ev=members,
        ci_ev=calibration.half_widths(kinds, difficulty),
        difficulty=difficulty,
        nearest_label=nearest_row,
        out_of_domain=calibration.out_of_domain(kinds, nearest_row) & ~in_training,
        calibration=calibration,
    )
