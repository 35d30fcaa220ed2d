"""Processes for the fault-injection tests, run as ``python store_workers.py KIND ...``.

Units come as JSON files of ``{"surface": ..., "sites": [...], "hops": [...]}`` (documents as
:func:`workflows.structures.surfaces.store_surfaces` writes them), so that a worker imports only the store.

- ``writer WORKER UNITS GO``: create ``ready-WORKER`` beside GO, wait for the file GO, then write
  each unit of the file UNITS, printing ``{"written": id}`` after each and ``{"torn": [...]}``, the
  stored surfaces whose sites or hops are incomplete as a reader sees them.
- ``paused UNITS READY``: start writing the first unit (its surface upserted, the stored sites of
  that surface removed), create READY, then sleep inside the unit until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from stores.facade import StoreFacade
from stores.schemas.surfaces import HopDoc, SiteDoc, SurfaceDoc


def unit_documents(bundle) -> dict:
    """The documents of a :class:`workflows.structures.surfaces.SurfaceBundle` as JSON-ready dicts."""
    return {
        "surface": bundle.surface.model_dump(mode="json"),
        "sites": [s.model_dump(mode="json") for s in bundle.sites],
        "hops": [h.model_dump(mode="json") for h in bundle.hops],
    }


def torn_surfaces(facade: StoreFacade) -> list[str]:
    """Ids of stored surfaces whose sites or hops are not all there (one consistent read)."""
    with facade.snapshot():
        surfaces = facade.query("surfaces", properties=["surface_id", "n_valleys", "n_saddles", "n_hops"])
        sites = [d["surface_id"] for d in facade.query("sites", properties=["surface_id"])]
        hops = [d["surface_id"] for d in facade.query("hops", properties=["surface_id"])]
    return [
        s["surface_id"]
        for s in surfaces
        if sites.count(s["surface_id"]) != s["n_valleys"] + s["n_saddles"]
        or hops.count(s["surface_id"]) != s["n_hops"]
    ]


def write_unit(facade: StoreFacade, unit: dict) -> str:
    """Write one surface with its sites and hops as one unit (as ``store_surfaces`` does)."""
    surface = SurfaceDoc(**unit["surface"])
    ids = [surface.surface_id]
    with facade.unit():
        facade.upsert("surfaces", [surface])
        facade.replace_groups("sites", "surface_id", [SiteDoc(**s) for s in unit["sites"]], ids)
        facade.replace_groups("hops", "surface_id", [HopDoc(**h) for h in unit["hops"]], ids)
    return surface.surface_id


def writer(worker: int, units: Path, go: Path) -> None:
    todo = json.loads(units.read_text())
    facade = StoreFacade()
    (go.parent / f"ready-{worker}").touch()
    while not go.exists():
        time.sleep(0.005)
    for unit in todo:
        print(json.dumps({"written": write_unit(facade, unit)}), flush=True)
        print(json.dumps({"torn": torn_surfaces(facade)}), flush=True)


def paused(units: Path, ready: Path) -> None:
    unit = json.loads(units.read_text())[0]
    facade = StoreFacade()
    with facade.unit():
        facade.upsert("surfaces", [SurfaceDoc(**unit["surface"])])
        facade.remove("sites", {"surface_id": unit["surface"]["surface_id"]})
        ready.touch()
        time.sleep(600)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "writer":
        writer(int(args[0]), Path(args[1]), Path(args[2]))
    elif kind == "paused":
        paused(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown worker {kind!r}")
