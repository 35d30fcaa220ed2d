"""Labelled datasets from a campaign spec: every surface, its static, every distinct hop, its fragments.

``epdi dataset generate SPEC`` runs, surface by surface (dopant-major, so a partial run covers every
host), the steps of :data:`STEPS`:

``static``
    the bare-slab static (GPAW or VASP) with potential and density grids;
``labels``
    every valley class relaxed and **every** distinct hop by CINEB, with the neb step's engine
    (CHGNet + D3, or GPAW PBE + D3 optionally preconverged by CHGNet);
``fragments``
    the potential map and the valley/saddle fragments;
``export``
    one compact archive per surface (:func:`stores.dataset_io.export_dataset` with
    ``compact=True``) in the output folder, named ``<host>-<dopant>-<n>x<n>.tar.gz``.

One more step, ``partial``, is not run by default: it writes what a surface holds so far (every
document, the progress files of running relaxations and CINEBs, and a VASP static's grids until the
fragments are cut; a GPAW static's grids are left out and recomputed on resume, see
:func:`partial_carries_grids`) to
``partial/<archive name>`` in the output folder. A DFT surface takes longer than one allocation or
one machine lasts; run
``--steps partial`` (also while the generation runs, against the same data folder) and keep that
archive with the output. A later run whose store holds nothing of the surface loads it first and puts
the progress files back, so the run goes on from the last finished job and optimiser step on any
machine; a complete ``export`` removes the partial archive.

Resuming is built in: each job reuses its stored document (nothing is recomputed but a GPAW static
whose grids a partial archive left out), and a surface
whose archive exists is skipped. A surface that fails is reported with its message and the run goes
on with the next one; each step's wall time is appended to ``generation-log.jsonl`` in the output
folder.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from stores.dataset_io import export_dataset, load_dataset, read_files
from stores.facade import StoreFacade
from stores.settings import data_folder
from workflows.flows.campaign_spec import CampaignSpec, surface_name
from workflows.flows.local_run import run_flow
from workflows.flows.neb_step import hops_maker, runs_in_job_folders
from workflows.jobs.static import static_step, static_workdir
from workflows.structures.li_sites import hop_nearest_dopant
from workflows.structures.surfaces import SurfaceBundle, store_surfaces, surface_from_request

STEPS: tuple[str, ...] = ("static", "labels", "fragments", "export")

#: every step ``--steps`` accepts: the default ones and the carry-over snapshot
ALL_STEPS: tuple[str, ...] = (*STEPS, "partial")

#: sub-folder of the output folder holding the partial (carry-over) archives
PARTIAL_DIR = "partial"

#: file names of the relaxation and CINEB progress files a partial archive carries (workflows.jobs.hops)
PROGRESS_PATTERN = "*progress.json"

#: name of the per-step timing log written beside the archives
LOG_NAME = "generation-log.jsonl"


@dataclass
class SurfaceOutcome:
    """What happened to one surface in a generation run."""

    name: str
    surface_id: str
    status: str = "pending"  # done | skipped | failed
    seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""


def archive_name(host: str, dopant: str | None, size: int) -> str:
    """File name of one surface's archive, e.g. ``MoS2-Co-4x4.tar.gz``."""
    return f"{host}-{dopant or 'pristine'}-{size}x{size}.tar.gz"


def partial_archive(out_dir: Path, host: str, dopant: str | None, size: int) -> Path:
    """Where the partial (carry-over) archive of one surface lives in an output folder."""
    return out_dir / PARTIAL_DIR / archive_name(host, dopant, size)


def _has_fragments(facade: StoreFacade, surface_id: str) -> bool:
    """Whether the surface's fragments are cut (stored)."""
    return bool(facade.query("fragments", {"surface_id": surface_id}, properties=["fragment_id"]))


def _progress_files(facade: StoreFacade, surface_id: str) -> dict[str, bytes]:
    """The relaxation and CINEB progress files of a surface, by path relative to the data folder."""
    data_dir = Path(facade.settings.data_dir)
    folder = data_folder(data_dir, "calcs", surface_id)
    found = sorted(folder.rglob(PROGRESS_PATTERN)) if folder.is_dir() else []
    return {str(f.relative_to(data_dir)): f.read_bytes() for f in found}


def _partial(
    spec: CampaignSpec, bundle: SurfaceBundle, facade: StoreFacade, path: Path, echo: Callable[[str], None]
) -> None:
    missing = missing_parts(spec, bundle, facade)
    if not missing:
        raise RuntimeError("the surface is complete: run the export step instead of partial")
    sid = bundle.surface.surface_id
    files = _progress_files(facade, sid)
    grids = partial_carries_grids(spec.static.engine, _has_fragments(facade, sid))
    export_dataset(facade, path, [sid], compact=not grids, files=files)
    carried = (f", {len(files)} progress file(s)" if files else "") + ("" if grids else ", no grids")
    size_kb = path.stat().st_size / 1e3
    echo(f"  partial archive {path} ({size_kb:.0f} KB{carried}; lacks {', '.join(missing)})")


def partial_carries_grids(static_engine: str, fragments_cut: bool) -> bool:
    """Whether a partial archive carries the static's potential and density grids.

    Once the fragments are cut the grids are not needed again (the maps are kept). Before that, a
    VASP static's grids travel (the static is a cluster job), but a GPAW static's do not: they are
    megabytes in every snapshot, and the resumed run recomputes the static in minutes (the same
    document key, settings and structure), so the archive stays small enough to commit at each stop.
    """
    return not fragments_cut and static_engine != "gpaw"


def resume_from_partial(bundle: SurfaceBundle, facade: StoreFacade, path: Path) -> bool:
    """Load a surface's partial archive and restore its progress files; ``True`` if loaded.

    Only a store that holds no calculation, valley or CINEB of the surface takes it (loading
    replaces the surface's documents, so a store that went further is never rolled back), and a
    progress file already in the data folder is kept.
    """
    sid = bundle.surface.surface_id
    if not path.is_file() or any(
        facade.query(name, {"surface_id": sid}, properties=["surface_id"])
        for name in ("calculations", "valleys", "nebs")
    ):
        return False
    load_dataset(facade, path)
    data_dir = Path(facade.settings.data_dir)
    for name, payload in read_files(path).items():
        target = data_dir / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
    return True


def _static(spec: CampaignSpec, bundle: SurfaceBundle, facade: StoreFacade) -> None:
    sid = bundle.surface.surface_id
    if fb.find_static(facade, sid) is not None or _has_fragments(facade, sid):
        return  # done, or no longer needed (the fragments are cut from its grids)
    data_dir, engine = facade.settings.data_dir, spec.static.engine
    flow = static_step(bundle, engine, spec.static.gpaw_overrides(), data_dir)
    workdir = static_workdir(data_dir, bundle.surface.surface_id, engine)
    run_flow(flow, facade.job_store(), root_dir=workdir, what=f"static of {bundle.surface.surface_id}")


def _labels(
    spec: CampaignSpec,
    bundle: SurfaceBundle,
    facade: StoreFacade,
    progress: bool,
    echo: Callable[[str], None],
) -> None:
    hops = None if spec.neb.hops == "all" else [hop_nearest_dopant(bundle)]
    flow = hops_maker(spec, bundle, progress).make(bundle, hop_indices=hops)
    folders = {}
    if runs_in_job_folders(spec):  # VASP jobs: one folder each, under calcs/<surface>/vasp-jobs
        root = facade.settings.folder("calcs", bundle.surface.surface_id, "vasp-jobs")
        root.mkdir(parents=True, exist_ok=True)
        folders = {"create_folders": True, "root_dir": root}
    say = (lambda line: echo(f"    {line}")) if progress else None
    run_flow(flow, facade.job_store(), what=f"labels of {bundle.surface.surface_id}", progress=say, **folders)


def _fragments(spec: CampaignSpec, bundle: SurfaceBundle, facade: StoreFacade) -> None:
    if _has_fragments(facade, bundle.surface.surface_id):
        return  # cut already (here or in the run a partial archive came from)
    cut = spec.fragments
    result = fb.cut_surface(
        facade, bundle.surface.surface_id, pixels=cut.pixels, tolerance_ev=cut.symmetry_tol_ev
    )
    scale, _ = colour_scales.choose_colour_scale(facade, [result.map_doc], spec.name)
    fb.store_fragments(facade, result, scale)


def missing_parts(spec: CampaignSpec, bundle: SurfaceBundle, facade: StoreFacade) -> list[str]:
    """What a surface still lacks before its archive is complete (empty when complete).

    Valleys and CINEBs count only when made by the neb step's engine.
    """
    sid = bundle.surface.surface_id
    engine = spec.neb.engine
    missing = []
    fragments = _has_fragments(facade, sid)
    if fb.find_static(facade, sid) is None and not fragments:
        missing.append("static")
    valley_classes = {s.symmetry.representative_index for s in bundle.sites if s.kind == "valley"}
    relaxed = {
        d["site_index"]
        for d in facade.query("valleys", {"surface_id": sid, "engine": engine}, properties=["site_index"])
    }
    if lost := valley_classes - relaxed:
        missing.append(f"{len(lost)} valley relaxations")
    hop_ids = {bundle.hops[h.symmetry.representative_index].hop_id for h in bundle.hops}
    if spec.neb.hops == "nearest_dopant":
        hop_ids = {bundle.hops[hop_nearest_dopant(bundle)].hop_id}
    done = {
        d["hop_id"]
        for d in facade.query("nebs", {"surface_id": sid, "engine": engine}, properties=["hop_id"])
    }
    if lost := hop_ids - done:
        missing.append(f"{len(lost)} hop CINEBs")
    if not fragments:
        missing.append("fragments")
    return missing


def _export(
    spec: CampaignSpec, bundle: SurfaceBundle, facade: StoreFacade, archive: Path, partial: Path
) -> None:
    missing = missing_parts(spec, bundle, facade)
    if missing:
        raise RuntimeError(f"not exported, the surface lacks {', '.join(missing)}; run those steps first")
    export_dataset(facade, archive, [bundle.surface.surface_id], compact=True)
    partial.unlink(missing_ok=True)  # the complete archive supersedes it


def _log(out_dir: Path, record: dict) -> None:
    with (out_dir / LOG_NAME).open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def generate(
    spec: CampaignSpec,
    facade: StoreFacade,
    out_dir: Path,
    steps: tuple[str, ...] = STEPS,
    only: list[str] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[SurfaceOutcome]:
    """Run ``steps`` for every surface of ``spec`` (or the ``only`` names, e.g. ``MoS2-Co``).

    Returns one :class:`SurfaceOutcome` per surface; failures do not stop the run. An engine that
    cannot run here (e.g. VASP without ``VASP_CMD``/POTCARs) stops it before any job, with
    :class:`~workflows.engines.EngineUnavailable` saying what to configure
    (:meth:`~workflows.flows.campaign_spec.CampaignSpec.check_runnable`).
    """
    pairs = spec.surfaces()
    spec.check_runnable(facade.settings.hosts_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for n, (host, dopant) in enumerate(pairs, start=1):
        name = surface_name(host, dopant)
        if only and name not in only:
            continue
        archive = out_dir / archive_name(host, dopant, spec.supercell)
        partial = partial_archive(out_dir, host, dopant, spec.supercell)
        bundle = surface_from_request(
            host, dopant, spec.supercell, spec.vacuum_ang, hosts_file=facade.settings.hosts_file
        )
        outcome = SurfaceOutcome(name, bundle.surface.surface_id)
        outcomes.append(outcome)
        if archive.is_file():
            outcome.status = "skipped"
            echo(f"[{n}/{len(pairs)}] {name}: {archive.name} exists, skipped")
            continue
        if resume_from_partial(bundle, facade, partial):
            echo(f"[{n}/{len(pairs)}] {name}: resumed from {partial}")
        store_surfaces([bundle], facade)
        echo(
            f"[{n}/{len(pairs)}] {name} ({bundle.surface.formula}, {bundle.surface.n_distinct_hops} distinct "
            f"hops, {bundle.surface.n_distinct_valleys} valley classes)"
        )
        actions = {
            "static": lambda b=bundle: _static(spec, b, facade),
            "labels": lambda b=bundle: _labels(spec, b, facade, progress, echo),
            "fragments": lambda b=bundle: _fragments(spec, b, facade),
            "export": lambda b=bundle, a=archive, p=partial: _export(spec, b, facade, a, p),
            "partial": lambda b=bundle, p=partial: _partial(spec, b, facade, p, echo),
        }
        for step in steps:
            start = time.perf_counter()
            try:
                actions[step]()
            except Exception as exc:  # one surface failing must not stop the others
                outcome.status = "failed"
                outcome.message = f"{step}: {type(exc).__name__}: {exc}"
                echo(f"  {step} failed: {type(exc).__name__}: {exc}")
                _log(
                    out_dir,
                    {
                        "surface": name,
                        "step": step,
                        "status": "failed",
                        "error": outcome.message,
                        "traceback": traceback.format_exc(limit=3),
                    },
                )
                break
            outcome.seconds[step] = round(time.perf_counter() - start, 1)
            echo(f"  {step}: {outcome.seconds[step]} s")
            _log(
                out_dir,
                {
                    "surface": name,
                    "surface_id": outcome.surface_id,
                    "step": step,
                    "status": "done",
                    "wall_s": outcome.seconds[step],
                    "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
        else:
            outcome.status = "done"
    return outcomes
