"""jobflow Makers for the physics steps: slab relaxation, Li reference, valley relaxation, CINEB.

Each Maker is an atomate2-style dataclass whose ``make`` returns a jobflow Job. Jobs return pydantic
documents (see :mod:`stores.schemas.calculations`) and also upsert them into the platform collections, so
``epdi query`` sees them whichever way the flow ran (locally or through FireWorks).

The engine is configuration: ``settings`` is a :class:`~workflows.engines.chgnet_engine.ChgnetSettings`
(CHGNet + D3, the embedded default) or a
:class:`~workflows.engines.gpaw_dynamics.GpawDynamicsSettings` (GPAW PBE + D3); both run the ASE
relaxations and CINEB of :mod:`workflows.engines.ase_dynamics`. Every document records the engine,
functional, settings and package versions, and its id hashes the engine and settings, so labels of
two engines or settings never overwrite each other (ids, look-ups and starting points shared with
the VASP Makers of :mod:`workflows.jobs.vasp_hops` live in :mod:`workflows.jobs.reuse`). GPAW
statics are in :mod:`workflows.jobs.static`; the flow of one surface's hops, for every engine, is
:class:`workflows.flows.surface_hops.SurfaceHopsMaker`.

``start`` of a valley and ``initial`` of a CINEB are the preconverged results of a cheaper engine
(CHGNet): the relaxation starts from the CHGNet valley, the CINEB from the converged CHGNet images
moved onto its own end points (:func:`workflows.jobs.reuse.preconverged_images`), and the document
links to them (``preconverged_from``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobflow import job
from pymatgen.core import Structure

from stores.facade import STORE_ACCESS, job_facade
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.neb_checkpoint import NebCheckpoint
from workflows.jobs.base import BaseHopNebMaker, BaseValleyRelaxMaker, NebTask, ReusingMaker, ValleyTask
from workflows.jobs.binding import neb_fields, run_stats, valley_fields
from workflows.jobs.reuse import (
    as_calculation,
    li_reference_id,
    preconverged_images,
    slab_calc_id,
    slab_start,
)


def _at_workdir(settings: Any, surface_id: str | None, what: str) -> Any:
    """The engine settings with their log folder set (``calcs/<surface>/<engine>-<what>``)."""
    if not hasattr(settings, "at"):
        return settings
    folder = job_facade().settings.folder("calcs", surface_id or "reference")
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
class SlabRelaxMaker(ReusingMaker):
    """Relax the bare slab (cell fixed); its energy is E(slab) of every binding energy."""

    name: str = "slab relax"
    settings: Any = field(default_factory=ChgnetSettings)

    @job(config=STORE_ACCESS)
    def make(
        self, structure: Structure | dict, surface_id: str, start: CalculationDoc | dict | None = None
    ) -> CalculationDoc:
        """Return a :class:`CalculationDoc` of the relaxed slab (a stored one when ``reuse``).

        ``structure`` is the built slab of ``surface_id``; ``start`` (a cheaper engine's relaxed
        slab) gives the starting structure instead, and the ``preconverged_from`` link.
        """
        start = as_calculation(start)
        structure = slab_start(structure, start)
        calc_id = slab_calc_id(self.settings.engine, surface_id, self.settings.provenance(), start)
        if done := self.finished(CalculationDoc, calc_id):
            return done
        engine = _at_workdir(self.settings, surface_id, "slab")
        checkpoint = _progress_file(engine, "relax-progress.json", calc_id)
        result = ase_dynamics.relax(structure, engine, desc="slab", checkpoint=checkpoint)
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
            preconverged_from=None if start is None else start.calc_id,
        )
        job_facade().upsert("calculations", [doc])
        if checkpoint is not None:
            checkpoint.remove()
        return doc


@dataclass
class LiReferenceMaker(ReusingMaker):
    """Energy of the isolated Li atom for the engine settings, cached in the store."""

    name: str = "li reference"
    settings: Any = field(default_factory=ChgnetSettings)

    @job(config=STORE_ACCESS)
    def make(self) -> LiReferenceDoc:
        """Return the cached reference, computing it the first time."""
        reference_id = li_reference_id(self.settings.engine, self.settings.reference_settings())
        if done := self.finished(LiReferenceDoc, reference_id):
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
class ValleyRelaxMaker(BaseValleyRelaxMaker):
    """Relax Li placed at a valley with an ASE engine (arguments: :class:`.BaseValleyRelaxMaker`)."""

    name: str = "valley relax"
    settings: Any = field(default_factory=ChgnetSettings)

    def relax_valley(self, task: ValleyTask) -> ValleyDoc:
        """Relax with :func:`workflows.engines.ase_dynamics.relax`, store and return the document."""
        label, site_index = task.site["label"], task.site["site_index"]
        engine = _at_workdir(self.settings, task.site["surface_id"], f"valley-{label}-{site_index}")
        checkpoint = _progress_file(engine, "relax-progress.json", task.doc_id)
        result = ase_dynamics.relax(task.initial, engine, desc=f"valley {label}", checkpoint=checkpoint)
        what = f"{self.settings.engine} valley relaxation {label} {site_index}"
        fields = valley_fields(
            result.structure, result.energy_ev, task.site, task.valley_frac_xy, task.reference_ev, what
        )
        doc = ValleyDoc(
            valley_id=task.doc_id,
            **fields,
            **run_stats(result),
            preconverged_from=task.preconverged_from,
            **_provenance(self.settings),
        )
        job_facade().upsert("valleys", [doc])
        if checkpoint is not None:
            checkpoint.remove()
        return doc


@dataclass
class HopNebMaker(BaseHopNebMaker):
    """CINEB of a hop with an ASE engine (arguments: :class:`.BaseHopNebMaker`).

    ``retry_unconverged``: a CINEB that ends unconverged runs once more from its last images with
    twice the step limit; if it still does not converge it is stored with ``converged = False``
    and left out of the labels (:mod:`epdi_ml.analysis.labels`). ``optimizer``: a key of
    :data:`workflows.engines.ase_dynamics.CINEB_OPTIMIZERS`, recorded in the document but not in its
    id (a converged CINEB does not depend on it, so a stored one is reused whichever ran it).
    """

    name: str = "hop cineb"
    settings: Any = field(default_factory=ChgnetSettings)
    retry_unconverged: bool = True
    optimizer: str = "fire"

    def run_neb(self, task: NebTask) -> NebDoc:
        """Run :func:`workflows.engines.ase_dynamics.cineb`, store and return the document."""
        start, end = task.start, task.end
        valleys = (Structure.from_dict(start.structure), Structure.from_dict(end.structure))
        path = None if task.initial is None else preconverged_images(task.initial, self.n_images, valleys)
        start_path = "" if task.initial is not None else "-idpp"  # each CINEB of a hop keeps its own logs
        engine = _at_workdir(self.settings, start.surface_id, f"cineb-{task.hop_id}{start_path}")
        ends = (*valleys, start.energy_ev, end.energy_ev)
        progress = (
            _progress_file(engine, "cineb-progress.json", task.doc_id),
            _progress_file(engine, "cineb-retry-progress.json", f"{task.doc_id}:retry"),
        )
        result = ase_dynamics.cineb(
            *ends, engine, self.n_images, "cineb", path, progress[0], optimizer=self.optimizer
        )
        retries = 0
        if not result.converged and self.retry_unconverged:
            # once more from where it stopped, with twice the steps; still unconverged: kept and flagged
            retries = 1
            longer = dataclasses.replace(engine, max_steps=2 * engine.max_steps)
            first = result
            result = ase_dynamics.cineb(
                *ends,
                longer,
                self.n_images,
                "cineb retry",
                first.images[1:-1],
                progress[1],
                optimizer=self.optimizer,
            )
            result.force_calls += first.force_calls
            result.steps += first.steps
            result.wall_time_s += first.wall_time_s
        doc = NebDoc(
            neb_id=task.doc_id,
            surface_id=start.surface_id,
            hop_id=task.hop_id,
            valley_ids=(start.valley_id, end.valley_id),
            **neb_fields(result.energies_ev, task.reference_ev),
            climbing_image=result.climbing_image,
            **run_stats(result),
            steps=result.steps,
            retries=retries,
            optimizer=self.optimizer,
            n_images=self.n_images,
            image_structures=[image.as_dict() for image in result.images],
            preconverged_from=task.preconverged_from,
            **_provenance(self.settings),
        )
        job_facade().upsert("nebs", [doc])
        for checkpoint in progress:
            if checkpoint is not None:
                checkpoint.remove()
        return doc


def _progress_file(engine: Any, name: str, key: str) -> NebCheckpoint | None:
    """The progress file ``name`` of a relaxation or CINEB in the engine's log folder (none without one).

    Engines that write logs (GPAW) are the slow ones; a stopped run of theirs resumes from the last
    finished step (:mod:`workflows.engines.neb_checkpoint`). CHGNet runs take seconds and keep none.
    ``key`` is the document id, so a file of another run is never taken over.
    """
    workdir = getattr(engine, "workdir", None)
    return None if workdir is None else NebCheckpoint(Path(workdir) / name, key)
