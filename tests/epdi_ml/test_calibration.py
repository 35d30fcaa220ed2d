"""Calibrated intervals: nominal coverage on synthetic data with known noise, small samples, domain."""

import numpy as np
import pytest

from epdi_ml.bench.learners import fit_ridge_ensemble
from epdi_ml.training.calibration import (
    MIN_RESIDUALS,
    calibrate_ensemble,
    conformal_quantile,
    difference_half_width,
    fit_calibration,
    member_correlation,
)
from epdi_ml.training.splits import group_kfold

NOISE_EV = 0.05


def _synthetic(n_surfaces=40, per_surface=30, dim=8, seed=0):
    """Sites on surfaces: E_b linear in 8 features plus Gaussian noise of known sd (NOISE_EV)."""
    rng = np.random.default_rng(seed)
    n = n_surfaces * per_surface
    x = rng.normal(size=(n, dim))
    weights = rng.normal(scale=0.2, size=dim)
    kinds = np.where(rng.random(n) < 0.5, "valley", "saddle")
    y = x @ weights + np.where(kinds == "valley", 3.0, 2.8) + rng.normal(scale=NOISE_EV, size=n)
    surfaces = np.repeat([f"s{i}" for i in range(n_surfaces)], per_surface)
    return x, y, kinds, surfaces


def _calibrated(x, y, kinds, surfaces, train, query, folds=5, seed=0):
    ensemble = fit_ridge_ensemble(x[train], y[train], kinds[train], surfaces[train], folds, seed)
    rows = np.concatenate([train, query])
    fold_of = np.full(len(rows), -1)
    for m, (_, val) in enumerate(group_kfold(surfaces[train], folds, seed)):
        fold_of[val] = m
    members = ensemble.predict_members(x[rows], kinds[rows])
    labels = np.where(np.arange(len(rows)) < len(train), y[rows], np.nan)
    return calibrate_ensemble(members, labels, kinds[rows], fold_of, x[rows]), rows


def test_intervals_cover_at_the_nominal_rate_with_known_noise():
    x, y, kinds, surfaces = _synthetic()
    train = np.flatnonzero(np.isin(surfaces, [f"s{i}" for i in range(20)]))
    query = np.setdiff1d(np.arange(len(y)), train)
    calibrated, rows = _calibrated(x, y, kinds, surfaces, train, query)
    q = slice(len(train), None)
    errors = np.abs(calibrated.mean_ev[q] - y[query])
    inside68 = np.mean(errors <= calibrated.ci_ev["68"][q])
    inside90 = np.mean(errors <= calibrated.ci_ev["90"][q])
    assert inside68 == pytest.approx(0.68, abs=0.04) and inside90 == pytest.approx(0.90, abs=0.03)
    # noise-dominated: the half-widths approach the Gaussian quantiles of the known noise
    assert np.median(calibrated.ci_ev["68"][q]) == pytest.approx(0.994 * NOISE_EV, rel=0.2)
    assert np.median(calibrated.ci_ev["90"][q]) == pytest.approx(1.645 * NOISE_EV, rel=0.2)
    for kind in ("valley", "saddle"):
        entry = calibrated.calibration.kinds[kind]
        assert not entry.pooled and entry.n_residuals == int(np.sum(kinds[train] == kind))
        assert all(entry.attained.values())
    # drawn like the training sites: only the odd one beyond the farthest calibration site
    assert calibrated.out_of_domain[q].mean() < 0.01


def test_far_sites_get_wider_intervals_and_are_out_of_domain():
    x, y, kinds, surfaces = _synthetic(seed=1)
    train = np.flatnonzero(np.isin(surfaces, [f"s{i}" for i in range(20)]))
    far = np.flatnonzero(surfaces == "s30")
    x = x.copy()
    x[far] += 25.0  # no training site anywhere near
    near = np.flatnonzero(surfaces == "s31")
    calibrated, _ = _calibrated(x, y, kinds, surfaces, train, np.concatenate([far, near]))
    q_far = slice(len(train), len(train) + len(far))
    q_near = slice(len(train) + len(far), None)
    assert calibrated.out_of_domain[q_far].all() and not calibrated.out_of_domain[q_near].any()
    # a linear model extrapolates along the training directions: wider, not unbounded
    assert calibrated.ci_ev["68"][q_far].min() > calibrated.ci_ev["68"][q_near].max()


def test_conformal_quantile_needs_enough_residuals():
    scores = np.arange(1.0, 11.0)  # 10 scores
    assert conformal_quantile(scores, 0.68) == (8.0, True)  # ceil(11 * 0.68) = 8th smallest
    assert conformal_quantile(scores, 0.90) == (10.0, True)
    assert conformal_quantile(scores[:5], 0.90) == (5.0, False)  # needs 9: the largest, not attained
    assert conformal_quantile([], 0.68)[1] is False


def test_a_kind_with_few_residuals_borrows_the_pooled_scores():
    residuals = np.r_[np.full(20, 0.01), np.full(MIN_RESIDUALS - 1, 0.5)]
    kinds = ["valley"] * 20 + ["saddle"] * (MIN_RESIDUALS - 1)
    calibration = fit_calibration(residuals, np.ones(len(kinds)), kinds, np.ones(len(kinds)))
    assert calibration.kinds["saddle"].pooled and not calibration.kinds["valley"].pooled
    assert calibration.kinds["saddle"].n_residuals == len(kinds)
    dumped = calibration.model_dump(mode="json")  # storable: no inf or NaN
    assert type(calibration).model_validate(dumped) == calibration


def test_difference_half_width_uses_the_member_correlation():
    members_a = np.array([[1.0], [2.0], [3.0]])
    assert member_correlation(members_a, 2 * members_a)[0] == pytest.approx(1.0)
    assert member_correlation(members_a, -members_a)[0] == pytest.approx(-1.0)
    assert member_correlation(members_a, np.ones((3, 1)))[0] == 0.0  # a flat member set
    assert difference_half_width(0.03, 0.04, 0.0) == pytest.approx(0.05)
    assert difference_half_width(0.03, 0.03, 1.0) == pytest.approx(0.0)
    assert difference_half_width(0.03, 0.0, 0.7) == pytest.approx(0.03)
