"""Saddle selection strategies, the stop rule, and the ridge fold ensemble of the selection benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from epdi_ml.bench.learners import fit_ridge_ensemble, ridge_features
from epdi_ml.bench.selection import fraction_to_match, labelled_counts
from epdi_ml.selection.strategies import STRATEGIES, select_batch, should_stop, standardise


def _cloud(n: int = 40, dim: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_random_is_reproducible_by_seed_and_unique():
    spread = np.linspace(0.0, 1.0, 50)
    first = select_batch("random", 10, spread_ev=spread, seed=3)
    again = select_batch("random", 10, spread_ev=spread, seed=3)
    other = select_batch("random", 10, spread_ev=spread, seed=4)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(set(first.tolist())) == 10 and first.min() >= 0 and first.max() < 50
    # random ignores the spread: a draw from embeddings alone has the same indices
    assert np.array_equal(select_batch("random", 10, embeddings=_cloud(50), seed=3), first)


def test_uncertainty_picks_the_largest_spreads_in_order():
    spread = np.random.default_rng(1).permutation(np.arange(30)) * 0.01
    picks = select_batch("uncertainty", 5, spread_ev=spread)
    assert picks.tolist() == np.argsort(-spread)[:5].tolist()
    assert np.all(np.diff(spread[picks]) < 0)


def test_batch_is_capped_by_the_candidates_and_zero_is_empty():
    spread = np.array([0.3, 0.1, 0.2])
    for strategy in STRATEGIES:
        picks = select_batch(strategy, 10, spread_ev=spread, embeddings=_cloud(3, 2))
        assert sorted(picks.tolist()) == [0, 1, 2], strategy
    assert select_batch("uncertainty", 0, spread_ev=spread).size == 0


def test_k_center_picks_the_far_outlier_first_and_never_repeats():
    rng = np.random.default_rng(2)
    labelled = rng.normal(0.0, 0.1, (8, 3))
    candidates = rng.normal(0.0, 0.5, (25, 3))
    candidates[17] = [40.0, -30.0, 25.0]  # far from everything labelled
    picks = select_batch("diversity", 25, embeddings=candidates, labelled_embeddings=labelled)
    assert picks[0] == 17
    assert sorted(picks.tolist()) == list(range(25))  # all of them, each once
    # the second pick is the farthest from the labelled set and the outlier (standardised space)
    both = np.concatenate([candidates, labelled])
    z = (both - both.mean(axis=0)) / both.std(axis=0)
    cand_z, centres = z[:25], np.concatenate([z[25:], z[17:18]])
    dist = np.min(np.linalg.norm(cand_z[:, None] - centres[None], axis=2), axis=1)
    dist[17] = -1.0
    assert picks[1] == int(np.argmax(dist))


def test_k_center_without_labelled_starts_far_from_the_mean():
    candidates = _cloud(20, 4, seed=5)
    candidates[4] *= 25.0
    picks = select_batch("diversity", 3, embeddings=candidates)
    assert picks[0] == 4 and len(set(picks.tolist())) == 3


def test_hybrid_lies_between_uncertainty_and_diversity():
    labelled = np.zeros((1, 1))
    # A: uncertain but next to a label; B: far but certain; C: fairly uncertain and fairly far
    embeddings = np.array([[0.1], [10.0], [7.0], [0.2]])
    spread = np.array([1.0, 0.0, 0.8, 0.1])
    kw = {"spread_ev": spread, "embeddings": embeddings, "labelled_embeddings": labelled}
    assert select_batch("uncertainty", 1, **kw)[0] == 0
    assert select_batch("diversity", 1, **kw)[0] == 1
    assert select_batch("hybrid", 1, hybrid_weight=0.5, **kw)[0] == 2
    # the weight's ends reproduce the pure strategies over a whole batch
    cloud, rng = _cloud(30, 5, seed=7), np.random.default_rng(7)
    spread = rng.uniform(0.0, 0.2, 30)
    full = {"spread_ev": spread, "embeddings": cloud, "labelled_embeddings": _cloud(5, 5, 8)}
    assert np.array_equal(
        select_batch("hybrid", 6, hybrid_weight=1.0, **full), select_batch("uncertainty", 6, **full)
    )
    assert np.array_equal(
        select_batch("hybrid", 6, hybrid_weight=0.0, **full), select_batch("diversity", 6, **full)
    )
    mixed = select_batch("hybrid", 30, hybrid_weight=0.3, **full)
    assert sorted(mixed.tolist()) == list(range(30))


def test_committee_is_the_hybrid_rule_on_the_members_spread_with_its_own_weight():
    from epdi_ml.selection.strategies import COMMITTEE_WEIGHT, MEMBER_SPREAD

    cloud, rng = _cloud(30, 5, seed=11), np.random.default_rng(11)
    full = {
        "spread_ev": rng.uniform(0.0, 0.02, 30),
        "embeddings": cloud,
        "labelled_embeddings": _cloud(4, 5, 12),
    }
    picks = select_batch("committee", 6, hybrid_weight=0.1, **full)  # hybrid_weight does not apply
    assert np.array_equal(picks, select_batch("hybrid", 6, hybrid_weight=COMMITTEE_WEIGHT, **full))
    assert not np.array_equal(picks, select_batch("hybrid", 6, hybrid_weight=0.1, **full))
    assert MEMBER_SPREAD == ("committee",)
    with pytest.raises(ValueError, match="needs spread_ev"):
        select_batch("committee", 2, embeddings=cloud)
    with pytest.raises(ValueError, match="needs embeddings"):
        select_batch("committee", 2, spread_ev=full["spread_ev"])


@pytest.mark.parametrize(
    ("strategy", "kwargs", "message"),
    [
        ("greedy", {"spread_ev": np.ones(3)}, "unknown selection strategy 'greedy'"),
        ("uncertainty", {"embeddings": np.ones((3, 2))}, "needs spread_ev"),
        ("diversity", {"spread_ev": np.ones(3)}, "needs embeddings"),
        ("hybrid", {"embeddings": np.ones((3, 2))}, "needs spread_ev"),
        ("hybrid", {"spread_ev": np.ones(3)}, "needs embeddings"),
        ("random", {}, "number of candidates is unknown"),
        ("hybrid", {"spread_ev": np.ones(3), "embeddings": np.ones((4, 2))}, "differ in length"),
        ("uncertainty", {"spread_ev": np.array([0.1, np.nan])}, "finite"),
        ("diversity", {"embeddings": np.ones(3)}, "2-D"),
        (
            "diversity",
            {"embeddings": np.ones((3, 2)), "labelled_embeddings": np.ones((2, 5))},
            "labelled_embeddings must be (m, 2)",
        ),
    ],
)
def test_bad_inputs_are_named(strategy, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_batch(strategy, 2, **kwargs)


def _summed_variance(z: np.ndarray, observed: np.ndarray, noise_var: float) -> float:
    """Summed predictive variance of Bayesian linear regression (weight prior N(0, I)), weight space."""
    precision = np.eye(z.shape[1]) + observed.T @ observed / noise_var
    return float(np.trace(z @ np.linalg.solve(precision, z.T)))


def test_design_picks_the_largest_reduction_of_the_summed_variance():
    rng = np.random.default_rng(7)
    candidates, labelled = rng.normal(size=(25, 4)), rng.normal(size=(6, 4))
    z, zl = standardise(candidates, labelled)
    noise_var = 0.05 * np.mean(np.sum(z * z, axis=1))
    picks = select_batch("design", 3, embeddings=candidates, labelled_embeddings=labelled, design_noise=0.05)
    observed = zl
    for pick in picks:  # each greedy pick is the brute-force best given the earlier picks
        before = _summed_variance(z, observed, noise_var)
        gains = [before - _summed_variance(z, np.vstack([observed, z[j]]), noise_var) for j in range(len(z))]
        gains = np.where(np.isin(np.arange(len(z)), picks[: list(picks).index(pick)]), -np.inf, gains)
        assert pick == int(np.argmax(gains))
        observed = np.vstack([observed, z[pick]])


def test_design_labels_each_cluster_once_before_any_second_member():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    candidates = np.vstack([c + 0.05 * rng.normal(size=(5, 3)) for c in centres])
    picks = select_batch("design", 3, embeddings=candidates)
    assert sorted(picks // 5) == [0, 1, 2]  # one label explains its near-copies
    labelled = centres[:2] + 0.05 * rng.normal(size=(2, 3))
    first = select_batch("design", 1, embeddings=candidates, labelled_embeddings=labelled)
    assert first[0] // 5 == 2  # the only cluster without a label
    assert len(set(select_batch("design", 15, embeddings=candidates).tolist())) == 15


def test_bad_batch_and_weight_are_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        select_batch("uncertainty", -1, spread_ev=np.ones(3))
    with pytest.raises(ValueError, match="hybrid_weight"):
        select_batch("hybrid", 1, spread_ev=np.ones(3), embeddings=np.ones((3, 2)), hybrid_weight=1.5)
    with pytest.raises(ValueError, match="design_noise"):
        select_batch("design", 1, embeddings=np.ones((3, 2)), design_noise=0.0)


def test_should_stop_gives_reasons_in_order():
    assert should_stop(0.2, 0.5, 0.3, 0.05, 0, 10) is None
    assert should_stop(0.2, None, None, None, 3, None) is None
    assert "budget reached" in should_stop(0.5, 0.5, 0.3, 0.05, 0, 10)
    reason = should_stop(0.2, 0.5, 0.04, 0.05, 0, 10)
    assert "uncertainty target" in reason and "0.0400 eV" in reason
    assert should_stop(0.2, 0.5, None, 0.05, 0, 10) is None  # no model yet: no spread to compare
    assert "round limit" in should_stop(0.2, 0.5, 0.3, 0.05, 9, 10)
    assert should_stop(0.2, 0.5, 0.3, 0.05, 8, 10) is None
    assert should_stop(1.0, None, None, None, 0, None) == "every hop is labelled"
    with pytest.raises(ValueError, match="fraction_labelled"):
        should_stop(1.2, 0.5, None, None, 0, None)
    with pytest.raises(ValueError, match="max_rounds"):
        should_stop(0.1, 0.5, None, None, 0, 0)


def test_fraction_to_match_interpolates_or_says_not_reached():
    fractions = [0.1, 0.2, 0.3, 0.4]
    assert fraction_to_match(fractions, [0.10, 0.08, 0.06, 0.05], 0.07) == pytest.approx(0.25)
    assert fraction_to_match(fractions, [0.05, 0.04, 0.03, 0.02], 0.07) == pytest.approx(0.1)
    assert fraction_to_match(fractions, [0.10, 0.09, 0.09, 0.08], 0.07) is None
    assert labelled_counts(20, [0.05, 0.2, 0.6]) == [1, 4, 12]
    with pytest.raises(ValueError, match="no test set"):
        labelled_counts(4, [0.2, 0.9])


def test_ridge_fold_ensemble_learns_a_linear_map_with_kind_offsets():
    rng = np.random.default_rng(0)
    n, p = 120, 8
    x = rng.normal(size=(n, p))
    kinds = np.where(np.arange(n) % 2 == 0, "valley", "saddle")
    surfaces = np.repeat([f"s{i}" for i in range(6)], n // 6)
    y = 3.5 + x @ np.linspace(0.1, 0.4, p) - 0.2 * (kinds == "saddle") + rng.normal(0, 0.01, n)
    ensemble = fit_ridge_ensemble(x[:100], y[:100], kinds[:100], surfaces[:100], folds=4, seed=0)
    mean, std = ensemble.predict(x[100:], kinds[100:])
    assert len(ensemble.weights) == 4
    assert np.mean(np.abs(mean - y[100:])) < 0.03  # the -0.2 eV saddle offset is learnt unpenalised
    assert np.all(std > 0) and ensemble.cv_mae_ev < 0.03


def test_ridge_features_keep_the_leading_components_and_scale_the_mep():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(30, 12)) * np.linspace(5, 0.1, 12)
    mep = rng.normal(size=30)
    features = ridge_features(embeddings, mep, n_components=4)
    assert features.shape == (30, 5)
    variances = features[:, :4].var(axis=0)
    assert np.all(np.diff(variances) <= 1e-9)  # principal components by decreasing variance
    assert features[:, 4].std() == pytest.approx(features[:, 0].std())
    assert abs(np.corrcoef(features[:, 4], mep)[0, 1] - 1.0) < 1e-12
