"""`epdi dataset generate` on a tiny spec (real GPAW + CHGNet), compact archives, load with recut crops."""

import json
import tarfile

import numpy as np
import pytest
from store_helpers import tiny_spec
from typer.testing import CliRunner

from epdi_ml.fragments import build as fb
from epdi_ml.training.store_data import load_fragments
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app
from workflows.flows.campaign_spec import load_spec
from workflows.flows.dataset import LOG_NAME, missing_parts, partial_carries_grids
from workflows.structures.hosts import InputError
from workflows.structures.surfaces import surface_from_request

runner = CliRunner()

TINY = tiny_spec(
    "tinyset",
    """\
fragments: {pixels: 16, symmetry_tol_ev: 0.15}
selection: {strategy: all}
""",
)


def test_spec_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhosts: [MoS2]\ndopants: [Xx]\n")
    with pytest.raises(InputError, match="Xx"):
        load_spec(bad)
    bad.write_text("name: x\nhosts: [FooS2]\n")
    with pytest.raises(InputError, match="FooS2"):
        load_spec(bad)
    bad.write_text("name: x\nhosts: [MoS2]\nneb: {images: 1}\n")
    with pytest.raises(InputError, match=r"neb\.images"):
        load_spec(bad)
    bad.write_text("name: x\nhosts: [MoS2]\nmodel: {anchor: sideways}\n")
    with pytest.raises(InputError, match=r"model\.anchor"):
        load_spec(bad)
    bad.write_text("name: x\nhosts: [MoS2]\nmodel: {anchor: valley-midpoint}\n")
    assert load_spec(bad).model.anchor == "valley-midpoint"
    bad.write_text("name: x\nhosts: [MoS2]\ncolour: red\n")
    with pytest.raises(InputError, match="colour"):
        load_spec(bad)
    with pytest.raises(InputError, match="reference"):
        load_spec("no-such-spec")
    reference = load_spec("reference")
    assert reference.supercell >= 4 and set(reference.hosts) >= {"MoS2", "WS2", "TiS2"}
    assert len(reference.surfaces()) == 30 and reference.surfaces()[:3] == [
        ("MoS2", None),
        ("WS2", None),
        ("TiS2", None),
    ]


def test_generate_resume_export_and_load(tmp_path, monkeypatch):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    out = tmp_path / "archives"
    first = runner.invoke(app, ["dataset", "generate", str(spec), "--out", str(out), "--no-progress"])
    assert first.exit_code == 0, first.output
    archives = sorted(p.name for p in out.glob("*.tar.gz"))
    assert archives == ["MoS2-Zn-2x2.tar.gz", "MoS2-pristine-2x2.tar.gz"]
    log = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
    assert {(r["surface"], r["step"]) for r in log if r["status"] == "done"} >= {
        ("MoS2-Zn", "static"),
        ("MoS2-Zn", "labels"),
        ("MoS2-Zn", "export"),
    }
    facade = StoreFacade()
    zn = surface_from_request("MoS2", "Zn", 2)
    assert missing_parts(load_spec(spec), zn, facade) == []
    n_nebs = facade.count("nebs")
    assert n_nebs == zn.surface.n_distinct_hops + 1  # every distinct hop of both surfaces

    again = runner.invoke(app, ["dataset", "generate", str(spec), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0 and again.output.count("exists, skipped") == 2
    assert facade.count("nebs") == n_nebs

    with tarfile.open(out / "MoS2-Zn-2x2.tar.gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        names = tar.getnames()
    assert "calculations.potential" in manifest["omitted"]
    assert len([n for n in names if n.endswith(".zlib")]) == 2  # the map and its isosurface heights
    before = load_fragments(facade, "tinyset")

    monkeypatch.setenv("EPDI_DATA_DIR", str(tmp_path / "fresh"))
    get_settings.cache_clear()
    loaded = runner.invoke(app, ["dataset", "load", str(out), "--json"])
    assert loaded.exit_code == 0, loaded.output
    totals = json.loads(loaded.stdout)
    assert totals["archives"] == 2 and totals["fragments_recut_surfaces"] == 2
    assert totals["recut_max_mep_diff_ev"] < 1e-6
    fresh = StoreFacade()
    assert fresh.count("nebs") == n_nebs
    after = load_fragments(fresh)
    assert list(after.data.ids) == list(before.data.ids)
    labelled = ~np.isnan(before.data.energies_ev)
    assert labelled.all()  # every valley class relaxed and every distinct hop computed
    assert (after.data.energies_ev[labelled] == before.data.energies_ev[labelled]).all()
    summary = runner.invoke(app, ["dataset", "summary", "--json"])
    assert json.loads(summary.stdout)["hosts"]["MoS2"]["surfaces"] == 2


def _omitted(archive):
    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile("manifest.json").read())["omitted"]


def _static_doc(archive):
    with tarfile.open(archive) as tar:
        rows = tar.extractfile("calculations.jsonl").read().decode().splitlines()
    return next(doc for doc in map(json.loads, rows) if doc["kind"] == "static")


def test_partial_archive_carries_a_surface_to_another_machine(tmp_path, monkeypatch):
    """`--steps partial` keeps what a surface has (CINEB progress, not a GPAW static's grids); a fresh
    store goes on from it."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    out = tmp_path / "archives"
    args = ["dataset", "generate", str(spec), "--out", str(out), "--only", "MoS2-pristine", "--no-progress"]
    first = runner.invoke(app, [*args, "--steps", "static,partial"])
    assert first.exit_code == 0, first.output
    partial = out / "partial" / "MoS2-pristine-2x2.tar.gz"
    assert partial.is_file() and "lacks 2 valley relaxations, 1 hop CINEBs, fragments" in first.output
    assert "no grids" in first.output and "calculations.potential" in _omitted(partial)
    assert not list(out.glob("*.tar.gz"))  # a partial archive is never taken for a finished one
    before_cut = tmp_path / "before-cut" / "partial" / partial.name
    before_cut.parent.mkdir(parents=True)
    before_cut.write_bytes(partial.read_bytes())

    bundle = surface_from_request("MoS2", None, 2)
    sid = bundle.surface.surface_id
    progress_name = f"calcs/{sid}/gpaw-cineb-hop/cineb-progress.json"
    old_data = get_settings().data_dir
    (old_data / progress_name).parent.mkdir(parents=True)
    (old_data / progress_name).write_text('{"key": "neb-x", "steps": 4}')
    again = runner.invoke(app, [*args, "--steps", "partial"])
    assert again.exit_code == 0 and "1 progress file(s)" in again.output
    cut = runner.invoke(app, [*args, "--steps", "fragments,partial"])
    assert cut.exit_code == 0, cut.output
    assert "calculations.potential" in _omitted(partial)  # the fragments are cut: grids not needed again

    fresh_dir = tmp_path / "fresh"
    monkeypatch.setenv("EPDI_DATA_DIR", str(fresh_dir))
    get_settings.cache_clear()
    rest = runner.invoke(app, args)
    assert rest.exit_code == 0, rest.output
    assert f"resumed from {partial}" in rest.output
    assert (fresh_dir / progress_name).read_text() == '{"key": "neb-x", "steps": 4}'
    static_dir = fresh_dir / "calcs" / sid / "static-gpaw"  # the fragments came cut: no static rerun,
    assert not any(p.is_file() for p in static_dir.rglob("*")), rest.output  # no GPAW log, no job
    assert (out / "MoS2-pristine-2x2.tar.gz").is_file() and not partial.exists()
    fresh = StoreFacade()
    assert missing_parts(load_spec(spec), bundle, fresh) == []

    complete = runner.invoke(app, [*args, "--steps", "partial"])
    assert "exists, skipped" in complete.output  # a finished surface is never packed as partial
    wrong = runner.invoke(app, [*args, "--steps", "static,snapshot"])
    assert wrong.exit_code == 2 and "snapshot" in wrong.output and "partial" in wrong.output

    # a partial taken before the cut has the static's document but not its grids: the resumed run
    # recomputes the static (same key and settings) and gets the archived energy again
    monkeypatch.setenv("EPDI_DATA_DIR", str(tmp_path / "third"))
    get_settings.cache_clear()
    other = ["dataset", "generate", str(spec), "--out", str(before_cut.parents[1]), "--only", "MoS2-pristine"]
    redo = runner.invoke(app, [*other, "--no-progress", "--steps", "static"])
    assert redo.exit_code == 0 and "resumed from" in redo.output, redo.output
    third = StoreFacade()
    static = fb.find_static(third, sid)
    archived = _static_doc(before_cut)
    assert static is not None and static["calc_id"] == archived["calc_id"]
    assert static["final_energy_ev"] == pytest.approx(archived["final_energy_ev"], abs=1e-4)
    assert static["potential"]["shape"] == archived["potential"]["shape"]
    assert any((tmp_path / "third" / "calcs" / sid / "static-gpaw").rglob("*.txt"))  # GPAW ran again
    assert missing_parts(load_spec(spec), bundle, third)[0] == "2 valley relaxations"


def test_partial_carries_a_vasp_static_s_grids_until_the_cut():
    """A VASP static is a cluster job, so its grids travel; a GPAW static is recomputed on resume."""
    assert partial_carries_grids("vasp", fragments_cut=False)
    assert not partial_carries_grids("vasp", fragments_cut=True)
    assert not partial_carries_grids("gpaw", fragments_cut=False)
