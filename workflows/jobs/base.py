"""Base Makers of the hop jobs: one ``make`` per kind of job, the engine's part a method.

Every engine's valley relaxation and CINEB take the same arguments, build the same document id and
look it up in the store before anything runs (:mod:`workflows.jobs.reuse`); only the calculation
differs. So the ``make`` of each job lives here once, in the manner of atomate2's ``BaseVaspMaker``,
and the engines' Makers fill in one method:

- :class:`BaseValleyRelaxMaker` -> ``relax_valley(task: ValleyTask)`` (ASE engines:
  :class:`~workflows.jobs.hops.ValleyRelaxMaker`; VASP:
  :class:`~workflows.jobs.vasp_hops.VaspValleyRelaxMaker`);
- :class:`BaseHopNebMaker` -> ``run_neb(task: NebTask)`` (:class:`~workflows.jobs.hops.HopNebMaker`,
  :class:`~workflows.jobs.vasp_hops.VaspHopNebMaker`).

``settings`` is the engine's settings object: it names the engine (``settings.engine``) and gives
the ``provenance()`` that enters every id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobflow import Maker, Response, job
from pymatgen.core import Structure

from stores.facade import STORE_ACCESS
from stores.schemas.calculations import NebDoc, ValleyDoc
from workflows.jobs.reuse import as_neb, as_valley, neb_id, stored, valley_id, valley_start


@dataclass
class ValleyTask:
    """One valley relaxation to run: its document id, start and what its document needs.

    Attributes
    ----------
    doc_id
        The :class:`ValleyDoc` id (:func:`workflows.jobs.reuse.valley_id`).
    initial
        Starting slab + Li: Li placed on the relaxed slab, or a cheaper engine's relaxed valley.
    site
        ``surface_id``, ``site_id``, ``site_index`` and ``label`` of the valley.
    valley_frac_xy
        Fractional in-plane coordinates of every valley of the surface.
    reference_ev
        ``(E(slab), E(Li atom))`` in eV, of the same engine and settings.
    start
        The cheaper engine's valley it starts from (preconverge), else ``None``.
    """

    doc_id: str
    initial: Structure
    site: dict[str, Any]
    valley_frac_xy: list[list[float]]
    reference_ev: tuple[float, float]
    start: ValleyDoc | None

    @property
    def preconverged_from(self) -> str | None:
        """Id of the valley it started from, for the document."""
        return None if self.start is None else self.start.valley_id


@dataclass
class NebTask:
    """One CINEB to run: its document id, end points and what its document needs.

    Attributes
    ----------
    doc_id
        The :class:`NebDoc` id (:func:`workflows.jobs.reuse.neb_id`).
    start, end
        The relaxed valleys of the hop, of the same engine and settings.
    reference_ev
        ``(E(slab), E(Li atom))`` in eV.
    hop_id
        The hop.
    initial
        A cheaper engine's converged CINEB whose images are the starting path, else ``None``.
    """

    doc_id: str
    start: ValleyDoc
    end: ValleyDoc
    reference_ev: tuple[float, float]
    hop_id: str
    initial: NebDoc | None

    @property
    def preconverged_from(self) -> str | None:
        """Id of the CINEB it started from, for the document."""
        return None if self.initial is None else self.initial.neb_id


@dataclass
class ReusingMaker(Maker):
    """A Maker whose job first looks for its finished document in the store.

    ``reuse``: return the stored document of the same id instead of computing it again.
    """

    name: str = "reusing job"
    reuse: bool = True

    def finished(self, cls: type, doc_id: str) -> Any:
        """The stored document of ``doc_id`` when ``reuse``, else ``None``."""
        return stored(cls, doc_id) if self.reuse else None


@dataclass
class BaseValleyRelaxMaker(ReusingMaker):
    """Relax Li placed at a valley; record E_b, the final site and whether Li left its valley."""

    name: str = "valley relax"
    settings: Any = None

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
        """Return the stored :class:`ValleyDoc`, or relax Li from ``site_cart_ang`` (or from ``start``).

        Parameters
        ----------
        slab, slab_energy_ev
            The relaxed bare slab and its energy (eV), of the same engine and settings.
        li_energy_ev
            Energy of the isolated Li atom (eV), of the same engine and settings.
        surface_id, site_id, site_index, label
            The valley Li is placed at.
        site_cart_ang
            Cartesian position of that valley (Angstrom).
        valley_frac_xy
            Fractional in-plane coordinates of every valley of the surface, to find the valley
            nearest to where Li ended.
        start
            The relaxed valley of a cheaper engine (preconverge): the relaxation starts from its
            structure and the document links to it (``preconverged_from``).
        """
        start = as_valley(start)
        doc_id = valley_id(surface_id, site_id, self.settings.engine, self.settings.provenance(), start)
        if done := self.finished(ValleyDoc, doc_id):
            return done
        site = {"surface_id": surface_id, "site_id": site_id, "site_index": site_index, "label": label}
        initial = valley_start(slab, site_cart_ang, start)
        reference_ev = (slab_energy_ev, li_energy_ev)
        return self.relax_valley(ValleyTask(doc_id, initial, site, valley_frac_xy, reference_ev, start))

    def relax_valley(self, task: ValleyTask) -> ValleyDoc | Response:
        """Run the relaxation of ``task``: the document, or the jobs that make it."""
        raise NotImplementedError(f"{type(self).__name__} does not relax valleys")


@dataclass
class BaseHopNebMaker(ReusingMaker):
    """CINEB between the two relaxed valleys of a hop (IDPP path or a preconverged one, climbing image).

    ``require_images``: a stored result without its image structures (made before they were kept)
    is recomputed instead of reused; a preconverged CINEB of another engine needs them.
    """

    name: str = "hop cineb"
    settings: Any = None
    n_images: int = 3
    require_images: bool = False

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
        """Return the stored :class:`NebDoc` of the hop, or run the CINEB that makes it.

        ``start`` and ``end`` are the relaxed valleys of the same engine; ``initial`` is the
        converged CINEB of a cheaper engine (preconverge): its intermediate images are the starting
        path, and the result links to it.
        """
        start, end, initial = as_valley(start), as_valley(end), as_neb(initial)
        doc_id = neb_id(hop_id, self.settings.engine, self.settings.provenance(), self.n_images, initial)
        done = self.finished(NebDoc, doc_id)
        if done is not None and (done.image_structures or not self.require_images):
            return done
        return self.run_neb(NebTask(doc_id, start, end, (slab_energy_ev, li_energy_ev), hop_id, initial))

    def run_neb(self, task: NebTask) -> NebDoc | Response:
        """Run the CINEB of ``task``: the document, or the jobs that make it."""
        raise NotImplementedError(f"{type(self).__name__} does not run CINEBs")
