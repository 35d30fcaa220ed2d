"""Shared fixtures: every test gets its own data folder and fresh settings."""

from __future__ import annotations

import logging

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


@pytest.fixture(autouse=True)
def _no_stale_log_handlers():
    """Drop log handlers a test added to jobflow's and FireWorks' loggers.

    jobflow's ``JobFiretask`` and FireWorks' launchers attach a handler on ``sys.stdout`` when they
    run; inside ``CliRunner`` that stream is closed after the command, and a later test's log
    lines would land on it ("--- Logging error ---").
    """
    names = ("jobflow", "launchpad", "rocket.launcher")
    before = {name: list(logging.getLogger(name).handlers) for name in names}
    yield
    for name in names:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h not in before[name]]:
            logger.removeHandler(handler)
