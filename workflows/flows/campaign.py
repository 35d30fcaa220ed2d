"""The active-learning campaign as one dynamic jobflow flow.

``surfaces -> statics -> valley relaxations -> fragments -> round 0 (initial hops) -> CINEBs ->
train -> round 1 (predict, select) -> CINEBs -> train -> ... -> last round (predictions, report)``

Each round is a job that returns a :class:`jobflow.Response` whose ``addition`` holds the CINEB jobs
of the hops it selected, the training job (FireWorks category ``gpu``) and the next round, so the
same flow runs with ``run_locally`` on one machine (:func:`run_campaign`) or as FireWorks workflows
on a cluster (``epdi campaign submit``, training on GPU workers).

Symmetry: candidates are the distinct hop classes of every surface; one CINEB per class labels all
its equivalent hops (see :mod:`epdi_ml.analysis.labels`).

Resuming: every job reuses what the store already holds (statics, valleys and CINEBs by id,
fragments per surface, rounds by campaign and index with the same labelled set, their models), so a
rerun after a crash recomputes nothing that finished and makes the same choices.
"""

from __future__ import annotations

import math
import sys
import time
from datetime import UTC, datetime

import numpy as np
from jobflow import CURRENT_JOB, Flow, Job, Response, job

from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from epdi_ml.training.config import TrainConfig
from epdi_ml.training.ensemble import compute_embeddings
from epdi_ml.training.predictions import predict_and_store
from epdi_ml.training.registry import load_ensemble
from epdi_ml.training.store_data import load_fragments
from stores.facade import STORE_ACCESS, StoreFacade, job_facade
from stores.ids import stable_id
from stores.schemas.campaigns import CampaignDoc, JobFailureDoc, RoundDoc
from stores.schemas.models import ModelDoc
from stores.schemas.surfaces import HopDoc
from workflows.fireworks.categories import TRAINING_CATEGORY
from workflows.flows.campaign_hops import (
    campaign_bundles,
    campaign_id,
    campaign_label_source,
    candidate_hops,
    initial_hops,
    labelled_hop_ids,
)
from workflows.flows.campaign_spec import CampaignSpec
from workflows.flows.local_run import JobsFailed, run_flow
from workflows.flows.neb_step import hops_maker, runs_in_job_folders
from workflows.flows.stable_jobs import stable_uuids
from workflows.jobs.static import static_step
from workflows.jobs.train import TrainMaker
from workflows.structures.hosts import InputError
from workflows.structures.surfaces import StoredSurface, load_surfaces, store_surfaces


def _say(message: str) -> None:
    print(f"[campaign] {message}", file=sys.stderr, flush=True)


def _hops_flows(spec: CampaignSpec, chosen: list[tuple[StoredSurface, HopDoc]]) -> list[Flow]:
    """One flow per surface: its valley relaxations (reused) and the CINEBs of the chosen hops."""
    by_surface: dict[str, tuple[StoredSurface, list[int]]] = {}
    for bundle, hop in chosen:
        by_surface.setdefault(bundle.surface.surface_id, (bundle, []))[1].append(hop.index)
    return [
        hops_maker(spec, bundle).make(bundle, hop_indices=sorted(indices))
        for bundle, indices in by_surface.values()
    ]


@job(config=STORE_ACCESS)
def start_campaign(spec: dict, surface_ids: list[str], n_hop_classes: int) -> CampaignDoc:
    """Record the campaign (kept across reruns: its creation time and report stay)."""
    campaign = CampaignSpec(**spec)
    facade = job_facade()
    cid = campaign_id(campaign)
    with facade.unit():  # read and update together: a parallel run cannot interleave
        stored = facade.query("campaigns", {"campaign_id": cid})
        base = CampaignDoc(**stored[0]) if stored else None
        doc = CampaignDoc(
            campaign_id=cid,
            name=campaign.name,
            spec=spec,
            surface_ids=surface_ids,
            n_hop_classes=n_hop_classes,
            status="finished" if base and base.status == "finished" else "running",
            stop_reason=base.stop_reason if base else None,
            current_model_id=base.current_model_id if base else None,
            report_path=base.report_path if base else None,
            created_at=base.created_at if base else datetime.now(UTC),
        )
        facade.upsert("campaigns", [doc])
    _say(f"{campaign.name}: {len(surface_ids)} surfaces, {n_hop_classes} distinct hops")
    return doc


@job(config=STORE_ACCESS)
def build_fragments(spec: dict, surface_ids: list[str], statics: list | None = None) -> list[str]:
    """Potential maps and fragments of the surfaces that have none yet, on the campaign's colour scale.

    ``statics`` only orders the job after the static calculations.
    """
    campaign = CampaignSpec(**spec)
    facade = job_facade()
    scale = colour_scales.scale_id(campaign.name)
    criteria = {"surface_id": {"$in": surface_ids}, "colour_scale_id": scale}
    done = {d["surface_id"] for d in facade.query("fragments", criteria, ["surface_id"])}
    todo = [sid for sid in surface_ids if sid not in done]
    cut = campaign.fragments
    results = [
        fb.cut_surface(facade, sid, pixels=cut.pixels, tolerance_ev=cut.symmetry_tol_ev) for sid in todo
    ]
    if results:
        scale, _ = colour_scales.choose_colour_scale(facade, [r.map_doc for r in results], campaign.name)
        for result in results:
            fb.store_fragments(facade, result, scale)
    _say(f"fragments: {len(todo)} surfaces cut, {len(done)} reused")
    return surface_ids


def _train_round(
    spec: CampaignSpec, facade: StoreFacade, surface_ids: list[str], round_index: int, source: str
) -> ModelDoc:
    """Train and register the round's ensemble, or reuse the campaign's model trained on these labels."""
    config = TrainConfig(
        model=spec.model.arch,
        pretrained=spec.model.pretrained,
        epochs=spec.model.epochs,
        patience=max(5, spec.model.epochs // 3),
        pixels=spec.model.pixels,
        folds=spec.model.folds,
        seed=spec.model.seed,
        anchor=spec.model.anchor,
        checkpoint_dir=facade.settings.folder("checkpoints", campaign_id(spec), f"round-{round_index}"),
    )
    maker = TrainMaker(
        config=config,
        fraction=None,
        dataset=spec.name,
        source=source,
        registry_name=spec.name,
        surfaces=surface_ids,
        campaign_round=True,
    )
    return maker.train(facade)


@job(config=STORE_ACCESS)
def train_campaign_model(
    spec: dict, round_index: int, surface_ids: list[str], after: list | None = None
) -> str:
    """Train the fold ensemble of a round on every label so far; return its model id.

    ``surface_ids`` are the campaign's surfaces, read back from the store with its label source;
    ``after`` only orders the job after the CINEBs whose labels it uses.
    """
    campaign = CampaignSpec(**spec)
    facade = job_facade()
    source = campaign_label_source(campaign, load_surfaces(facade, surface_ids[:1])[0].surface)
    model = _train_round(campaign, facade, surface_ids, round_index, source)
    _say(f"round {round_index}: model {model.model_id} (CV MAE {model.cv_mae_ev:.3f} eV)")
    return model.model_id


def _training_job(spec: dict, round_index: int, surface_ids: list[str], after: list) -> Job:
    """The training job of a round, routed to GPU workers under FireWorks (category ``gpu``)."""
    train = train_campaign_model(spec, round_index, surface_ids, after=after)
    train.name = f"campaign train {round_index}"
    train.update_config({"manager_config": {"_category": TRAINING_CATEGORY}})
    return train


def _uncertainty_and_embeddings(
    facade: StoreFacade,
    spec: CampaignSpec,
    model: ModelDoc,
    surface_ids: list[str],
    candidates: list[tuple[StoredSurface, HopDoc]],
    labelled: set[str],
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated 68 % half-width, raw spread (eV) and embeddings of the open candidates.

    Also the embeddings of the labelled candidates (for the selection strategies).
    """
    fragments = load_fragments(facade, spec.name, source=source, surfaces=surface_ids)
    intervals = predict_and_store(facade, model, fragments)
    index = {sid: n for n, sid in enumerate(fragments.data.ids.tolist())}
    open_rows = [index[hop.saddle_id] for _, hop in candidates if hop.hop_id not in labelled]
    done_rows = [index[hop.saddle_id] for _, hop in candidates if hop.hop_id in labelled]
    member = load_ensemble(facade, model).models()[0]
    images, kinds = fragments.data.images, fragments.data.kinds

    def embed(rows: list[int]) -> np.ndarray:
        if not rows:
            return np.zeros((0, member.embedding_dim), dtype=np.float32)
        return compute_embeddings(member, images[rows], kinds=kinds[rows], pixels=spec.model.pixels)

    ci68 = intervals.ci_ev["68"][open_rows]
    return ci68, intervals.std_ev[open_rows], embed(open_rows), embed(done_rows)


def _finish(facade: StoreFacade, spec: CampaignSpec, cid: str, reason: str, model_id: str | None) -> None:
    from epdi_ml.report.build import write_report

    with facade.unit():
        doc = CampaignDoc(**facade.query("campaigns", {"campaign_id": cid})[0])
        update = {"status": "finished", "stop_reason": reason, "current_model_id": model_id}
        doc = doc.model_copy(update=update)
        facade.upsert("campaigns", [doc])
    index = write_report(facade, cid, facade.settings.folder("reports", spec.name))
    facade.upsert(
        "campaigns", [doc.model_copy(update={"report_path": str(index), "updated_at": datetime.now(UTC)})]
    )
    _say(f"finished ({reason}); report: {index}")


@job(config=STORE_ACCESS)
def campaign_round(
    spec: dict,
    round_index: int,
    surface_ids: list[str],
    model_id: str | None = None,
    after: list | None = None,
) -> Response:
    """One round: predict with the model trained on the labels so far, then stop or select hops.

    Round 0 has no model: it picks the pristine hop of every host and fills ``selection.initial_fraction``
    of the distinct hops at random (:func:`initial_hops`; every hop for the ``all`` strategy). Later
    rounds get ``model_id`` from the training job that ran after the previous CINEBs, predict with
    calibrated intervals, stop on the budget, the rounds or ``spread_target_ev`` (against the largest
    calibrated 68 % half-width of the unlabelled saddles), or select the next hops with it.
    ``surface_ids`` are the campaign's surfaces, read back from the store (stored before any job);
    ``after`` only orders a round after other jobs.
    """
    campaign = CampaignSpec(**spec)
    facade = job_facade()
    cid = campaign_id(campaign)
    surfaces = load_surfaces(facade, surface_ids)
    source = campaign_label_source(campaign, surfaces[0].surface)
    candidates = candidate_hops(surfaces)
    hop_ids = [hop.hop_id for _, hop in candidates]
    labelled = labelled_hop_ids(facade, hop_ids, campaign, source)
    n_total = len(hop_ids)
    rid = stable_id("round", campaign_id=cid, round=round_index)
    stored = facade.query("campaign_rounds", {"round_id": rid})
    start = time.perf_counter()
    if stored and set(stored[0]["labelled_hop_ids"]) <= labelled:  # a rerun replays the stored round
        doc = RoundDoc(**stored[0])
        _say(f"round {round_index}: reused ({len(doc.selected_hop_ids)} hops selected)")
    else:
        doc = _new_round(
            campaign, facade, cid, rid, round_index, surface_ids, candidates, labelled, model_id, source
        )
        doc.wall_time_s = round(time.perf_counter() - start, 1)
        facade.upsert("campaign_rounds", [doc])
    if doc.stop_reason is not None:
        _finish(facade, campaign, cid, doc.stop_reason, doc.model_id)
        return Response(output=doc)
    chosen = [(b, h) for b, h in candidates if h.hop_id in set(doc.selected_hop_ids)]
    flows = _hops_flows(campaign, chosen)
    train = _training_job(spec, round_index + 1, surface_ids, after=[f.output for f in flows])
    nxt = campaign_round(spec, round_index + 1, surface_ids, model_id=train.output)
    nxt.name = f"campaign round {round_index + 1}"
    reused = (
        f" ({len(labelled)} reused: CINEBs of the same engine and settings already in the store)"
        if round_index == 0 and labelled
        else ""
    )
    _say(
        f"round {round_index}: {len(labelled)}/{n_total} hops labelled{reused}; "
        f"CINEB next on {len(chosen)} ({campaign.selection.strategy})"
    )
    addition = Flow([*flows, train, nxt], name=f"round {round_index} CINEBs and training")
    # named from this round's own (deterministic) uuid: a replayed round adds the same jobs again
    return Response(output=doc, addition=stable_uuids(addition, namespace=CURRENT_JOB.job.uuid))


def _new_round(
    campaign: CampaignSpec,
    facade: StoreFacade,
    cid: str,
    rid: str,
    round_index: int,
    surface_ids: list[str],
    candidates: list[tuple[StoredSurface, HopDoc]],
    labelled: set[str],
    model_id: str | None,
    source: str,
) -> RoundDoc:
    from epdi_ml.selection.strategies import MEMBER_SPREAD, select_batch, should_stop

    sel = campaign.selection
    n_total = len(candidates)
    open_ids = [hop.hop_id for _, hop in candidates if hop.hop_id not in labelled]
    fraction = len(labelled) / n_total if n_total else 1.0
    doc = RoundDoc(
        round_id=rid,
        campaign_id=cid,
        round=round_index,
        strategy=sel.strategy,
        labelled_hop_ids=sorted(labelled),
        selected_hop_ids=[],
        n_hop_classes=n_total,
        fraction_labelled=fraction,
    )
    if round_index == 0:
        doc.selected_hop_ids = initial_hops(campaign, candidates, labelled)
        if not doc.selected_hop_ids:
            doc.stop_reason = "every distinct hop is already labelled"
        return doc
    if model_id is None:  # a round run without its training job: train here
        model = _train_round(campaign, facade, surface_ids, round_index, source)
    else:
        model = ModelDoc(**facade.query("models", {"model_id": model_id})[0])
    doc.model_id, doc.cv_mae_ev = model.model_id, model.cv_mae_ev
    ci68, spread, embeddings, done_embeddings = _uncertainty_and_embeddings(
        facade, campaign, model, surface_ids, candidates, labelled, source
    )
    if len(spread):
        doc.max_spread_ev, doc.mean_spread_ev = float(spread.max()), float(spread.mean())
        doc.max_ci68_ev, doc.mean_ci68_ev = float(ci68.max()), float(ci68.mean())
    # rounds 1..R select; round R + 1 trains on the last labels and stops
    doc.stop_reason = should_stop(
        fraction,
        sel.budget_fraction,
        doc.max_ci68_ev,
        sel.spread_target_ev,
        round_index - 1,
        sel.rounds + 1,
    )
    if doc.stop_reason is None and not open_ids:
        doc.stop_reason = "every distinct hop is labelled"
    if doc.stop_reason is not None:
        return doc
    budget_left = math.floor(sel.budget_fraction * n_total + 1e-9) - len(labelled)
    if budget_left <= 0:  # one more hop would exceed the budget
        doc.stop_reason = (
            f"budget reached: {len(labelled)} of {n_total} hops labelled; one more would exceed "
            f"{sel.budget_fraction:.0%}"
        )
        return doc
    batch = min(sel.batch_size, budget_left)
    if sel.strategy == "all":
        picks = np.arange(len(open_ids))
    else:
        picks = select_batch(
            sel.strategy,
            batch,
            spread_ev=spread if sel.strategy in MEMBER_SPREAD else ci68,
            embeddings=embeddings,
            labelled_embeddings=done_embeddings,
            seed=sel.seed + round_index,
        )
    doc.selected_hop_ids = [open_ids[i] for i in picks]
    return doc


def build_campaign_flow(spec: CampaignSpec, facade: StoreFacade, elsewhere: bool = False) -> Flow:
    """The whole campaign as one jobflow Flow (surfaces are stored now, everything else in jobs).

    ``elsewhere``: the flow runs on other machines (a LaunchPad's workers), so engines outside
    Python (VASP) are not required here (:meth:`CampaignSpec.check_runnable`).

    Raises
    ------
    InputError
        Fewer than two surfaces (the ensemble's folds are split by surface).
    EngineUnavailable
        An engine of the spec, or a GPAW data file it needs, is missing (checked before anything is
        stored).
    """
    bundles = campaign_bundles(spec, facade)
    if len(bundles) < 2:
        raise InputError(
            f"campaign {spec.name!r} has {len(bundles)} surface; the model's folds are split by surface, "
            "so give at least two (hosts x dopants)"
        )
    spec.check_runnable(facade.settings.hosts_file, elsewhere=elsewhere, surfaces=bundles)
    store_surfaces(bundles, facade)
    spec_dict = spec.model_dump(mode="json")
    surface_ids = [b.surface.surface_id for b in bundles]
    start = start_campaign(spec_dict, surface_ids, len(candidate_hops(bundles)))
    statics = [  # GPAW basis and setups are checked here, before any job
        static_step(b, spec.static.engine, spec.static.gpaw_overrides(), facade.settings.data_dir)
        for b in bundles
    ]
    valley_flows = [hops_maker(spec, b).make(b, hop_indices=[]) for b in bundles]
    fragments = build_fragments(spec_dict, surface_ids, [s.output for s in statics])
    first = campaign_round(
        spec_dict, 0, surface_ids, after=[fragments.output, start.output, *(f.output for f in valley_flows)]
    )
    first.name = "campaign round 0"
    return Flow([start, *statics, *valley_flows, fragments, first], name=f"campaign {spec.name}")


def mark_failed(facade: StoreFacade, spec: CampaignSpec, failures: list[JobFailureDoc]) -> CampaignDoc:
    """Record the campaign as ``failed`` with the jobs that raised (``epdi status`` shows them)."""
    cid = campaign_id(spec)
    stored = facade.query("campaigns", {"campaign_id": cid})
    if stored:
        doc = CampaignDoc(**stored[0])
    else:  # the first job itself failed
        bundles = campaign_bundles(spec, facade)
        doc = CampaignDoc(
            campaign_id=cid,
            name=spec.name,
            spec=spec.model_dump(mode="json"),
            surface_ids=[b.surface.surface_id for b in bundles],
            n_hop_classes=len(candidate_hops(bundles)),
        )
    doc = doc.model_copy(update={"status": "failed", "failures": failures, "updated_at": datetime.now(UTC)})
    facade.upsert("campaigns", [doc])
    return doc


def run_campaign(spec: CampaignSpec, facade: StoreFacade) -> CampaignDoc:
    """Run a campaign on this machine with the configured store; return its final document.

    Jobs that do not need a failed job go on (jobflow runs every independent job); then the
    campaign is marked ``failed`` with each failed job and its error, and :class:`JobsFailed`
    is raised. A rerun reuses every finished job and redoes only what failed.
    """
    flow = build_campaign_flow(spec, facade)
    folders = {}
    if runs_in_job_folders(spec):  # VASP jobs: one folder each
        root = facade.settings.folder("calcs", "jobs", spec.name)
        root.mkdir(parents=True, exist_ok=True)
        folders = {"create_folders": True, "root_dir": root}
    try:
        run_flow(flow, facade.job_store(), what=f"campaign {spec.name}", progress=_say, **folders)
    except JobsFailed as exc:
        mark_failed(facade, spec, [JobFailureDoc(**f.as_dict()) for f in exc.failures])
        raise JobsFailed(exc.failures, f"campaign {spec.name} (see `epdi status {spec.name}`)") from None
    return CampaignDoc(**facade.query("campaigns", {"campaign_id": campaign_id(spec)})[0])
