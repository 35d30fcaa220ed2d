"""Dataset export -> load into a fresh store -> identical documents and arrays; summary; bad archives."""

import json

from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from epdi_ml.training.store_data import load_fragments
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


def _bomb(path, expanded_bytes):
    """A gzipped tar whose first member expands to ``expanded_bytes`` of zeros, cut short after it.

    Anything that reads past the first header (decompresses the member, looks for more members)
    meets the cut and reports a damaged archive instead of the size cap.
    """
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("blobs/padding.zlib")
        info.size = expanded_bytes
        tar.addfile(info, io.BytesIO(bytes(expanded_bytes)))
        manifest = json.dumps({"format": "epdi-dataset/1", "counts": {}}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def test_an_archive_past_the_size_cap_is_refused_before_extracting(tmp_path, data_dir, monkeypatch):
    bomb = _bomb(tmp_path / "bomb.tar.gz", 3_000_000)
    capped = runner.invoke(app, ["dataset", "load", str(bomb), "--max-expanded-mb", "1"])
    assert capped.exit_code == 1
    (line,) = capped.stderr.strip().splitlines()
    assert "bomb.tar.gz" in line and "expands to more than 1 MB" in line and "--max-expanded-mb" in line
    monkeypatch.setenv("EPDI_ARCHIVE_MAX_MB", "2")  # the setting is the default cap
    get_settings.cache_clear()
    assert "more than 2 MB" in runner.invoke(app, ["dataset", "load", str(bomb)]).stderr
    # under a raised cap it is read, and found cut short
    raised = runner.invoke(app, ["dataset", "load", str(bomb), "--max-expanded-mb", "10"])
    assert raised.exit_code == 1 and "damaged" in raised.stderr
    assert StoreFacade().count("surfaces") == 0


def test_a_compact_archive_of_a_surface_without_fragments_loads(tmp_path, data_dir, monkeypatch):
    """A surface whose labels finished before its fragments (a generation cut short) still ships."""
    built = runner.invoke(app, ["surfaces", "build", "MoS2", "--size", "2", "--out", str(tmp_path / "s")])
    assert built.exit_code == 0, built.output
    archive = tmp_path / "partial.tar.gz"
    assert runner.invoke(app, ["dataset", "export", str(archive), "--compact"]).exit_code == 0
    monkeypatch.setenv("EPDI_DATA_DIR", str(tmp_path / "fresh"))
    get_settings.cache_clear()
    loaded = runner.invoke(app, ["dataset", "load", str(archive), "--json"])
    assert loaded.exit_code == 0, loaded.output
    totals = json.loads(loaded.stdout)
    assert totals["surfaces"] == 1 and totals["fragments"] == 0 and totals["fragments_recut_surfaces"] == 0
    assert StoreFacade().count("hops") == totals["hops"] > 0
