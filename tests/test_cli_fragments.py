"""End to end: surfaces build -> (synthetic) static -> fragments build/show -> analyze mep."""

import json

import matplotlib.image as mpimg
import numpy as np
from pymatgen.core import Structure
from store_helpers import add_binding_energies, build_surface_cli
from typer.testing import CliRunner

from epdi_ml.fragments.synthetic import store_synthetic_static
from stores.facade import StoreFacade
from workflows.cli.app import app

runner = CliRunner()


def test_fragments_build_show_and_analyze(tmp_path, data_dir):
    sid = build_surface_cli("Co")
    missing = runner.invoke(app, ["fragments", "build", "--surface", sid])
    assert missing.exit_code == 1
    assert f"epdi static {sid}" in missing.output and len(missing.output.strip().splitlines()) == 1

    facade = StoreFacade()
    structure = Structure.from_dict(facade.query("surfaces", {"surface_id": sid})[0]["structure"])
    store_synthetic_static(facade, structure, sid)
    second = build_surface_cli("Zn")
    store_synthetic_static(
        facade, Structure.from_dict(facade.query("surfaces", {"surface_id": second})[0]["structure"]), second
    )
    built = runner.invoke(app, ["fragments", "build", "--all", "--pixels", "32", "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout)
    assert report["colour_scale"]["created"] is True
    rows = {r["surface_id"]: r for r in report["surfaces"]}
    assert set(rows) == {sid, second}
    assert (rows[sid]["n_valleys"], rows[sid]["n_saddles"]) == (18, 27)
    assert rows[sid]["symmetry_max_diff_ev"] < 1e-3
    assert facade.count("fragments") == 90 and facade.count("potential_maps") == 2

    again = runner.invoke(app, ["fragments", "build", "--surface", sid, "--json"])
    assert again.exit_code == 0, again.output
    scale = json.loads(again.stdout)["colour_scale"]
    assert scale["created"] is False and scale["vmin_ev"] == report["colour_scale"]["vmin_ev"]

    png = tmp_path / "map.png"
    shown = runner.invoke(app, ["fragments", "show", sid, "--out", str(png)])
    assert shown.exit_code == 0, shown.output
    single = mpimg.imread(png)
    assert single.shape[:2] == (780, 900)  # 6 x 5.2 in at 150 dpi (epdi_ml.report.plots)
    tiled_png = tmp_path / "map-2x2.png"
    tiled = runner.invoke(app, ["fragments", "show", sid, "--out", str(tiled_png), "--tile", "2"])
    assert tiled.exit_code == 0, tiled.output
    tiled_img = mpimg.imread(tiled_png)
    assert tiled_img.shape == single.shape and not np.array_equal(tiled_img, single)
    bad_tile = runner.invoke(app, ["fragments", "show", sid, "--out", str(png), "--tile", "0"])
    assert bad_tile.exit_code == 2 and "--tile" in bad_tile.output

    no_eb = runner.invoke(app, ["analyze", "mep", "--json"])
    assert no_eb.exit_code == 1 and "no binding energies" in no_eb.output

    add_binding_energies(facade, sid, 0.0)
    add_binding_energies(facade, second, 0.1)
    out = tmp_path / "analysis"
    analysed = runner.invoke(app, ["analyze", "mep", "--json", "--out", str(out)])
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert set(result) >= {"n_rows", "mep", "nve_mep", "units", "files"}
    assert set(result["mep"]) == {"valley", "saddle"}
    assert result["mep"]["valley"]["by_group"]["VIB"]["n"] > 3
    assert set(result["mep"]["saddle"]["by_dopant"]) == {"Co", "Zn"}
    assert result["mep"]["saddle"]["by_dopant"]["Co"]["r"] > 0.99
    for name in ("mep_correlations.json", "mep_vs_eb.png", "nve_mep_vs_eb.png"):
        assert (out / name).stat().st_size > 0


def test_fragments_build_needs_a_target(data_dir):
    result = runner.invoke(app, ["fragments", "build"])
    assert result.exit_code == 2 and "--surface" in result.output
    result = runner.invoke(app, ["fragments", "build", "--all"])
    assert result.exit_code == 1 and "epdi static" in result.output
