"""The flow of one surface's hops, for every engine: slab, Li reference, valley relaxations, CINEBs.

:class:`SurfaceHopsMaker` builds the same flow (same jobs, links and output) whatever the engine of
its ``settings``: the ASE-engine Makers of :mod:`workflows.jobs.hops` for CHGNet + D3 and GPAW, the
atomate2 Makers of :mod:`workflows.jobs.vasp_hops` for VASP (imported only then). With
``preconverge`` (CHGNet settings) the same flow runs first with that engine, keeping its CINEB
images, and the costlier engine starts from its results: the slab from the CHGNet slab, each valley
from the CHGNet valley, each CINEB from the converged CHGNet images (linked by
``preconverged_from``).

The output is ``{"slab": CalculationDoc, "valleys": {index: ValleyDoc}, "nebs": {index: NebDoc}}``
(valley and hop indices as strings), so later jobs of a campaign read it the same way for every
engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker

from stores.facade import job_facade
from stores.schemas.calculations import NebDoc
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.jobs.hops import HopNebMaker, LiReferenceMaker, SlabRelaxMaker, ValleyRelaxMaker


@dataclass(frozen=True)
class _JobMakers:
    """The four job Makers of one engine and the job names they get in a flow."""

    slab: Maker
    li_reference: Maker
    valley: type[Maker]
    neb: type[Maker]
    prefix: str  # of job names: "" (CHGNet, GPAW) or "vasp "
    neb_name: str  # "hop cineb" or "vasp cineb"


def _job_makers(settings: Any) -> _JobMakers:
    if getattr(settings, "engine", None) == "vasp":
        from workflows.jobs.vasp_hops import (
            VaspHopNebMaker,
            VaspLiReferenceMaker,
            VaspSlabRelaxMaker,
            VaspValleyRelaxMaker,
        )

        return _JobMakers(
            VaspSlabRelaxMaker(settings=settings),
            VaspLiReferenceMaker(settings=settings),
            VaspValleyRelaxMaker,
            VaspHopNebMaker,
            "vasp ",
            "vasp cineb",
        )
    return _JobMakers(
        SlabRelaxMaker(settings=settings),
        LiReferenceMaker(settings=settings),
        ValleyRelaxMaker,
        HopNebMaker,
        "",
        "hop cineb",
    )


@dataclass
class SurfaceHopsMaker(Maker):
    """Flow for hops of one surface: slab relax, Li reference, valley relaxations, one CINEB per hop.

    With ``hop_indices=None`` it computes every symmetry-distinct hop (the class representatives) and
    every valley class (``valley_classes``), i.e. the full set of labels of a surface; equivalent hops
    and valleys share these labels through their symmetry class.

    Parameters
    ----------
    settings
        Engine settings: :class:`~workflows.engines.chgnet_engine.ChgnetSettings`,
        :class:`~workflows.engines.gpaw_dynamics.GpawDynamicsSettings` or
        :class:`~workflows.engines.vasp_dynamics.VaspDynamicsSettings`.
    n_images
        Intermediate CINEB images.
    valley_classes
        Relax every valley class, not only the end valleys of the chosen hops.
    preconverge
        Settings of a cheaper engine that runs the same flow first (``None``: no preconverging).
    keeps_images
        Reuse a stored CINEB only when it kept its image structures (the preconverging stage: the
        costlier engine starts from them).
    neb_optimizer
        ASE optimiser of the CINEBs (CHGNet, GPAW; both stages), a key of
        :data:`workflows.engines.ase_dynamics.CINEB_OPTIMIZERS`; VASP NEBs use their INCAR's.
    """

    name: str = "surface hops"
    settings: Any = field(default_factory=ChgnetSettings)
    n_images: int = 3
    valley_classes: bool = True
    preconverge: Any = None
    keeps_images: bool = False
    neb_optimizer: str = "fire"

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
        makers = _job_makers(self.settings)
        jobs: list = []
        pre = None
        if self.preconverge is not None:
            stage = SurfaceHopsMaker(
                settings=self.preconverge,
                n_images=self.n_images,
                valley_classes=self.valley_classes,
                keeps_images=True,
                neb_optimizer=self.neb_optimizer,
            ).make(bundle, hop_indices)
            stage.name = f"preconverge {stage.name}"
            jobs.append(stage)
            pre = stage.output
        slab = makers.slab.make(bundle.structure, sid, start=None if pre is None else pre["slab"])
        li = makers.li_reference.make()
        jobs += [slab, li]
        valleys = {}
        for v in sorted(needed):
            site = valley_docs[v]
            name = f"{makers.prefix}valley relax {site.label} {v}"
            valleys[v] = makers.valley(name=name, settings=self.settings).make(
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
            options = (
                {"require_images": self.keeps_images, "optimizer": self.neb_optimizer}
                if makers.neb is HopNebMaker
                else {}
            )
            maker = makers.neb(
                name=f"{makers.neb_name} {i}", settings=self.settings, n_images=self.n_images, **options
            )
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
        return Flow(jobs, output=output, name=f"{makers.prefix}{self.name} {sid}")


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
