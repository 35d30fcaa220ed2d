"""The packaged DFT check set loads and `epdi bench labels` compares its GPAW and CHGNet labels."""

import json

from typer.testing import CliRunner

from workflows.cli.app import app

runner = CliRunner()


def test_dft_check_loads_and_compares_engines(data_dir):
    loaded = runner.invoke(app, ["dataset", "load", "dft-check", "--json"])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["valleys"] > 0
    bench = runner.invoke(app, ["bench", "labels", "--json"])
    assert bench.exit_code == 0, bench.output
    report = json.loads(bench.stdout.strip().splitlines()[-1])
    assert (report["dft_engine"], report["mlip_engine"]) == ("gpaw", "chgnet")
    assert report["n_valleys"] >= 2
    by_surface: dict[str, list[float]] = {}
    for row in report["valleys"]:
        assert abs(row["difference_ev"] - (row["chgnet_eb_ev"] - row["gpaw_eb_ev"])) < 2e-4  # rounded to 1e-4
        by_surface.setdefault(row["surface"], []).append(row["difference_ev"])
    for surface, differences in by_surface.items():
        # CHGNet + D3 binds Li more strongly than PBE + D3 on the 2H hosts, less on 1T-TiS2, by a
        # nearly constant offset per surface
        assert max(differences) - min(differences) < 0.03, surface
        assert (min(differences) < -0.2) if surface.startswith("TiS2") else (min(differences) > 0.5), surface
    assert report["site_order_agreement"] == f"{len(by_surface)}/{len(by_surface)}"
    assert report["n_hops"] >= 1 and report["barrier_mae_ev"] is not None
    for hop in report["hops"]:  # GPAW CINEBs started from the CHGNet path; barriers of these hosts
        assert hop["preconverged"] and hop["gpaw_force_calls"] > 0
        assert 0.10 < hop["gpaw_barrier_ev"] < 0.40
        assert abs(hop["gpaw_barrier_ev"] - hop["chgnet_barrier_ev"]) < 0.05
