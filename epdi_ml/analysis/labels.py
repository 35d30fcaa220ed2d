"""Binding-energy labels of sites from the store, shared across symmetry-equivalent sites.

Valley labels come from relaxations (``valleys``: E_b by site), saddle labels from CINEB hops
(``nebs``: saddle E_b by hop, joined to the hop's saddle site). A label computed for one member of
a symmetry class is the label of every member (fragments record their class representative).

Provenance: a label belongs to a *label source*, the engine and the settings that define it
(:func:`label_source`; surface-dependent choices such as spin polarisation for a magnetic dopant and
display-only choices such as the device are not part of it). Labels of two sources are never mixed:
a request that would mix them raises :class:`MixedLabels` listing what the store holds. Unconverged
CINEBs are left out of the labels and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stores.errors import InputError
from stores.facade import StoreFacade
from stores.ids import stable_id

#: settings keys that do not define a label: surface-dependent (spin) or not physics (device)
_NOT_DEFINING = {"device", "spin_polarized", "initial_magmoms", "txt"}


class MixedLabels(InputError):
    """The labels in scope come from more than one engine or set of settings."""


def _defining(settings: object) -> object:
    if isinstance(settings, dict):
        return {k: _defining(v) for k, v in settings.items() if k not in _NOT_DEFINING}
    return settings


def label_source(doc: dict) -> str:
    """The label source of a valley or CINEB document: ``<engine>:<hash of its defining settings>``.

    Documents stored before settings were recorded give ``<engine>:unrecorded``.
    """
    settings = doc.get("settings") or {}
    if not settings:
        return f"{doc['engine']}:unrecorded"
    return f"{doc['engine']}:{stable_id('labels', settings=_defining(settings)).split('-', 1)[1]}"


def source_of_settings(engine_settings: object) -> str:
    """The label source that documents made with ``engine_settings`` (Maker settings) will have."""
    return label_source({"engine": engine_settings.engine, "settings": engine_settings.provenance()})


def latest_by(docs: list[dict], key: str) -> dict[str, dict]:
    """The newest document (by ``updated_at``) for each value of ``key``."""
    out: dict[str, dict] = {}
    for doc in sorted(docs, key=lambda d: str(d.get("updated_at", ""))):
        out[doc[key]] = doc
    return out


@dataclass
class LabelSet:
    """Labels of one source: E_b (eV) by site id, and what was left out."""

    source: str | None
    energies_ev: dict[str, float] = field(default_factory=dict)
    functional: str | None = None
    unconverged_hop_ids: list[str] = field(default_factory=list)


def _describe(sources: Counter, docs: list[dict]) -> str:
    functional = {label_source(d): d.get("functional") or d["engine"] for d in docs}
    return "; ".join(f"{s} ({functional[s]}, {n} labels)" for s, n in sorted(sources.items()))


def resolve_source(docs: list[dict], source: str | None) -> str | None:
    """The one label source of ``docs`` that ``source`` names (an engine, a source, or ``None``).

    Raises
    ------
    MixedLabels
        ``source`` matches none or several of the sources present.

    """
    sources = Counter(label_source(d) for d in docs)
    if not sources:
        return None
    if source is None:
        matches = list(sources)
    else:
        matches = [s for s in sources if s == source or s.split(":", 1)[0] == source]
    if len(matches) == 1:
        return matches[0]
    found = _describe(sources, docs)
    if not matches:
        raise MixedLabels(f"no labels of source {source!r} in the store; found: {found}")
    raise MixedLabels(
        f"labels of {len(matches)} engines/settings in scope, a model never trains on mixed labels: "
        f"{_describe(Counter({s: sources[s] for s in matches}), docs)}; choose one label source"
        f"{'' if source is None else f' (not just engine {source!r})'}, e.g. {matches[0]!r}"
    )


def label_set(facade: StoreFacade, source: str | None = None, surfaces: list[str] | None = None) -> LabelSet:
    """The labels of one source in the store (or on ``surfaces``), unconverged CINEBs left out.

    Parameters
    ----------
    facade
        The store.
    source
        An engine name (``chgnet``, ``gpaw``, ``vasp``), a label source (:func:`label_source`), or
        ``None`` for the only source present.
    surfaces
        Only these surface ids.

    """
    criteria = {"surface_id": {"$in": surfaces}} if surfaces else {}
    valleys = facade.query("valleys", criteria)
    nebs = facade.query("nebs", criteria)
    chosen = resolve_source(valleys + nebs, source)
    result = LabelSet(chosen)
    if chosen is None:
        return result
    mine = [d for d in valleys + nebs if label_source(d) == chosen]
    result.functional = next((d.get("functional") for d in mine if d.get("functional")), mine[0]["engine"])
    result.energies_ev = {
        site: d["binding_energy_ev"]
        for site, d in latest_by([v for v in valleys if label_source(v) == chosen], "site_id").items()
    }
    by_hop = latest_by([n for n in nebs if label_source(n) == chosen], "hop_id")
    result.unconverged_hop_ids = sorted(h for h, n in by_hop.items() if not n["converged"])
    good = {h: n for h, n in by_hop.items() if n["converged"]}
    if good:
        hops = facade.query("hops", {"hop_id": {"$in": list(good)}}, properties=["hop_id", "saddle_id"])
        for hop in hops:
            result.energies_ev[hop["saddle_id"]] = good[hop["hop_id"]]["saddle_binding_energy_ev"]
    return result


def computed_labels(facade: StoreFacade, source: str | None = None) -> dict[str, float]:
    """E_b (eV) of the sites that were computed directly, by site id, from one label source."""
    return label_set(facade, source).energies_ev


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


def site_class_labels(
    facade: StoreFacade, surface_ids: list[str], computed: dict[str, float] | None = None
) -> dict[str, float]:
    """E_b (eV) of every site of the surfaces whose symmetry class has a computed label.

    Like :func:`class_labels`, but classes come from the site documents (no fragments needed);
    ``computed`` defaults to :func:`computed_labels` of the store's one label source.
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
    return class_labels(as_fragments, computed_labels(facade) if computed is None else computed)


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
