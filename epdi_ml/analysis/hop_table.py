"""Every hop with its barriers, intervals and sanity flags: the one table behind query, summary and report.

A hop labelled by a CINEB (its own or one of its symmetry class, :func:`~.labels.hop_class_nebs`)
takes its forward, reverse and local barriers from the CINEB images (:func:`~.barriers.neb_barriers`,
half-widths 0). An unlabelled hop takes them from its valleys' E_b (labels of their symmetry class,
else predictions) and its predicted saddle, with calibrated half-widths
(:func:`~.profiles.build_profile` on the path T_M -> saddle -> H). Flags: :mod:`~.sanity`.
"""

from __future__ import annotations

from collections.abc import Mapping

from epdi_ml.analysis.barriers import neb_barriers
from epdi_ml.analysis.labels import hop_class_nebs, site_class_labels
from epdi_ml.analysis.profiles import SitePrediction, build_profile, mix_labels_and_predictions
from epdi_ml.analysis.sanity import neb_flags
from stores.facade import StoreFacade

BARRIERS = ("forward", "reverse", "local")
#: a hop with neither a CINEB nor a complete prediction
_EMPTY = {"source": None, "saddle_eb_ev": None, "saddle_ci68_ev": None, "saddle_ci90_ev": None} | {
    f"{name}_{field}": None for name in BARRIERS for field in ("barrier_ev", "ci68_ev", "ci90_ev")
}


def model_predictions(facade: StoreFacade, model_ids: list[str], surface_ids: list[str]) -> dict[str, dict]:
    """The stored prediction of each site by the first model of ``model_ids`` that has one."""
    out: dict[str, dict] = {}
    for mid in model_ids:
        for doc in facade.query("predictions", {"model_id": mid, "surface_id": {"$in": list(surface_ids)}}):
            out.setdefault(doc["site_id"], doc)
    return out


def _labelled_row(neb: Mapping) -> dict:
    b = neb_barriers(neb["image_energies_ev"])
    row = {"source": "cineb", "saddle_eb_ev": neb["saddle_binding_energy_ev"], "saddle_ci68_ev": 0.0}
    row["saddle_ci90_ev"] = 0.0
    for name in BARRIERS:
        row |= {f"{name}_barrier_ev": getattr(b, f"{name}_barrier_ev"), f"{name}_ci68_ev": 0.0}
        row[f"{name}_ci90_ev"] = 0.0
    return row | {"flags": neb_flags(neb)}


def _predicted_row(
    hop: Mapping, labels: Mapping[str, float], predicted: Mapping[str, SitePrediction]
) -> dict:
    tm, h = hop["valley_ids"]
    ids = [tm, hop["saddle_id"], h]
    try:
        sites = mix_labels_and_predictions(
            ids, ["valley", "saddle", "valley"], labels, predicted, ["T_M", None, "H"]
        )
    except KeyError:
        return _EMPTY | {"flags": []}
    saddle = sites[1]
    if saddle.source != "predicted":  # a saddle label without a CINEB of its class (not expected)
        return _EMPTY | {"flags": []}
    (path_hop,) = build_profile(sites).hops
    row = {"source": "predicted", "saddle_eb_ev": saddle.binding_energy_ev}
    row |= {"saddle_ci68_ev": saddle.ci68_ev, "saddle_ci90_ev": saddle.ci90_ev}
    for name in BARRIERS:
        barrier = getattr(path_hop, name)
        row[f"{name}_barrier_ev"] = barrier.barrier_ev
        row[f"{name}_ci68_ev"], row[f"{name}_ci90_ev"] = barrier.ci68_ev, barrier.ci90_ev
    flags = ["saddle_below_valley"] if path_hop.saddle_below_valley else []
    if saddle.out_of_domain:
        flags.append("out_of_domain")
    return row | {"flags": flags}


def hop_rows(facade: StoreFacade, surface_ids: list[str], model_ids: list[str] | None = None) -> list[dict]:
    """One row per hop of the surfaces (sorted by surface and hop index); energies in eV.

    Parameters
    ----------
    facade
        The store.
    surface_ids
        Surfaces whose hops to list.
    model_ids
        Models whose stored predictions fill unlabelled saddles, in order of preference
        (``None`` or empty: labels only).

    Returns
    -------
    list of dict
        Hop identity and symmetry, ``labelled``, ``source`` (``cineb``, ``predicted`` or ``None``),
        saddle E_b with half-widths, forward / reverse / local barriers with half-widths
        (``*_ci68_ev``, ``*_ci90_ev``), the saddle's prediction (mean, calibrated half-widths, raw
        spread, model id) and ``flags``.
    """
    criteria = {"surface_id": {"$in": list(surface_ids)}}
    hops = sorted(facade.query("hops", criteria), key=lambda h: (h["surface_id"], h["index"]))
    nebs = hop_class_nebs(facade, surface_ids)
    labels = site_class_labels(facade, surface_ids)
    docs = model_predictions(facade, list(model_ids or []), surface_ids)
    predicted = {sid: SitePrediction.from_doc(d) for sid, d in docs.items()}
    rows = []
    for hop in hops:
        neb = nebs.get(hop["hop_id"])
        prediction = docs.get(hop["saddle_id"])
        row = {
            "surface_id": hop["surface_id"],
            "hop_id": hop["hop_id"],
            "index": hop["index"],
            "class_index": hop["symmetry"]["class_index"],
            "multiplicity": hop["symmetry"]["multiplicity"],
            "representative": hop["symmetry"]["representative_index"] == hop["index"],
            "dopant_distance_ang": hop.get("dopant_distance_ang"),
            "saddle_id": hop["saddle_id"],
            "labelled": neb is not None,
            "neb_id": neb["neb_id"] if neb else None,
            "predicted_mean_ev": prediction["mean_ev"] if prediction else None,
            "predicted_ci68_ev": predicted[hop["saddle_id"]].ci68_ev if prediction else None,
            "predicted_ci90_ev": predicted[hop["saddle_id"]].ci90_ev if prediction else None,
            "predicted_spread_ev": prediction["std_ev"] if prediction else None,
            "model_id": prediction["model_id"] if prediction else None,
        }
        row |= _labelled_row(neb) if neb is not None else _predicted_row(hop, labels, predicted)
        rows.append(row)
    return rows
