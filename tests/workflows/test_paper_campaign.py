"""The mission-scale spec `paper`: planned and submitted (dry run) on a machine without VASP."""

import json

from typer.testing import CliRunner

from workflows.cli.app import app
from workflows.engines import EngineUnavailable, require_engine
from workflows.flows.campaign_spec import load_spec

runner = CliRunner()


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _vasp_here() -> bool:
    try:
        require_engine("vasp")
    except EngineUnavailable:
        return False
    return True


def test_paper_spec_is_the_method_papers_campaign():
    spec = load_spec("paper")
    pairs = spec.surfaces()
    doped = [p for p in pairs if p[1] is not None]
    assert len(spec.hosts) == 12 and len([d for d in spec.dopants if d]) == 9
    assert len(doped) == 106 and len(pairs) == 118  # V is the host metal of VS2 and VSe2
    assert ("VS2", "V") not in pairs and ("MoS2", None) in pairs
    assert spec.supercell == 6 and spec.vacuum_ang == 15.0
    assert (spec.static.engine, spec.neb.engine, spec.neb.preconverge) == ("vasp", "vasp", "chgnet")
    assert (spec.model.arch, spec.model.pretrained) == ("densenet121", True)
    assert spec.selection.strategy == "design" and spec.selection.budget_fraction <= 0.2


def test_plan_paper_shows_surfaces_engines_and_fireworks_per_category(data_dir):
    plan = _json(runner.invoke(app, ["campaign", "plan", "paper", "--json"]))
    assert plan["n_surfaces"] >= 106 and plan["supercell"] == 6 and plan["natoms_per_surface"] == [108]
    assert plan["engines"] == {
        "static": "vasp",
        "neb": "vasp",
        "preconverge": "chgnet",
        "model": "densenet121",
    }
    assert set(plan["fireworks_by_category"]) == {"dft", "gpu"} and plan["fireworks_by_category"]["gpu"] >= 1
    assert plan["n_fireworks_max"] == sum(plan["fireworks_by_category"].values())
    assert plan["selection"]["max_cinebs"] <= 0.2 * plan["n_distinct_hops"]
    assert (plan["engines_available_here"]["vasp"] is True) == _vasp_here()
    assert not (data_dir / "fireworks").exists()  # planning writes nothing


def test_a_vasp_campaign_is_submitted_where_vasp_is_not_installed(data_dir, tmp_path):
    spec = tmp_path / "vasp.yaml"
    spec.write_text(
        "name: vasp-tiny\nhosts: [MoS2]\ndopants: [pristine, Co]\nsupercell: 2\n"
        "static: {engine: vasp}\nneb: {engine: vasp}\nselection: {strategy: all}\n"
    )
    dry = _json(runner.invoke(app, ["campaign", "submit", str(spec), "--dry-run", "--json"]))
    assert not (data_dir / "fireworks" / "launchpad.json").exists()
    kinds = dry["fireworks_per_kind"]
    assert dry["n_fireworks"] == sum(kinds.values()) and kinds["vasp slab"] == 2
    submitted = _json(runner.invoke(app, ["campaign", "submit", str(spec), "--json"]))
    assert submitted["fireworks"] == dry["n_fireworks"]
