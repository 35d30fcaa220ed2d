import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stores.facade import StoreFacade
from workflows.cli.app import app

runner = CliRunner()


def test_build_6x6_co_doped_mos2(tmp_path, data_dir):
    out = tmp_path / "mos2-co"
    result = runner.invoke(
        app, ["surfaces", "build", "MoS2", "--dopant", "Co", "--size", "6", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["formula"] == "Mo35 Co1 S72"
    assert summary["natoms"] == 108
    assert (summary["n_valleys"], summary["n_saddles"], summary["n_hops"]) == (72, 108, 108)
    assert (summary["n_distinct_valleys"], summary["n_distinct_saddles"], summary["n_distinct_hops"]) == (
        19,
        21,
        21,
    )
    assert summary["symmetry_checked"] is True
    assert (out / "POSCAR").read_text().count("\n") > 108
    sites = json.loads((out / "sites.json").read_text())
    assert len(sites["valleys"]) == 72 and len(sites["hops"]) == 108
    assert StoreFacade().count("surfaces", {"host": "MoS2", "dopant": "Co"}) == 1


def test_campaign_set_and_query_from_a_second_process(data_dir):
    result = runner.invoke(
        app, ["surfaces", "campaign-set", "--hosts", "MoS2,TiS2", "--dopants", "none,Co,V", "--size", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "6 surfaces built" in result.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "query", "surfaces", "--host", "TiS2", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(proc.stdout)
    assert sorted(str(r["dopant"]) for r in rows) == ["Co", "None", "V"]
    csv_out = runner.invoke(app, ["query", "surfaces", "--dopant", "none", "--csv"]).stdout.splitlines()
    assert csv_out[0].startswith("host,dopant,formula") and len(csv_out) == 3


@pytest.mark.parametrize(
    "args, bad",
    [
        (["surfaces", "build", "MoX2"], "MoX2"),
        (["surfaces", "build", "MoS2", "--dopant", "S"], "'S'"),
        (["surfaces", "build", "MoS2", "--dopant", "Xx"], "Xx"),
        (["surfaces", "build", "MoS2", "--size", "1"], "size 1"),
        (["surfaces", "build", "MoS2", "--vacuum", "-2"], "vacuum -2.0"),
        (["surfaces", "campaign-set", "--hosts", "MoS2,Foo"], "Foo"),
        (["surfaces", "campaign-set", "--dopants", "Co,C"], "'C'"),
    ],
)
def test_bad_input_exit_2_one_line_nothing_written(args, bad, data_dir):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0] and "accepted" in lines[0]
    assert not data_dir.exists()


def test_every_subcommand_has_help():
    for args in (
        ["--help"],
        ["surfaces", "--help"],
        ["surfaces", "build", "--help"],
        ["surfaces", "campaign-set", "--help"],
        ["query", "surfaces", "--help"],
        ["quickstart", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.stdout
