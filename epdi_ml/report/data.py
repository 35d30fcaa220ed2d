"""What the campaign report shows, read from the store: campaign, rounds, energies, paths, barriers.

:func:`barrier_table` is the table the report, ``epdi report`` and ``epdi campaign run`` print: per
surface the global barrier (:func:`epdi_ml.analysis.barriers.global_barrier`, eV) of the zigzag paths through
the dopant (:func:`epdi_ml.analysis.paths.surface_paths`) from labels only, from labels where computed and
predictions elsewhere (with calibrated 68 % / 90 % half-widths), and from predictions only; the
labelled / distinct hop classes; and the sanity flags of its distinct hops (:mod:`epdi_ml.analysis.sanity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epdi_ml.analysis.hop_table import hop_rows
from epdi_ml.analysis.labels import class_labels, hop_class_nebs, label_set
from epdi_ml.analysis.paths import surface_paths
from epdi_ml.analysis.profiles import EnergyProfile, SitePrediction, build_profile, mix_labels_and_predictions
from epdi_ml.analysis.sanity import count_flags
from epdi_ml.fragments import build as fb
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.schemas.campaigns import CampaignDoc, RoundDoc
from stores.schemas.models import ModelDoc

#: columns of the barrier table, in order (eV; ci68/ci90: half-widths of the 68 % / 90 % intervals)
BARRIER_COLUMNS = (
    "surface_id",
    "host",
    "dopant",
    "n_labelled_hops",
    "n_distinct_hops",
    "global_barrier_labels_ev",
    "global_barrier_ev",
    "global_barrier_ci68_ev",
    "global_barrier_ci90_ev",
    "global_barrier_model_ev",
    "path_deg",
    "n_sites_predicted",
    "n_flagged_hops",
    "flags",
)


#: display names of the engines that make labels
ENGINE_NAMES = {"chgnet": "CHGNet", "gpaw": "GPAW", "vasp": "VASP"}


def label_source_name(engine: str | None, functional: str | None = None) -> str:
    """Display name of a label source from its documents' ``engine`` and ``functional``.

    ``("chgnet", "CHGNet+D3(zero)")`` gives ``CHGNet + D3``, ``("gpaw", "PBE+D3(zero)")`` gives
    ``GPAW PBE+D3`` and ``("vasp", "PBE+D3(BJ)")`` ``VASP PBE+D3(BJ)``: zero damping, the D3 the
    engines use unless told otherwise, is left unsaid; any other damping is named. Documents without a
    ``functional`` give the engine alone (``CHGNet``). ``engine`` ``None``: no labels.
    """
    if engine is None:
        return "no labels"
    name = ENGINE_NAMES.get(engine, engine)
    if functional and functional.lower() == engine.lower():  # documents that record no functional
        functional = None
    level = (functional or "").replace("(zero)", "")
    if engine == "chgnet":
        return " + ".join(level.split("+")) if level else name
    return f"{name} {level}" if level else name


def surface_title(surface: dict) -> str:
    """Host, dopant and supercell of a surface document: ``MoS2 + Zn (6x6x1)``, ``MoS2 pristine (6x6x1)``."""
    dopant = surface.get("dopant")
    size = surface.get("supercell")
    cell = f" ({size}x{size}x1)" if size else ""
    return f"{surface['host']} {f'+ {dopant}' if dopant else 'pristine'}{cell}"


class UnknownCampaign(InputError, LookupError):
    """No campaign with that name or id is in the store."""


def find_campaign(facade: StoreFacade, ident: str) -> CampaignDoc:
    """A campaign by id or by name (the newest of that name).

    Raises
    ------
    UnknownCampaign
        Neither matches; the message lists the known campaign names.
    """
    docs = facade.query("campaigns", {"campaign_id": ident}) or facade.query("campaigns", {"name": ident})
    if not docs:
        names = sorted({d["name"] for d in facade.query("campaigns", properties=["name"])})
        known = ", ".join(names) if names else "none yet (run `epdi campaign run SPEC`)"
        raise UnknownCampaign(f"no campaign named {ident!r} in the store; known campaigns: {known}")
    return CampaignDoc(**max(docs, key=lambda d: str(d.get("updated_at", ""))))


def campaign_rounds(facade: StoreFacade, campaign_id: str) -> list[RoundDoc]:
    """The rounds of a campaign, in order."""
    docs = facade.query("campaign_rounds", {"campaign_id": campaign_id})
    return sorted((RoundDoc(**d) for d in docs), key=lambda r: r.round)


def campaign_model_id(campaign: CampaignDoc, rounds: list[RoundDoc]) -> str | None:
    """The campaign's current model: the one it records, else that of its last trained round."""
    if campaign.current_model_id:
        return campaign.current_model_id
    trained = [r.model_id for r in rounds if r.model_id]
    return trained[-1] if trained else None


def labelled_hop_counts(facade: StoreFacade, surface_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per surface: (labelled distinct hops, distinct hops), counting symmetry classes."""
    hops = facade.query(
        "hops", {"surface_id": {"$in": list(surface_ids)}}, properties=["hop_id", "surface_id", "symmetry"]
    )
    labelled = hop_class_nebs(facade, surface_ids)
    counts = {sid: (set(), set()) for sid in surface_ids}
    for hop in hops:
        done, every = counts[hop["surface_id"]]
        every.add(hop["symmetry"]["class_index"])
        if hop["hop_id"] in labelled:
            done.add(hop["symmetry"]["class_index"])
    return {sid: (len(done), len(every)) for sid, (done, every) in counts.items()}


def fraction_labelled(facade: StoreFacade, campaign: CampaignDoc) -> float:
    """Labelled distinct hops / all distinct hops of the campaign's surfaces, now."""
    counts = labelled_hop_counts(facade, campaign.surface_ids).values()
    total = sum(n for _, n in counts)
    return sum(n for n, _ in counts) / total if total else 0.0


def labelled_rounds(rounds: list[RoundDoc], hops: list[dict], labelled: dict[str, dict]) -> dict[str, int]:
    """Saddle site id -> round whose selection labelled its hop class (``-1``: before the rounds).

    Only labelled saddles appear. A class counts as labelled in round ``r`` when one of its hops was
    among round ``r``'s selected hops; labels present before round 0 (or made outside the rounds)
    get ``-1``.
    """
    first: dict[str, int] = {h: -1 for h in (rounds[0].labelled_hop_ids if rounds else [])}
    for r in rounds:
        for hop_id in r.selected_hop_ids:
            first.setdefault(hop_id, r.round)
    by_class: dict[tuple[str, int], int] = {}
    for hop in hops:
        if hop["hop_id"] in first:
            key = (hop["surface_id"], hop["symmetry"]["class_index"])
            by_class[key] = min(by_class.get(key, first[hop["hop_id"]]), first[hop["hop_id"]])
    return {
        hop["saddle_id"]: by_class.get((hop["surface_id"], hop["symmetry"]["class_index"]), -1)
        for hop in hops
        if hop["hop_id"] in labelled
    }


@dataclass
class Energies:
    """Labels (E_b by site id, eV), calibrated predictions by site id and the model behind them.

    ``label_name`` names the labels' source for plots and tables (:func:`label_source_name`).
    """

    labels: dict[str, float]
    predicted: dict[str, SitePrediction]
    model: ModelDoc | None
    fragments: list[dict]
    label_name: str = "labels"


def load_energies(facade: StoreFacade, surface_ids: list[str], model_id: str | None) -> Energies:
    """Class-spread labels and the stored predictions of ``model_id`` for the surfaces."""
    criteria = {"surface_id": {"$in": list(surface_ids)}}
    fragments = facade.query(
        "fragments",
        criteria,
        properties=["surface_id", "site_id", "kind", "representative_site_id", "is_representative"],
    )
    computed = label_set(facade)
    labels = class_labels(fragments, computed.energies_ev)
    engine = computed.source.split(":", 1)[0] if computed.source else None
    docs = facade.query("models", {"model_id": model_id}) if model_id else []
    model = ModelDoc(**docs[0]) if docs else None
    predicted = {}
    if model is not None:
        predicted = {
            p["site_id"]: SitePrediction.from_doc(p)
            for p in facade.query("predictions", {"model_id": model.model_id} | criteria)
        }
    return Energies(
        labels=labels,
        predicted=predicted,
        model=model,
        fragments=fragments,
        label_name=label_source_name(engine, computed.functional),
    )


@dataclass
class SurfaceData:
    """A surface document with its sites and hops, as the figures and profiles need them."""

    surface: dict
    sites: list[dict]
    hops: list[dict]

    @property
    def surface_id(self) -> str:
        """The surface's id."""
        return self.surface["surface_id"]

    @property
    def lattice_ang(self) -> np.ndarray:
        """In-plane lattice rows a, b (2 x 2, Angstrom)."""
        return np.array(self.surface["structure"]["lattice"]["matrix"])[:2, :2]

    @property
    def dopant_xy(self) -> list[float] | None:
        """Cartesian in-plane position of the dopant (Angstrom), ``None`` when pristine."""
        index = self.surface.get("dopant_site_index")
        return None if index is None else self.surface["structure"]["sites"][index]["xyz"][:2]


@dataclass
class PathResult:
    """One zigzag path: labels + predictions, labels only and predictions only (when complete)."""

    angle_deg: float
    site_ids: list[str]
    mixed: EnergyProfile | None
    labels_only: EnergyProfile | None
    model_only: EnergyProfile | None
    error: str | None = None


def _profile(
    ids: list[str], kinds: list[str], valley_labels: list, labels: dict, predicted: dict
) -> EnergyProfile | None:
    try:
        return build_profile(mix_labels_and_predictions(ids, kinds, labels, predicted, valley_labels))
    except KeyError:
        return None


def path_results(data: SurfaceData, energies: Energies) -> list[PathResult]:
    """The three zigzag paths of a surface through the dopant, with their profiles (none without sites)."""
    if not any(s["kind"] == "valley" for s in data.sites):
        return []
    results = []
    for angle, path in surface_paths(data.sites, data.hops, data.lattice_ang):
        ids, kinds = [p["site_id"] for p in path], [p["kind"] for p in path]
        names = [p.get("label") for p in path]
        mixed = _profile(ids, kinds, names, energies.labels, energies.predicted)
        missing = [i for i in ids if i not in energies.labels and i not in energies.predicted]
        results.append(
            PathResult(
                angle_deg=angle,
                site_ids=ids,
                mixed=mixed,
                labels_only=_profile(ids, kinds, names, energies.labels, {}),
                model_only=_profile(ids, kinds, names, {}, energies.predicted),
                error=None if mixed else f"{len(set(missing))} sites have neither a label nor a prediction",
            )
        )
    return results


def _highest(profiles: list[EnergyProfile | None]) -> EnergyProfile | None:
    """The profile with the highest global barrier, or ``None`` when any is missing."""
    if not profiles or any(p is None for p in profiles):
        return None
    return max(profiles, key=lambda p: p.global_barrier.barrier_ev)


def barrier_row(
    data: SurfaceData, paths: list[PathResult], counts: tuple[int, int], hops: list[dict] | None = None
) -> dict:
    """One row of the barrier table (eV).

    The global barrier of a surface is the highest global barrier of its three zigzag paths through
    the dopant; it is ``None`` for a source (labels only, mixed, model only) that cannot fill every
    site of every path. ``ci68``/``ci90``: half-widths of its calibrated 68 % / 90 % intervals.
    ``hops`` (rows of :func:`epdi_ml.analysis.hop_table.hop_rows` for the surface) give the flag counts.
    """
    mixed = _highest([p.mixed for p in paths])
    labels_only = _highest([p.labels_only for p in paths])
    model_only = _highest([p.model_only for p in paths])
    worst = next((p for p in paths if mixed is not None and p.mixed is mixed), None)
    distinct = [h for h in hops or [] if h["representative"]]
    flags = {k: v for k, v in count_flags(distinct).items() if v}
    return {
        "surface_id": data.surface_id,
        "host": data.surface["host"],
        "dopant": data.surface.get("dopant"),
        "n_labelled_hops": counts[0],
        "n_distinct_hops": counts[1],
        "global_barrier_labels_ev": labels_only.global_barrier.barrier_ev if labels_only else None,
        "global_barrier_ev": mixed.global_barrier.barrier_ev if mixed else None,
        "global_barrier_ci68_ev": mixed.global_barrier.ci68_ev if mixed else None,
        "global_barrier_ci90_ev": mixed.global_barrier.ci90_ev if mixed else None,
        "global_barrier_model_ev": model_only.global_barrier.barrier_ev if model_only else None,
        "path_deg": worst.angle_deg if worst else None,
        "n_sites_predicted": sum(s.source == "predicted" for s in mixed.sites) if mixed else None,
        "n_flagged_hops": sum(bool(h["flags"]) for h in distinct),
        "flags": ", ".join(f"{k} {v}" for k, v in flags.items()) or None,
    }


def surface_data(facade: StoreFacade, surface_id: str) -> SurfaceData | None:
    """The surface, its sites and hops from the store (``None`` when any is missing)."""
    try:
        surface, sites, hops = fb.load_surface(facade, surface_id)
    except fb.MissingInputError:
        return None
    return SurfaceData(surface=surface, sites=sites, hops=hops)


@dataclass
class CampaignBarriers:
    """The barrier table of a campaign, its surfaces with their paths, and every hop row."""

    rows: list[dict]
    surfaces: dict[str, tuple[SurfaceData, list[PathResult]]]
    hops: list[dict]


def campaign_barriers(facade: StoreFacade, campaign: CampaignDoc, energies: Energies) -> CampaignBarriers:
    """Barrier rows, paths and hop rows (:func:`~epdi_ml.analysis.hop_table.hop_rows`) of the surfaces."""
    counts = labelled_hop_counts(facade, campaign.surface_ids)
    model_ids = [energies.model.model_id] if energies.model else []
    hops = hop_rows(facade, campaign.surface_ids, model_ids)
    rows, surfaces = [], {}
    for sid in campaign.surface_ids:
        data = surface_data(facade, sid)
        if data is None:
            continue
        paths = path_results(data, energies)
        surfaces[sid] = (data, paths)
        rows.append(barrier_row(data, paths, counts[sid], [h for h in hops if h["surface_id"] == sid]))
    return CampaignBarriers(rows=rows, surfaces=surfaces, hops=hops)


def barrier_table(facade: StoreFacade, campaign_id: str) -> list[dict]:
    """The barrier table of a campaign (name or id): one row per surface, see :func:`barrier_row`."""
    campaign = find_campaign(facade, campaign_id)
    model_id = campaign_model_id(campaign, campaign_rounds(facade, campaign.campaign_id))
    return campaign_barriers(facade, campaign, load_energies(facade, campaign.surface_ids, model_id)).rows
