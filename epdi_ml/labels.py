"""Binding-energy labels of sites from the store, shared across symmetry-equivalent sites.

Valley labels come from relaxations (``valleys``: E_b by site), saddle labels from CINEB hops
(``nebs``: saddle E_b by hop, joined to the hop's saddle site). A label computed for one member of
a symmetry class is the label of every member (fragments record their class representative).
"""

from __future__ import annotations

from stores.facade import StoreFacade


def latest_by(docs: list[dict], key: str) -> dict[str, dict]:
    """The newest document (by ``updated_at``) for each value of ``key``."""
    out: dict[str, dict] = {}
    for doc in sorted(docs, key=lambda d: str(d.get("updated_at", ""))):
        out[doc[key]] = doc
    return out


def computed_labels(facade: StoreFacade, engine: str | None = None) -> dict[str, float]:
    """E_b (eV) of the sites that were computed directly, by site id."""
    criteria = {"engine": engine} if engine else {}
    labels = {
        site: d["binding_energy_ev"]
        for site, d in latest_by(facade.query("valleys", criteria), "site_id").items()
    }
    nebs = latest_by(facade.query("nebs", criteria), "hop_id")
    if nebs:
        hops = facade.query("hops", {"hop_id": {"$in": list(nebs)}}, properties=["hop_id", "saddle_id"])
        for hop in hops:
            labels[hop["saddle_id"]] = nebs[hop["hop_id"]]["saddle_binding_energy_ev"]
    return labels


def class_labels(fragments: list[dict], computed: dict[str, float]) -> dict[str, float]:
    """Spread computed labels to every fragment site of the same symmetry class."""
    by_class: dict[str, float] = {}
    for frag in fragments:
        if frag["site_id"] in computed:
            by_class.setdefault(frag["representative_site_id"], computed[frag["site_id"]])
    return {
        f["site_id"]: computed.get(f["site_id"], by_class.get(f["representative_site_id"]))
        for f in fragments
        if f["site_id"] in computed or f["representative_site_id"] in by_class
    }
