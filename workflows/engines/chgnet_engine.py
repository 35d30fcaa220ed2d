"""CHGNet + DFT-D3 (zero damping) through ASE on CPU or GPU: the settings and calculators.

The relaxations and CINEB of every ASE engine are in :mod:`workflows.engines.ase_dynamics`.
CHGNet's weights ship inside its wheel, so this engine runs offline. The model object is loaded
once per process and shared; every NEB image gets its own calculator around it (ASE's
shared-calculator mode recomputes every image at every step). D3 comes from the ``dftd3`` package
(simple-dftd3) with PBE zero-damping parameters, the VASP ``IVDW = 11`` setting.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import lru_cache

from ase import Atoms

from stores.errors import InputError
from stores.validation import check_device, check_positive
from workflows.engines import EngineUnavailable, package_versions
from workflows.engines.ase_dynamics import CountingSum


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

    def __post_init__(self) -> None:
        """Refuse a device name, force threshold or step limit that could never run."""
        check_device(self.device, "device")
        check_positive(self.fmax_ev_ang, "fmax_ev_ang", " eV/Angstrom")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise InputError(f"max_steps {self.max_steps} is not allowed; accepted: an integer >= 1")

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

    #: engine name recorded in every document
    engine = "chgnet"

    @property
    def functional(self) -> str:
        """Name of the level of theory."""
        return "CHGNet+D3(zero)" if self.d3 else "CHGNet"

    def prepare(self, atoms: Atoms) -> None:
        """CHGNet needs no starting values (its magnetic moments are predicted)."""

    def calculator(self, atoms: Atoms, label: str) -> CountingSum:
        """A CHGNet(+D3) calculator around the shared model (one per NEB image)."""
        return make_calculator(self)

    def versions(self) -> dict[str, str]:
        """Versions of the packages behind this engine's numbers."""
        return package_versions("chgnet", "dftd3", "ase", "pymatgen", "jobflow")

    #: edge of the cubic box of the isolated Li atom (Angstrom); CHGNet's energy does not depend on it
    li_box_ang = 15.0

    def reference_settings(self) -> dict:
        """The settings that define the isolated-Li reference energy."""
        return {"d3": self.d3}

    def li_atom_energy(self) -> float:
        """Energy (eV) of the isolated Li atom (:func:`li_atom_energy`)."""
        return li_atom_energy(self, self.li_box_ang)


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


def li_atom_energy(settings: ChgnetSettings, box_ang: float = 15.0) -> float:
    """Energy (eV) of one Li atom alone in a cubic box of ``box_ang`` (the isolated-atom reference)."""
    atoms = Atoms("Li", positions=[[box_ang / 2] * 3], cell=[box_ang] * 3, pbc=True)
    atoms.calc = make_calculator(settings)
    return float(atoms.get_potential_energy())
