"""Processes for the fault-injection tests, run as ``python store_workers.py KIND ...``.

- ``writer WORKER UNITS GO``: create ``ready-WORKER`` beside GO, wait for the file GO, then store
  UNITS small surfaces (each a unit:
  surface, sites, hops), printing ``{"written": id}`` after each and ``{"torn": [...]}``, the stored
  surfaces whose sites or hops are incomplete as a reader sees them.
- ``paused READY``: start a unit that rewrites the stored surface (surface upserted, its sites
  removed), create READY, then sleep inside the unit until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from stores.facade import StoreFacade
from workflows.hosts import get_host
from workflows.surfaces import describe_surface, store_surfaces


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


def writer(worker: int, units: int, go: Path) -> None:
    host = get_host("MoS2")
    bundles = [
        describe_surface(host, "Co", size=2, vacuum_ang=10.0 + worker + 0.1 * i) for i in range(units)
    ]
    facade = StoreFacade()
    (go.parent / f"ready-{worker}").touch()
    while not go.exists():
        time.sleep(0.005)
    for bundle in bundles:
        store_surfaces([bundle], facade)
        print(json.dumps({"written": bundle.surface.surface_id}), flush=True)
        print(json.dumps({"torn": torn_surfaces(facade)}), flush=True)


def paused(ready: Path) -> None:
    facade = StoreFacade()
    bundle = describe_surface(get_host("MoS2"), "Co", size=2)
    with facade.unit():
        facade.upsert("surfaces", [bundle.surface])
        facade.remove("sites", {"surface_id": bundle.surface.surface_id})
        ready.touch()
        time.sleep(600)


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "writer":
        writer(int(args[0]), int(args[1]), Path(args[2]))
    elif kind == "paused":
        paused(Path(args[0]))
    else:
        raise SystemExit(f"unknown worker {kind!r}")
