"""End to end: surfaces build -> (synthetic) static -> fragments build/show -> analyze mep."""

import json

import matplotlib.image as mpimg
from pymatgen.core import Structure
from typer.testing import CliRunner

from epdi_ml.synthetic import store_synthetic_static
from stores.calc_documents import NebDoc, ValleyDoc
from stores.facade import StoreFacade
from workflows.cli.app import app

runner = CliRunner()


def _build_surface(dopant):
    result = runner.invoke(app, ["surfaces", "build", "MoS2", "--dopant", dopant, "--size", "3", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["surface_id"]


def _add_binding_energies(facade, surface_id, offset):
    sites = facade.query("sites", {"surface_id": surface_id})
    frags = {f["site_id"]: f for f in facade.query("fragments", {"surface_id": surface_id})}
    structure = facade.query("surfaces", {"surface_id": surface_id})[0]["structure"]
    valleys = []
    for s in sites:
        if s["kind"] == "valley" and s["symmetry"]["representative_index"] == s["index"]:
            eb = 2.0 * frags[s["site_id"]]["mep_ev"] + 3.5 + offset
            valleys.append(
                ValleyDoc(
                    valley_id=f"v-{s['site_id']}",
                    surface_id=surface_id,
                    site_id=s["site_id"],
                    site_index=s["index"],
                    label=s["label"],
                    engine="chgnet",
                    binding_energy_ev=eb,
                    energy_ev=-eb,
                    final_li_cart_ang=s["cart_coords_ang"],
                    final_site_index=s["index"],
                    left_valley=False,
                    displacement_ang=0.0,
                    force_calls=10,
                    converged=True,
                    structure=structure,
                )
            )
    facade.upsert("valleys", valleys)
    nebs = []
    for hop in facade.query("hops", {"surface_id": surface_id}):
        if hop["symmetry"]["representative_index"] == hop["index"]:
            eb = 2.0 * frags[hop["saddle_id"]]["mep_ev"] + 3.3 + offset
            nebs.append(
                NebDoc(
                    neb_id=f"n-{hop['hop_id']}",
                    surface_id=surface_id,
                    hop_id=hop["hop_id"],
                    engine="chgnet",
                    valley_ids=("a", "b"),
                    image_energies_ev=[0.0, 0.2, 0.0],
                    saddle_binding_energy_ev=eb,
                    forward_barrier_ev=0.2,
                    reverse_barrier_ev=0.2,
                    climbing_image=1,
                    converged=True,
                    fmax_ev_ang=0.03,
                    force_calls=50,
                    n_images=3,
                )
            )
    facade.upsert("nebs", nebs)


def test_fragments_build_show_and_analyze(tmp_path, data_dir):
    sid = _build_surface("Co")
    missing = runner.invoke(app, ["fragments", "build", "--surface", sid])
    assert missing.exit_code == 1
    assert f"epdi static {sid}" in missing.output and len(missing.output.strip().splitlines()) == 1

    facade = StoreFacade()
    structure = Structure.from_dict(facade.query("surfaces", {"surface_id": sid})[0]["structure"])
    store_synthetic_static(facade, structure, sid)
    second = _build_surface("Zn")
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
    assert mpimg.imread(png).shape[:2] == (700, 800)

    no_eb = runner.invoke(app, ["analyze", "mep", "--json"])
    assert no_eb.exit_code == 1 and "no binding energies" in no_eb.output

    _add_binding_energies(facade, sid, 0.0)
    _add_binding_energies(facade, second, 0.1)
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
