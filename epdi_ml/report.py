"""The campaign report: one self-contained HTML page with PNG figures, and the barrier table.

:func:`write_report` reads a campaign (:class:`stores.campaign_documents.CampaignDoc`), its rounds and
everything the store holds for its surfaces, and writes ``index.html`` plus the PNGs it shows into
one folder (relative links only, no network assets):

- header: the spec, status, stop reason, counts and timings;
- barrier table: per surface, the global barrier (eV) of the zigzag paths through the dopant
  (:func:`epdi_ml.paths.surface_paths`) from DFT labels only, from labels where computed and
  predictions elsewhere (as ``epdi profiles``), and from predictions only; labelled / distinct hops;
- rounds: CV MAE and ensemble spread per round, and per surface the saddles coloured by the round
  whose selection labelled them;
- parity of the current model's stored ensemble predictions against CINEB labels;
- energy profiles and potential maps (valleys, saddles, dopant) of every surface.

Missing inputs (no model, no predictions, no map) leave a note in the page instead of a figure.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from epdi_ml import fragment_build as fb
from epdi_ml.labels import class_labels, computed_labels, latest_by
from epdi_ml.paths import surface_paths
from epdi_ml.profiles import (
    EnergyProfile,
    build_profile,
    learning_curves_plot,
    mix_labels_and_predictions,
    parity_plot,
    plot_profiles,
)
from epdi_ml.report_plots import round_metrics_plot, rounds_plot, site_map_plot
from stores.campaign_documents import CampaignDoc, RoundDoc
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.model_documents import ModelDoc

#: columns of the barrier table, in order (energies in eV)
BARRIER_COLUMNS = (
    "surface_id",
    "host",
    "dopant",
    "n_labelled_hops",
    "n_distinct_hops",
    "barrier_labels_ev",
    "barrier_ev",
    "barrier_std_ev",
    "barrier_model_ev",
    "path_deg",
    "n_sites_predicted",
)

#: file patterns of the figures a report writes (removed from the folder before a new report)
FIGURE_PATTERNS = (
    "map-*.png",
    "rounds-*.png",
    "profile-*.png",
    "parity-*.png",
    "rounds.png",
    "training-curves.png",
)

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
th { background: #eee; }
td.num { text-align: right; font-family: monospace; }
p.note { background: #fff6d5; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 36em; }
figcaption { font-size: 0.8em; color: #555; max-width: 36em; }
"""


class UnknownCampaign(InputError, LookupError):
    """No campaign with that name or id is in the store."""


# -- store look-ups ---------------------------------------------------------------------------
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


def hop_class_nebs(facade: StoreFacade, surface_ids: list[str]) -> dict[str, dict]:
    """The CINEB document that labels each hop, by hop id.

    A hop is labelled by its own CINEB or by that of any hop of its symmetry class (one CINEB per
    class, see :mod:`epdi_ml.labels`); the newest document wins.
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


# -- energies and barriers --------------------------------------------------------------------
@dataclass
class Energies:
    """Labels (DFT E_b by site id, eV), predictions ``(mean, std)`` eV and the model behind them."""

    labels: dict[str, float]
    predicted: dict[str, tuple[float, float]]
    model: ModelDoc | None
    fragments: list[dict]


def load_energies(facade: StoreFacade, surface_ids: list[str], model_id: str | None) -> Energies:
    """Class-spread labels and the stored predictions of ``model_id`` for the surfaces."""
    criteria = {"surface_id": {"$in": list(surface_ids)}}
    fragments = facade.query(
        "fragments",
        criteria,
        properties=["surface_id", "site_id", "kind", "representative_site_id", "is_representative"],
    )
    labels = class_labels(fragments, computed_labels(facade))
    docs = facade.query("models", {"model_id": model_id}) if model_id else []
    model = ModelDoc(**docs[0]) if docs else None
    predicted = {}
    if model is not None:
        predicted = {
            p["site_id"]: (p["mean_ev"], p["std_ev"])
            for p in facade.query("predictions", {"model_id": model.model_id} | criteria)
        }
    return Energies(labels=labels, predicted=predicted, model=model, fragments=fragments)


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


def _profile(ids: list[str], kinds: list[str], labels: dict, predicted: dict) -> EnergyProfile | None:
    try:
        return build_profile(mix_labels_and_predictions(ids, kinds, labels, predicted))
    except KeyError:
        return None


def path_results(data: SurfaceData, energies: Energies) -> list[PathResult]:
    """The three zigzag paths of a surface through the dopant, with their profiles (none without sites)."""
    if not any(s["kind"] == "valley" for s in data.sites):
        return []
    results = []
    for angle, path in surface_paths(data.sites, data.hops, data.lattice_ang):
        ids, kinds = [p["site_id"] for p in path], [p["kind"] for p in path]
        mixed = _profile(ids, kinds, energies.labels, energies.predicted)
        missing = [i for i in ids if i not in energies.labels and i not in energies.predicted]
        results.append(
            PathResult(
                angle_deg=angle,
                site_ids=ids,
                mixed=mixed,
                labels_only=_profile(ids, kinds, energies.labels, {}),
                model_only=_profile(ids, kinds, {}, energies.predicted),
                error=None if mixed else f"{len(set(missing))} sites have neither a label nor a prediction",
            )
        )
    return results


def _highest(profiles: list[EnergyProfile | None]) -> EnergyProfile | None:
    """The profile with the highest global barrier, or ``None`` when any is missing."""
    if not profiles or any(p is None for p in profiles):
        return None
    return max(profiles, key=lambda p: p.global_barrier.barrier_ev)


def barrier_row(data: SurfaceData, paths: list[PathResult], counts: tuple[int, int]) -> dict:
    """One row of the barrier table (eV).

    The global barrier of a surface is the highest global barrier of its three zigzag paths through
    the dopant; it is ``None`` for a source (labels only, mixed, model only) that cannot fill every
    site of every path.
    """
    mixed = _highest([p.mixed for p in paths])
    labels_only = _highest([p.labels_only for p in paths])
    model_only = _highest([p.model_only for p in paths])
    worst = next((p for p in paths if mixed is not None and p.mixed is mixed), None)
    return {
        "surface_id": data.surface_id,
        "host": data.surface["host"],
        "dopant": data.surface.get("dopant"),
        "n_labelled_hops": counts[0],
        "n_distinct_hops": counts[1],
        "barrier_labels_ev": labels_only.global_barrier.barrier_ev if labels_only else None,
        "barrier_ev": mixed.global_barrier.barrier_ev if mixed else None,
        "barrier_std_ev": mixed.global_barrier.std_ev if mixed else None,
        "barrier_model_ev": model_only.global_barrier.barrier_ev if model_only else None,
        "path_deg": worst.angle_deg if worst else None,
        "n_sites_predicted": sum(s.source == "predicted" for s in mixed.sites) if mixed else None,
    }


def surface_data(facade: StoreFacade, surface_id: str) -> SurfaceData | None:
    """The surface, its sites and hops from the store (``None`` when any is missing)."""
    try:
        surface, sites, hops = fb.load_surface(facade, surface_id)
    except fb.MissingInputError:
        return None
    return SurfaceData(surface=surface, sites=sites, hops=hops)


def _barriers(
    facade: StoreFacade, campaign: CampaignDoc, energies: Energies
) -> tuple[list[dict], dict[str, tuple[SurfaceData, list[PathResult]]]]:
    counts = labelled_hop_counts(facade, campaign.surface_ids)
    rows, surfaces = [], {}
    for sid in campaign.surface_ids:
        data = surface_data(facade, sid)
        if data is None:
            continue
        paths = path_results(data, energies)
        surfaces[sid] = (data, paths)
        rows.append(barrier_row(data, paths, counts[sid]))
    return rows, surfaces


def barrier_table(facade: StoreFacade, campaign_id: str) -> list[dict]:
    """The barrier table of a campaign (name or id): one row per surface, see :func:`barrier_row`."""
    campaign = find_campaign(facade, campaign_id)
    model_id = campaign_model_id(campaign, campaign_rounds(facade, campaign.campaign_id))
    return _barriers(facade, campaign, load_energies(facade, campaign.surface_ids, model_id))[0]


# -- HTML -------------------------------------------------------------------------------------
def _esc(value: object) -> str:
    return html.escape("-" if value is None else str(value))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{_esc(value)}</td>"


@dataclass
class _Page:
    """The HTML being assembled, the figures it shows and the notes it leaves."""

    out_dir: Path
    parts: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{_esc(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.parts.append(f"<p>{_esc(text)}</p>")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.parts.append(f'<p class="note">{_esc(text)}</p>')

    def figure(self, path: Path, caption: str) -> None:
        self.figures.append(path)
        self.parts.append(
            f'<figure><img src="{_esc(path.name)}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )

    def table(self, rows: list[dict], columns: list[str] | tuple[str, ...]) -> None:
        head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def html(self, title: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )


def _flatten(spec: dict, prefix: str = "") -> list[dict]:
    rows = []
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, f"{name}.")
        else:
            rows.append(
                {
                    "setting": name,
                    "value": value if not isinstance(value, list) else ", ".join(map(str, value)),
                }
            )
    return rows


def _counts(facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc], energies: Energies) -> dict:
    ids = campaign.surface_ids
    counts = labelled_hop_counts(facade, ids).values()
    n_labelled, n_distinct = sum(n for n, _ in counts), sum(n for _, n in counts)
    criteria = {"surface_id": {"$in": ids}}
    return {
        "campaign_id": campaign.campaign_id,
        "status": campaign.status,
        "stop_reason": campaign.stop_reason,
        "current model": energies.model.model_id if energies.model else None,
        "surfaces": len(ids),
        "distinct hops": campaign.n_hop_classes,
        "labelled distinct hops": f"{n_labelled} ({n_labelled / n_distinct if n_distinct else 0.0:.1%})",
        "rounds": len(rounds),
        "valley relaxations": facade.count("valleys", criteria),
        "CINEB calculations": facade.count("nebs", criteria),
        "fragments": len(energies.fragments),
        "predictions of the current model": len(energies.predicted),
    }


def _timings(facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc]) -> dict:
    """Start, last activity, elapsed and summed wall times (s) of rounds and calculations."""
    last = max([campaign.updated_at, *(r.created_at for r in rounds)])
    out = {
        "started": campaign.created_at.isoformat(timespec="seconds"),
        "last activity": last.isoformat(timespec="seconds"),
        "elapsed (s)": round((last - campaign.created_at).total_seconds(), 1),
        "round wall time (s)": round(sum(r.wall_time_s or 0.0 for r in rounds), 1),
    }
    criteria = {"surface_id": {"$in": campaign.surface_ids}}
    sums: dict[str, float] = {}
    for doc in facade.query("calculations", criteria, properties=["kind", "wall_time_s"]):
        sums[doc["kind"]] = sums.get(doc["kind"], 0.0) + (doc.get("wall_time_s") or 0.0)
    sums["CINEB"] = sum(d.get("wall_time_s") or 0.0 for d in facade.query("nebs", criteria))
    out |= {f"{kind} wall time (s)": round(total, 1) for kind, total in sums.items()}
    out["report written"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return out


def _header(
    page: _Page, facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc], energies: Energies
) -> None:
    page.parts.append(f"<h1>Campaign {_esc(campaign.name)}</h1>")
    if campaign.spec.get("description"):
        page.para(campaign.spec["description"])
    status = _counts(facade, campaign, rounds, energies) | _timings(facade, campaign, rounds)
    rows = [{"item": k, "value": f"{v:g}" if isinstance(v, float) else v} for k, v in status.items()]
    page.heading("Status")
    page.table(rows, ["item", "value"])
    page.heading("Spec")
    page.table(_flatten(campaign.spec), ["setting", "value"])


def _barrier_section(page: _Page, rows: list[dict]) -> None:
    page.heading("Barriers (eV)")
    page.para(
        "Global barrier = highest rise of E = -E_b along the three zigzag paths vp -> sp -> vp through "
        "the dopant; the surface value is the highest of its paths (path_deg). barrier_labels_ev: DFT "
        "labels only (needs every site labelled); barrier_ev +- barrier_std_ev: labels where computed, "
        "predictions of the current model elsewhere (as `epdi profiles`); barrier_model_ev: predictions "
        "only. Labelled / distinct hops count symmetry classes."
    )
    if not rows:
        page.note("no surface of the campaign is in the store: no barriers")
        return
    page.table(rows, BARRIER_COLUMNS)
    for row in rows:
        if row["barrier_ev"] is None:
            page.note(
                f"{row['surface_id']}: no complete profile (sites without label or prediction; "
                "run `epdi fragments build` and `epdi predict`)"
            )


def _rounds_section(page: _Page, rounds: list[RoundDoc]) -> None:
    page.heading("Rounds and learning curve")
    if not rounds:
        page.note("no rounds recorded for this campaign yet")
        return
    rows = [
        r.model_dump() | {"n_labelled": len(r.labelled_hop_ids), "n_selected": len(r.selected_hop_ids)}
        for r in rounds
    ]
    columns = [
        "round",
        "strategy",
        "n_labelled",
        "n_selected",
        "fraction_labelled",
        "model_id",
        "cv_mae_ev",
        "max_spread_ev",
        "mean_spread_ev",
        "wall_time_s",
        "stop_reason",
    ]
    page.table(rows, columns)
    if not any(r.cv_mae_ev is not None or r.max_spread_ev is not None for r in rounds):
        page.note("no round has trained a model yet: no learning curve")
        return
    path = round_metrics_plot(page.out_dir / "rounds.png", [r.model_dump() for r in rounds])
    page.figure(
        path, "CV MAE and ensemble spread on unlabelled saddles per round (eV); dashed: fraction labelled"
    )


def _parity_points(energies: Energies, in_training: bool) -> tuple[list[float], list[float], list[float]]:
    train = set(energies.model.train_site_ids) if energies.model else set()
    pts = [
        (energies.labels[f["site_id"]], *energies.predicted[f["site_id"]])
        for f in energies.fragments
        if f["kind"] == "saddle"
        and f["is_representative"]
        and f["site_id"] in energies.labels
        and f["site_id"] in energies.predicted
        and (f["site_id"] in train) == in_training
    ]
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def _model_section(page: _Page, energies: Energies) -> None:
    page.heading("Model")
    model = energies.model
    if model is None:
        page.note("no model for this campaign yet: no parity plot, profiles use labels only")
        return
    folds = len(model.val_mae_ev)
    page.para(
        f"Current model {model.model_id} ({model.name} v{model.version}, {model.architecture}, {folds} "
        f"folds, CV MAE {model.cv_mae_ev:.4f} eV). Parity: the ensemble mean +- spread of its fold "
        "models stored in `predictions` against CINEB E_b of the distinct labelled saddles. Saddles in "
        f"its training set were seen by {max(folds - 1, 0)} of its {folds} fold models (in-sample); the "
        "others (held-out test or labelled after training) are out-of-sample."
    )
    if not energies.predicted:
        page.note(
            f"no stored predictions of {model.model_id}: run `epdi predict --model-id {model.model_id}`"
        )
    for in_training, name, title in (
        (False, "parity-out.png", "out-of-sample saddles"),
        (True, "parity-train.png", "training saddles"),
    ):
        dft, mean, std = _parity_points(energies, in_training)
        if dft:
            page.figure(parity_plot(page.out_dir / name, dft, mean, std, title=title), f"parity: {title}")
        elif energies.predicted:
            page.note(f"no labelled {title} with a prediction")
    if model.curves.get("train_loss_ev"):
        path = learning_curves_plot(
            page.out_dir / "training-curves.png", model.curves["train_loss_ev"], model.curves["val_mae_ev"]
        )
        page.figure(path, "training L1 loss and validation MAE per fold of the current model (eV)")


def _profiles_section(page: _Page, surfaces: dict[str, tuple[SurfaceData, list[PathResult]]]) -> None:
    page.heading("Energy profiles")
    page.para("E relative to the path start (eV); black: DFT labels only where the whole path is labelled.")
    for sid, (_, paths) in tqdm(surfaces.items(), desc="report profiles", disable=len(surfaces) < 5):
        page.heading(sid, 3)
        for p in paths:
            if p.mixed is None:
                page.note(f"{sid} {p.angle_deg:.0f} deg: {p.error}")
                continue
            path = plot_profiles(
                page.out_dir / f"profile-{sid}-{int(p.angle_deg)}.png",
                p.mixed,
                p.labels_only,
                title=f"{sid} {p.angle_deg:.0f} deg",
            )
            g = p.mixed.global_barrier
            page.figure(
                path, f"{p.angle_deg:.0f} deg: global barrier {g.barrier_ev:.3f} +- {g.std_ev:.3f} eV"
            )


def _map_figure(page: _Page, facade: StoreFacade, data: SurfaceData, dataset: str) -> None:
    docs = facade.query("potential_maps", {"surface_id": data.surface_id})
    if not docs:
        page.note(f"{data.surface_id}: no potential map yet (run `epdi fragments build`)")
        return
    pmap = fb.load_map(facade, max(docs, key=lambda d: str(d.get("updated_at", ""))))
    scale = fb.get_colour_scale(facade, dataset) or fb.get_colour_scale(facade)
    path = site_map_plot(
        page.out_dir / f"map-{data.surface_id}.png",
        pmap,
        data.sites,
        data.hops,
        colour_scale=(scale.vmin_ev, scale.vmax_ev, scale.cmap) if scale else None,
        dopant_xy=data.dopant_xy,
        dopant=data.surface.get("dopant"),
        title=f"{data.surface_id} ({data.surface['formula']})",
    )
    page.figure(path, "potential on the density isosurface (eV vs vacuum) with T_M, H valleys and saddles")


def _surfaces_section(
    page: _Page,
    facade: StoreFacade,
    campaign: CampaignDoc,
    rounds: list[RoundDoc],
    surfaces: dict[str, tuple[SurfaceData, list[PathResult]]],
) -> None:
    page.heading("Surfaces: potential maps and labelled hops")
    missing = [sid for sid in campaign.surface_ids if sid not in surfaces]
    if missing:
        page.note(f"surfaces not in the store: {', '.join(missing)}")
    labelled = hop_class_nebs(facade, list(surfaces))
    for sid, (data, _) in tqdm(surfaces.items(), desc="report maps", disable=len(surfaces) < 5):
        dopant = data.surface.get("dopant") or "pristine"
        page.heading(f"{sid}: {data.surface['host']} {dopant}", 3)
        _map_figure(page, facade, data, campaign.name)
        path = rounds_plot(
            page.out_dir / f"rounds-{sid}.png",
            data.lattice_ang,
            data.sites,
            data.hops,
            labelled_rounds(rounds, data.hops, labelled),
            dopant_xy=data.dopant_xy,
            dopant=data.surface.get("dopant"),
            title=f"{sid}: saddles by the round that labelled them",
        )
        page.figure(path, "saddles coloured by the round whose selection labelled them (grey: unlabelled)")


@dataclass
class CampaignReport:
    """What :func:`build_report` wrote: the page, its figures, the barrier table and the notes."""

    index: Path
    figures: list[Path]
    barriers: list[dict]
    notes: list[str]


def build_report(facade: StoreFacade, campaign_id: str, out_dir: Path) -> CampaignReport:
    """Write ``index.html``, its PNGs and ``barriers.json`` into ``out_dir``.

    Parameters
    ----------
    facade
        The store.
    campaign_id
        Campaign id or name.
    out_dir
        Folder for the report (created). Figures an earlier report left there (names matching
        :data:`FIGURE_PATTERNS`) are removed first; other files are kept.

    Raises
    ------
    UnknownCampaign
        No such campaign in the store.
    """
    campaign = find_campaign(facade, campaign_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for pattern in FIGURE_PATTERNS:  # figures of an earlier report that this one may not redraw
        for old in out_dir.glob(pattern):
            old.unlink()
    rounds = campaign_rounds(facade, campaign.campaign_id)
    energies = load_energies(facade, campaign.surface_ids, campaign_model_id(campaign, rounds))
    rows, surfaces = _barriers(facade, campaign, energies)
    page = _Page(out_dir)
    _header(page, facade, campaign, rounds, energies)
    _barrier_section(page, rows)
    _rounds_section(page, rounds)
    _model_section(page, energies)
    _profiles_section(page, surfaces)
    _surfaces_section(page, facade, campaign, rounds, surfaces)
    (out_dir / "barriers.json").write_text(json.dumps(rows, indent=1))
    index = out_dir / "index.html"
    index.write_text(page.html(f"EPDI campaign {campaign.name}"), encoding="utf-8")
    return CampaignReport(index=index, figures=page.figures, barriers=rows, notes=page.notes)


def write_report(facade: StoreFacade, campaign_id: str, out_dir: Path) -> Path:
    """Write the campaign report (see the module docstring) into ``out_dir``; return ``index.html``."""
    return build_report(facade, campaign_id, out_dir).index
