"""Sanity figures of a labelled dataset: counts, barrier ranges per host, literature, outliers."""

from __future__ import annotations

from typing import Any

import numpy as np

from stores.facade import StoreFacade

#: Li hop barriers on pristine hosts from the literature (eV): 2H-MoS2 0.24 eV (Nasr Esfahani et al.,
#: J. Phys. Chem. C 119, 10602, 2015) and 0.23 eV (Shi et al., Mater. Chem. Phys. 2016); MX2
#: (M = Mo, W; X = O, S, Se, Te) 0.15-0.28 eV (Appl. Surf. Sci. 2017, doi 10.1016/j.apsusc.2017.07.004).
#: No monolayer-surface value for 1T-TiS2 is on file: the bulk Li_xTiS2 intercalation hops of Van der Ven
#: et al. (Phys. Rev. B 78, 104306, 2008) pass through a tetrahedral site between layers and do not compare.
LITERATURE_BARRIERS_EV: dict[str, dict[str, Any]] = {
    "MoS2": {"range_ev": (0.23, 0.24), "source": "Nasr Esfahani et al. 2015; Shi et al. 2016"},
    "MoSe2": {"range_ev": (0.15, 0.28), "source": "MX2 band, Appl. Surf. Sci. 2017"},
    "WS2": {"range_ev": (0.15, 0.28), "source": "MX2 band, Appl. Surf. Sci. 2017"},
    "WSe2": {"range_ev": (0.15, 0.28), "source": "MX2 band, Appl. Surf. Sci. 2017"},
    "TiS2": {
        "range_ev": None,
        "source": "no monolayer value on file (bulk Li_xTiS2, Van der Ven et al. 2008, is not comparable)",
    },
}


def dataset_summary(facade: StoreFacade) -> dict[str, Any]:
    """Counts, per-host ranges of valley E_b and hop barriers (eV), pristine barriers, outliers."""
    surfaces = {
        s["surface_id"]: s for s in facade.query("surfaces", properties=["surface_id", "host", "dopant"])
    }
    valleys = facade.query("valleys")
    nebs = facade.query("nebs")
    counts = {
        name: facade.count(name) for name in ("surfaces", "calculations", "valleys", "nebs", "fragments")
    }
    per_host: dict[str, dict[str, Any]] = {}
    for host in sorted({s["host"] for s in surfaces.values()}):
        ids = {sid for sid, s in surfaces.items() if s["host"] == host}
        eb = [v["binding_energy_ev"] for v in valleys if v["surface_id"] in ids]
        barriers = [n["forward_barrier_ev"] for n in nebs if n["surface_id"] in ids]
        # barrier seen from the lower end point of the pristine hop: max(forward, reverse)
        pristine = [
            max(n["forward_barrier_ev"], n["reverse_barrier_ev"])
            for n in nebs
            if n["surface_id"] in ids and surfaces[n["surface_id"]]["dopant"] is None
        ]
        literature = LITERATURE_BARRIERS_EV.get(host)
        per_host[host] = {
            "surfaces": len(ids),
            "valley_eb_range_ev": [round(min(eb), 4), round(max(eb), 4)] if eb else None,
            "hop_barrier_range_ev": [round(min(barriers), 4), round(max(barriers), 4)] if barriers else None,
            "pristine_barrier_ev": round(float(np.max(pristine)), 4) if pristine else None,
            "literature_ev": list(literature["range_ev"]) if literature and literature["range_ev"] else None,
            "literature_source": literature["source"] if literature else "no value on file",
        }
    outliers = [
        {
            "kind": "valley",
            "surface_id": v["surface_id"],
            "site_id": v["site_id"],
            "issue": "Li left its valley",
        }
        for v in valleys
        if v["left_valley"]
    ] + [
        {
            "kind": "hop",
            "surface_id": n["surface_id"],
            "hop_id": n["hop_id"],
            "issue": "CINEB not converged"
            + ("" if n.get("fmax_ev_ang") is None else f" (fmax {n['fmax_ev_ang']:.3f} eV/Angstrom)"),
        }
        for n in nebs
        if not n["converged"]
    ]
    return {"counts": counts, "hosts": per_host, "outliers": outliers}
