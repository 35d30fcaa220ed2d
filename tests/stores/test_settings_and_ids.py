import pytest

from stores.ids import stable_id
from stores.settings import Settings, SettingsError, get_settings


def test_stable_id_is_deterministic_and_sensitive():
    a = stable_id("surf", host="MoS2", dopant="Co", a_ang=3.18)
    assert a == stable_id("surf", dopant="Co", a_ang=3.1800000001, host="MoS2")
    assert a != stable_id("surf", host="MoS2", dopant="Ni", a_ang=3.18)
    assert a.startswith("surf-") and len(a) == len("surf-") + 16


def test_defaults_env_and_yaml(tmp_path, monkeypatch, data_dir):
    settings = get_settings()
    assert settings.data_dir == data_dir.resolve()
    assert settings.store.backend == "embedded"

    config = tmp_path / "site.yaml"
    config.write_text("data_dir: /tmp/from-yaml\nstore:\n  backend: mongodb\n  uri: mongodb://db:27017\n")
    monkeypatch.setenv("EPDI_SETTINGS_FILE", str(config))
    monkeypatch.delenv("EPDI_DATA_DIR")
    from_yaml = Settings()
    assert str(from_yaml.data_dir) == "/tmp/from-yaml"
    assert from_yaml.store.backend == "mongodb"
    # the environment wins over the file
    monkeypatch.setenv("EPDI_STORE__DATA_BACKEND", "s3")
    monkeypatch.setenv("EPDI_DATA_DIR", str(data_dir))
    mixed = Settings()
    assert mixed.store.data_backend == "s3" and mixed.store.uri == "mongodb://db:27017"
    assert mixed.data_dir == data_dir.resolve()


def test_bad_settings_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("EPDI_SETTINGS_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="missing.yaml"):
        Settings()
    broken = tmp_path / "broken.yaml"
    broken.write_text("store: [unclosed\n")
    monkeypatch.setenv("EPDI_SETTINGS_FILE", str(broken))
    with pytest.raises(SettingsError, match="not valid YAML"):
        Settings()


def test_bad_env_value_is_named(monkeypatch):
    monkeypatch.setenv("EPDI_STORE__BACKEND", "oracle")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="store.backend"):
        get_settings()
