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


def site_class_labels(facade: StoreFacade, surface_ids: list[str]) -> dict[str, float]:
    """E_b (eV) of every site of the surfaces whose symmetry class has a computed label.

    Like :func:`class_labels`, but classes come from the site documents (no fragments needed).
    """
    sites = facade.query(
        "sites",
        {"surface_id": {"$in": list(surface_ids)}},
        properties=["site_id", "surface_id", "kind", "index", "symmetry"],
    )
    by_index = {(s["surface_id"], s["kind"], s["index"]): s["site_id"] for s in sites}

    def representative(site: dict) -> str:
        return by_index[(site["surface_id"], site["kind"], site["symmetry"]["representative_index"])]

    as_fragments = [{"site_id": s["site_id"], "representative_site_id": representative(s)} for s in sites]
    return class_labels(as_fragments, computed_labels(facade))


def hop_class_nebs(facade: StoreFacade, surface_ids: list[str]) -> dict[str, dict]:
    """The CINEB document that labels each hop, by hop id.

    A hop is labelled by its own CINEB or by that of any hop of its symmetry class (one CINEB per
    class); the newest document wins.
    """
    criteria = {"surface_id": {"$in": list(surface_ids)}}
    hops = facade.query("hops", criteria, properties=["hop_id", "surface_id", "symmetry"])
    nebs = latest_by(facade.query("nebs", criteria), "hop_id")
    by_class: dict[tuple[str, int], dict] = {}
    for hop in hops:
        if hop["hop_id"] in nebs:
            by_class.setdefault((hop["surface_id"], hop["symmetry"]["class_index"]), nebs[hop["hop_id"]])
    out = {}
    for hop in hops:
        neb = nebs.get(hop["hop_id"]) or by_class.get((hop["surface_id"], hop["symmetry"]["class_index"]))
        if neb is not None:
            out[hop["hop_id"]] = neb
    return out
