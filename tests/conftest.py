"""Shared fixtures: every test gets its own data folder and fresh settings."""

from __future__ import annotations

import pytest

from stores.settings import get_settings


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Point EPDI_DATA_DIR at a fresh folder and run from a clean working directory."""
    folder = tmp_path / "epdi-data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EPDI_DATA_DIR", str(folder))
    monkeypatch.delenv("EPDI_SETTINGS_FILE", raising=False)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()
