"""How far MLIP labels are from DFT labels on the same surfaces: ``epdi bench labels``.

For every surface that holds valley relaxations and CINEBs of both a DFT engine (``gpaw`` or
``vasp``) and the MLIP (``chgnet``), per valley class and per hop:

- valley E_b (eV) of both engines, and their difference; the mean difference is a constant offset
  (the engines' isolated-Li and slab references differ), so the MAE is also given after removing
  it (``valley_eb_mae_offset_removed_ev``), which is what relative energetics see;
- saddle E_b, and the hop's local barrier (saddle above its lower end valley) and forward barrier
  (from the T_M end) of both engines;
- the offset per surface (mean MLIP minus DFT valley E_b on that surface): it is not one constant
  when the MLIP sees the surface's chemistry differently, so the MAE is also given after removing
  each surface's own offset (``valley_eb_mae_surface_offset_removed_ev``): the error of the energy
  differences within a surface, which barriers and site orders are made of;
- site order per surface: which valley class binds Li most strongly (T_M or H) for each engine among
  the classes both relaxed, whether they agree, and how many of the surface's valley classes that
  covers (``valley_classes`` "2/7"); ``site_order_agreement`` counts only surfaces with every class
  relaxed by both engines, ``site_order_partial`` the others.

Labels are taken per engine from one label source each (:mod:`epdi_ml.analysis.labels`); only converged
CINEBs count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from epdi_ml.analysis.barriers import DEFINITIONS
from epdi_ml.analysis.labels import label_source, latest_by, resolve_source
from stores.errors import InputError
from stores.facade import StoreFacade


class NoLabelPairs(InputError):
    """No surface holds labels of both engines."""


def _by_source(docs: list[dict], engine: str) -> list[dict]:
    mine = [d for d in docs if d["engine"] == engine]
    if not mine:
        return []
    source = resolve_source(mine, engine)
    return [d for d in mine if label_source(d) == source]


def _local_barrier(neb: dict, valleys: dict[str, dict]) -> float | None:
    ends = [valleys.get(v) for v in neb["valley_ids"]]
    if any(e is None for e in ends):
        return None
    return max(e["binding_energy_ev"] for e in ends) - neb["saddle_binding_energy_ev"]


def compare_labels(facade: StoreFacade, dft: str = "gpaw", mlip: str = "chgnet") -> dict[str, Any]:
    """Per-hop and per-valley comparison of ``mlip`` against ``dft`` labels, with summary figures."""
    valleys = facade.query("valleys")
    nebs = [n for n in facade.query("nebs") if n["converged"]]
    v_dft, v_ml = _by_source(valleys, dft), _by_source(valleys, mlip)
    n_dft, n_ml = latest_by(_by_source(nebs, dft), "hop_id"), latest_by(_by_source(nebs, mlip), "hop_id")
    surfaces = {d["surface_id"] for d in v_dft} & {d["surface_id"] for d in v_ml}
    if not surfaces:
        raise NoLabelPairs(
            f"no surface holds valley labels of both {dft} and {mlip}: load a DFT check set first "
            "(`epdi dataset load dft-check`) or compute one (`epdi dataset generate dft-check`)"
        )
    docs = {d["surface_id"]: d for d in facade.query("surfaces", {"surface_id": {"$in": list(surfaces)}})}
    by_valley_id = {d["valley_id"]: d for d in v_dft + v_ml}
    class_of = {
        (d["surface_id"], d["index"]): d["symmetry"]["class_index"]
        for d in facade.query("sites", {"surface_id": {"$in": list(surfaces)}, "kind": "valley"})
    }
    valley_rows, hop_rows, order, offsets = [], [], {}, {}
    for sid in sorted(surfaces, key=lambda s: (docs[s]["host"], docs[s].get("dopant") or "")):
        surface = docs[sid]
        n = surface["supercell"]
        name = f"{surface['host']}-{surface.get('dopant') or 'pristine'} {n}x{n}"
        a = latest_by([d for d in v_dft if d["surface_id"] == sid], "site_id")
        b = latest_by([d for d in v_ml if d["surface_id"] == sid], "site_id")
        shared = sorted(set(a) & set(b), key=lambda s: a[s]["site_index"])
        for site in shared:
            valley_rows.append(
                {
                    "surface": name,
                    "site_index": a[site]["site_index"],
                    "label": a[site]["label"],
                    f"{dft}_eb_ev": round(a[site]["binding_energy_ev"], 4),
                    f"{mlip}_eb_ev": round(b[site]["binding_energy_ev"], 4),
                    "difference_ev": round(b[site]["binding_energy_ev"] - a[site]["binding_energy_ev"], 4),
                }
            )
        strongest = {
            engine: max((group[site] for site in shared), key=lambda d: d["binding_energy_ev"])["label"]
            for engine, group in ((dft, a), (mlip, b))
        }
        covered = {class_of.get((sid, a[site]["site_index"])) for site in shared}
        n_classes = surface.get("n_distinct_valleys") or len(covered)
        order[name] = strongest | {
            "agree": len(set(strongest.values())) == 1,
            "valley_classes": f"{len(covered)}/{n_classes}",
            "complete": len(covered) >= n_classes,
        }
        gaps = [b[site]["binding_energy_ev"] - a[site]["binding_energy_ev"] for site in shared]
        offsets[name] = round(float(np.mean(gaps)), 4)
        for hop_id in sorted(set(n_dft) & set(n_ml)):
            x, y = n_dft[hop_id], n_ml[hop_id]
            if x["surface_id"] != sid:
                continue
            bx, by = _local_barrier(x, by_valley_id), _local_barrier(y, by_valley_id)
            hop_rows.append(
                {
                    "surface": name,
                    "hop_id": hop_id,
                    f"{dft}_saddle_eb_ev": round(x["saddle_binding_energy_ev"], 4),
                    f"{mlip}_saddle_eb_ev": round(y["saddle_binding_energy_ev"], 4),
                    f"{dft}_barrier_ev": None if bx is None else round(bx, 4),
                    f"{mlip}_barrier_ev": None if by is None else round(by, 4),
                    f"{dft}_forward_barrier_ev": round(x["forward_barrier_ev"], 4),
                    f"{mlip}_forward_barrier_ev": round(y["forward_barrier_ev"], 4),
                    f"{dft}_force_calls": x["force_calls"],
                    "preconverged": x.get("preconverged_from") is not None,
                }
            )
    diffs = np.array([r["difference_ev"] for r in valley_rows])
    within = np.array([r["difference_ev"] - offsets[r["surface"]] for r in valley_rows])
    complete = [o for o in order.values() if o["complete"]]
    barrier_pairs = [
        (r[f"{dft}_barrier_ev"], r[f"{mlip}_barrier_ev"])
        for r in hop_rows
        if r[f"{dft}_barrier_ev"] is not None and r[f"{mlip}_barrier_ev"] is not None
    ]
    barrier_err = np.array([m - d for d, m in barrier_pairs])
    forward_err = np.array(
        [r[f"{mlip}_forward_barrier_ev"] - r[f"{dft}_forward_barrier_ev"] for r in hop_rows]
    )

    def mae(values: np.ndarray) -> float | None:
        return None if len(values) == 0 else round(float(np.abs(values).mean()), 4)

    return {
        "dft_engine": dft,
        "mlip_engine": mlip,
        "n_surfaces": len(surfaces),
        "n_valleys": len(valley_rows),
        "n_hops": len(hop_rows),
        "barrier_definition": DEFINITIONS["local_barrier_ev"],
        "barrier_mae_ev": mae(barrier_err),
        "barrier_mean_error_ev": None if len(barrier_err) == 0 else round(float(barrier_err.mean()), 4),
        "forward_barrier_mae_ev": mae(forward_err),
        "valley_eb_mae_ev": mae(diffs),
        "valley_eb_mean_offset_ev": None if len(diffs) == 0 else round(float(diffs.mean()), 4),
        "valley_eb_mae_offset_removed_ev": mae(diffs - diffs.mean()) if len(diffs) else None,
        "valley_eb_mae_surface_offset_removed_ev": mae(within),
        "eb_offset_by_surface_ev": offsets,
        "site_order": order,
        "site_order_agreement": f"{sum(o['agree'] for o in complete)}/{len(complete)}",
        "site_order_partial": len(order) - len(complete),
        "hops": hop_rows,
        "valleys": valley_rows,
    }
