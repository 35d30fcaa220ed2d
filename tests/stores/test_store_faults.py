"""Fault injection on the embedded store: parallel writers, SIGKILL inside a unit, roll-back, repairs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_workers import unit_documents

from stores.facade import StoreFacade
from stores.store_lock import JOURNAL_FILE
from stores.unit_journal import pending
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface, store_surfaces

WORKERS = Path(__file__).with_name("store_workers.py")
N_WRITERS, N_UNITS = 4, 5


def dump(facade):
    """Every document of the surface collections, by collection, in key order."""
    keys = {"surfaces": "surface_id", "sites": "site_id", "hops": "hop_id"}
    return {name: sorted(facade.query(name), key=lambda d, k=key: d[k]) for name, key in keys.items()}


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def _units_file(path: Path, bundles) -> Path:
    path.write_text(json.dumps([unit_documents(b) for b in bundles]))
    return path


def test_parallel_writers_lose_and_tear_nothing(tmp_path):
    go = tmp_path / "go"
    host = get_host("MoS2")
    units = [
        _units_file(
            tmp_path / f"units-{w}.json",
            [describe_surface(host, "Co", size=2, vacuum_ang=10.0 + w + 0.1 * i) for i in range(N_UNITS)],
        )
        for w in range(N_WRITERS)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKERS), "writer", str(w), str(units[w]), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(N_WRITERS)
    ]
    for w, proc in enumerate(procs):  # start writing together, after the imports
        _wait_for(tmp_path / f"ready-{w}", proc)
    go.touch()
    results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0 and "Traceback" not in err, err
    lines = [json.loads(line) for out, _ in results for line in out.splitlines()]
    written = [r["written"] for r in lines if "written" in r]
    torn_seen = {sid for r in lines if "torn" in r for sid in r["torn"]}
    facade = StoreFacade()
    stored = dump(facade)
    stored_ids = {s["surface_id"] for s in stored["surfaces"]}
    lost = set(written) - stored_ids
    sites = [d["surface_id"] for d in stored["sites"]]
    hops = [d["surface_id"] for d in stored["hops"]]
    half = [
        s["surface_id"]
        for s in stored["surfaces"]
        if sites.count(s["surface_id"]) != s["n_valleys"] + s["n_saddles"]
        or hops.count(s["surface_id"]) != s["n_hops"]
    ]
    print(f"writers {N_WRITERS}: units written {len(written)}, lost {len(lost)}, half-written {len(half)}")
    assert len(written) == len(set(written)) == N_WRITERS * N_UNITS
    assert not lost and not half and not torn_seen
    assert len(stored_ids) == N_WRITERS * N_UNITS
    assert len(sites) == len({d["site_id"] for d in stored["sites"]})  # no duplicate documents


def test_sigkill_inside_a_unit_is_rolled_back_and_a_rerun_completes_it(tmp_path, data_dir):
    facade = StoreFacade()
    bundle = describe_surface(get_host("MoS2"), "Co", size=2)
    store_surfaces([bundle], facade)
    before = dump(facade)
    ready = tmp_path / "ready"
    units = _units_file(tmp_path / "units.json", [bundle])
    proc = subprocess.Popen([sys.executable, str(WORKERS), "paused", str(units), str(ready)])
    _wait_for(ready, proc)  # it has rewritten the surface and removed its sites, inside its unit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    journal = data_dir / "store" / JOURNAL_FILE
    assert pending(journal)  # it died inside the unit
    assert dump(facade) == before  # the next reader rolled the dead unit back first
    assert not pending(journal)
    store_surfaces([bundle], facade)  # the rerun
    after = dump(facade)
    assert [len(after[n]) for n in ("surfaces", "sites", "hops")] == [1, 20, 12]
    assert after["sites"] == before["sites"]  # deterministic ids and content


def test_a_unit_that_raises_writes_nothing():
    facade = StoreFacade()
    store_surfaces([describe_surface(get_host("MoS2"), "Co", size=2)], facade)
    before = dump(facade)
    with pytest.raises(ValueError, match="refused"), facade.unit():
        store_surfaces([describe_surface(get_host("MoS2"), "Zn", size=2)], facade)
        facade.remove("sites", {})
        assert facade.count("sites") == 0  # a unit reads its own writes
        raise ValueError("refused")
    assert dump(facade) == before


def test_broken_montydb_files_are_repaired(data_dir):
    facade = StoreFacade()
    store_surfaces([describe_surface(get_host("MoS2"), "Co", size=2)], facade)
    store = data_dir / "store"
    config = store / "monty.storage.cfg"
    written = config.stat().st_mtime_ns
    facade.count("surfaces")
    assert config.stat().st_mtime_ns == written  # a valid configuration is never rewritten
    # what a config race or a full disk left behind: an empty engine file, a collection without table
    (store / ".monty.storage").write_text("")
    (store / "epdi" / "valleys.collection").write_bytes(b"")
    code = (
        "from stores.facade import StoreFacade; f = StoreFacade(); "
        "print(f.count('surfaces'), f.count('valleys'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "0"]
    assert (store / ".monty.storage").read_text() == "sqlite"
