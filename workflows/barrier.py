"""The quick one-off barrier check: one hop of one surface, run as a jobflow flow on the local machine."""

from __future__ import annotations

import time
from dataclasses import dataclass

from jobflow.managers.local import run_locally

from epdi_ml.barriers import local_barrier_ev, neb_barriers
from epdi_ml.sanity import neb_flags
from stores.calc_documents import NebDoc, ValleyDoc
from stores.facade import StoreFacade
from workflows.engines import require_engine
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.hosts import InputError
from workflows.li_sites import hop_nearest_dopant
from workflows.makers import SurfaceHopsMaker
from workflows.surfaces import SurfaceBundle, store_surfaces

#: Li hop barriers on pristine MX2 monolayers (M = Mo, W; X = O, S, Se, Te): 0.15-0.30 eV
#: (Appl. Surf. Sci. 2017, doi 10.1016/j.apsusc.2017.07.004); 2H-MoS2: 0.24 eV (Nasr Esfahani et al.,
#: J. Phys. Chem. C 119, 10602, 2015) and 0.23 eV (Shi et al., Mater. Chem. Phys. 2016).
LITERATURE_PRISTINE_BAND_EV = (0.15, 0.30)


@dataclass
class BarrierResult:
    """The valleys and the CINEB of one hop."""

    bundle: SurfaceBundle
    hop_index: int
    valleys: list[ValleyDoc]
    neb: NebDoc
    wall_time_s: float

    def summary(self) -> dict:
        """JSON-ready summary (energies in eV).

        Barriers as in :mod:`epdi_ml.barriers`, flags as in :mod:`epdi_ml.sanity`.
        """
        surface = self.bundle.surface
        lowest = max(self.valleys, key=lambda v: v.binding_energy_ev)
        hop = self.bundle.hops[self.hop_index]
        by_site = {v.site_id: v.binding_energy_ev for v in self.valleys}
        tm_eb, h_eb = (by_site[s] for s in hop.valley_ids)
        local = local_barrier_ev(tm_eb, h_eb, self.neb.saddle_binding_energy_ev)
        images = neb_barriers(self.neb.image_energies_ev)
        return {
            "host": surface.host,
            "dopant": surface.dopant,
            "supercell": surface.supercell,
            "engine": self.neb.engine,
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
            "total_force_calls": self.neb.force_calls + sum(v.force_calls for v in self.valleys),
            "wall_time_s": round(self.wall_time_s, 1),
        }


def run_barrier(
    bundle: SurfaceBundle,
    engine: str = "chgnet",
    settings: ChgnetSettings | None = None,
    n_images: int = 3,
    facade: StoreFacade | None = None,
) -> BarrierResult:
    """Relax both valleys of the hop nearest the dopant and run its CINEB, through jobflow.

    The surface documents are stored first; every job writes its document to the store.
    """
    if engine != "chgnet":
        require_engine(engine)  # a clear message when vasp/gpaw cannot run here
        raise InputError(
            f"engine {engine!r} is not offered for the one-off barrier; accepted: chgnet "
            "(VASP hops run through the campaign flows)"
        )
    require_engine("chgnet")
    facade = facade or StoreFacade()
    store_surfaces([bundle], facade)
    hop_index = hop_nearest_dopant(bundle)
    maker = SurfaceHopsMaker(settings=settings or ChgnetSettings(), n_images=n_images, valley_classes=False)
    flow = maker.make(bundle, [hop_index])
    start = time.perf_counter()
    responses = run_locally(flow, store=facade.job_store(), log=False, ensure_success=True)
    elapsed = time.perf_counter() - start
    outputs = [responses[job.uuid][1].output for job in flow.jobs]
    valleys = [doc for doc in outputs if isinstance(doc, ValleyDoc)]
    (neb,) = [doc for doc in outputs if isinstance(doc, NebDoc)]
    return BarrierResult(bundle, hop_index, valleys, neb, elapsed)
