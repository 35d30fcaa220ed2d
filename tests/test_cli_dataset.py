"""Dataset export -> load into a fresh store -> identical documents and arrays; summary; bad archives."""

import json

from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.learning_data import load_fragments
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli import dataset as dataset_cli
from workflows.cli.app import app

runner = CliRunner()


def test_export_load_round_trip_and_summary(tmp_path, data_dir, monkeypatch):
    facade, ids = synthetic_fragment_store(("none", "Co"), 16)
    for sid in ids:
        add_binding_energies(facade, sid, offset=0.0)
    before = load_fragments(facade)
    archive = tmp_path / "set.tar.gz"
    exported = runner.invoke(app, ["dataset", "export", str(archive), "--json"])
    assert exported.exit_code == 0, exported.output
    manifest = json.loads(exported.stdout)
    assert manifest["counts"]["fragments"] == facade.count("fragments") and manifest["blobs"] > 0

    monkeypatch.setenv("EPDI_DATA_DIR", str(tmp_path / "other-store"))
    get_settings.cache_clear()
    fresh = StoreFacade()
    assert fresh.count("surfaces") == 0
    for _ in range(2):  # loading twice changes nothing
        assert runner.invoke(app, ["dataset", "load", str(archive)]).exit_code == 0
    for name, count in manifest["counts"].items():
        assert fresh.count(name) == count, name
    after = load_fragments(fresh)
    assert (after.data.images == before.data.images).all()
    assert list(after.data.ids) == list(before.data.ids)

    summary = runner.invoke(app, ["dataset", "summary", "--json"])
    report = json.loads(summary.stdout)
    assert report["hosts"]["MoS2"]["surfaces"] == 2
    assert report["hosts"]["MoS2"]["literature_ev"] == [0.23, 0.24]
    assert report["outliers"] == []


def test_bad_archives_are_named(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(dataset_cli, "PACKAGED_DIR", tmp_path / "empty")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar file")
    result = runner.invoke(app, ["dataset", "load", str(broken)])
    assert result.exit_code == 1 and "broken.tar.gz" in result.stderr
    missing = runner.invoke(app, ["dataset", "load", "reference"])
    assert missing.exit_code == 1 and "not packaged" in missing.stderr
    assert StoreFacade().count("surfaces") == 0
