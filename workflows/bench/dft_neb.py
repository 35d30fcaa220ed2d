"""The same DFT CINEB started from IDPP and from the CHGNet path: ``epdi bench dft-neb``.

On the hop nearest the dopant of one surface, with the neb settings of a spec (default the
packaged ``dft-check``, so its stored results are reused): the CHGNet + D3 valleys and CINEB, the
DFT valleys started from them, then two DFT CINEBs between the same DFT end points, one from the
IDPP path and one from the converged CHGNet images. Figures: DFT force calls and optimiser steps
of each, their barriers (local, from the lower valley, and forward), wall times (as stored with
each CINEB, so a reused result keeps the time it took) and the ratio of force calls. The optimiser
(``neb.optimizer``) is not part of a CINEB's id, so a stored run is reused whichever optimiser made
it; each figure names the one that did, and where the two differ (``same_optimizer`` false) the
ratio is not a like-for-like measure of the start and ``goal_met`` is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobflow import Flow

from epdi_ml.analysis.barriers import local_barrier_ev
from stores.facade import StoreFacade
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.flows.barrier import flow_outputs
from workflows.flows.campaign_spec import CampaignSpec
from workflows.flows.engine_settings import chgnet_settings, neb_settings_for
from workflows.flows.local_run import run_flow
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.jobs.hops import HopNebMaker
from workflows.structures.li_sites import hop_nearest_dopant
from workflows.structures.surfaces import store_surfaces, surface_from_request

#: goal of the preconverged start: at most this fraction of the IDPP start's DFT force calls
PRECONVERGE_CALL_GOAL = 1 / 3

#: the two starts must find the same barrier within this (eV)
BARRIER_AGREEMENT_EV = 0.01


def _figures(neb: NebDoc, valleys: dict[str, ValleyDoc]) -> dict[str, Any]:
    tm_eb, h_eb = (valleys[v].binding_energy_ev for v in neb.valley_ids)
    return {
        "force_calls": neb.force_calls,
        "steps": neb.steps,
        "optimizer": neb.optimizer or "fire",
        "converged": neb.converged,
        "local_barrier_ev": round(local_barrier_ev(tm_eb, h_eb, neb.saddle_binding_energy_ev), 4),
        "forward_barrier_ev": round(neb.forward_barrier_ev, 4),
        "wall_time_s": None if neb.wall_time_s is None else round(neb.wall_time_s, 1),
    }


def dft_neb_benchmark(
    spec: CampaignSpec,
    host: str,
    dopant: str | None,
    facade: StoreFacade,
    echo: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Run (or reuse) both DFT CINEBs of the hop nearest the dopant; return the figures."""
    bundle = surface_from_request(
        host, dopant, spec.supercell, spec.vacuum_ang, hosts_file=facade.settings.hosts_file
    )
    dft = neb_settings_for(spec, bundle.surface)
    dft.require(tuple(bundle.structure.symbol_set))
    store_surfaces([bundle], facade)
    hop = hop_nearest_dopant(bundle)
    name = f"{host}-{dopant or 'pristine'}"
    echo(f"{name}: CHGNet valleys and CINEB, DFT valleys, DFT CINEB from the CHGNet path")
    maker = SurfaceHopsMaker(
        settings=dft,
        n_images=spec.neb.images,
        valley_classes=False,
        preconverge=chgnet_settings(spec),
        neb_optimizer=spec.neb.optimizer,
    )
    flow = maker.make(bundle, [hop])
    outputs = flow_outputs(flow, run_flow(flow, facade.job_store(), what="CHGNet-path CINEB"))
    valleys = {d.valley_id: d for d in outputs if isinstance(d, ValleyDoc)}
    nebs = [d for d in outputs if isinstance(d, NebDoc)]
    pre = next(n for n in nebs if n.engine == dft.engine)
    chgnet = next(n for n in nebs if n.engine != dft.engine)
    slab = next(d for d in outputs if isinstance(d, CalculationDoc) and d.engine == dft.engine)
    li = next(d for d in outputs if isinstance(d, LiReferenceDoc) and d.engine == dft.engine)
    echo("DFT CINEB from the IDPP path between the same DFT end points")
    start, end = (valleys[v] for v in pre.valley_ids)
    idpp_job = HopNebMaker(settings=dft, n_images=spec.neb.images, optimizer=spec.neb.optimizer).make(
        start, end, slab.final_energy_ev, li.energy_ev, pre.hop_id
    )
    idpp_flow = Flow([idpp_job])
    responses = run_flow(idpp_flow, facade.job_store(), what="IDPP-path CINEB")
    idpp = next(d for d in flow_outputs(idpp_flow, responses) if isinstance(d, NebDoc))
    a, b = _figures(idpp, valleys), _figures(pre, valleys)
    ratio = b["force_calls"] / a["force_calls"] if a["force_calls"] else None
    difference = abs(a["local_barrier_ev"] - b["local_barrier_ev"])
    same_optimizer = a["optimizer"] == b["optimizer"]
    return {
        "surface": f"{host}-{dopant or 'pristine'} {spec.supercell}x{spec.supercell}x1",
        "hop_id": pre.hop_id,
        "engine": dft.engine,
        "functional": dft.functional,
        "n_images": spec.neb.images,
        "fmax_ev_ang": dft.fmax_ev_ang,
        "idpp": a,
        "preconverged": b | {"chgnet_force_calls": chgnet.force_calls},
        "force_call_ratio": None if ratio is None else round(ratio, 3),
        "force_call_goal": round(PRECONVERGE_CALL_GOAL, 3),
        "same_optimizer": same_optimizer,
        "goal_met": (ratio is not None and ratio <= PRECONVERGE_CALL_GOAL) if same_optimizer else None,
        "barrier_difference_ev": round(difference, 4),
        "barriers_agree": difference <= BARRIER_AGREEMENT_EV,
    }
