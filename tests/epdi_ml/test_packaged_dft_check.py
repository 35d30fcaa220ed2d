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
    for row in report["valleys"]:  # CHGNet + D3 binds Li more strongly than PBE + D3 on MoS2
        assert row["difference_ev"] > 0.5
        assert abs(row["difference_ev"] - (row["chgnet_eb_ev"] - row["gpaw_eb_ev"])) < 2e-4  # rounded to 1e-4
    assert report["n_hops"] >= 1 and report["barrier_mae_ev"] is not None
    for hop in report["hops"]:  # GPAW CINEBs started from the CHGNet path; MoS2-like barriers
        assert hop["preconverged"] and hop["gpaw_force_calls"] > 0
        assert 0.10 < hop["gpaw_barrier_ev"] < 0.40
