"""The campaign report: one self-contained HTML page with PNG figures, and the barrier table.

:func:`write_report` reads a campaign (:class:`stores.schemas.campaigns.CampaignDoc`), its rounds and
everything the store holds for its surfaces (:mod:`epdi_ml.report.data`), and writes ``index.html``
(rendered by :mod:`epdi_ml.report.page` from a jinja2 template) plus the PNGs it shows into one folder
(relative links only, no network assets). Surfaces are named by host, dopant and supercell
(``MoS2 + Zn (6x6x1)``, the surface id in small text) and labels by the engine and functional of
their documents (``CHGNet + D3``, ``GPAW PBE+D3``). What a scientist came for comes first:

- barrier table: per surface, the global barrier (eV) of the zigzag paths through the dopant from
  labels only, from labels where computed and predictions elsewhere (with calibrated 68 % / 90 %
  half-widths, as ``epdi profiles``), and from predictions only; labelled / distinct hops; flags;
- pristine reference hops: the local barrier of every pristine surface's hop;
- surfaces: per surface its energy profiles, its potential map (valleys, saddles, dopant) and its
  saddles coloured by the round whose selection labelled them;
- sanity flags: counts and the flagged distinct hops (:mod:`epdi_ml.analysis.sanity`);
- rounds: CV MAE and calibrated uncertainty per round;
- model: parity of the current model's stored predictions (68 % intervals) against the CINEB labels,
  with the observed coverage of its intervals, and its training curves;
- status (counts, timings) and the spec (:mod:`epdi_ml.report.status`).

Missing inputs (no model, no predictions, no map) leave a note in the page instead of a figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from epdi_ml.analysis.barriers import DEFINITIONS
from epdi_ml.analysis.labels import hop_class_nebs
from epdi_ml.analysis.profiles import learning_curves_plot, parity_plot, plot_profiles
from epdi_ml.analysis.sanity import HOP_FLAGS, count_flags, flag_text
from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from epdi_ml.report.data import (
    BARRIER_COLUMNS,
    Energies,
    PathResult,
    SurfaceData,
    UnknownCampaign,
    barrier_table,
    campaign_barriers,
    campaign_model_id,
    campaign_rounds,
    find_campaign,
    labelled_rounds,
    load_energies,
    surface_title,
)
from epdi_ml.report.page import PRISTINE, Page
from epdi_ml.report.plots import round_metrics_plot, rounds_plot, site_map_plot
from epdi_ml.report.status import status_sections
from stores.facade import StoreFacade
from stores.progress import progress
from stores.schemas.campaigns import CampaignDoc, RoundDoc

__all__ = [
    "BARRIER_COLUMNS",
    "CampaignReport",
    "UnknownCampaign",
    "barrier_table",
    "build_report",
    "find_campaign",
    "hop_class_nebs",
    "labelled_rounds",
    "write_report",
]

#: file patterns of the figures a report writes (removed from the folder before a new report)
FIGURE_PATTERNS = (
    "map-*.png",
    "rounds-*.png",
    "profile-*.png",
    "parity-*.png",
    "rounds.png",
    "training-curves.png",
)

#: columns of the barrier table in the page (``surface``: host, dopant and supercell); the table in
#: ``barriers.json`` keeps :data:`epdi_ml.report.data.BARRIER_COLUMNS`
PAGE_BARRIER_COLUMNS = (
    "surface",
    "global_barrier_ev",
    "global_barrier_ci68_ev",
    "global_barrier_ci90_ev",
    "global_barrier_labels_ev",
    "global_barrier_model_ev",
    "path_deg",
    "n_labelled_hops",
    "n_distinct_hops",
    "n_sites_predicted",
    "n_flagged_hops",
    "flags",
    "surface_id",
)

#: columns of the report's tables of hops (eV)
HOP_TABLE_COLUMNS = (
    "surface",
    "hop_id",
    "source",
    "forward_barrier_ev",
    "reverse_barrier_ev",
    "local_barrier_ev",
    "local_ci68_ev",
    "local_ci90_ev",
    "flags",
)

#: how a hop's ``source`` shows in the page
SOURCE_TEXT = {"cineb": "CINEB label", "predicted": "prediction"}

Surfaces = dict[str, tuple[SurfaceData, list[PathResult]]]


def _names(surfaces: Surfaces) -> dict[str, str]:
    return {sid: surface_title(data.surface) for sid, (data, _) in surfaces.items()}


def _lead(page: Page, campaign: CampaignDoc, energies: Energies, surfaces: Surfaces) -> None:
    if campaign.spec.get("description"):
        page.para(campaign.spec["description"])
    model = energies.model.model_id if energies.model else "no model yet"
    names = ", ".join(_names(surfaces).values()) or "none in the store"
    page.para(
        f"{len(campaign.surface_ids)} surfaces ({names}); labels: {energies.label_name}; current model: "
        f"{model}; status: {campaign.status}"
        + (f" ({campaign.stop_reason})" if campaign.stop_reason else "")
        + ". Energies in eV; E_b > 0 binds Li.",
        lead=True,
    )


def _barrier_section(page: Page, rows: list[dict], names: dict[str, str], label_name: str) -> None:
    page.heading("Barriers (eV)")
    page.para(
        f"{DEFINITIONS['global_barrier_ev']}, along the three zigzag paths vp -> sp -> vp through the "
        "dopant; the surface value is the highest of its paths (worst path). Global barrier, with the "
        "half-widths of its calibrated 68 % / 90 % intervals: labels where computed, predictions of the "
        f"current model elsewhere (as `epdi profiles`); labels only: {label_name} labels alone (needs "
        "every site labelled); model only: predictions alone. Labelled / distinct hops count symmetry "
        "classes; flags count the surface's flagged distinct hops. barriers.json holds the same table."
    )
    if not rows:
        page.note("no surface of the campaign is in the store: no barriers")
        return
    page.table([r | {"surface": names[r["surface_id"]]} for r in rows], PAGE_BARRIER_COLUMNS)
    for row in rows:
        if row["global_barrier_ev"] is None:
            page.note(
                f"{names[row['surface_id']]} ({row['surface_id']}): no complete profile (sites without "
                "label or prediction; run `epdi fragments build` and `epdi predict`)"
            )


def _hop_cells(rows: list[dict], names: dict[str, str]) -> list[dict]:
    return [
        r
        | {
            "flags": flag_text(r["flags"]) if r["flags"] else None,
            "surface": names.get(r["surface_id"], r["surface_id"]),
            "source": SOURCE_TEXT.get(r["source"], r["source"]),
        }
        for r in rows
    ]


def _pristine_section(page: Page, surfaces: Surfaces, hops: list[dict]) -> None:
    page.heading("Pristine reference hops (eV)")
    names = _names(surfaces)
    pristine = {sid for sid, (data, _) in surfaces.items() if data.surface.get("dopant") is None}
    rows = [h for h in hops if h["representative"] and h["surface_id"] in pristine]
    page.para(
        f"The hop of each {PRISTINE} host, the reference every doped hop is compared with. "
        f"{DEFINITIONS['forward_barrier_ev']}; {DEFINITIONS['reverse_barrier_ev']}; "
        f"{DEFINITIONS['local_barrier_ev']}. Source: a CINEB label or a prediction of the current model."
    )
    if not rows:
        page.note(f"no {PRISTINE} surface in the campaign: no reference hop")
        return
    page.table(_hop_cells(rows, names), HOP_TABLE_COLUMNS)
    for row in rows:
        if row["source"] != "cineb":
            page.note(f"{names[row['surface_id']]}: the {PRISTINE} hop has no CINEB label")


def _profile_figures(page: Page, sid: str, name: str, paths: list[PathResult], label_name: str) -> None:
    for p in paths:
        if p.mixed is None:
            page.note(f"{name} {p.angle_deg:.0f} deg: {p.error}")
            continue
        path = plot_profiles(
            page.out_dir / f"profile-{sid}-{int(p.angle_deg)}.png",
            p.mixed,
            p.labels_only,
            title=f"{name}, path {p.angle_deg:.0f} deg",
            label_name=label_name,
        )
        g = p.mixed.global_barrier
        page.figure(
            path,
            f"energy profile, path {p.angle_deg:.0f} deg: global barrier {g.barrier_ev:.3f} eV, 68 % "
            f"interval ± {g.ci68_ev:.3f} eV, 90 % ± {g.ci90_ev:.3f} eV"
            + (f"; black: {label_name} labels only (the whole path is labelled)" if p.labels_only else ""),
            small=True,
        )


def _map_figure(page: Page, facade: StoreFacade, data: SurfaceData, dataset: str, name: str) -> None:
    docs = facade.query("potential_maps", {"surface_id": data.surface_id})
    if not docs:
        page.note(f"{name} ({data.surface_id}): no potential map yet (run `epdi fragments build`)")
        return
    pmap = fb.load_map(facade, max(docs, key=lambda d: str(d.get("updated_at", ""))))
    scale = colour_scales.get_colour_scale(facade, dataset) or colour_scales.get_colour_scale(facade)
    path = site_map_plot(
        page.out_dir / f"map-{data.surface_id}.png",
        pmap,
        data.sites,
        data.hops,
        colour_scale=(scale.vmin_ev, scale.vmax_ev, scale.cmap) if scale else None,
        dopant_xy=data.dopant_xy,
        dopant=data.surface.get("dopant"),
        title=f"{name} ({data.surface['formula']}): potential map",
    )
    page.figure(path, "potential on the density isosurface (eV vs vacuum) with T_M, H valleys and saddles")


def _surfaces_section(
    page: Page,
    facade: StoreFacade,
    campaign: CampaignDoc,
    rounds: list[RoundDoc],
    surfaces: Surfaces,
    label_name: str,
) -> None:
    page.heading("Surfaces: energy profiles and potential maps")
    page.para(
        "Per surface: the energy profile of each zigzag path through the dopant (E relative to the path "
        "start, eV, with calibrated 68 % intervals), the potential map with its valleys, saddles and "
        "dopant, and the saddles coloured by the round whose selection labelled them (grey: unlabelled)."
    )
    missing = [sid for sid in campaign.surface_ids if sid not in surfaces]
    if missing:
        page.note(f"surfaces not in the store: {', '.join(missing)}")
    labelled = hop_class_nebs(facade, list(surfaces))
    shown = progress(surfaces.items(), desc="report surfaces", unit="surface", show=len(surfaces) >= 5)
    for sid, (data, paths) in shown:
        name = surface_title(data.surface)
        page.heading(name, 3, detail=sid)
        _profile_figures(page, sid, name, paths, label_name)
        _map_figure(page, facade, data, campaign.name, name)
        path = rounds_plot(
            page.out_dir / f"rounds-{sid}.png",
            data.lattice_ang,
            data.sites,
            data.hops,
            labelled_rounds(rounds, data.hops, labelled),
            dopant_xy=data.dopant_xy,
            dopant=data.surface.get("dopant"),
            title=f"{name}: saddles by the round that labelled them",
        )
        page.figure(path, "saddles coloured by the round whose selection labelled them (grey: unlabelled)")


def _flags_section(page: Page, hops: list[dict], names: dict[str, str]) -> None:
    page.heading("Sanity flags")
    distinct = [h for h in hops if h["representative"]]
    counts = count_flags(distinct)
    page.table(
        [{"flag": k, "distinct hops": v, "meaning": HOP_FLAGS[k]} for k, v in counts.items()],
        ["flag", "distinct hops", "meaning"],
    )
    flagged = [h for h in distinct if h["flags"]]
    if flagged:
        page.table(_hop_cells(flagged, names), HOP_TABLE_COLUMNS)
    else:
        page.para("No distinct hop is flagged.")


def _rounds_section(page: Page, rounds: list[RoundDoc]) -> None:
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
        (
            energies.labels[f["site_id"]],
            energies.predicted[f["site_id"]].mean_ev,
            energies.predicted[f["site_id"]].ci68_ev,
        )
        for f in energies.fragments
        if f["kind"] == "saddle"
        and f["is_representative"]
        and f["site_id"] in energies.labels
        and f["site_id"] in energies.predicted
        and (f["site_id"] in train) == in_training
    ]
    return [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]


def _model_section(page: Page, energies: Energies) -> None:
    page.heading("Model")
    model = energies.model
    if model is None:
        page.note("no model for this campaign yet: no parity plot, profiles use labels only")
        return
    folds = len(model.val_mae_ev)
    page.para(
        f"Current model {model.model_id} ({model.name} v{model.version}, {model.architecture}, {folds} "
        f"folds, CV MAE {model.cv_mae_ev:.4f} eV). Parity: the ensemble mean with its calibrated 68 % "
        "interval (normalised split-conformal on the out-of-fold residuals, per site kind; see "
        "`epdi_ml.training.calibration`) stored in `predictions` against the CINEB E_b "
        f"({energies.label_name}) of the distinct labelled saddles. Saddles in "
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
        labels, mean, ci68 = _parity_points(energies, in_training)
        if labels:
            caption = f"parity: {title} (error bars: calibrated 68 % intervals)"
            if not in_training:
                inside = sum(abs(m - d) <= c for d, m, c in zip(labels, mean, ci68, strict=True))
                caption += (
                    f"; {inside} of {len(labels)} ({inside / len(labels):.0%}) lie inside their calibrated "
                    "68 % interval"
                )
            path = parity_plot(
                page.out_dir / name, labels, mean, ci68, title=title, label_name=energies.label_name
            )
            page.figure(path, caption, small=True)
        elif energies.predicted:
            page.note(f"no labelled {title} with a prediction")
    if model.curves.get("train_loss_ev"):
        path = learning_curves_plot(
            page.out_dir / "training-curves.png", model.curves["train_loss_ev"], model.curves["val_mae_ev"]
        )
        page.figure(path, "training L1 loss and validation MAE per fold of the current model (eV)")


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
    tables = campaign_barriers(facade, campaign, energies)
    rows, surfaces = tables.rows, tables.surfaces
    page, names = Page(out_dir), _names(surfaces)
    _lead(page, campaign, energies, surfaces)
    _barrier_section(page, rows, names, energies.label_name)
    _pristine_section(page, surfaces, tables.hops)
    _surfaces_section(page, facade, campaign, rounds, surfaces, energies.label_name)
    _flags_section(page, tables.hops, names)
    _rounds_section(page, rounds)
    _model_section(page, energies)
    status_sections(page, facade, campaign, rounds, energies)
    (out_dir / "barriers.json").write_text(json.dumps(rows, indent=1))
    index = out_dir / "index.html"
    index.write_text(page.html(f"Campaign {campaign.name}"), encoding="utf-8")
    return CampaignReport(index=index, figures=page.figures, barriers=rows, notes=page.notes)


def write_report(facade: StoreFacade, campaign_id: str, out_dir: Path) -> Path:
    """Write the campaign report (see the module docstring) into ``out_dir``; return ``index.html``."""
    return build_report(facade, campaign_id, out_dir).index
