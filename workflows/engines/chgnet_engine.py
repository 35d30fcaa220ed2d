"""CHGNet + DFT-D3 (zero damping) through ASE: relaxations and CINEB on CPU or GPU.

CHGNet's weights ship inside its wheel, so this engine runs offline. The model object is loaded
once per process and shared; every NEB image gets its own calculator around it (ASE's
shared-calculator mode recomputes every image at every step). D3 comes from the ``dftd3`` package
(simple-dftd3) with PBE zero-damping parameters, the VASP ``IVDW = 11`` setting.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from ase import Atoms
from ase.calculators.calculator import all_changes
from ase.calculators.mixing import SumCalculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.mep import NEB
from ase.optimize import BFGS, FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm import tqdm

from workflows.engines import EngineUnavailable


@dataclass
class ChgnetSettings:
    """Settings of the CHGNet engine.

    Attributes
    ----------
    d3
        Add DFT-D3 (PBE, zero damping) to CHGNet's energies and forces.
    device
        ``"cpu"``, ``"cuda"`` or ``None`` (CHGNet picks: CUDA when present).
    fmax_ev_ang
        Force threshold for relaxations and CINEB (eV/Angstrom); DESIGN.md: 0.05.
    max_steps
        Optimiser step limit; beyond it the result is flagged unconverged, not dropped.
    fix_bottom_layer
        Keep the bottom anion layer fixed (stops the slab from drifting along z).
    show_progress
        Show a progress bar per optimisation on stderr (not part of the provenance).

    """

    d3: bool = True
    device: str | None = "cpu"
    fmax_ev_ang: float = 0.05
    max_steps: int = 300
    fix_bottom_layer: bool = True
    show_progress: bool = False

    def provenance(self) -> dict:
        """The settings that define a result, as a plain dict (for ids and stored documents).

        Not named ``as_dict``: monty serialises a dataclass with its ``@module``/``@class`` only
        when it has no ``as_dict`` of its own, and a Maker holding these settings must come back
        from a job store or a Firework with them as a ``ChgnetSettings``, not a dict.
        """
        return {
            "d3": self.d3,
            "device": self.device,
            "fmax_ev_ang": self.fmax_ev_ang,
            "max_steps": self.max_steps,
            "fix_bottom_layer": self.fix_bottom_layer,
        }

    @property
    def functional(self) -> str:
        """Name of the level of theory."""
        return "CHGNet+D3(zero)" if self.d3 else "CHGNet"


def require_chgnet() -> None:
    """Raise :class:`EngineUnavailable` unless CHGNet and dftd3 import and CHGNet has its weights."""
    try:
        import chgnet  # noqa: F401
        import dftd3.ase  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(
            f"engine 'chgnet' needs the chgnet and dftd3 packages ({exc.name} is missing): "
            "run `make install` or `pip install chgnet dftd3`"
        ) from None


@lru_cache(maxsize=2)
def load_model(device: str | None = "cpu"):
    """Load the CHGNet model bundled with the wheel (once per process and device)."""
    require_chgnet()
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its banner on stdout
        return CHGNet.load(use_device=device, verbose=False)


class CountingSum(SumCalculator):
    """A sum of calculators that counts how many times energies and forces were computed."""

    def __init__(self, calcs):
        super().__init__(calcs)
        self.force_calls = 0

    def calculate(self, atoms=None, properties=("energy", "forces"), system_changes=all_changes):
        """Compute and count."""
        self.force_calls += 1
        super().calculate(atoms, properties, system_changes)


def make_calculator(settings: ChgnetSettings) -> CountingSum:
    """A new CHGNet(+D3) calculator around the shared model."""
    from chgnet.model.dynamics import CHGNetCalculator
    from dftd3.ase import DFTD3

    model = load_model(settings.device)
    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on ..." per calculator
        calcs = [CHGNetCalculator(model=model, use_device=settings.device, on_isolated_atoms="ignore")]
    if settings.d3:
        calcs.append(DFTD3(method="PBE", damping="d3zero"))
    return CountingSum(calcs)


@dataclass
class RelaxResult:
    """Outcome of a relaxation."""

    structure: Structure
    energy_ev: float
    force_calls: int
    converged: bool
    wall_time_s: float
    fmax_ev_ang: float


@dataclass
class NebResult:
    """Outcome of a CINEB run (image 0 and -1 are the fixed end points)."""

    images: list[Structure]
    energies_ev: list[float]
    climbing_image: int
    force_calls: int
    converged: bool
    fmax_ev_ang: float
    wall_time_s: float
    steps: int = 0
    history: list[float] = field(default_factory=list)


def _atoms(structure: Structure, settings: ChgnetSettings) -> Atoms:
    atoms = AseAtomsAdaptor.get_atoms(structure)
    if settings.fix_bottom_layer:
        z = atoms.positions[:, 2]
        slab = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s != "Li"]
        bottom = min(z[slab])
        atoms.set_constraint(FixAtoms(indices=[i for i in slab if z[i] < bottom + 0.3]))
    return atoms


def _structure(atoms: Atoms) -> Structure:
    """Pymatgen Structure of ``atoms`` without the constraint site properties."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    for prop in list(structure.site_properties):
        structure.remove_site_property(prop)
    return structure


def _progress(desc: str, total: int, show: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=not show)


def single_point(structure: Structure, settings: ChgnetSettings) -> float:
    """Energy (eV) of ``structure`` without relaxing it."""
    atoms = _atoms(structure, settings)
    atoms.calc = make_calculator(settings)
    return float(atoms.get_potential_energy())


def li_atom_energy(settings: ChgnetSettings, box_ang: float = 15.0) -> float:
    """Energy (eV) of one Li atom alone in a cubic box of ``box_ang`` (the isolated-atom reference)."""
    atoms = Atoms("Li", positions=[[box_ang / 2] * 3], cell=[box_ang] * 3, pbc=True)
    atoms.calc = make_calculator(settings)
    return float(atoms.get_potential_energy())


def relax(structure: Structure, settings: ChgnetSettings, desc: str = "relax") -> RelaxResult:
    """Relax atomic positions (cell fixed) with BFGS to ``settings.fmax_ev_ang``."""
    start = time.perf_counter()
    atoms = _atoms(structure, settings)
    calc = make_calculator(settings)
    atoms.calc = calc
    opt = BFGS(atoms, logfile=None)
    bar = _progress(desc, settings.max_steps, settings.show_progress)
    opt.attach(lambda: bar.update(1))
    converged = bool(opt.run(fmax=settings.fmax_ev_ang, steps=settings.max_steps))
    bar.close()
    fmax = float(np.sqrt((atoms.get_forces() ** 2).sum(axis=1).max()))
    return RelaxResult(
        structure=_structure(atoms),
        energy_ev=float(atoms.get_potential_energy()),
        force_calls=calc.force_calls,
        converged=converged,
        wall_time_s=time.perf_counter() - start,
        fmax_ev_ang=fmax,
    )


def cineb(
    start: Structure,
    end: Structure,
    start_energy_ev: float,
    end_energy_ev: float,
    settings: ChgnetSettings,
    n_images: int = 3,
    desc: str = "cineb",
) -> NebResult:
    """Climbing-image NEB between two relaxed end points (IDPP path, improved tangent, FIRE).

    Parameters
    ----------
    start, end
        Relaxed end points with the same atom order.
    start_energy_ev, end_energy_ev
        Their energies (eV); the end points are not recomputed.
    settings
        Engine settings (force threshold, step limit, D3, device).
    n_images
        Number of intermediate images (>= 3 per DESIGN.md).
    desc
        Label of the progress bar.

    """
    if n_images < 1:
        raise ValueError("CINEB needs at least one intermediate image")
    t0 = time.perf_counter()
    first, last = _atoms(start, settings), _atoms(end, settings)
    for atoms, energy in ((first, start_energy_ev), (last, end_energy_ev)):
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    images = [first]
    calcs = []
    for _ in range(n_images):
        image = first.copy()
        image.set_constraint(first.constraints)
        calc = make_calculator(settings)
        image.calc = calc
        calcs.append(calc)
        images.append(image)
    images.append(last)
    neb = NEB(images, climb=True, method="improvedtangent", allow_shared_calculator=False)
    neb.interpolate(method="idpp", mic=True)
    opt = FIRE(neb, logfile=None)
    bar = _progress(desc, settings.max_steps, settings.show_progress)
    history: list[float] = []

    def _observe() -> None:
        bar.update(1)
        history.append(max(float(i.get_potential_energy()) for i in images[1:-1]))

    opt.attach(_observe)
    converged = bool(opt.run(fmax=settings.fmax_ev_ang, steps=settings.max_steps))
    bar.close()
    energies = [float(i.get_potential_energy()) for i in images]
    forces = neb.get_forces().reshape(n_images, -1, 3)
    fmax = float(np.sqrt((forces**2).sum(axis=2)).max())
    return NebResult(
        images=[_structure(i) for i in images],
        energies_ev=energies,
        climbing_image=int(np.argmax(energies[1:-1]) + 1),
        force_calls=sum(c.force_calls for c in calcs),
        converged=converged,
        fmax_ev_ang=fmax,
        wall_time_s=time.perf_counter() - t0,
        steps=opt.nsteps,
        history=history,
    )
