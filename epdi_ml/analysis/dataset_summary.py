"""Sanity figures of a labelled dataset: counts, barrier ranges per host, literature, flags, outliers."""

from __future__ import annotations

from typing import Any

import numpy as np

from epdi_ml.analysis.barriers import DEFINITIONS
from epdi_ml.analysis.hop_table import hop_rows
from epdi_ml.analysis.sanity import HOP_FLAGS, count_flags, neb_flags, neb_issue
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


def _span(values: list[float]) -> list[float] | None:
    return [round(min(values), 4), round(max(values), 4)] if values else None


def dataset_summary(facade: StoreFacade, model_ids: list[str] | None = None) -> dict[str, Any]:
    """Counts, per-host E_b and barrier ranges (eV), pristine barriers, sanity flags, outliers.

    Barriers follow :mod:`epdi_ml.analysis.barriers`: ``local`` from the lower of a hop's two valleys,
    ``forward`` from its T_M valley, both read on the CINEB images of every distinct labelled hop.
    Flags (:mod:`epdi_ml.analysis.sanity`) are counted over distinct hops; with ``model_ids`` the unlabelled
    hops are assessed with those models' stored predictions too.
    """
    surfaces = {
        s["surface_id"]: s for s in facade.query("surfaces", properties=["surface_id", "host", "dopant"])
    }
    valleys = facade.query("valleys")
    rows = [r for r in hop_rows(facade, list(surfaces), model_ids) if r["representative"]]
    counts = {
        name: facade.count(name) for name in ("surfaces", "calculations", "valleys", "nebs", "fragments")
    }
    per_host: dict[str, dict[str, Any]] = {}
    for host in sorted({s["host"] for s in surfaces.values()}):
        ids = {sid for sid, s in surfaces.items() if s["host"] == host}
        eb = [v["binding_energy_ev"] for v in valleys if v["surface_id"] in ids]
        labelled = [r for r in rows if r["surface_id"] in ids and r["source"] == "cineb"]
        pristine = [r["local_barrier_ev"] for r in labelled if surfaces[r["surface_id"]]["dopant"] is None]
        literature = LITERATURE_BARRIERS_EV.get(host)
        per_host[host] = {
            "surfaces": len(ids),
            "valley_eb_range_ev": _span(eb),
            "local_barrier_range_ev": _span([r["local_barrier_ev"] for r in labelled]),
            "forward_barrier_range_ev": _span([r["forward_barrier_ev"] for r in labelled]),
            "pristine_local_barrier_ev": round(float(np.max(pristine)), 4) if pristine else None,
            "literature_ev": list(literature["range_ev"]) if literature and literature["range_ev"] else None,
            "literature_source": literature["source"] if literature else "no value on file",
            "flags": count_flags(r for r in rows if r["surface_id"] in ids),
        }
    outliers = [
        {
            "kind": "valley",
            "surface_id": v["surface_id"],
            "site_id": v["site_id"],
            "flag": "left_valley",
            "issue": "Li left its valley",
        }
        for v in valleys
        if v["left_valley"]
    ]
    nebs = {n["neb_id"]: n for n in facade.query("nebs")}
    for row in rows:
        neb = nebs.get(row["neb_id"]) if row["source"] == "cineb" else None
        issues = dict(zip(neb_flags(neb), neb_issue(neb), strict=True)) if neb else {}
        for flag in row["flags"]:
            outliers.append(
                {
                    "kind": "hop",
                    "surface_id": row["surface_id"],
                    "hop_id": row["hop_id"],
                    "flag": flag,
                    "issue": issues.get(flag, HOP_FLAGS[flag]),
                }
            )
    return {
        "counts": counts,
        "barrier_definitions": {k: DEFINITIONS[k] for k in ("local_barrier_ev", "forward_barrier_ev")},
        "hosts": per_host,
        "flags": count_flags(rows) | {"left_valley": sum(v["left_valley"] for v in valleys)},
        "outliers": outliers,
    }
