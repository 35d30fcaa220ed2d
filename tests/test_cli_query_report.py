"""`epdi report` and `epdi query hops|predictions|models|campaigns` on a small campaign store."""

import csv
import io
import json

import pytest
from store_helpers import ZN_KEPT_CLASSES, module_campaign_store, representatives
from typer.testing import CliRunner

from epdi_ml.report.build import barrier_table
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app
from workflows.cli.query import HOP_COLUMNS, MODEL_COLUMNS

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return module_campaign_store(tmp_path_factory, "query-store", "campaign-cli", finished=False)


@pytest.fixture
def store(built, monkeypatch):
    folder, info = built
    monkeypatch.setenv("EPDI_DATA_DIR", str(folder))
    get_settings.cache_clear()
    return StoreFacade(), info | {"data_dir": folder}


def _json(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_command_and_campaigns_query(store, tmp_path):
    facade, info = store
    result = runner.invoke(app, ["report", "demo"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    index = info["data_dir"] / "reports" / "demo" / "index.html"
    assert lines[0] == str(index) and index.is_file()
    assert lines[1].split()[:3] == ["surface_id", "host", "dopant"]
    assert sorted(line.split()[0] for line in lines[2:]) == sorted(info["ids"].values())
    assert "pristine" in {line.split()[2] for line in lines[2:]}  # the report's notation, not "-"

    custom = _json(["report", "campaign-cli", "--out", str(tmp_path / "r"), "--json"])
    assert custom["index"] == str(tmp_path / "r" / "index.html")
    assert custom["barriers"] == barrier_table(facade, "demo")
    assert all(f.endswith(".png") for f in custom["figures"])

    (row,) = _json(["query", "campaigns", "--json"])
    labelled = len(representatives(facade, info["ids"]["none"])) + len(
        representatives(facade, info["ids"]["Co"])
    )
    assert row["fraction_labelled"] == pytest.approx(
        (labelled + ZN_KEPT_CLASSES) / info["n_classes"], abs=1e-4
    )
    assert (row["name"], row["n_surfaces"], row["n_rounds"]) == ("demo", 3, 2)
    assert row["current_model_id"] == info["model_id"]  # from the last trained round
    assert row["report_path"] == custom["index"]

    missing = runner.invoke(app, ["report", "nope"])
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no campaign named 'nope' in the store; known campaigns: demo"
    ]


def test_query_hops_filters_and_formats(store):
    facade, info = store
    rows = _json(["query", "hops", "--json"])
    assert len(rows) == facade.count("hops")
    zn = info["ids"]["Zn"]
    labelled = _json(["query", "hops", "--labelled", "--json"])
    unlabelled = _json(["query", "hops", "--unlabelled", "--json"])
    assert len(labelled) + len(unlabelled) == len(rows) and unlabelled
    assert {r["surface_id"] for r in unlabelled} == {zn}
    assert all(r["source"] == "predicted" and r["predicted_mean_ev"] is not None for r in unlabelled)
    assert all(r["saddle_eb_ev"] == r["predicted_mean_ev"] for r in unlabelled)
    assert all(r["model_id"] == info["model_id"] and r["predicted_ci68_ev"] >= 0 for r in unlabelled)
    assert all(r["source"] == "cineb" and r["local_ci68_ev"] == 0.0 for r in labelled)
    nebs = {n["hop_id"]: n for n in facade.query("nebs")}
    by_class = {(r["surface_id"], r["class_index"]): r for r in labelled if r["hop_id"] in nebs}
    for row in labelled:  # a CINEB labels every hop of its class
        neb = nebs[by_class[(row["surface_id"], row["class_index"])]["hop_id"]]
        assert row["saddle_eb_ev"] == neb["saddle_binding_energy_ev"]
        assert row["forward_barrier_ev"] == neb["forward_barrier_ev"]
    on_zn = _json(["query", "hops", "--surface", zn, "--json"])
    assert len(on_zn) == 27 and [r["index"] for r in on_zn] == list(range(27))
    cobalt = _json(["query", "hops", "--dopant", "Co", "--json"])
    assert {r["surface_id"] for r in cobalt} == {info["ids"]["Co"]} and len(cobalt) == 27
    assert _json(["query", "hops", "--host", "WS2", "--json"]) == []

    text = runner.invoke(app, ["query", "hops", "--surface", zn, "--unlabelled", "--csv"]).stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == list(HOP_COLUMNS) and len(table) == len(unlabelled)
    bad = runner.invoke(app, ["query", "hops", "--dopant", "Xx"])
    assert bad.exit_code == 2 and "Xx" in bad.stderr


def test_query_predictions_and_models(store):
    facade, info = store
    co = info["ids"]["Co"]
    rows = _json(
        ["query", "predictions", "--model", info["model_id"], "--surface", co, "--kind", "saddle", "--json"]
    )
    expected = facade.count("predictions", {"model_id": info["model_id"], "surface_id": co, "kind": "saddle"})
    assert len(rows) == expected == 27
    assert all(r["kind"] == "saddle" and r["label_ev"] is not None for r in rows)
    every = _json(["query", "predictions", "--json"])  # default: the current model
    assert len(every) == facade.count("fragments")
    assert sum(r["label_ev"] is None for r in every) == sum(
        r["source"] != "cineb" for r in _json(["query", "hops", "--json"])
    )
    unknown = runner.invoke(app, ["query", "predictions", "--model", "model-nope"])
    assert unknown.exit_code == 1 and "model-nope" in unknown.stderr

    (model,) = _json(["query", "models", "--json"])
    assert (model["model_id"], model["version"], model["status"]) == (info["model_id"], 1, "current")
    assert model["architecture"] == "small_cnn" and model["cv_mae_ev"] > 0 and model["n_labels"] > 0
    assert _json(["query", "models", "--status", "candidate", "--json"]) == []
    header = runner.invoke(app, ["query", "models", "--csv"]).stdout.splitlines()[0]
    assert header.split(",") == list(MODEL_COLUMNS)
    assert runner.invoke(app, ["query", "models", "--status", "old"]).exit_code == 2
