"""VASP (PBE + D3 zero damping) relaxations, isolated Li atom and CINEB: the ``vasp`` engine of the neb step.

:class:`VaspDynamicsSettings` holds what defines a VASP label of one surface (supercell size for
the k-mesh, the elements for the spin settings, INCAR overrides, the fixed bottom layer) and gives
the atomate2 Makers of the step, configured as in :mod:`workflows.engines.vasp_engine` (PBE + D3
``IVDW = 11``, ``ENCUT = 500``, ``EDIFF = 1e-5``, ``EDIFFG = -0.02``, dipole correction, ``ISPIN = 2``
with ``MAGMOM`` when a magnetic element is present, explicit Gamma k x k x 1 mesh) and run by
custodian:

- :meth:`~VaspDynamicsSettings.slab_relax_maker` / :meth:`~VaspDynamicsSettings.valley_relax_maker`:
  atomate2 ``RelaxMaker`` with the cell fixed (``ISIF = 2``);
- :meth:`~VaspDynamicsSettings.li_atom_maker`: atomate2 ``StaticMaker`` of the isolated,
  spin-polarised Li atom at Gamma in a box (E(Li) of every binding energy), with the slab's
  ``ENCUT``, ``GGA``, ``IVDW`` and smearing;
- :meth:`~VaspDynamicsSettings.neb_maker`: climbing-image NEB
  (:class:`~workflows.engines.vasp_neb.VaspNebFromImagesMaker`, custodian ``VaspNEBJob``).

The bottom anion layer is held fixed with selective dynamics (:meth:`~VaspDynamicsSettings.constrained`),
the same atoms the ASE engines fix. Unconverged runs are kept and flagged (``converged = False`` in
the documents), as with the other engines, instead of failing their job (atomate2's
``handle_unsuccessful = False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monty.json import MSONable
from pymatgen.core import Lattice, Structure

from stores.vasp_runs import functional_name
from workflows.engines import package_versions
from workflows.engines.vasp_engine import (
    _run_vasp_kwargs,
    incar_settings,
    kpoint_mesh,
    neb_maker,
    relax_maker,
    vasp_handlers,
)
from workflows.engines.vasp_inputs import fixed_bottom_layer, vasp_ordered

if TYPE_CHECKING:
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker

    from workflows.engines.vasp_neb import VaspNebFromImagesMaker

#: edge of the cubic box of the isolated Li atom (Angstrom)
LI_BOX_ANG = 15.0

#: starting moment of the isolated Li atom (Bohr magnetons): one unpaired 2s electron
LI_ATOM_MAGMOM_MUB = 1.0

#: atomate2's ``should_stop_children`` option: keep unconverged runs and go on (they are flagged)
KEEP_UNCONVERGED: dict[str, Any] = {"handle_unsuccessful": False}


@dataclass
class VaspDynamicsSettings(MSONable):
    """Settings of the VASP relaxations, Li reference and CINEB of one surface.

    MSONable, so that jobs can take it as an argument (jobflow serialises job arguments).

    Attributes
    ----------
    size
        n of the n x n x 1 supercell; sets the Gamma k x k x 1 mesh (``k = ceil(6 / n)``).
    elements
        Elements of the slab (host metal, anion, dopant); they decide ``ISPIN``/``MAGMOM``.
    kpoints
        In-plane k divisions; ``None`` follows the supercell.
    incar_updates
        Last-word INCAR overrides for every job of the step (``None`` removes a key).
    fix_bottom_layer
        Hold the bottom anion layer fixed (selective dynamics), as the ASE engines do.

    """

    size: int = 4
    elements: tuple[str, ...] = ("Mo", "S")
    kpoints: int | None = None
    incar_updates: dict[str, Any] = field(default_factory=dict)
    fix_bottom_layer: bool = True

    #: engine name recorded in every document
    engine = "vasp"

    #: edge of the cubic box of the isolated Li atom (Angstrom)
    li_box_ang = LI_BOX_ANG

    def __post_init__(self) -> None:
        self.elements = tuple(sorted({str(e) for e in self.elements if e}))
        self.incar_updates = dict(self.incar_updates or {})

    def incar(self, kind: str, with_li: bool = True) -> dict[str, Any]:
        """The ``user_incar_settings`` of a ``kind`` (relax, neb) job; ``with_li`` adds Li's moment."""
        elements = [*self.elements, *(["Li"] if with_li else [])]
        return incar_settings(kind, elements, self.incar_updates)  # type: ignore[arg-type]

    def kpoint_divisions(self) -> list[int]:
        """The Gamma-centred mesh ``[k, k, 1]`` of the slab jobs."""
        return [int(k) for k in kpoint_mesh(self.size, self.kpoints).kpts[0]]

    @property
    def functional(self) -> str:
        """Name of the level of theory from the INCAR, e.g. ``PBE+D3(zero)``."""
        return functional_name(self.incar("relax"))

    def provenance(self) -> dict:
        """The settings that define a result (INCAR of the relaxations and CINEB, KPOINTS)."""
        return {
            "incar_relax": self.incar("relax"),
            "incar_neb": self.incar("neb"),
            "climbing_image": True,  # NebSetGenerator: LCLIMB, IBRION 3, IOPT 1, POTIM 0; IMAGES per CINEB
            "kpoints": self.kpoint_divisions(),
            "fix_bottom_layer": self.fix_bottom_layer,
        }

    def versions(self) -> dict[str, str]:
        """Versions of the packages that wrote the inputs and read the outputs (VASP's is added per run)."""
        return package_versions("atomate2", "custodian", "emmet-core", "pymatgen", "jobflow")

    def li_atom_incar(self) -> dict[str, Any]:
        """INCAR of the isolated Li atom: the slab's electronic settings, spin-polarised, no dipole."""
        incar = incar_settings("static", ["Li"], self.incar_updates)
        return incar | {
            "ISPIN": 2,
            "MAGMOM": {"Li": LI_ATOM_MAGMOM_MUB},
            "LDIPOL": None,  # None removes the key (atomate2): a single atom in a box has no dipole
            "IDIPOL": None,
            "LVHAR": False,
            "LCHARG": False,
        }

    def reference_settings(self) -> dict:
        """The settings that define the isolated-Li reference energy (shared by every surface)."""
        return {"incar": self.li_atom_incar(), "kpoints": [1, 1, 1], "box_ang": self.li_box_ang}

    def li_atom(self) -> Structure:
        """The isolated Li atom at the centre of a cubic box of :data:`LI_BOX_ANG`."""
        return Structure(Lattice.cubic(self.li_box_ang), ["Li"], [[0.5, 0.5, 0.5]])

    def constrained(self, structure: Structure) -> Structure:
        """``structure`` as the POSCAR will hold it: species grouped, the bottom layer fixed.

        Every structure of the step goes through here, so end points and images share one atom
        order (:func:`~workflows.engines.vasp_inputs.vasp_ordered`).
        """
        ordered = vasp_ordered(structure)
        return fixed_bottom_layer(ordered) if self.fix_bottom_layer else ordered

    def slab_relax_maker(self, name: str = "vasp slab relax") -> RelaxMaker:
        """atomate2 ``RelaxMaker`` of the bare slab (cell fixed)."""
        return self._keep(
            relax_maker(self.size, self.elements, None, self.kpoints, self.incar_updates, False, name)
        )

    def valley_relax_maker(self, name: str = "vasp valley relax") -> RelaxMaker:
        """atomate2 ``RelaxMaker`` of Li on the slab (cell fixed)."""
        return self._keep(
            relax_maker(self.size, self.elements, None, self.kpoints, self.incar_updates, True, name)
        )

    def li_atom_maker(self, name: str = "vasp li atom") -> StaticMaker:
        """atomate2 ``StaticMaker`` of the isolated Li atom (Gamma only)."""
        from atomate2.vasp.jobs.core import StaticMaker
        from atomate2.vasp.sets.core import StaticSetGenerator
        from pymatgen.io.vasp import Kpoints

        generator = StaticSetGenerator(
            user_incar_settings=self.li_atom_incar(),
            user_kpoints_settings=Kpoints.gamma_automatic((1, 1, 1)),
            auto_ismear=False,
        )
        maker = StaticMaker(
            name=name,
            input_set_generator=generator,
            run_vasp_kwargs=_run_vasp_kwargs("normal", vasp_handlers()),
        )
        return self._keep(maker)

    def neb_maker(self, name: str = "vasp cineb") -> VaspNebFromImagesMaker:
        """Climbing-image NEB maker (atomate2 ``NebSetGenerator(climbing_image=True)``, ``VaspNEBJob``)."""
        return self._keep(neb_maker(self.size, self.elements, None, self.kpoints, self.incar_updates, name))

    @staticmethod
    def _keep(maker: Any) -> Any:
        maker.stop_children_kwargs = dict(KEEP_UNCONVERGED)
        return maker
