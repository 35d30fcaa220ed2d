"""Store faults become the platform's own errors: unreachable MongoDB, damaged blobs, bad settings files."""

import socket
import zlib

import numpy as np
import pytest

from stores.arrays import GridIntegrityError, get_array, put_array
from stores.errors import InputError
from stores.facade import StoreFacade, StoreUnreachable
from stores.settings import Settings, SettingsError, StoreSettings, get_settings
from stores.validation import check_output_dir, check_output_file, one_line, read_text_file


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("uri", [False, True])
def test_an_unreachable_mongodb_is_one_line_naming_the_server(data_dir, uri):
    port = _closed_port()
    store = StoreSettings(backend="mongodb", host="127.0.0.1", port=port, timeout_s=0.3)
    if uri:
        store = store.model_copy(update={"uri": f"mongodb://reader:secret@127.0.0.1:{port}/epdi"})
    facade = StoreFacade(Settings(data_dir=data_dir, store=store))
    with pytest.raises(StoreUnreachable) as info:  # the real pymongo client against a closed port
        facade.count("surfaces")
    message = str(info.value)
    assert message.startswith(f"cannot reach MongoDB at {'mongodb://' if uri else ''}127.0.0.1:{port}")
    assert "within 0.3 s" in message and ("store.uri" if uri else "store.host") in message
    assert "secret" not in message and "Topology" not in message and "\n" not in message
    assert info.value.exit_code == 1


def test_a_truncated_or_missing_blob_is_a_grid_integrity_error(data_dir):
    facade = StoreFacade()
    ref = put_array(facade, np.arange(1000, dtype=np.float64), "eV")
    assert get_array(facade, ref).sum() == 499500.0
    store = facade.data_store()
    store.connect()
    try:
        blob = store._collection.find_one({"blob_uuid": ref.key})
        short = bytes(blob["data"])[:20]
        store._collection.update_one({"blob_uuid": ref.key}, {"$set": {"data": short}})
        with pytest.raises(GridIntegrityError, match="damaged"):
            get_array(facade, ref)
        store._collection.update_one({"blob_uuid": ref.key}, {"$set": {"data": zlib.compress(b"x" * 8)}})
        with pytest.raises(GridIntegrityError, match="damaged"):  # wrong size for the recorded shape
            get_array(facade, ref)
        store._collection.delete_one({"blob_uuid": ref.key})
        with pytest.raises(GridIntegrityError, match="not in the data store"):
            get_array(facade, ref)
    finally:
        store.close()


def test_settings_from_a_broken_environment_are_named(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EPDI_STORE", "backend=mongodb")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="EPDI_STORE is not valid JSON"):
        get_settings()
    monkeypatch.delenv("EPDI_STORE")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for folder, says in ((afile, "is a file"), (afile / "data", "cannot be created")):
        monkeypatch.setenv("EPDI_DATA_DIR", str(folder))
        get_settings.cache_clear()
        with pytest.raises(SettingsError, match=says):
            get_settings()
    binary = tmp_path / "s.yaml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    monkeypatch.setenv("EPDI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("EPDI_SETTINGS_FILE", str(binary))
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="not a text file"):
        get_settings()


def test_path_checks_create_nothing(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="existing file"):
        check_output_dir(afile, "--out")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_dir(afile / "sub" / "deeper", "--out")
    with pytest.raises(InputError, match="existing folder"):
        check_output_file(tmp_path, "--out")
    assert check_output_dir(tmp_path / "new" / "folder", "--out") == tmp_path / "new" / "folder"
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="does not exist"):
        read_text_file(tmp_path / "missing.yaml", "spec")
    assert one_line("a\n\n  b   c\n") == "a; b c"
