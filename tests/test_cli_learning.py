"""End to end on the store: fragments + labels -> epdi train -> epdi predict -> epdi profiles."""

import json

import numpy as np
import torch
from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.analysis.labels import label_set
from epdi_ml.training.registry import get_model, load_ensemble, promote
from stores.facade import StoreFacade
from workflows.cli.app import app

runner = CliRunner()


def _labelled_store(dopants=("none", "Co", "Ni", "Zn"), offset_step=0.05):
    facade, ids = synthetic_fragment_store(dopants, 32)
    for i, sid in enumerate(ids):
        add_binding_energies(facade, sid, offset=offset_step * i)
    return facade, ids


def test_train_predict_profiles(data_dir):
    facade, ids = _labelled_store()
    args = [
        "train",
        "--model",
        "small_cnn",
        "--no-pretrained",
        "--epochs",
        "2",
        "--folds",
        "2",
        "--fraction",
        "0.5",
        "--pixels",
        "32",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["version"] == 1 and summary["status"] == "current"
    assert summary["n_train"] > 0 and summary["n_test"] > 0
    assert summary["test_mae_ev"] is not None and summary["cv_mae_ev"] > 0
    assert all(p.endswith(".png") for p in summary["figures"]) and len(summary["figures"]) == 2
    folds = sorted((data_dir / "checkpoints" / "small_cnn-f0.5-s0").iterdir())
    assert [f.name for f in folds] == ["fold0", "fold1"]
    assert all(sorted(p.name for p in f.iterdir()) == ["best.pt"] for f in folds)  # no last.pt

    model = get_model(facade)
    ensemble = load_ensemble(facade, model)
    assert len(ensemble.state_dicts) == 2
    assert set(model.train_site_ids).isdisjoint(model.test_site_ids)
    assert model.label_source == label_set(facade).source  # the model names the labels it learnt

    predicted = runner.invoke(app, ["predict", "--json"])
    assert predicted.exit_code == 0, predicted.output
    info = json.loads(predicted.stdout)
    assert info["n_predictions"] == facade.count("fragments")
    spreads = np.array([p["std_ev"] for p in facade.query("predictions")])
    assert (spreads > 0).any()

    profiles = runner.invoke(app, ["profiles", "--surface", ids[1], "--json"])
    assert profiles.exit_code == 0, profiles.output
    rows = json.loads(profiles.stdout)
    assert len(rows) == 3
    for row in rows:
        assert row["n_sites"] == 2 * 2 * 3 + 1  # 3x3 cell: back to the start after 6 hops
        assert row["site_ids"][0] == row["site_ids"][-1]
        barrier, ci68, ci90 = row["global_barrier_ev"]
        assert barrier >= max(row["local_barriers_ev"]) - 1e-9 and 0 <= ci68 <= ci90


def test_second_model_is_a_candidate_and_missing_weights_are_reported(data_dir):
    _labelled_store(("none", "Co"))
    args = [
        "train",
        "--model",
        "small_cnn",
        "--no-pretrained",
        "--epochs",
        "1",
        "--folds",
        "2",
        "--pixels",
        "32",
    ]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--keep-last"]).exit_code == 0
    fold0 = data_dir / "checkpoints" / "small_cnn-f0.33-s0" / "fold0"
    assert sorted(p.name for p in fold0.iterdir()) == ["best.pt", "last.pt"]
    versions = {m["version"]: m["status"] for m in StoreFacade().query("models")}
    assert versions == {1: "current", 2: "candidate"}
    second = next(m for m in StoreFacade().query("models") if m["version"] == 2)
    promote(StoreFacade(), second["model_id"])
    assert {m["version"]: m["status"] for m in StoreFacade().query("models")} == {1: "retired", 2: "current"}
    assert get_model(StoreFacade()).version == 2
    missing = runner.invoke(app, ["train", "--model", "densenet121", "--epochs", "1"])
    assert missing.exit_code == 2
    assert "epdi weights fetch densenet121" in missing.stderr


def test_predict_without_a_model_says_what_to_run(data_dir):
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 1 and "epdi train" in result.stderr


def test_bench_paper_prints_every_fraction_with_baselines(data_dir):
    _labelled_store(("none", "Co", "Ni"), offset_step=0.0)
    args = [
        "bench",
        "paper",
        "--model",
        "small_cnn",
        "--no-pretrained",
        "--epochs",
        "1",
        "--folds",
        "2",
        "--pixels",
        "32",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["fraction"] for r in rows] == [0.0, 0.17, 0.33, 0.5]
    assert rows[0]["n_test"] > rows[-1]["n_test"]
    for r in rows:
        assert r["test_mae_ev"] >= 0 and r["mep_linear_mae_ev"] >= 0 and r["mean_mae_ev"] >= 0
        assert r["profile_mae_ev"] is not None  # every site of these surfaces is labelled
    # labels here are linear in the MEP per kind, so the MEP-linear baseline is exact once it has labels
    assert rows[-1]["mep_linear_mae_ev"] < 1e-6


def test_bench_paper_runs_the_chosen_fractions_in_order(data_dir):
    _labelled_store(("none", "Co", "Ni"), offset_step=0.0)
    base = ["bench", "paper", "--model", "small_cnn", "--no-pretrained", "--epochs", "1", "--folds", "2"]
    args = [*base, "--pixels", "32", "--fraction", "0.5", "--fraction", "0.33", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["fraction"] for r in rows] == [0.5, 0.33]
    assert rows[0]["n_test"] < rows[1]["n_test"] and all(r["wall_time_s"] >= 0 for r in rows)
    text = runner.invoke(app, [*base, "--pixels", "32", "--fraction", "0.5"])
    assert text.exit_code == 0 and len(text.stdout.strip().splitlines()) == 2  # header + one row
    bad = runner.invoke(app, [*base, "--fraction", "1.5"])
    assert bad.exit_code == 2 and "fraction" in bad.output


def test_bench_paper_resumes_from_its_checkpoints(data_dir, tmp_path):
    _labelled_store(("none", "Co", "Ni"), offset_step=0.0)
    base = ["bench", "paper", "--model", "small_cnn", "--no-pretrained", "--folds", "2", "--pixels", "32"]
    args = [*base, "--fraction", "0.5", "--checkpoint-dir", str(tmp_path / "ckpt"), "--json", "--keep-last"]
    first = runner.invoke(app, [*args, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    ckpt = torch.load(tmp_path / "ckpt" / "f0.50" / "fold1" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 0
    again = runner.invoke(app, [*args, "--epochs", "2"])  # one more epoch per fold, not two
    assert again.exit_code == 0, again.output
    ckpt = torch.load(tmp_path / "ckpt" / "f0.50" / "fold1" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and len(ckpt["train_loss_ev"]) == 2
    row = json.loads(again.stdout.strip().splitlines()[-1])[0]
    assert row["fraction"] == 0.5 and row["test_mae_ev"] >= 0
