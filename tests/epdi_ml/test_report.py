"""Campaign report: files and links, barrier table against `epdi profiles`, rounds, missing inputs."""

import json
import re

import pytest
from PIL import Image
from store_helpers import ZN_KEPT_CLASSES, build_surface_cli, module_campaign_store
from typer.testing import CliRunner

from epdi_ml.report.build import (
    UnknownCampaign,
    barrier_table,
    build_report,
    hop_class_nebs,
    labelled_rounds,
    write_report,
)
from epdi_ml.report.data import label_source_name, surface_title
from stores.facade import StoreFacade
from stores.schemas.campaigns import CampaignDoc, RoundDoc
from stores.settings import get_settings
from workflows.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return module_campaign_store(tmp_path_factory, "report-store", "campaign-test", finished=True)


@pytest.fixture
def store(built, monkeypatch):
    folder, info = built
    monkeypatch.setenv("EPDI_DATA_DIR", str(folder))
    get_settings.cache_clear()
    return StoreFacade(), info


def test_report_files_link_every_png(store, tmp_path):
    facade, info = store
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "profile-stale-0.png").write_bytes(b"from an earlier report")
    (folder / "notes.png").write_bytes(b"not a report figure")
    result = build_report(facade, "demo", folder)
    html = result.index.read_text()
    linked = set(re.findall(r'<img src="([^"]+)"', html))
    assert (folder / "notes.png").exists() and not (folder / "profile-stale-0.png").exists()
    pngs = {p.name for p in folder.glob("*.png")} - {"notes.png"}
    assert linked == pngs == {f.name for f in result.figures}
    for sid in info["ids"].values():
        assert {f"map-{sid}.png", f"rounds-{sid}.png", f"profile-{sid}-0.png"} <= pngs
    assert {"rounds.png", "parity-out.png", "parity-train.png", "training-curves.png"} <= pngs
    for name in pngs:
        with Image.open(tmp_path / "report" / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
    assert "http://" not in html and "https://" not in html
    for text in ("Campaign demo", "finished", "budget reached", info["model_id"], "selection.rounds"):
        assert text in html
    assert json.loads((tmp_path / "report" / "barriers.json").read_text()) == result.barriers
    headings = re.findall(r"<h3[^>]*>(.*?)</h3>", html, re.DOTALL)
    for name in ("MoS2 pristine (3x3x1)", "MoS2 + Co (3x3x1)", "MoS2 + Zn (3x3x1)"):
        assert any(h.startswith(name) for h in headings), (name, headings)
    assert "<th>global barrier 68 % half-width (eV)</th>" in html and "global_barrier_ci68_ev" not in html
    assert "labels: CHGNet;" in html and "DFT" not in html
    assert ">None<" not in html and ">-<" not in html and "\N{EN DASH}" in html
    order = [html.index(t) for t in ("Barriers (eV)", "energy profiles and potential maps", "Status")]
    assert order == sorted(order)


def test_barrier_table_matches_profiles(store, tmp_path):
    facade, info = store
    rows = {r["surface_id"]: r for r in barrier_table(facade, "campaign-test")}
    out = runner.invoke(app, ["profiles", "--model-id", info["model_id"], "--out", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    paths = json.loads(out.stdout)
    for sid, row in rows.items():
        mine = [p for p in paths if p["surface_id"] == sid]
        worst = max(mine, key=lambda p: p["global_barrier_ev"][0])
        assert row["global_barrier_ev"] == pytest.approx(worst["global_barrier_ev"][0], abs=1e-12)
        assert row["global_barrier_ci68_ev"] == pytest.approx(worst["global_barrier_ev"][1], abs=1e-12)
        assert row["global_barrier_ci90_ev"] == pytest.approx(worst["global_barrier_ev"][2], abs=1e-12)
        assert row["path_deg"] == worst["angle_deg"]
        assert row["n_sites_predicted"] == worst["n_predicted"]
        assert row["global_barrier_model_ev"] is not None
    zn = rows[info["ids"]["Zn"]]
    assert zn["global_barrier_labels_ev"] is None and zn["n_sites_predicted"] > 0
    assert (zn["n_labelled_hops"], zn["n_distinct_hops"]) == (ZN_KEPT_CLASSES, len(info["zn"]))
    for dopant in ("none", "Co"):
        row = rows[info["ids"][dopant]]
        assert row["global_barrier_labels_ev"] == pytest.approx(row["global_barrier_ev"])
        assert row["n_labelled_hops"] == row["n_distinct_hops"] and row["n_sites_predicted"] == 0


def test_saddles_take_the_round_that_labelled_them(store):
    facade, info = store
    sid = info["ids"]["Zn"]
    hops = facade.query("hops", {"surface_id": sid})
    rounds = [RoundDoc(**d) for d in facade.query("campaign_rounds")]
    by_saddle = labelled_rounds(sorted(rounds, key=lambda r: r.round), hops, hop_class_nebs(facade, [sid]))
    kept = {h["symmetry"]["class_index"] for h in info["zn"][:ZN_KEPT_CLASSES]}
    expected = {h["saddle_id"]: 1 for h in hops if h["symmetry"]["class_index"] in kept}
    assert by_saddle == expected
    pristine = facade.query("hops", {"surface_id": info["ids"]["none"]})
    by_saddle = labelled_rounds(rounds, pristine, hop_class_nebs(facade, [info["ids"]["none"]]))
    assert set(by_saddle.values()) == {0} and len(by_saddle) == len(pristine)


def test_labels_before_the_rounds_are_round_minus_one():
    hop = {"surface_id": "s", "symmetry": {"class_index": 0}}
    hops = [hop | {"hop_id": "a", "saddle_id": "sa"}, hop | {"hop_id": "b", "saddle_id": "sb"}]
    rounds = [
        RoundDoc(
            round_id="r0",
            campaign_id="c",
            round=0,
            strategy="random",
            labelled_hop_ids=["a"],
            selected_hop_ids=[],
            n_hop_classes=1,
            fraction_labelled=1.0,
        ),
    ]
    assert labelled_rounds(rounds, hops, {"a": {}, "b": {}}) == {"sa": -1, "sb": -1}
    assert labelled_rounds([], hops, {}) == {}


def test_report_degrades_without_model_maps_or_rounds(tmp_path):
    facade = StoreFacade()
    sid = build_surface_cli("Co")
    facade.upsert(
        "campaigns",
        [
            CampaignDoc(
                campaign_id="c-bare",
                name="bare",
                spec={"name": "bare"},
                surface_ids=[sid, "surf-missing"],
                n_hop_classes=6,
            )
        ],
    )
    assert write_report(facade, "bare", tmp_path) == tmp_path / "index.html"
    result = build_report(facade, "c-bare", tmp_path)
    notes = " | ".join(result.notes)
    for text in ("no rounds", "no model", "no potential map", "surf-missing", "no complete profile"):
        assert text in notes
    assert [r["surface_id"] for r in result.barriers] == [sid]
    assert result.barriers[0]["global_barrier_ev"] is None and result.barriers[0]["n_labelled_hops"] == 0
    assert {f.name for f in result.figures} == {f"rounds-{sid}.png"}
    assert 'class="note"' in result.index.read_text()
    with pytest.raises(UnknownCampaign, match="bare"):
        build_report(facade, "nope", tmp_path)


def test_labels_and_surfaces_are_named_from_their_documents():
    assert label_source_name("chgnet", "CHGNet+D3(zero)") == "CHGNet + D3"
    assert label_source_name("gpaw", "PBE+D3(zero)") == "GPAW PBE+D3"
    assert label_source_name("vasp", "PBE+D3(BJ)") == "VASP PBE+D3(BJ)"
    assert label_source_name("chgnet", "chgnet") == "CHGNet"  # documents without a functional
    assert surface_title({"host": "MoS2", "dopant": "Zn", "supercell": 6}) == "MoS2 + Zn (6x6x1)"
    assert surface_title({"host": "MoS2", "dopant": None, "supercell": 6}) == "MoS2 pristine (6x6x1)"
