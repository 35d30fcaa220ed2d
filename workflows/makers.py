"""jobflow Makers for the physics steps: slab relaxation, Li reference, valley relaxation, CINEB.

Each Maker is an atomate2-style dataclass whose ``make`` returns a jobflow Job. Jobs return pydantic
documents (see :mod:`stores.calc_documents`) and also upsert them into the platform collections, so
``epdi query`` sees them whichever way the flow ran (locally or through FireWorks).

These Makers run the ``chgnet`` engine (the embedded default for energies, relaxations and CINEB).
VASP steps use atomate2's own Makers configured in :mod:`workflows.engines.vasp_engine`; GPAW
statics are in :mod:`workflows.static_maker`.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import numpy as np
from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from epdi_ml.barriers import neb_barriers
from stores.calc_documents import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from stores.facade import StoreFacade
from stores.ids import stable_id
from workflows.engines.chgnet_engine import ChgnetSettings, cineb, li_atom_energy, relax
from workflows.li_sites import add_li
from workflows.site_graph import in_plane_distances


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("chgnet", "dftd3", "ase", "pymatgen", "jobflow")} | {
        "python": platform.python_version()
    }


def _stored(collection: str, key: str, value: str, cls):
    """The stored document ``cls`` with ``key == value``, or ``None``; reruns reuse finished jobs."""
    docs = StoreFacade().query(collection, {key: value})
    return cls(**docs[0]) if docs else None


def binding_energy_ev(slab_energy_ev: float, li_energy_ev: float, total_energy_ev: float) -> float:
    """E_b = E(slab) + E(Li atom) - E(slab + Li) in eV; positive means bound (DESIGN.md)."""
    return slab_energy_ev + li_energy_ev - total_energy_ev


@dataclass
class SlabRelaxMaker(Maker):
    """Relax the bare slab (cell fixed); its energy is E(slab) of every binding energy."""

    name: str = "slab relax"
    settings: ChgnetSettings = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job
    def make(self, structure: Structure | dict, surface_id: str | None = None) -> CalculationDoc:
        """Return a :class:`CalculationDoc` of the relaxed slab (a stored one when ``reuse``)."""
        structure = _as_structure(structure)
        calc_id = stable_id(
            "calc",
            kind="relax",
            engine="chgnet",
            structure=structure.as_dict()["sites"],
            settings=self.settings.provenance(),
        )
        if self.reuse and (done := _stored("calculations", "calc_id", calc_id, CalculationDoc)):
            return done
        result = relax(structure, self.settings, desc="slab")
        doc = CalculationDoc(
            calc_id=calc_id,
            kind="relax",
            engine="chgnet",
            functional=self.settings.functional,
            surface_id=surface_id,
            formula=result.structure.composition.formula,
            natoms=len(result.structure),
            final_energy_ev=result.energy_ev,
            structure=result.structure.as_dict(),
            settings=self.settings.provenance(),
            converged=result.converged,
            force_calls=result.force_calls,
            wall_time_s=result.wall_time_s,
            versions=_versions(),
        )
        StoreFacade().upsert("calculations", [doc])
        return doc


@dataclass
class LiReferenceMaker(Maker):
    """Energy of the isolated Li atom for the engine settings, cached in the store."""

    name: str = "li reference"
    settings: ChgnetSettings = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job
    def make(self) -> LiReferenceDoc:
        """Return the cached reference, computing it the first time."""
        reference_id = stable_id("liref", engine="chgnet", d3=self.settings.d3)
        if self.reuse and (done := _stored("li_references", "reference_id", reference_id, LiReferenceDoc)):
            return done
        facade = StoreFacade()
        doc = LiReferenceDoc(
            reference_id=reference_id,
            engine="chgnet",
            settings={"d3": self.settings.d3, "box_ang": 15.0},
            energy_ev=li_atom_energy(self.settings),
        )
        facade.upsert("li_references", [doc])
        return doc


@dataclass
class ValleyRelaxMaker(Maker):
    """Relax Li placed at a valley; record E_b, the final site and whether Li left its valley."""

    name: str = "valley relax"
    settings: ChgnetSettings = field(default_factory=ChgnetSettings)
    reuse: bool = True

    @job
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
    ) -> ValleyDoc:
        """Return the :class:`ValleyDoc` of Li relaxed from ``site_cart_ang``.

        ``valley_frac_xy`` holds the fractional in-plane coordinates of every valley of the surface,
        to find the valley nearest to where Li ended.
        """
        valley_id = stable_id(
            "valley",
            surface_id=surface_id,
            site_id=site_id,
            engine="chgnet",
            settings=self.settings.provenance(),
        )
        if self.reuse and (done := _stored("valleys", "valley_id", valley_id, ValleyDoc)):
            return done
        slab = _as_structure(slab)
        result = relax(add_li(slab, site_cart_ang), self.settings, desc=f"valley {label}")
        li = result.structure[-1]
        valleys = np.asarray(valley_frac_xy)
        dist = in_plane_distances(result.structure, li.frac_coords[None, :2], valleys)[0]
        final = int(dist.argmin())
        start = in_plane_distances(result.structure, li.frac_coords[None, :2], valleys[[site_index]])[0, 0]
        doc = ValleyDoc(
            valley_id=valley_id,
            surface_id=surface_id,
            site_id=site_id,
            site_index=site_index,
            label=label,
            engine="chgnet",
            binding_energy_ev=binding_energy_ev(slab_energy_ev, li_energy_ev, result.energy_ev),
            energy_ev=result.energy_ev,
            final_li_cart_ang=[float(x) for x in li.coords],
            final_site_index=final,
            left_valley=final != site_index,
            displacement_ang=float(start),
            force_calls=result.force_calls,
            converged=result.converged,
            structure=result.structure.as_dict(),
        )
        StoreFacade().upsert("valleys", [doc])
        return doc


@dataclass
class HopNebMaker(Maker):
    """CINEB between the two relaxed valleys of a hop (IDPP path, climbing image)."""

    name: str = "hop cineb"
    settings: ChgnetSettings = field(default_factory=ChgnetSettings)
    n_images: int = 3
    reuse: bool = True

    @job
    def make(
        self,
        start: ValleyDoc | dict,
        end: ValleyDoc | dict,
        slab_energy_ev: float,
        li_energy_ev: float,
        hop_id: str,
    ) -> NebDoc:
        """Return the :class:`NebDoc` of the hop; unconverged runs are kept and flagged."""
        neb_id = stable_id(
            "neb", hop_id=hop_id, engine="chgnet", settings=self.settings.provenance(), n_images=self.n_images
        )
        if self.reuse and (done := _stored("nebs", "neb_id", neb_id, NebDoc)):
            return done
        start, end = _as_valley(start), _as_valley(end)
        result = cineb(
            Structure.from_dict(start.structure),
            Structure.from_dict(end.structure),
            start.energy_ev,
            end.energy_ev,
            self.settings,
            n_images=self.n_images,
            desc="cineb",
        )
        top = max(result.energies_ev)
        barriers = neb_barriers(result.energies_ev)
        doc = NebDoc(
            neb_id=neb_id,
            surface_id=start.surface_id,
            hop_id=hop_id,
            engine="chgnet",
            valley_ids=(start.valley_id, end.valley_id),
            image_energies_ev=result.energies_ev,
            saddle_binding_energy_ev=binding_energy_ev(slab_energy_ev, li_energy_ev, top),
            forward_barrier_ev=barriers.forward_barrier_ev,
            reverse_barrier_ev=barriers.reverse_barrier_ev,
            climbing_image=result.climbing_image,
            converged=result.converged,
            fmax_ev_ang=result.fmax_ev_ang,
            force_calls=result.force_calls,
            n_images=self.n_images,
            wall_time_s=result.wall_time_s,
        )
        StoreFacade().upsert("nebs", [doc])
        return doc


def _as_structure(value: Structure | dict) -> Structure:
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def _as_valley(value: ValleyDoc | dict) -> ValleyDoc:
    return value if isinstance(value, ValleyDoc) else ValleyDoc(**value)


@dataclass
class SurfaceHopsMaker(Maker):
    """Flow for hops of one surface: slab relax, Li reference, valley relaxations, one CINEB per hop.

    With ``hop_indices=None`` it computes every symmetry-distinct hop (the class representatives) and
    every valley class, i.e. the full set of labels of a surface; equivalent hops and valleys share
    these labels through their symmetry class.
    """

    name: str = "surface hops"
    settings: ChgnetSettings = field(default_factory=ChgnetSettings)
    n_images: int = 3
    valley_classes: bool = True

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
        slab = SlabRelaxMaker(settings=self.settings).make(bundle.structure, sid)
        li = LiReferenceMaker(settings=self.settings).make()
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
            )
            valleys[v].name = f"valley relax {site.label} {v}"
        nebs = []
        for i in hop_indices:
            hop = bundle.hops[i]
            start, end = (valleys[v].output for v in hop.valley_indices)
            neb = HopNebMaker(settings=self.settings, n_images=self.n_images).make(
                start, end, slab.output.final_energy_ev, li.output.energy_ev, hop.hop_id
            )
            neb.name = f"hop cineb {i}"
            nebs.append(neb)
        output = {"valleys": [j.output for j in valleys.values()], "nebs": [j.output for j in nebs]}
        return Flow([slab, li, *valleys.values(), *nebs], output=output, name=f"{self.name} {sid}")
