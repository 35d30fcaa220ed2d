"""VASP job Makers of the neb step: atomate2 relaxations and CINEB for the hops of one surface.

The VASP counterparts of the Makers of :mod:`workflows.jobs.hops`, with the same arguments and
documents (the valley and CINEB jobs share their ``make`` through :mod:`workflows.jobs.base`);
:class:`~workflows.flows.surface_hops.SurfaceHopsMaker` builds the flow of a surface from them when
its engine is ``vasp``. Each job first looks for its document in the store (deterministic
id: surface, site or hop, engine, settings, preconverged start; :mod:`workflows.jobs.reuse`) and,
when it is missing, replaces itself with the atomate2 job and the job that turns its output into the
platform's document (:mod:`workflows.jobs.vasp_documents`):

- :class:`VaspSlabRelaxMaker`: ``RelaxMaker`` of the bare slab, E(slab);
- :class:`VaspLiReferenceMaker`: ``StaticMaker`` of the isolated Li atom, E(Li), shared by surfaces;
- :class:`VaspValleyRelaxMaker`: ``RelaxMaker`` of Li at a valley (or from a CHGNet valley);
- :class:`VaspHopNebMaker`: climbing-image NEB (``VaspNEBJob``) between the two VASP valleys, from an
  IDPP path or from the converged CHGNet images (written as the ``01`` .. ``0N-1`` POSCARs).

So E_b comes from one engine and one set of settings, a rerun reuses every finished VASP job, and
with ``preconverge: chgnet`` each VASP result links to the CHGNet one it started from
(``preconverged_from``).

The atomate2 jobs run VASP in their own job folder: run the flow with ``run_locally(...,
create_folders=True)`` or through FireWorks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Response, job
from pymatgen.core import Structure

from stores.facade import STORE_ACCESS
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.engines.vasp_dynamics import VaspDynamicsSettings
from workflows.engines.vasp_inputs import idpp_images, vasp_ordered
from workflows.jobs.base import BaseHopNebMaker, BaseValleyRelaxMaker, NebTask, ReusingMaker, ValleyTask
from workflows.jobs.reuse import (
    as_calculation,
    as_structure,
    li_reference_id,
    preconverged_images,
    slab_calc_id,
    slab_start,
)
from workflows.jobs.vasp_documents import li_reference_document, neb_document, slab_document, valley_document


def _replace(calc: Any, document: Any) -> Response:
    """Run the atomate2 job ``calc`` then ``document``; the flow's output is the document."""
    return Response(replace=Flow([calc, document], output=document.output, name=calc.name))


@dataclass
class VaspSlabRelaxMaker(ReusingMaker):
    """VASP relaxation of the bare slab (cell fixed, bottom layer held); its energy is E(slab)."""

    name: str = "vasp slab relax"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)

    @job(config=STORE_ACCESS)
    def make(
        self, structure: Structure | dict, surface_id: str, start: CalculationDoc | dict | None = None
    ) -> CalculationDoc | Response:
        """Return the stored :class:`CalculationDoc`, or run the relaxation that makes it.

        ``structure`` is the built slab of ``surface_id``; ``start`` (the CHGNet relaxed slab)
        gives the starting structure instead, and the ``preconverged_from`` link.
        """
        start = as_calculation(start)
        initial = self.settings.constrained(slab_start(structure, start))
        calc_id = slab_calc_id("vasp", surface_id, self.settings.provenance(), start)
        if done := self.finished(CalculationDoc, calc_id):
            return done
        relax = self.settings.slab_relax_maker(self.name).make(initial)
        started = None if start is None else start.calc_id
        document = slab_document(relax.output, initial, calc_id, surface_id, self.settings, started)
        return _replace(relax, document)


@dataclass
class VaspLiReferenceMaker(ReusingMaker):
    """VASP energy of the isolated, spin-polarised Li atom in a box, cached in the store."""

    name: str = "vasp li atom"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)

    @job(config=STORE_ACCESS)
    def make(self) -> LiReferenceDoc | Response:
        """Return the cached reference, or run the static that makes it."""
        reference_id = li_reference_id("vasp", self.settings.reference_settings())
        if done := self.finished(LiReferenceDoc, reference_id):
            return done
        static = self.settings.li_atom_maker(self.name).make(self.settings.li_atom())
        return _replace(static, li_reference_document(static.output, reference_id, self.settings))


@dataclass
class VaspValleyRelaxMaker(BaseValleyRelaxMaker):
    """VASP relaxation of Li placed at a valley (arguments: :class:`.BaseValleyRelaxMaker`).

    ``start`` (a CHGNet valley) gives the starting structure and the ``preconverged_from`` link.
    """

    name: str = "vasp valley relax"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)

    def relax_valley(self, task: ValleyTask) -> Response:
        """Replace the job with atomate2's ``RelaxMaker`` and the job that makes the document."""
        initial = self.settings.constrained(task.initial)
        relax = self.settings.valley_relax_maker(self.name).make(initial)
        where = (task.site, task.valley_frac_xy, task.reference_ev)
        document = valley_document(
            relax.output, initial, task.doc_id, *where, self.settings, task.preconverged_from
        )
        return _replace(relax, document)


@dataclass
class VaspHopNebMaker(BaseHopNebMaker):
    """VASP climbing-image NEB between the two VASP valleys of a hop (IDPP or a preconverged path)."""

    name: str = "vasp cineb"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)

    def path(self, start: ValleyDoc, end: ValleyDoc, initial: NebDoc | None) -> list[Structure]:
        """The starting images, end points included, with one atom order and the bottom layer held.

        The end points are the VASP valleys; the intermediate images are ``initial``'s converged
        images moved onto them (preconverge) or an IDPP interpolation.
        """
        ends = [self.settings.constrained(as_structure(v.structure)) for v in (start, end)]
        if initial is not None:
            middle = preconverged_images(initial, self.n_images, (ends[0], ends[1]), order=vasp_ordered)
        else:
            middle = idpp_images(vasp_ordered(ends[0]), vasp_ordered(ends[1]), self.n_images)[1:-1]
        flags = ends[0].site_properties.get("selective_dynamics")
        images = [ends[0]]
        for image in middle:
            image = self.settings.constrained(image)
            if flags is not None:  # one set of fixed atoms for the whole path
                image.add_site_property("selective_dynamics", flags)
            images.append(image)
        return [*images, ends[1]]

    def run_neb(self, task: NebTask) -> Response:
        """Replace the job with the VASP NEB job and the job that makes the document."""
        images = self.path(task.start, task.end, task.initial)
        neb = self.settings.neb_maker(self.name).make(images)
        hop = (task.start, task.end, task.reference_ev, task.hop_id)
        document = neb_document(neb.output, images, task.doc_id, *hop, self.settings, task.preconverged_from)
        return _replace(neb, document)
