"""`epdi campaign run` end to end on a tiny spec (real GPAW + CHGNet + CNN), crash and resume."""

import pytest
from store_helpers import count_outputs, tiny_spec
from typer.testing import CliRunner

import workflows.flows.campaign as campaign_module
import workflows.structures.surfaces as surfaces_module
from stores.facade import StoreFacade
from workflows.cli.app import app
from workflows.flows.campaign import run_campaign
from workflows.flows.campaign_hops import campaign_id
from workflows.flows.campaign_spec import load_spec
from workflows.structures.hosts import InputError

runner = CliRunner()

TINY = tiny_spec(
    "tiny",
    """\
fragments: {pixels: 16, symmetry_tol_ev: 0.15}
model: {arch: small_cnn, pretrained: false, pixels: 16, epochs: 2, folds: 2}
selection: {strategy: hybrid, initial_fraction: 0.25, batch_size: 1, budget_fraction: 0.75, rounds: 3}
""",
)


def test_campaign_crash_resume_and_report(tmp_path, monkeypatch):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    spec = load_spec(path)
    facade = StoreFacade()

    def crash(*args, **kwargs):
        raise RuntimeError("node lost")

    monkeypatch.setattr(campaign_module, "_train_round", crash)  # the first retrain dies
    with pytest.raises(RuntimeError):
        run_campaign(spec, facade)
    first_nebs = {d["neb_id"]: d["updated_at"] for d in facade.query("nebs")}
    assert len(first_nebs) == 1  # round 0 labelled 25 % of the 4 distinct hops before the crash
    monkeypatch.undo()

    built = []  # surfaces built during the resumed run: once each, by the flow, never in a job
    describe = surfaces_module.describe_surface
    monkeypatch.setattr(
        surfaces_module, "describe_surface", lambda *a, **k: built.append(a[0].name) or describe(*a, **k)
    )
    result = runner.invoke(app, ["campaign", "run", str(path)])
    assert result.exit_code == 0, result.output
    assert sorted(built) == ["MoS2", "MoS2"]  # pristine and Zn-doped, built once by build_campaign_flow
    monkeypatch.undo()
    doc = facade.query("campaigns", {"campaign_id": campaign_id(spec)})[0]
    assert doc["status"] == "finished" and "budget" in doc["stop_reason"]
    nebs = {d["neb_id"]: d["updated_at"] for d in facade.query("nebs")}
    assert len(nebs) == 3  # floor(0.75 x 4) distinct hops labelled, one per class
    assert all(nebs[k] == v for k, v in first_nebs.items())  # nothing computed twice
    rounds = sorted(facade.query("campaign_rounds"), key=lambda r: r["round"])
    assert [r["round"] for r in rounds] == [0, 1, 2, 3]
    assert [len(r["selected_hop_ids"]) for r in rounds] == [1, 1, 1, 0]
    assert rounds[-1]["model_id"] == doc["current_model_id"] and rounds[-1]["cv_mae_ev"] is not None
    selected = [h for r in rounds for h in r["selected_hop_ids"]]
    assert len(set(selected)) == len(selected)
    assert (tmp_path / "epdi-data" / "reports" / "tiny" / "index.html").is_file()
    assert "report:" in result.output and "MoS2" in result.output

    n_models, n_outputs = facade.count("models"), count_outputs(facade)
    again = runner.invoke(app, ["campaign", "run", str(path)])
    assert again.exit_code == 0, again.output
    assert facade.count("models") == n_models and facade.count("nebs") == 3
    assert count_outputs(facade) == n_outputs  # a rerun that computes nothing adds no job output


def test_campaign_needs_two_surfaces(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("name: one\nhosts: [MoS2]\ndopants: [pristine]\nsupercell: 2\n")
    with pytest.raises(InputError, match="at least two"):
        run_campaign(load_spec(path), StoreFacade())
    result = runner.invoke(app, ["campaign", "run", str(path)])
    assert result.exit_code == 2 and "at least two" in result.stderr
