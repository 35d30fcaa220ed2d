"""A full disk: the command fails with one line, the store stays as it was and works once space is back.

The data folder lives on a 2 MB tmpfs mounted for the test (root only); elsewhere it is skipped with
the reason.
"""

import errno
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app

runner = CliRunner()
BUILD = ["surfaces", "build", "MoS2", "--size", "2", "--no-check", "--json"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
        )
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the full-disk test needs `mount` as root")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the full-disk test needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a file until the disk under ``folder`` is full; return it."""
    filler = folder / name
    with open(filler, "wb", buffering=0) as out:
        for chunk in (1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    out.write(bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def snapshot(facade):
    return {name: sorted(map(str, facade.query(name))) for name in ("surfaces", "sites", "hops")}


def test_full_disk_fails_cleanly_and_the_store_works_again(small_disk, tmp_path, monkeypatch):
    data = small_disk / "epdi-data"
    monkeypatch.setenv("EPDI_DATA_DIR", str(data))
    monkeypatch.setenv("EPDI_STORE__RESERVE_KB", "64")
    get_settings.cache_clear()
    first = runner.invoke(app, [*BUILD, "--dopant", "Co"])
    assert first.exit_code == 0, first.output
    archive = tmp_path / "co.tar.gz"
    assert runner.invoke(app, ["dataset", "export", str(archive)]).exit_code == 0
    facade = StoreFacade()
    before = snapshot(facade)
    filler = fill(small_disk)

    # the store write fails (the command's files go elsewhere)
    refused = runner.invoke(app, [*BUILD, "--dopant", "Zn", "--size", "3", "--out", str(tmp_path / "zn")])
    assert refused.exit_code == 1
    (line,) = refused.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"error: the disk holding the data folder {data} is full")
    assert "nothing was written" in line
    # the command's own files on the full disk (the failed write above freed its reserve)
    refill = fill(small_disk, "refill")
    files = runner.invoke(app, [*BUILD, "--dopant", "Ni"])
    assert files.exit_code == 1 and files.stderr.startswith("error: the disk")  # its files or the store
    assert "full" in files.stderr
    assert len(files.stderr.strip().splitlines()) == 1
    # a dataset load onto the full disk
    load = runner.invoke(app, ["dataset", "load", str(archive)])
    assert load.exit_code == 1 and len(load.stderr.strip().splitlines()) == 1, load.output
    assert "is full" in load.stderr

    assert snapshot(facade) == before  # readable on the full disk, and unchanged
    listed = runner.invoke(app, ["query", "surfaces"])
    assert listed.exit_code == 0 and "Co" in listed.stdout

    filler.unlink()  # space is back
    refill.unlink()
    assert snapshot(facade) == before
    again = runner.invoke(app, [*BUILD, "--dopant", "Zn", "--size", "3", "--out", str(tmp_path / "zn")])
    assert again.exit_code == 0, again.output
    assert facade.count("surfaces") == 2
    assert facade.count("sites") == 20 + 45 and facade.count("hops") == 12 + 27
