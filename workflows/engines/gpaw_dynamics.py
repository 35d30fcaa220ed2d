"""GPAW (PBE + D3 zero damping) relaxations, CINEB and the isolated Li atom: DFT labels through ASE.

The ``gpaw`` engine of the neb step runs the same ASE relaxations and CINEB as the CHGNet engine
(:mod:`workflows.engines.ase_dynamics`) with a GPAW calculator (plus simple-dftd3's D3, zero
damping) per structure and per NEB image, each with its own text log. The electronic settings are
those of the statics (:class:`~workflows.engines.gpaw_settings.GpawSettings`: mode, basis, grid
spacing, k-mesh, smearing, spin); relaxations and CINEB of one label share them, so
``E_b = E(slab) + E(Li) - E(slab + Li)`` comes from one engine and one set of settings.

Symmetry: atoms move, so GPAW's point-group symmetry is off (time reversal stays); a symmetric
start that loses its symmetry would otherwise stop GPAW.

The isolated Li atom (the reference of every binding energy) is spin-polarised with a starting
moment of 1 Bohr magneton, at the Gamma point in a non-periodic box, with the slab's mode, basis,
grid spacing and functional.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ase import Atoms

from workflows.engines import package_versions
from workflows.engines.ase_dynamics import CountingSum
from workflows.engines.gpaw_engine import require_gpaw
from workflows.engines.gpaw_settings import GpawSettings, gpaw_kwargs, initial_magmoms

#: edge of the cubic box of the isolated Li atom (Angstrom); GPAW's density is zero at its faces
LI_BOX_ANG = 12.0

#: starting moment of the isolated Li atom (Bohr magnetons): one unpaired 2s electron
LI_ATOM_MAGMOM_MUB = 1.0


@dataclass
class GpawDynamicsSettings:
    """Settings of GPAW relaxations and CINEB (the ``gpaw`` engine of the neb step).

    Attributes
    ----------
    gpaw
        Electronic settings (mode, basis, ``h_ang``, k-mesh, smearing, spin, D3); the same as the
        statics unless the spec overrides them.
    fmax_ev_ang
        Force threshold of relaxations and CINEB (eV/Angstrom); DESIGN.md: 0.05 for CINEB.
    max_steps
        Optimiser step limit; beyond it the result is flagged unconverged, not dropped.
    fix_bottom_layer
        Keep the bottom anion layer fixed, as the CHGNet engine does.
    show_progress
        A progress bar per optimisation (not part of the provenance).
    workdir
        Folder for the GPAW text logs (one per structure or NEB image); not part of the provenance.

    """

    gpaw: GpawSettings = field(default_factory=GpawSettings)
    fmax_ev_ang: float = 0.05
    max_steps: int = 150
    fix_bottom_layer: bool = True
    show_progress: bool = False
    workdir: str | None = None

    #: engine name recorded in every document
    engine = "gpaw"

    def __post_init__(self) -> None:
        if isinstance(self.gpaw, dict):  # a Maker read back from a job store or a Firework
            self.gpaw = GpawSettings(**{k: v for k, v in self.gpaw.items() if not k.startswith("@")})

    @property
    def functional(self) -> str:
        """Name of the level of theory, e.g. ``PBE+D3(zero)``."""
        return self.gpaw.functional

    def provenance(self) -> dict:
        """The settings that define a result, as a plain dict (for ids and stored documents)."""
        return {
            "gpaw": self.gpaw.model_dump(mode="json", exclude={"txt"}),
            "fmax_ev_ang": self.fmax_ev_ang,
            "max_steps": self.max_steps,
            "fix_bottom_layer": self.fix_bottom_layer,
        }

    def versions(self) -> dict[str, str]:
        """Versions of the packages behind this engine's numbers."""
        return package_versions("gpaw", "dftd3", "ase", "pymatgen", "jobflow")

    #: edge of the cubic box of the isolated Li atom (Angstrom)
    li_box_ang = LI_BOX_ANG

    def reference_settings(self) -> dict:
        """The electronic settings that define the isolated-Li reference (no k-mesh, always spin)."""
        return {
            "gpaw": self.gpaw.model_dump(
                mode="json", exclude={"txt", "kpts", "spin_polarized", "initial_magmoms"}
            )
        }

    def li_atom_energy(self) -> float:
        """Energy (eV) of the isolated Li atom (:func:`li_atom_energy`)."""
        return li_atom_energy(self)

    def at(self, workdir: str | Path) -> GpawDynamicsSettings:
        """A copy that writes its GPAW logs into ``workdir`` (created)."""
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return dataclasses.replace(self, workdir=str(workdir))

    def require(self, elements: tuple[str, ...]) -> None:
        """Raise :class:`~workflows.engines.EngineUnavailable` unless GPAW and its data are here."""
        require_gpaw(tuple(sorted({*elements, "Li"})), self.gpaw)

    def _log(self, label: str) -> str | None:
        if self.gpaw.txt is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
        return str(Path(self.workdir or ".") / f"{safe}.txt")

    def prepare(self, atoms: Atoms) -> None:
        """Set the starting magnetic moments when the settings are spin-polarised."""
        if self.gpaw.spin_polarized:
            atoms.set_initial_magnetic_moments(initial_magmoms(atoms.get_chemical_symbols(), self.gpaw))

    def calculator(self, atoms: Atoms, label: str) -> CountingSum:
        """A new GPAW (+D3) calculator for a slab, logging to ``<workdir>/<label>.txt``."""
        from gpaw import GPAW

        atoms.pbc = (True, True, False)  # the dipole layer needs a non-periodic z
        kwargs = gpaw_kwargs(self.gpaw, self._log(label)) | {"symmetry": {"point_group": False}}
        calcs = [GPAW(**kwargs)]
        if self.gpaw.d3:
            from dftd3.ase import DFTD3

            calcs.append(DFTD3(method="PBE", damping="d3zero"))
        return CountingSum(calcs)


def li_atom_energy(settings: GpawDynamicsSettings) -> float:
    """Energy (eV) of the isolated, spin-polarised Li atom with the slab's electronic settings.

    D3 adds nothing for a single atom, so this is GPAW's energy (relative to its atomic PAW
    reference, like every GPAW energy: only differences with the same settings mean something).
    """
    from gpaw import GPAW

    settings.require(("Li",))
    atom_settings = settings.gpaw.model_copy(update={"spin_polarized": True})
    atoms = Atoms(
        "Li", positions=[[LI_BOX_ANG / 2] * 3], cell=[LI_BOX_ANG] * 3, pbc=False, magmoms=[LI_ATOM_MAGMOM_MUB]
    )
    atoms.calc = GPAW(**gpaw_kwargs(atom_settings, settings._log("li-atom"), slab=False))
    return float(atoms.get_potential_energy())
