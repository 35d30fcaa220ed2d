"""``epdi bench selection`` on a small labelled store (4 surfaces of 3x3 MoS2, synthetic statics)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.selection.strategies import STRATEGIES
from epdi_ml.training.store_data import load_fragments
from stores.settings import get_settings
from workflows.cli.app import app

runner = CliRunner()

TINY_GRID = ["--initial", "0.2", "--max-fraction", "0.6", "--step", "0.2", "--folds", "2"]


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory):
    """A store whose fragments sit on the 'reference' colour scale, every valley and hop class labelled.

    Labels are exactly linear in the fragment MEP per site kind (offset 0 on every surface).
    """
    folder = tmp_path_factory.mktemp("selection") / "epdi-data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EPDI_DATA_DIR", str(folder))
        get_settings.cache_clear()
        facade, ids = synthetic_fragment_store(("none", "Co", "Ni", "Zn"), 16, dataset="reference")
        for sid in ids:
            add_binding_energies(facade, sid, offset=0.0)
        pool = load_fragments(facade, dataset="reference", distinct_only=True)
        n_saddles = int(np.sum(pool.data.kinds[pool.labelled] == "saddle"))
    get_settings.cache_clear()
    return folder, n_saddles


@pytest.fixture
def store(reference_store, data_dir):
    """A private copy of the module's store in this test's data folder."""
    folder, n_saddles = reference_store
    shutil.copytree(folder, data_dir)
    get_settings.cache_clear()
    return n_saddles


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ridge_on_random_embeddings_reports_every_strategy(store, data_dir, tmp_path):
    plot = tmp_path / "sel.png"
    args = ["bench", "selection", "--seeds", "2", *TINY_GRID, "--no-pretrained", "--plot", str(plot)]
    args.append("--json")
    report = _json(runner.invoke(app, args))
    assert list(report["strategies"]) == list(STRATEGIES)
    assert report["n_surfaces"] == 4 and report["n_saddles"] == store and report["seeds"] == [0, 1]
    assert report["model"] == "small_cnn" and report["learner"] == "ridge"
    assert report["anchor"] == "valley-midpoint"
    labelled = report["labelled_fractions"]
    assert len(labelled) == 3 and np.all(np.diff(labelled) > 0)
    assert report["n_labelled_saddles"] == [round(f * store) for f in (0.2, 0.4, 0.6)]
    for name, info in report["strategies"].items():
        maes = np.array(info["mae_per_seed_ev"])
        assert maes.shape == (2, 3) and np.all(np.isfinite(maes)) and np.all(maes >= 0), name
        assert np.allclose(info["mae_mean_ev"], maes.mean(axis=0))
        # labels are linear in the MEP, a feature here: the learner beats the mean-label baseline
        assert np.all(np.array(info["mae_mean_ev"]) < 0.5 * np.array(info["mean_baseline_mae_ev"])), name
        f = info["fraction_to_match"]
        assert f is None or labelled[0] <= f <= labelled[-1]
    # every strategy starts from the same seeded random set, so the first point is shared
    firsts = {info["mae_mean_ev"][0] for info in report["strategies"].values()}
    assert max(firsts) - min(firsts) < 1e-12
    random_mean = report["strategies"]["random"]["mae_mean_ev"]
    assert report["random_mae_at_match_ev"] == pytest.approx(np.interp(0.5, labelled, random_mean))
    assert report["goal_fraction"] == 0.20 and report["required_fraction"] == 0.22
    assert isinstance(report["goal_met"], bool) and isinstance(report["required_met"], bool)
    assert plot.is_file() and plot.stat().st_size > 10_000 and report["plot"] == str(plot)
    # calibrated intervals: coverage within [0, 1], the 90 % interval wider and covering more
    for key in ("coverage_68", "coverage_90", "width_68_ev", "width_90_ev", "barrier_coverage_68"):
        assert report[key] == report["strategies"]["random"][key], key
    for name, info in report["strategies"].items():
        assert 0.0 <= info["coverage_68"] <= info["coverage_90"] <= 1.0, name
        assert 0.0 < info["width_68_ev"] < info["width_90_ev"], name
        assert 0.0 <= info["barrier_coverage_68"] <= info["barrier_coverage_90"] <= 1.0, name
    assert report["n_paths"] == 12  # three zigzag paths on each of the 4 fully labelled surfaces
    # one run, figures for the first 1 and 2 seeds
    assert list(report["by_seed_count"]) == ["2"]
    assert report["by_seed_count"]["2"]["fraction_to_match"] == {
        name: info["fraction_to_match"] for name, info in report["strategies"].items()
    }


def test_pretrained_embeddings_print_the_table_and_the_goal(store, data_dir):
    result = runner.invoke(
        app, ["bench", "selection", "--seeds", "2", "--seed-counts", "1,2", *TINY_GRID, "--no-mep"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "efficientnet_lite0 embeddings (ImageNet weights" in out and "+ MEP" not in out
    assert f"{store} distinct saddles" in out and "4 surfaces" in out
    rows = [line for line in out.splitlines() if line.strip().endswith(tuple("0123456789")) and "+-" in line]
    assert len(rows) == 3 and all(line.count("+-") == len(STRATEGIES) for line in rows)
    assert "fraction needed to reach random's MAE at 50 %, for the first 1 / 2 seeds" in out
    assert "goal: <= 20 % for the best strategy" in out and "required <= 22 %" in out
    assert "calibrated intervals on test saddles" in out
    assert (data_dir / "bench" / "selection.png").is_file()


def test_cnn_learner_retrains_each_round(store):
    args = ["bench", "selection", "--learner", "cnn", "--no-pretrained", "--epochs", "1", "--pixels", "16"]
    args += ["--seeds", "1", "--strategy", "hybrid", *TINY_GRID, "--device", "cpu", "--json"]
    report = _json(runner.invoke(app, args))
    assert list(report["strategies"]) == ["random", "hybrid"]  # random always runs: it sets the target
    assert report["learner"] == "cnn" and "retrained each round" in report["features"]
    for info in report["strategies"].values():
        assert np.all(np.isfinite(info["mae_mean_ev"])) and np.all(np.array(info["mean_spread_ev"]) > 0)
        assert 0.0 <= info["coverage_68"] <= 1.0 and info["width_90_ev"] > 0


def test_valley_anchored_learner(store):
    args = ["bench", "selection", "--seeds", "1", *TINY_GRID, "--no-pretrained", "--strategy", "design"]
    report = _json(runner.invoke(app, [*args, "--anchor", "valley-midpoint", "--json"]))
    assert report["anchor"] == "valley-midpoint" and "anchored" in report["features"]
    for info in report["strategies"].values():
        assert np.all(np.isfinite(info["mae_mean_ev"])) and 0.0 <= info["coverage_90"] <= 1.0
        midpoint = np.array(info["valley_midpoint_baseline_mae_ev"])
        assert midpoint.shape == (3,) and np.all(np.isfinite(midpoint)) and np.all(midpoint >= 0)
    default = _json(runner.invoke(app, [*args, "--json"]))
    assert default["anchor"] == "valley-midpoint"  # the ridge learner's default
    assert default["strategies"]["design"]["mae_mean_ev"] == report["strategies"]["design"]["mae_mean_ev"]


def test_bad_options_exit_2_with_the_reason(store):
    cases = [
        (["--strategy", "greedy"], "unknown strategy greedy"),
        (["--initial", "0.5", "--max-fraction", "0.3"], "must exceed initial_fraction"),
        (["--folds", "5"], "lower --folds"),
        (["--learner", "svm"], "learner"),
        (["--anchor", "valley-midpoint", "--learner", "cnn"], "ridge learner only"),
        (["--seed-counts", "3"], "seed_counts"),
        (["--batch-size", "-1"], "--batch-size"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["bench", "selection", "--seeds", "1", "--no-pretrained", *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_dataset_names_the_load_command(data_dir):
    result = runner.invoke(app, ["bench", "selection"])
    assert result.exit_code == 1
    assert "epdi dataset load reference" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_stored_fragments_carry_their_valley_anchors(store):
    """load_fragments' anchors (from hops and class labels) equal the pool's valley midpoints."""
    from epdi_ml.bench.selection_pool import load_pool
    from stores.facade import StoreFacade

    facade = StoreFacade()
    pool = load_pool(facade)
    fragments = load_fragments(facade, dataset="reference", distinct_only=True)
    data = fragments.data.subset(fragments.labelled)
    assert list(data.ids) == list(pool.data.ids)
    saddles = data.kinds == "saddle"
    assert np.isnan(data.anchors_ev[~saddles]).all() and np.isfinite(data.anchors_ev[saddles]).all()
    np.testing.assert_allclose(data.anchors_ev[saddles], pool.valley_midpoints_ev()[saddles])


def test_valley_features_come_from_the_labelled_end_valleys_of_each_hop(store):
    """Valley step, midpoint, their distance from the host's median and the host, standardised."""
    from epdi_ml.bench.selection_pool import load_pool
    from stores.facade import StoreFacade

    pool = load_pool(StoreFacade())
    x = pool.valley_features()
    saddles = pool.saddles
    hosts = sorted(set(pool.hosts[saddles].tolist()))
    assert x.shape == (len(pool.data), 4 + len(hosts))
    assert not x[pool.valleys].any()  # valleys carry none
    np.testing.assert_allclose(x[saddles].mean(axis=0), 0.0, atol=1e-9)
    pair = pool.data.energies_ev[pool.hop_valleys[saddles]]
    step = pair[:, 0] - pair[:, 1]
    assert np.corrcoef(x[saddles, 0], step)[0, 1] > 0.999999  # a standardised valley step
    np.testing.assert_allclose(x[saddles, 4:].sum(axis=1), x[saddles, 4:].sum(axis=1)[0])  # one host each
    host = pool.hosts[saddles]
    medians = np.array([np.median(step[host == h]) for h in host])
    assert np.corrcoef(x[saddles, 2], np.abs(step - medians))[0, 1] > 0.999999  # perturbation per host


def test_committee_diversity_lives_in_the_learners_own_features(store):
    """Committee spaces its picks in the ridge heads' inputs; hybrid in the CNN embeddings."""
    from epdi_ml.bench.learners import RidgeLearner
    from epdi_ml.bench.selection import labelled_counts, run_strategy
    from epdi_ml.bench.selection_pool import load_pool
    from epdi_ml.selection.strategies import LEARNER_FEATURES
    from stores.facade import StoreFacade

    pool = load_pool(StoreFacade())
    rng = np.random.default_rng(0)
    features = rng.normal(size=(len(pool.data), 6))
    features[:, 0] = pool.meps_ev  # labels are linear in the MEP: the heads can learn them
    counts = labelled_counts(len(pool.saddles), [0.2, 0.4, 0.6])

    def curve(strategy: str, embeddings: np.ndarray) -> list[float]:
        learner = RidgeLearner(pool, embeddings, features, folds=2)
        return run_strategy(learner, pool, strategy, 0, counts)["mae_ev"]

    # the same heads on the same features; only the frozen embeddings differ
    one, other = rng.normal(size=(len(pool.data), 5)), rng.normal(size=(len(pool.data), 5))
    np.testing.assert_array_equal(
        RidgeLearner(pool, one, features, 2).own_features(pool.saddles), features[pool.saddles]
    )
    assert LEARNER_FEATURES == ("committee",)
    hybrid = [curve("hybrid", e) for e in (one, other)]
    assert hybrid[0] != hybrid[1]  # hybrid reads the embeddings (k-center distances, calibrated widths)
    committee = [curve("committee", e) for e in (one, other)]
    assert committee[0] == committee[1]  # committee's are not: its picks follow the features alone


def test_batches_refit_the_ensemble_between_picks_but_leave_random_alone(store):
    from epdi_ml.bench.learners import RidgeLearner
    from epdi_ml.bench.selection import labelled_counts, run_strategy
    from epdi_ml.bench.selection_pool import load_pool
    from stores.facade import StoreFacade

    pool = load_pool(StoreFacade())
    rng = np.random.default_rng(1)
    features = np.column_stack([pool.meps_ev, rng.normal(size=(len(pool.data), 4))])
    learner = RidgeLearner(pool, rng.normal(size=(len(pool.data), 5)), features, folds=2)
    counts = labelled_counts(len(pool.saddles), [0.2, 0.4, 0.6])
    assert counts[1] - counts[0] > 1  # a step holds more than one batch of 1

    fits = []
    original = learner.fit

    def counting_fit(*args):
        fits.append(1)
        return original(*args)

    learner.fit = counting_fit
    whole = run_strategy(learner, pool, "committee", 0, counts, batch_size=None)
    n_whole, fits[:] = len(fits), []
    single = run_strategy(learner, pool, "committee", 0, counts, batch_size=1)
    assert n_whole == len(counts)  # one fit per recorded count
    assert len(fits) == len(counts) + sum(b - a - 1 for a, b in zip(counts[:-1], counts[1:], strict=True))
    assert single["mae_ev"][0] == whole["mae_ev"][0] and single["mae_ev"] != whole["mae_ev"]
    random = [run_strategy(learner, pool, "random", 0, counts, batch_size=b)["mae_ev"] for b in (None, 1)]
    assert random[0] == random[1]
    with pytest.raises(ValueError, match="batch_size"):
        run_strategy(learner, pool, "committee", 0, counts, batch_size=0)
