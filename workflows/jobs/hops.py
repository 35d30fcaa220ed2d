"""jobflow Makers for the physics steps: slab relaxation, Li reference, valley relaxation, CINEB.

Each Maker is an atomate2-style dataclass whose ``make`` returns a jobflow Job. Jobs return pydantic
documents (see :mod:`stores.schemas.calculations`) and also upsert them into the platform collections, so
``epdi query`` sees them whichever way the flow ran (locally or through FireWorks).

The engine is configuration: ``settings`` is a :class:`~workflows.engines.chgnet_engine.ChgnetSettings`
(CHGNet + D3, the embedded default) or a
:class:`~workflows.engines.gpaw_dynamics.GpawDynamicsSettings` (GPAW PBE + D3); both run the ASE
relaxations and CINEB of :mod:`workflows.engines.ase_dynamics`. Every document records the engine,
functional, settings and package versions, and its id hashes the engine and settings, so labels of
two engines or settings never overwrite each other. VASP steps use atomate2's own Makers
(:mod:`workflows.engines.vasp_engine`, :mod:`workflows.flows.vasp_hops`); GPAW statics are in
:mod:`workflows.jobs.static`.

``preconverge``: :class:`SurfaceHopsMaker` can run a cheap engine (CHGNet) first and start the
expensive one from its results: the slab from the CHGNet slab, each valley from the CHGNet valley,
each CINEB from the converged CHGNet images. Both stages are stored and linked
(``preconverged_from``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from epdi_ml.analysis.barriers import neb_barriers
from stores.facade import STORE_ACCESS, job_facade
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.neb_checkpoint import NebCheckpoint
from workflows.structures.li_sites import add_li
from workflows.structures.site_graph import in_plane_distances


def _stored(collection: str, key: str, value: str, cls):
    """The stored document ``cls`` with ``key == value``, or ``None``; reruns reuse finished jobs."""
    docs = job_facade().query(collection, {key: value})
    return cls(**docs[0]) if docs else None


def binding_energy_ev(slab_energy_ev: float, li_energy_ev: float, total_energy_ev: float) -> float:
    """E_b = E(slab) + E(Li atom) - E(slab + Li) in eV; positive means bound (DESIGN.md)."""
    return slab_energy_ev + li_energy_ev - total_energy_ev


def _at_workdir(settings: Any, surface_id: str | None, what: str) -> Any:
    """The engine settings with their log folder set (``calcs/<surface>/<engine>-<what>``)."""
    if not hasattr(settings, "at"):
        return settings
    folder = Path(job_facade().settings.data_dir) / "calcs" / (surface_id or "reference")
    return settings.at(folder / f"{settings.engine}-{what}")


def _provenance(settings: Any) -> dict[str, Any]:
    """Engine, functional, settings and versions recorded in every document."""
    return {
        "engine": settings.engine,
        "functional": settings.functional,
        "settings": settings.provenance(),
        "versions": settings.versions(),
    }


@dataclass
class SlabRelaxMaker(Maker):
    """Relax the bare slab (cell fixed); its energy is E(slab) of every binding energy."""

    name: str = "slab relax"
    settings: Any = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job(config=STORE_ACCESS)
    def make(self, structure: Structure | dict, surface_id: str | None = None) -> CalculationDoc:
        """Return a :class:`CalculationDoc` of the relaxed slab (a stored one when ``reuse``)."""
        structure = _as_structure(structure)
        calc_id = stable_id(
            "calc",
            kind="relax",
            engine=self.settings.engine,
            structure=structure.as_dict()["sites"],
            settings=self.settings.provenance(),
        )
        if self.reuse and (done := _stored("calculations", "calc_id", calc_id, CalculationDoc)):
            return done
        engine = _at_workdir(self.settings, surface_id, "slab")
        result = ase_dynamics.relax(structure, engine, desc="slab")
        doc = CalculationDoc(
            calc_id=calc_id,
            kind="relax",
            engine=self.settings.engine,
            functional=self.settings.functional,
            source_path=getattr(engine, "workdir", None),
            surface_id=surface_id,
            formula=result.structure.composition.formula,
            natoms=len(result.structure),
            final_energy_ev=result.energy_ev,
            structure=result.structure.as_dict(),
            settings=self.settings.provenance(),
            converged=result.converged,
            force_calls=result.force_calls,
            wall_time_s=result.wall_time_s,
            versions=self.settings.versions(),
        )
        job_facade().upsert("calculations", [doc])
        return doc


@dataclass
class LiReferenceMaker(Maker):
    """Energy of the isolated Li atom for the engine settings, cached in the store."""

    name: str = "li reference"
    settings: Any = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job(config=STORE_ACCESS)
    def make(self) -> LiReferenceDoc:
        """Return the cached reference, computing it the first time."""
        key = self.settings.reference_settings()
        reference_id = stable_id("liref", engine=self.settings.engine, **key)
        if self.reuse and (done := _stored("li_references", "reference_id", reference_id, LiReferenceDoc)):
            return done
        facade = job_facade()
        engine = _at_workdir(self.settings, None, "li-atom")
        doc = LiReferenceDoc(
            reference_id=reference_id,
            engine=self.settings.engine,
            settings=engine.reference_settings() | {"box_ang": engine.li_box_ang},
            energy_ev=engine.li_atom_energy(),
        )
        facade.upsert("li_references", [doc])
        return doc


@dataclass
class ValleyRelaxMaker(Maker):
    """Relax Li placed at a valley; record E_b, the final site and whether Li left its valley."""

    name: str = "valley relax"
    settings: Any = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job(config=STORE_ACCESS)
    def make(
        self,
        slab: Structure | dict,
        slab_energy_ev: float,
        li_energy_ev: float,
        surface_id: str,
        site_id: str,
        site_index: int,
        label: str,
        site_cart_ang: list[float],
        valley_frac_xy: list[list[float]],
        start: ValleyDoc | dict | None = None,
    ) -> ValleyDoc:
        """Return the :class:`ValleyDoc` of Li relaxed from ``site_cart_ang`` (or from ``start``).

        ``valley_frac_xy`` holds the fractional in-plane coordinates of every valley of the surface,
        to find the valley nearest to where Li ended. ``start`` is the relaxed valley of a cheaper
        engine (preconverge): the relaxation starts from its structure and links to it.
        """
        start = None if start is None else _as_valley(start)
        fields: dict[str, Any] = {"surface_id": surface_id, "site_id": site_id}
        fields |= {"engine": self.settings.engine, "settings": self.settings.provenance()}
        if start is not None:
            fields["preconverged_from"] = start.valley_id
        valley_id = stable_id("valley", **fields)
        if self.reuse and (done := _stored("valleys", "valley_id", valley_id, ValleyDoc)):
            return done
        initial = (
            Structure.from_dict(start.structure)
            if start is not None
            else add_li(_as_structure(slab), site_cart_ang)
        )
        engine = _at_workdir(self.settings, surface_id, f"valley-{label}-{site_index}")
        result = ase_dynamics.relax(initial, engine, desc=f"valley {label}")
        li = result.structure[-1]
        valleys = np.asarray(valley_frac_xy)
        dist = in_plane_distances(result.structure, li.frac_coords[None, :2], valleys)[0]
        final = int(dist.argmin())
        moved = in_plane_distances(result.structure, li.frac_coords[None, :2], valleys[[site_index]])[0, 0]
        doc = ValleyDoc(
            valley_id=valley_id,
            surface_id=surface_id,
            site_id=site_id,
            site_index=site_index,
            label=label,
            binding_energy_ev=binding_energy_ev(slab_energy_ev, li_energy_ev, result.energy_ev),
            energy_ev=result.energy_ev,
            final_li_cart_ang=[float(x) for x in li.coords],
            final_site_index=final,
            left_valley=final != site_index,
            displacement_ang=float(moved),
            force_calls=result.force_calls,
            converged=result.converged,
            fmax_ev_ang=result.fmax_ev_ang,
            wall_time_s=result.wall_time_s,
            preconverged_from=None if start is None else start.valley_id,
            structure=result.structure.as_dict(),
            **_provenance(self.settings),
        )
        job_facade().upsert("valleys", [doc])
        return doc


@dataclass
class HopNebMaker(Maker):
    """CINEB between the two relaxed valleys of a hop (IDPP path or a preconverged one, climbing image).

    ``require_images``: a stored result without its image structures (made before they were kept)
    is recomputed instead of reused; a preconverged CINEB of another engine needs them.
    ``retry_unconverged``: a CINEB that ends unconverged runs once more from its last images with
    twice the step limit; if it still does not converge it is stored with ``converged = False``
    and left out of the labels (:mod:`epdi_ml.analysis.labels`).
    """

    name: str = "hop cineb"
    settings: Any = field(default_factory=ChgnetSettings)
    n_images: int = 3
    reuse: bool = True
    require_images: bool = False
    retry_unconverged: bool = True

    @job(config=STORE_ACCESS)
    def make(
        self,
        start: ValleyDoc | dict,
        end: ValleyDoc | dict,
        slab_energy_ev: float,
        li_energy_ev: float,
        hop_id: str,
        initial: NebDoc | dict | None = None,
    ) -> NebDoc:
        """Return the :class:`NebDoc` of the hop; unconverged runs are kept and flagged.

        ``initial`` is the converged CINEB of a cheaper engine (preconverge): its intermediate
        images are the starting path, and the result links to it.
        """
        initial = None if initial is None else _as_neb(initial)
        fields: dict[str, Any] = {"hop_id": hop_id, "engine": self.settings.engine}
        fields |= {"settings": self.settings.provenance(), "n_images": self.n_images}
        if initial is not None:
            fields["preconverged_from"] = initial.neb_id
        neb_id = stable_id("neb", **fields)
        done = _stored("nebs", "neb_id", neb_id, NebDoc) if self.reuse else None
        if done is not None and (done.image_structures or not self.require_images):
            return done
        start, end = _as_valley(start), _as_valley(end)
        path = None
        if initial is not None:
            if not initial.image_structures or len(initial.image_structures) != self.n_images + 2:
                raise ValueError(
                    f"preconverged CINEB {initial.neb_id} has no {self.n_images}-image path to start from"
                )
            path = [Structure.from_dict(d) for d in initial.image_structures[1:-1]]
        engine = _at_workdir(self.settings, start.surface_id, f"cineb-{hop_id}")
        ends = (Structure.from_dict(start.structure), Structure.from_dict(end.structure))
        progress = _progress_files(engine, neb_id)
        result = ase_dynamics.cineb(
            *ends, start.energy_ev, end.energy_ev, engine, self.n_images, "cineb", path, progress[0]
        )
        retries = 0
        if not result.converged and self.retry_unconverged:
            # once more from where it stopped, with twice the steps; still unconverged: kept and flagged
            retries = 1
            longer = dataclasses.replace(engine, max_steps=2 * engine.max_steps)
            first = result
            restart = first.images[1:-1]
            result = ase_dynamics.cineb(
                *ends,
                start.energy_ev,
                end.energy_ev,
                longer,
                self.n_images,
                "cineb retry",
                restart,
                checkpoint=progress[1],
            )
            result.force_calls += first.force_calls
            result.steps += first.steps
            result.wall_time_s += first.wall_time_s
        top = max(result.energies_ev)
        barriers = neb_barriers(result.energies_ev)
        doc = NebDoc(
            neb_id=neb_id,
            surface_id=start.surface_id,
            hop_id=hop_id,
            valley_ids=(start.valley_id, end.valley_id),
            image_energies_ev=result.energies_ev,
            saddle_binding_energy_ev=binding_energy_ev(slab_energy_ev, li_energy_ev, top),
            forward_barrier_ev=barriers.forward_barrier_ev,
            reverse_barrier_ev=barriers.reverse_barrier_ev,
            climbing_image=result.climbing_image,
            converged=result.converged,
            fmax_ev_ang=result.fmax_ev_ang,
            force_calls=result.force_calls,
            steps=result.steps,
            retries=retries,
            n_images=self.n_images,
            wall_time_s=result.wall_time_s,
            image_structures=[image.as_dict() for image in result.images],
            preconverged_from=None if initial is None else initial.neb_id,
            **_provenance(self.settings),
        )
        job_facade().upsert("nebs", [doc])
        for checkpoint in progress:
            if checkpoint is not None:
                checkpoint.remove()
        return doc


def _progress_files(engine: Any, neb_id: str) -> tuple[NebCheckpoint | None, NebCheckpoint | None]:
    """Progress files of a CINEB and of its retry, in the engine's log folder (none without one).

    Engines that write logs (GPAW) are the slow ones; a stopped run of theirs resumes from the last
    finished step (:mod:`workflows.engines.neb_checkpoint`). CHGNet runs take seconds and keep none.
    """
    workdir = getattr(engine, "workdir", None)
    if workdir is None:
        return None, None
    return (
        NebCheckpoint(Path(workdir) / "cineb-progress.json", neb_id),
        NebCheckpoint(Path(workdir) / "cineb-retry-progress.json", f"{neb_id}:retry"),
    )


def _as_structure(value: Structure | dict) -> Structure:
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def _as_valley(value: ValleyDoc | dict) -> ValleyDoc:
    return value if isinstance(value, ValleyDoc) else ValleyDoc(**value)


def _as_neb(value: NebDoc | dict) -> NebDoc:
    return value if isinstance(value, NebDoc) else NebDoc(**value)


@dataclass
class SurfaceHopsMaker(Maker):
    """Flow for hops of one surface: slab relax, Li reference, valley relaxations, one CINEB per hop.

    With ``hop_indices=None`` it computes every symmetry-distinct hop (the class representatives) and
    every valley class, i.e. the full set of labels of a surface; equivalent hops and valleys share
    these labels through their symmetry class.

    With ``preconverge`` (engine settings, e.g. CHGNet's), that engine runs the same flow first and
    the ``settings`` engine starts from its results: the slab from its relaxed slab, each valley
    from its relaxed valley, each CINEB from its converged images.
    """

    name: str = "surface hops"
    settings: Any = field(default_factory=ChgnetSettings)
    n_images: int = 3
    valley_classes: bool = True
    preconverge: Any = None
    keeps_images: bool = False  # the preconverging stage: its CINEBs must keep their image structures

    def make(self, bundle, hop_indices: list[int] | None = None) -> Flow:
        """Build the flow for ``hop_indices`` (default: the hop class representatives) of ``bundle``."""
        sid = bundle.surface.surface_id
        valley_docs = [s for s in bundle.sites if s.kind == "valley"]
        valley_xy = [list(v.frac_coords[:2]) for v in valley_docs]
        if hop_indices is None:
            hop_indices = sorted({h.symmetry.representative_index for h in bundle.hops})
        needed = {v for i in hop_indices for v in bundle.hops[i].valley_indices}
        if self.valley_classes:
            needed |= {v.symmetry.representative_index for v in valley_docs}
        jobs: list = []
        pre: dict[str, Any] = {"slab": None, "valleys": {}, "nebs": {}}
        if self.preconverge is not None:
            stage = SurfaceHopsMaker(
                settings=self.preconverge,
                n_images=self.n_images,
                valley_classes=self.valley_classes,
                keeps_images=True,
            )
            first = stage.make(bundle, hop_indices)
            first.name = f"preconverge {first.name}"
            jobs.append(first)
            pre = first.output
        slab_start = bundle.structure if pre["slab"] is None else pre["slab"].structure
        slab = SlabRelaxMaker(settings=self.settings).make(slab_start, sid)
        li = LiReferenceMaker(settings=self.settings).make()
        jobs += [slab, li]
        valleys = {}
        for v in sorted(needed):
            site = valley_docs[v]
            valleys[v] = ValleyRelaxMaker(settings=self.settings).make(
                slab.output.structure,
                slab.output.final_energy_ev,
                li.output.energy_ev,
                sid,
                site.site_id,
                v,
                site.label,
                site.cart_coords_ang,
                valley_xy,
                start=pre["valleys"][str(v)] if pre["slab"] is not None else None,
            )
            valleys[v].name = f"valley relax {site.label} {v}"
        nebs = {}
        for i in hop_indices:
            hop = bundle.hops[i]
            ends = [valleys[v].output for v in hop.valley_indices]
            neb = HopNebMaker(
                settings=self.settings, n_images=self.n_images, require_images=self.keeps_images
            ).make(
                *ends,
                slab.output.final_energy_ev,
                li.output.energy_ev,
                hop.hop_id,
                initial=pre["nebs"][str(i)] if pre["slab"] is not None else None,
            )
            neb.name = f"hop cineb {i}"
            nebs[i] = neb
        output = {
            "slab": slab.output,
            "valleys": {str(v): j.output for v, j in valleys.items()},
            "nebs": {str(i): j.output for i, j in nebs.items()},
        }
        jobs += [*valleys.values(), *nebs.values()]
        return Flow(jobs, output=output, name=f"{self.name} {sid}")
