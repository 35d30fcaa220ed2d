"""How a CINEB's start and optimiser change its force calls, at CHGNet cost: ``epdi bench cineb-start``.

A DFT CINEB preconverged from CHGNet starts from a path converged on another potential energy
surface. The same situation, mirrored, costs seconds: for every surface of the store that holds a
DFT CINEB preconverged from a CHGNet one (the packaged ``dft-check`` set), the CHGNet CINEB is run
again between its own valleys from three starts: the IDPP path, the DFT path as it is, and the DFT
path moved onto the CHGNet valleys (:func:`workflows.jobs.reuse.preconverged_images`), with each
optimiser asked for. Figures per run: force calls, steps, convergence and the forward barrier; per
optimiser and start, the mean ratio of force calls to the IDPP start's, and BFGS's to FIRE's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from pymatgen.core import Structure

from stores.errors import InputError
from stores.facade import StoreFacade
from stores.schemas.calculations import NebDoc
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.jobs.reuse import preconverged_images

#: the three starts, in the order they run
STARTS: tuple[str, ...] = ("idpp", "dft path as is", "dft path moved")


def _pairs(facade: StoreFacade, hosts: Sequence[str] | None) -> list[tuple[str, NebDoc, NebDoc]]:
    """``(surface name, DFT CINEB, the CHGNet CINEB it started from)`` for every such pair."""
    fields = ["surface_id", "host", "dopant"]
    surfaces = {d["surface_id"]: d for d in facade.query("surfaces", {}, properties=fields)}
    pairs = []
    for doc in facade.query("nebs", {"engine": {"$ne": "chgnet"}}):
        if not doc.get("preconverged_from") or not doc.get("image_structures"):
            continue
        found = facade.query("nebs", {"neb_id": doc["preconverged_from"], "engine": "chgnet"})
        surface = surfaces.get(doc["surface_id"], {})
        if not found or (hosts and surface.get("host") not in hosts):
            continue
        name = f"{surface.get('host', doc['surface_id'])}-{surface.get('dopant') or 'pristine'}"
        pairs.append((name, NebDoc(**doc), NebDoc(**found[0])))
    return sorted(pairs, key=lambda pair: pair[0])


def cineb_start_benchmark(
    facade: StoreFacade,
    optimizers: Sequence[str] = ("fire", "bfgs"),
    hosts: Sequence[str] | None = None,
    echo: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Run the CHGNet CINEBs of every preconverged pair in the store from each start; return the figures.

    Raises
    ------
    InputError
        An optimiser is not known, or the store holds no DFT CINEB preconverged from CHGNet.
    """
    if not optimizers:
        raise InputError(f"give at least one optimizer; accepted: {', '.join(ase_dynamics.CINEB_OPTIMIZERS)}")
    for name in optimizers:
        if name not in ase_dynamics.CINEB_OPTIMIZERS:
            known = ", ".join(ase_dynamics.CINEB_OPTIMIZERS)
            raise InputError(f"optimizer {name!r} is not known; accepted: {known}")
    pairs = _pairs(facade, hosts)
    if not pairs:
        raise InputError(
            "the store holds no DFT CINEB preconverged from a CHGNet one"
            + (f" on {', '.join(hosts)}" if hosts else "")
            + ": run `epdi dataset load dft-check` first"
        )
    rows = []
    for surface, dft, chgnet in pairs:
        found = facade.query("valleys", {"valley_id": {"$in": list(chgnet.valley_ids)}})
        valleys = {d["valley_id"]: d for d in found}
        ends = tuple(Structure.from_dict(valleys[v]["structure"]) for v in chgnet.valley_ids)
        energies = [valleys[v]["energy_ev"] for v in chgnet.valley_ids]
        paths = {
            "idpp": None,
            "dft path as is": preconverged_images(dft, chgnet.n_images),
            "dft path moved": preconverged_images(dft, chgnet.n_images, ends),
        }
        engine = ChgnetSettings(**chgnet.settings)
        for optimizer in optimizers:
            for start in STARTS:
                path = paths[start]
                result = ase_dynamics.cineb(
                    *ends, *energies, engine, chgnet.n_images, initial_images=path, optimizer=optimizer
                )
                row = {
                    "surface": surface,
                    "optimizer": optimizer,
                    "start": start,
                    "force_calls": result.force_calls,
                    "steps": result.steps,
                    "converged": result.converged,
                    "forward_barrier_ev": round(max(result.energies_ev) - result.energies_ev[0], 4),
                }
                rows.append(row)
                echo(f"{surface} {optimizer} from {start}: {result.force_calls} force calls")
    return {
        "engine": "chgnet",
        "surfaces": sorted({r["surface"] for r in rows}),
        "runs": rows,
        "calls_vs_idpp": {
            name: {start: _mean_ratio(rows, (name, start), (name, "idpp")) for start in STARTS[1:]}
            for name in optimizers
        },
        "bfgs_vs_fire": (
            {start: _mean_ratio(rows, ("bfgs", start), ("fire", start)) for start in STARTS}
            if {"fire", "bfgs"} <= set(optimizers)
            else None
        ),
    }


def _mean_ratio(rows: list[dict], run: tuple[str, str], baseline: tuple[str, str]) -> float:
    """Mean over surfaces of the force calls of ``(optimizer, start)`` over those of ``baseline``."""
    calls = {(r["surface"], r["optimizer"], r["start"]): r["force_calls"] for r in rows}
    surfaces = sorted({r["surface"] for r in rows})
    return round(fmean(calls[(s, *run)] / calls[(s, *baseline)] for s in surfaces), 3)
