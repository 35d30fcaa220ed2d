"""The neb step with engine ``vasp``: atomate2 VASP relaxations and CINEB for the hops of one surface.

:class:`VaspSurfaceHopsMaker` is the VASP counterpart of :class:`~workflows.jobs.hops.SurfaceHopsMaker`
(same ``make(bundle, hop_indices)`` and the same flow output), built from four Makers whose jobs
first look for their document in the store (deterministic id: surface, site or hop, engine,
settings, preconverged start) and, when it is missing, replace themselves with the atomate2 job and
the job that turns its output into the platform's document (:mod:`workflows.jobs.vasp_documents`):

- :class:`VaspSlabRelaxMaker`: ``RelaxMaker`` of the bare slab, E(slab);
- :class:`VaspLiReferenceMaker`: ``StaticMaker`` of the isolated Li atom, E(Li), shared by surfaces;
- :class:`VaspValleyRelaxMaker`: ``RelaxMaker`` of Li at a valley (or from a CHGNet valley);
- :class:`VaspHopNebMaker`: climbing-image NEB (``VaspNEBJob``) between the two VASP valleys, from an
  IDPP path or from the converged CHGNet images (written as the ``01`` .. ``0N-1`` POSCARs).

So E_b comes from one engine and one set of settings, a rerun reuses every finished VASP job, and
``preconverge: chgnet`` runs :class:`~workflows.jobs.hops.SurfaceHopsMaker` with CHGNet first and links
each VASP result to the CHGNet one it started from (``preconverged_from``).

The atomate2 jobs run VASP in their own job folder: run the flow with ``run_locally(...,
create_folders=True)`` or through FireWorks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, Response, job
from pymatgen.core import Structure

from stores.facade import STORE_ACCESS, job_facade
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.engines.vasp_dynamics import VaspDynamicsSettings
from workflows.engines.vasp_inputs import idpp_images, vasp_ordered
from workflows.jobs.hops import SurfaceHopsMaker
from workflows.jobs.vasp_documents import li_reference_document, neb_document, slab_document, valley_document
from workflows.structures.li_sites import add_li


def _stored(collection: str, key: str, value: str, cls: type) -> Any:
    docs = job_facade().query(collection, {key: value})
    return cls(**docs[0]) if docs else None


def _structure(value: Structure | dict) -> Structure:
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def _replace(calc: Any, document: Any) -> Response:
    """Run the atomate2 job ``calc`` then ``document``; the flow's output is the document."""
    return Response(replace=Flow([calc, document], output=document.output, name=calc.name))


@dataclass
class VaspSlabRelaxMaker(Maker):
    """VASP relaxation of the bare slab (cell fixed, bottom layer held); its energy is E(slab)."""

    name: str = "vasp slab relax"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)
    reuse: bool = True

    @job(config=STORE_ACCESS)
    def make(self, structure: Structure | dict, surface_id: str) -> CalculationDoc | Response:
        """Return the stored :class:`CalculationDoc`, or run the relaxation that makes it."""
        initial = self.settings.constrained(_structure(structure))
        calc_id = stable_id(
            "calc",
            kind="relax",
            engine="vasp",
            structure=vasp_ordered(initial).as_dict()["sites"],
            settings=self.settings.provenance(),
        )
        if self.reuse and (done := _stored("calculations", "calc_id", calc_id, CalculationDoc)):
            return done
        relax = self.settings.slab_relax_maker(self.name).make(initial)
        return _replace(relax, slab_document(relax.output, initial, calc_id, surface_id, self.settings))


@dataclass
class VaspLiReferenceMaker(Maker):
    """VASP energy of the isolated, spin-polarised Li atom in a box, cached in the store."""

    name: str = "vasp li atom"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)
    reuse: bool = True

    @job(config=STORE_ACCESS)
    def make(self) -> LiReferenceDoc | Response:
        """Return the cached reference, or run the static that makes it."""
        reference_id = stable_id("liref", engine="vasp", **self.settings.reference_settings())
        if self.reuse and (done := _stored("li_references", "reference_id", reference_id, LiReferenceDoc)):
            return done
        static = self.settings.li_atom_maker(self.name).make(self.settings.li_atom())
        return _replace(static, li_reference_document(static.output, reference_id, self.settings))


@dataclass
class VaspValleyRelaxMaker(Maker):
    """VASP relaxation of Li placed at a valley (or started from a cheaper engine's relaxed valley)."""

    name: str = "vasp valley relax"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)
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
    ) -> ValleyDoc | Response:
        """Return the stored :class:`ValleyDoc`, or run the relaxation that makes it.

        Arguments are those of :class:`~workflows.jobs.hops.ValleyRelaxMaker`; ``start`` (a CHGNet
        valley) gives the starting structure and the ``preconverged_from`` link.
        """
        start = None if start is None else start if isinstance(start, ValleyDoc) else ValleyDoc(**start)
        fields: dict[str, Any] = {"surface_id": surface_id, "site_id": site_id}
        fields |= {"engine": "vasp", "settings": self.settings.provenance()}
        if start is not None:
            fields["preconverged_from"] = start.valley_id
        valley_id = stable_id("valley", **fields)
        if self.reuse and (done := _stored("valleys", "valley_id", valley_id, ValleyDoc)):
            return done
        first = _structure(start.structure) if start else add_li(_structure(slab), site_cart_ang)
        initial = self.settings.constrained(first)
        relax = self.settings.valley_relax_maker(self.name).make(initial)
        site = {"surface_id": surface_id, "site_id": site_id, "site_index": site_index, "label": label}
        document = valley_document(
            relax.output,
            initial,
            valley_id,
            slab_energy_ev,
            li_energy_ev,
            site,
            valley_frac_xy,
            self.settings,
            None if start is None else start.valley_id,
        )
        return _replace(relax, document)


@dataclass
class VaspHopNebMaker(Maker):
    """VASP climbing-image NEB between the two VASP valleys of a hop (IDPP or a preconverged path)."""

    name: str = "vasp cineb"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)
    n_images: int = 3
    reuse: bool = True

    def path(self, start: ValleyDoc, end: ValleyDoc, initial: NebDoc | None) -> list[Structure]:
        """The starting images, end points included, with one atom order and the bottom layer held.

        The end points are the VASP valleys; the intermediate images are ``initial``'s converged
        images (preconverge) or an IDPP interpolation.
        """
        ends = [self.settings.constrained(_structure(v.structure)) for v in (start, end)]
        if initial is not None:
            if not initial.image_structures or len(initial.image_structures) != self.n_images + 2:
                raise ValueError(
                    f"preconverged CINEB {initial.neb_id} has no {self.n_images}-image path to start from"
                )
            middle = [_structure(s) for s in initial.image_structures[1:-1]]
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

    @job(config=STORE_ACCESS)
    def make(
        self,
        start: ValleyDoc | dict,
        end: ValleyDoc | dict,
        slab_energy_ev: float,
        li_energy_ev: float,
        hop_id: str,
        initial: NebDoc | dict | None = None,
    ) -> NebDoc | Response:
        """Return the stored :class:`NebDoc`, or run the CINEB that makes it."""
        start = start if isinstance(start, ValleyDoc) else ValleyDoc(**start)
        end = end if isinstance(end, ValleyDoc) else ValleyDoc(**end)
        initial = None if initial is None else initial if isinstance(initial, NebDoc) else NebDoc(**initial)
        fields: dict[str, Any] = {"hop_id": hop_id, "engine": "vasp"}
        fields |= {"settings": self.settings.provenance(), "n_images": self.n_images}
        if initial is not None:
            fields["preconverged_from"] = initial.neb_id
        neb_id = stable_id("neb", **fields)
        if self.reuse and (done := _stored("nebs", "neb_id", neb_id, NebDoc)):
            return done
        images = self.path(start, end, initial)
        neb = self.settings.neb_maker(self.name).make(images)
        document = neb_document(
            neb.output,
            start,
            end,
            images,
            slab_energy_ev,
            li_energy_ev,
            hop_id,
            neb_id,
            self.settings,
            None if initial is None else initial.neb_id,
        )
        return _replace(neb, document)


@dataclass
class VaspSurfaceHopsMaker(Maker):
    """Flow for hops of one surface with VASP: slab, Li reference, valleys, one CINEB per hop.

    Same interface and output as :class:`~workflows.jobs.hops.SurfaceHopsMaker`. With ``preconverge``
    (CHGNet settings) the CHGNet flow runs first, keeping its CINEB images, and VASP starts from its
    slab, valleys and converged images.
    """

    name: str = "vasp surface hops"
    settings: VaspDynamicsSettings = field(default_factory=VaspDynamicsSettings)
    n_images: int = 3
    valley_classes: bool = True
    preconverge: Any = None

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
        pre: dict[str, Any] | None = None
        if self.preconverge is not None:
            stage = SurfaceHopsMaker(
                settings=self.preconverge,
                n_images=self.n_images,
                valley_classes=self.valley_classes,
                keeps_images=True,
            ).make(bundle, hop_indices)
            stage.name = f"preconverge {stage.name}"
            jobs.append(stage)
            pre = stage.output
        slab = VaspSlabRelaxMaker(settings=self.settings).make(
            bundle.structure if pre is None else pre["slab"].structure, sid
        )
        li = VaspLiReferenceMaker(settings=self.settings).make()
        jobs += [slab, li]
        valleys = {}
        for v in sorted(needed):
            site = valley_docs[v]
            name = f"vasp valley relax {site.label} {v}"
            valleys[v] = VaspValleyRelaxMaker(name=name, settings=self.settings).make(
                slab.output.structure,
                slab.output.final_energy_ev,
                li.output.energy_ev,
                sid,
                site.site_id,
                v,
                site.label,
                site.cart_coords_ang,
                valley_xy,
                start=None if pre is None else pre["valleys"][str(v)],
            )
            valleys[v].name = name
        nebs = {}
        for i in hop_indices:
            hop = bundle.hops[i]
            maker = VaspHopNebMaker(name=f"vasp cineb {i}", settings=self.settings, n_images=self.n_images)
            nebs[i] = maker.make(
                *(valleys[v].output for v in hop.valley_indices),
                slab.output.final_energy_ev,
                li.output.energy_ev,
                hop.hop_id,
                initial=None if pre is None else pre["nebs"][str(i)],
            )
            nebs[i].name = maker.name
        jobs += [*valleys.values(), *nebs.values()]
        output = {
            "slab": slab.output,
            "valleys": {str(v): j.output for v, j in valleys.items()},
            "nebs": {str(i): j.output for i, j in nebs.items()},
        }
        return Flow(jobs, output=output, name=f"{self.name} {sid}")


def chgnet_path(bundle, hop_index: int, n_images: int, settings: Any) -> NebDoc:
    """The converged CHGNet CINEB of one hop (its two valleys relaxed first), reusing the store.

    For VASP runs by hand (``epdi vasp inputs --kind neb --preconverge chgnet``): its
    ``image_structures`` (end points included) are the ``00`` .. ``0N`` POSCARs of the VASP NEB.
    """
    from jobflow.managers.local import run_locally

    from workflows.structures.surfaces import store_surfaces

    facade = job_facade()
    store_surfaces([bundle], facade)
    maker = SurfaceHopsMaker(settings=settings, n_images=n_images, valley_classes=False, keeps_images=True)
    flow = maker.make(bundle, [hop_index])
    responses = run_locally(flow, store=facade.job_store(), log=False, ensure_success=True)
    docs = [r[1].output for r in responses.values() if isinstance(r[1].output, NebDoc)]
    (neb,) = [d for d in docs if d.hop_id == bundle.hops[hop_index].hop_id]
    return neb
