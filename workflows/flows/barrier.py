"""The quick one-off barrier check: one hop of one surface, run as jobflow flows on the local machine.

Engines: ``chgnet`` (CHGNet + D3) or ``gpaw`` (PBE + D3), optionally preconverged by CHGNet: the
CHGNet valleys and CINEB run first (stage 1), then the DFT engine starts from them (stage 2). Each
stage is its own flow, so a progress line follows each, and every job reuses what the store holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobflow import Flow

from epdi_ml.analysis.barriers import local_barrier_ev, neb_barriers
from epdi_ml.analysis.sanity import neb_flags
from stores.facade import StoreFacade
from stores.schemas.calculations import NebDoc, ValleyDoc
from workflows.engines import check_cineb_images, require_engine
from workflows.flows.local_run import run_flow
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.structures.li_sites import hop_nearest_dopant
from workflows.structures.surfaces import SurfaceBundle, store_surfaces

#: Li hop barriers on pristine MX2 monolayers (M = Mo, W; X = O, S, Se, Te): 0.15-0.28 eV
#: (Appl. Surf. Sci. 2017, doi 10.1016/j.apsusc.2017.07.004); 2H-MoS2: 0.24 eV (Nasr Esfahani et al.,
#: J. Phys. Chem. C 119, 10602, 2015) and 0.23 eV (Shi et al., Mater. Chem. Phys. 2016).
LITERATURE_PRISTINE_BAND_EV = (0.15, 0.28)


@dataclass
class BarrierResult:
    """The valleys and the CINEB of one hop, and the preconverging stage's when there was one."""

    bundle: SurfaceBundle
    hop_index: int
    valleys: list[ValleyDoc]
    neb: NebDoc
    wall_time_s: float
    preconverge_valleys: list[ValleyDoc] | None = None
    preconverge_neb: NebDoc | None = None

    def summary(self) -> dict:
        """JSON-ready summary (energies in eV).

        Barriers as in :mod:`epdi_ml.analysis.barriers`, flags as in :mod:`epdi_ml.analysis.sanity`.
        """
        surface = self.bundle.surface
        lowest = max(self.valleys, key=lambda v: v.binding_energy_ev)
        hop = self.bundle.hops[self.hop_index]
        by_site = {v.site_id: v.binding_energy_ev for v in self.valleys}
        tm_eb, h_eb = (by_site[s] for s in hop.valley_ids)
        local = local_barrier_ev(tm_eb, h_eb, self.neb.saddle_binding_energy_ev)
        images = neb_barriers(self.neb.image_energies_ev)
        out: dict[str, Any] = {
            "host": surface.host,
            "dopant": surface.dopant,
            "supercell": surface.supercell,
            "engine": self.neb.engine,
            "functional": self.neb.functional,
            "surface_id": surface.surface_id,
            "hop_id": self.neb.hop_id,
            "hop_dopant_distance_ang": self.bundle.hops[self.hop_index].dopant_distance_ang,
            "valleys": [
                {
                    "label": v.label,
                    "binding_energy_ev": round(v.binding_energy_ev, 4),
                    "left_valley": v.left_valley,
                    "converged": v.converged,
                    "force_calls": v.force_calls,
                }
                for v in self.valleys
            ],
            "lowest_valley": lowest.label,
            "saddle_binding_energy_ev": round(self.neb.saddle_binding_energy_ev, 4),
            "local_barrier_ev": round(local, 4),
            "forward_barrier_ev": round(images.forward_barrier_ev, 4),
            "reverse_barrier_ev": round(images.reverse_barrier_ev, 4),
            "flags": neb_flags(self.neb.model_dump()),
            "image_energies_rel_ev": [
                round(e - self.neb.image_energies_ev[0], 4) for e in self.neb.image_energies_ev
            ],
            "neb_converged": self.neb.converged,
            "neb_fmax_ev_ang": round(self.neb.fmax_ev_ang, 4),
            "neb_force_calls": self.neb.force_calls,
            "valley_force_calls": sum(v.force_calls for v in self.valleys),
            "total_force_calls": self.neb.force_calls + sum(v.force_calls for v in self.valleys),
            "preconverge": None,
            "wall_time_s": round(self.wall_time_s, 1),
        }
        if self.preconverge_neb is not None:
            pre_valleys = self.preconverge_valleys or []
            out["preconverge"] = self.preconverge_neb.engine
            pre_by_site = {v.site_id: v.binding_energy_ev for v in pre_valleys}
            pre_tm, pre_h = (pre_by_site[s] for s in hop.valley_ids)
            pre_local = local_barrier_ev(pre_tm, pre_h, self.preconverge_neb.saddle_binding_energy_ev)
            out["preconverge_local_barrier_ev"] = round(pre_local, 4)
            out["preconverge_force_calls"] = self.preconverge_neb.force_calls + sum(
                v.force_calls for v in pre_valleys
            )
        return out


def flow_outputs(flow: Flow, responses: dict) -> list[Any]:
    """Outputs of every job of ``flow``, nested flows included, after ``run_locally``."""
    outputs = []
    for job, _ in flow.iterflow():
        if job.uuid in responses:
            outputs.append(responses[job.uuid][max(responses[job.uuid])].output)
    return outputs


def _run(flow: Flow, facade: StoreFacade, engine: str) -> tuple[list[ValleyDoc], NebDoc]:
    """Run ``flow``; return the valleys and the CINEB of ``engine`` it made (or reused)."""
    responses = run_flow(flow, facade.job_store(), what=f"barrier ({engine})")
    docs = [d for d in flow_outputs(flow, responses) if getattr(d, "engine", None) == engine]
    return [d for d in docs if isinstance(d, ValleyDoc)], next(d for d in docs if isinstance(d, NebDoc))


def run_barrier(
    bundle: SurfaceBundle,
    settings: Any,
    n_images: int = 3,
    preconverge: Any = None,
    facade: StoreFacade | None = None,
    echo: Callable[[str], None] | None = None,
) -> BarrierResult:
    """Relax both valleys of the hop nearest the dopant and run its CINEB, through jobflow.

    Parameters
    ----------
    bundle
        The surface.
    settings
        Engine settings of the labels (:class:`~workflows.engines.chgnet_engine.ChgnetSettings` or
        :class:`~workflows.engines.gpaw_dynamics.GpawDynamicsSettings`).
    n_images
        Intermediate CINEB images.
    preconverge
        Settings of a cheaper engine that runs first; the ``settings`` engine starts from its
        valleys and converged images.
    facade
        The store (default: from the settings).
    echo
        Called with one progress line per stage.

    The engines and the image count are checked before anything is written; then the surface
    documents are stored and every job writes its document to the store.
    """
    check_cineb_images(n_images)
    require_engine(settings.engine)
    if preconverge is not None:
        require_engine(preconverge.engine)
    if hasattr(settings, "require"):
        settings.require(tuple(bundle.structure.symbol_set))
    facade = facade or StoreFacade()
    say = echo or (lambda _line: None)
    store_surfaces([bundle], facade)
    hop_index = hop_nearest_dopant(bundle)
    start = time.perf_counter()
    pre_valleys = pre_neb = None
    stages = 2 if preconverge is not None else 1
    if preconverge is not None:
        say(f"stage 1/2: {preconverge.functional} valleys and CINEB (preconverge)")
        stage = SurfaceHopsMaker(
            settings=preconverge, n_images=n_images, valley_classes=False, keeps_images=True
        )
        pre_valleys, pre_neb = _run(stage.make(bundle, [hop_index]), facade, preconverge.engine)
        say(f"stage 1/2 done: {pre_neb.force_calls} CINEB force calls, {time.perf_counter() - start:.0f} s")
    say(f"stage {stages}/{stages}: {settings.functional} valleys and CINEB")
    maker = SurfaceHopsMaker(
        settings=settings, n_images=n_images, valley_classes=False, preconverge=preconverge
    )
    valleys, neb = _run(maker.make(bundle, [hop_index]), facade, settings.engine)
    elapsed = time.perf_counter() - start
    say(f"stage {stages}/{stages} done: {neb.force_calls} CINEB force calls, {elapsed:.0f} s in all")
    return BarrierResult(bundle, hop_index, valleys, neb, elapsed, pre_valleys, pre_neb)
