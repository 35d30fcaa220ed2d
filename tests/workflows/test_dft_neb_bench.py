"""`epdi bench dft-neb` end to end on a tiny cell with loose GPAW settings (machinery, not physics)."""

import json

import pytest
from typer.testing import CliRunner

from stores.facade import StoreFacade
from workflows.cli.app import app

runner = CliRunner()

#: 2x2x1 MoS2, GPAW at h = 0.35 A, Gamma only, loose SCF and forces: a few minutes of GPAW
TINY_SPEC = """\
name: dft-neb-tiny
hosts: [MoS2]
dopants: [pristine]
supercell: 2
static: {engine: gpaw, h_ang: 0.35, kpts: [1, 1, 1]}
neb:
  engine: gpaw
  preconverge: chgnet
  images: 3
  fmax_ev_ang: 0.5
  max_steps: 20
  optimizer: bfgs
  gpaw: {h_ang: 0.35, kpts: [1, 1, 1], density_convergence: 1.0e-3}
"""


def _report(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_both_starts_run_between_the_same_dft_end_points_and_a_rerun_reuses_them(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    args = ["bench", "dft-neb", "--host", "MoS2", "--spec", str(spec), "--json"]
    report = _report(runner.invoke(app, args))
    assert report["engine"] == "gpaw" and report["n_images"] == 3
    idpp, pre = report["idpp"], report["preconverged"]
    assert idpp["optimizer"] == pre["optimizer"] == "bfgs" and report["same_optimizer"] is True
    assert idpp["force_calls"] > 0 and pre["force_calls"] > 0 and pre["chgnet_force_calls"] > 0
    assert report["force_call_ratio"] == pytest.approx(pre["force_calls"] / idpp["force_calls"], abs=1e-3)
    assert report["goal_met"] == (report["force_call_ratio"] <= report["force_call_goal"])
    assert report["barrier_difference_ev"] == pytest.approx(
        abs(idpp["local_barrier_ev"] - pre["local_barrier_ev"]), abs=2e-4
    )
    facade = StoreFacade()
    gpaw = facade.query("nebs", {"engine": "gpaw"})
    (chgnet,) = facade.query("nebs", {"engine": "chgnet"})
    assert sorted(str(n["preconverged_from"]) for n in gpaw) == sorted([chgnet["neb_id"], "None"])
    assert len({tuple(n["valley_ids"]) for n in gpaw}) == 1  # the same two GPAW valleys
    # each CINEB keeps its own image logs (the IDPP one in a folder of its own)
    folders = sorted(p.name for p in facade.settings.data_dir.glob("calcs/*/gpaw-cineb-*"))
    assert folders == [f"gpaw-cineb-{report['hop_id']}", f"gpaw-cineb-{report['hop_id']}-idpp"]
    for folder in facade.settings.data_dir.glob("calcs/*/gpaw-cineb-*"):
        assert sorted(p.name for p in folder.glob("*.txt")) == [f"cineb-image-0{i}.txt" for i in (1, 2, 3)]
    counts = {name: facade.count(name) for name in ("calculations", "valleys", "nebs")}
    assert _report(runner.invoke(app, args)) == report  # stored wall times included: nothing ran again
    assert {name: facade.count(name) for name in counts} == counts
