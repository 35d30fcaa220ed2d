"""epdi campaign submit / launch / retrain / status on the embedded LaunchPad and a synthetic store."""

import json

import pytest
import typer
from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.training.registry import get_model
from stores.facade import StoreFacade
from stores.schemas.models import ModelDoc
from workflows.cli import cluster, retrain, status
from workflows.fireworks import launchpad as fwl
from workflows.flows.retrain import labelled_saddle_ids

runner = CliRunner()
cli = typer.Typer()
cli.command("submit")(cluster.submit)
cli.command("launch")(cluster.launch)
cli.command("retrain")(retrain.retrain)
cli.command("status")(status.status)

RECIPE = ["--model", "small_cnn", "--no-pretrained", "--epochs", "1", "--folds", "2", "--pixels", "16"]


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _set_cv_mae(facade, model_id, value):
    doc = ModelDoc(**facade.query("models", {"model_id": model_id})[0])
    facade.upsert("models", [doc.model_copy(update={"cv_mae_ev": value})])


def test_retrain_skips_keeps_or_promotes_by_new_labels_and_cv_mae(data_dir):
    facade, ids = synthetic_fragment_store(("none", "Co", "Ni", "Zn"), 16)
    for i, sid in enumerate(ids[:3]):
        add_binding_energies(facade, sid, offset=0.05 * i)

    first = _json(runner.invoke(cli, ["retrain", *RECIPE, "--fraction", "0.5", "--json"]))
    assert first["action"] == "first" and first["version"] == 1
    v1 = get_model(facade)
    assert v1.status == "current" and v1.n_labels > first["new_saddle_labels"] > 0

    nothing_new = _json(runner.invoke(cli, ["retrain", "--if-new", "1", "--json"]))
    assert nothing_new["action"] == "skipped" and nothing_new["new_saddle_labels"] == 0
    assert facade.count("models") == 1

    before = labelled_saddle_ids(facade)
    add_binding_energies(facade, ids[3], offset=0.15)  # a new surface's hops are labelled
    arrived = len(labelled_saddle_ids(facade) - before)
    assert arrived > 0
    too_few = _json(runner.invoke(cli, ["retrain", "--if-new", str(arrived + 1), "--json"]))
    assert too_few["action"] == "skipped" and too_few["new_saddle_labels"] == arrived

    _set_cv_mae(facade, v1.model_id, 1e-9)  # a current model nothing can beat
    kept = _json(runner.invoke(cli, ["retrain", "--if-new", str(arrived), "--json"]))
    assert kept["action"] == "kept" and kept["version"] == 2
    assert kept["new_saddle_labels"] == arrived and kept["current_model_id"] == v1.model_id
    statuses = {m["version"]: m["status"] for m in facade.query("models")}
    assert statuses == {1: "current", 2: "candidate"}
    v2 = ModelDoc(**facade.query("models", {"version": 2})[0])
    assert v2.architecture == "small_cnn" and v2.config["pixels"] == 16 and v2.fraction == 0.5  # v1's recipe
    assert v2.n_labels > v1.n_labels

    again = _json(runner.invoke(cli, ["retrain", "--if-new", "1", "--json"]))
    assert again["action"] == "skipped" and again["new_saddle_labels"] == 0  # version 2 saw them

    _set_cv_mae(facade, v1.model_id, 10.0)  # a current model any new one beats
    promoted = _json(runner.invoke(cli, ["retrain", "--json"]))  # --if-new 0: always
    assert promoted["action"] == "promoted" and promoted["version"] == 3
    statuses = {m["version"]: m["status"] for m in facade.query("models")}
    assert statuses == {1: "retired", 2: "candidate", 3: "current"}
    assert get_model(facade).version == 3


def test_retrain_submitted_runs_on_the_gpu_worker_only_and_status_reports_it(data_dir):
    facade, ids = synthetic_fragment_store(("none", "Co", "Ni"), 16)
    for i, sid in enumerate(ids):
        add_binding_energies(facade, sid, offset=0.05 * i)
    submitted = _json(runner.invoke(cli, ["retrain", "--submit", *RECIPE, "--json"]))
    assert len(submitted["fw_ids"]) == 1

    cpu = _json(runner.invoke(cli, ["launch", "--category", "dft", "--json"]))
    assert cpu["launched"] == 0 and cpu["states"] == {"READY": 1}
    gpu = _json(runner.invoke(cli, ["launch", "--category", "gpu", "--json"]))
    assert gpu["launched"] == 4 and gpu["states"] == {"COMPLETED": 4}
    lp = fwl.open_launchpad(fwl.resolve_launchpad(), read_only=True)
    names = {fw["name"]: fw["spec"].get("_category") for fw in lp.fireworks.find({})}
    # the gate replaced itself by training + promotion (+ jobflow's job carrying the gate's output)
    assert {"retrain", "train ensemble", "promote if not worse"} < set(names)
    assert names["train ensemble"] == names["promote if not worse"] == names["retrain"] == "gpu"
    model = get_model(facade)
    assert model.version == 1 and model.status == "current" and model.architecture == "small_cnn"

    status = _json(runner.invoke(cli, ["status", "--json"]))
    assert status["fireworks"] == {"COMPLETED": 4} and status["fizzled"] == []
    assert status["model_cv_mae_ev"] == round(model.cv_mae_ev, 4)
    assert status["model"].startswith(f"epdi v1 ({model.model_id}")
    assert status["saddle_labels"] == facade.count("nebs") > 0


def test_retrain_without_fragments_or_with_bad_options_says_what_to_do(data_dir):
    missing = runner.invoke(cli, ["retrain", *RECIPE])
    assert missing.exit_code == 1 and "epdi fragments build" in missing.stderr
    bad = runner.invoke(cli, ["retrain", "--if-new", "-3"])
    assert bad.exit_code == 2 and "--if-new -3" in bad.stderr
    unknown = runner.invoke(cli, ["retrain", "--model", "alexnet"])
    assert unknown.exit_code == 2 and "alexnet" in unknown.stderr


def test_submit_campaign_then_status_and_refuse_a_second_submission(data_dir, tmp_path):
    pytest.importorskip("gpaw")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nhosts: [MoS2]\ndopants: [pristine, Co]\nsupercell: 2\n"
        "static: {engine: gpaw, kpts: [1, 1, 1]}\nselection: {strategy: all}\n"
    )
    summary = _json(runner.invoke(cli, ["submit", str(spec), "--json"]))
    assert summary["campaign"] == "tiny" and summary["fireworks"] > 4
    assert summary["job_store"].startswith("embedded")
    lp = fwl.open_launchpad(fwl.resolve_launchpad(), read_only=True)
    workflows = fwl.workflows_with(lp, {"campaign_id": summary["campaign_id"]})
    assert len(workflows) == 1 and len(workflows[0]["nodes"]) == summary["fireworks"]

    status = _json(runner.invoke(cli, ["status", str(spec), "--json"]))
    assert status["campaign_status"] == "not started"
    assert sum(status["fireworks"].values()) == summary["fireworks"]
    assert set(status["fireworks"]) <= {"READY", "WAITING"} and status["model"] == "none trained"

    again = runner.invoke(cli, ["submit", str(spec)])
    assert again.exit_code == 1 and "already on" in again.stderr and "epdi status tiny" in again.stderr
    forced = _json(runner.invoke(cli, ["submit", str(spec), "--force", "--json"]))
    assert forced["campaign_id"] == summary["campaign_id"]
    assert len(fwl.workflows_with(fwl.open_launchpad(fwl.resolve_launchpad(), read_only=True), {})) == 2

    unknown = runner.invoke(cli, ["status", "no-such-campaign"])
    assert unknown.exit_code == 1 and "no campaign 'no-such-campaign'" in unknown.stderr


def test_submitted_campaign_runs_to_the_end_through_fireworks(data_dir, tmp_path):
    pytest.importorskip("gpaw")
    spec = tmp_path / "tinyfw.yaml"
    spec.write_text(
        "name: tinyfw\nhosts: [MoS2]\ndopants: [pristine, Zn]\nsupercell: 2\n"
        "static: {engine: gpaw, h_ang: 0.3, kpts: [1, 1, 1]}\nneb: {images: 3, fmax_ev_ang: 0.2}\n"
        "fragments: {pixels: 16, symmetry_tol_ev: 0.15}\n"
        "model: {arch: small_cnn, pretrained: false, pixels: 16, epochs: 2, folds: 2}\n"
        "selection: {strategy: design, initial_fraction: 0.25, batch_size: 1, budget_fraction: 0.5,"
        " rounds: 2}\n"
    )
    assert _json(runner.invoke(cli, ["submit", str(spec), "--json"]))["campaign"] == "tinyfw"
    dft = _json(runner.invoke(cli, ["launch", "--category", "dft", "--json"]))
    assert dft["launched"] > 0 and "READY" in dft["states"]  # stops at the first training job (gpu)
    for _ in range(4):  # alternate the two worker kinds until the dynamic flow has nothing left
        for category in ("gpu", "dft"):
            runner.invoke(cli, ["launch", "--category", category, "--json"])
    status = _json(runner.invoke(cli, ["status", str(spec), "--json"]))
    assert set(status["fireworks"]) == {"COMPLETED"} and status["fizzled"] == []
    assert status["campaign_status"] == "finished" and status["saddle_labels"] == "2 of 4 distinct hops"
    facade = StoreFacade()
    assert facade.count("nebs") == 2 and facade.count("campaign_rounds") == 3
    lp = fwl.open_launchpad(fwl.resolve_launchpad(), read_only=True)
    categories = {fw["name"]: fw["spec"].get("_category") for fw in lp.fireworks.find({})}
    assert categories["campaign train 1"] == "gpu" and categories["campaign round 1"] != "gpu"


def test_submit_dry_run_counts_the_whole_workflow_and_writes_nothing_to_the_launchpad(data_dir, tmp_path):
    pytest.importorskip("gpaw")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nhosts: [MoS2]\ndopants: [pristine, Co]\nsupercell: 2\n"
        "static: {engine: gpaw, kpts: [1, 1, 1]}\nselection: {strategy: all}\n"
    )
    launchpad = data_dir / "fireworks" / "launchpad.json"
    dry = _json(runner.invoke(cli, ["submit", str(spec), "--dry-run", "--json"]))
    assert not launchpad.exists() and dry["dry_run"] is True and dry["already_submitted"] is False
    submitted = _json(runner.invoke(cli, ["submit", str(spec), "--json"]))
    assert dry["n_fireworks"] == submitted["fireworks"] > 4
    assert dry["fireworks_per_category"] == {"dft": submitted["fireworks"]}  # rounds add the gpu ones
    kinds = dry["fireworks_per_kind"]
    assert sum(kinds.values()) == dry["n_fireworks"]
    assert kinds["surface static"] == 2 and kinds["campaign round"] == 1 and kinds["start_campaign"] == 1

    before = launchpad.read_bytes()
    again = _json(runner.invoke(cli, ["submit", str(spec), "--dry-run", "--json"]))
    assert again["already_submitted"] is True and again["n_fireworks"] == dry["n_fireworks"]
    assert launchpad.read_bytes() == before  # the LaunchPad is unchanged
    assert len(fwl.workflows_with(fwl.open_launchpad(fwl.resolve_launchpad(), read_only=True), {})) == 1
    text = runner.invoke(cli, ["submit", str(spec), "--dry-run"])
    assert text.exit_code == 0 and f"n_fireworks: {dry['n_fireworks']}" in text.stdout
