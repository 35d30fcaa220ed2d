"""Pydantic documents for calculations: statics, the Li reference, valley relaxations, CINEB hops.

Energies are in eV, lengths in Angstrom, forces in eV/Angstrom. Big grids (potential, density) do
not live in these documents: they go to the ``data`` store and the document keeps a
:class:`GridRef` (shape, units, hash, key in the data store).

Binding-energy convention (DESIGN.md): ``E_b = E(slab) + E(Li atom) - E(slab + Li)``, positive when
bound. The local barrier of a hop from valley A is ``E_b(A) - E_b(saddle)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.schemas.fields import GridRef, StructureDict, utc_now

EngineName = Literal["vasp", "gpaw", "chgnet"]
CalcKind = Literal["static", "relax", "neb", "li_reference"]


class CalculationDoc(BaseModel):
    """One calculation, computed by an engine or imported from a VASP folder.

    ``epdi query calculations`` lists these: final energy, engine, functional, source path.
    """

    calc_id: str
    kind: CalcKind
    engine: EngineName
    functional: str = Field(..., description="e.g. 'PBE+D3(zero)', 'CHGNet+D3(zero)'")
    source: Literal["computed", "imported"] = "computed"
    source_path: str | None = Field(None, description="Folder the calculation was run in / read from")
    surface_id: str | None = None
    formula: str
    natoms: int
    final_energy_ev: float
    structure: StructureDict = Field(..., description="Final pymatgen Structure.as_dict()")
    settings: dict = Field(default_factory=dict, description="Engine settings (INCAR, basis, fmax...)")
    potential: GridRef | None = Field(None, description="Electrostatic potential grid (eV)")
    density: GridRef | None = Field(None, description="Electron density grid")
    vacuum_level_ev: float | None = None
    image_energies_ev: list[float] | None = Field(None, description="NEB image energies (eV)")
    barrier_ev: float | None = Field(
        None, description="NEB: highest image energy minus image 00's (eV); None without 00's energy"
    )
    converged: bool | None = None
    force_calls: int | None = None
    wall_time_s: float | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    preconverged_from: str | None = Field(
        None, description="Relaxation: calc_id of the cheaper engine's relaxed slab it started from"
    )
    updated_at: datetime = Field(default_factory=utc_now)


class LiReferenceDoc(BaseModel):
    """Energy of the isolated, spin-polarised Li atom for one engine and its settings."""

    reference_id: str
    engine: EngineName
    settings: dict
    energy_ev: float
    updated_at: datetime = Field(default_factory=utc_now)


class LabelProvenance(BaseModel):
    """Who made a label: engine, level of theory, the settings that define it, package versions.

    Documents made before provenance was recorded hold only ``engine``.
    """

    engine: EngineName
    functional: str | None = Field(None, description="e.g. 'PBE+D3(zero)', 'CHGNet+D3(zero)'")
    settings: dict = Field(default_factory=dict, description="Engine settings that define the result")
    versions: dict[str, str] = Field(default_factory=dict)
    preconverged_from: str | None = Field(
        None, description="Id of the cheaper-engine result this one started from (preconverge)"
    )


class ValleyDoc(LabelProvenance):
    """Li relaxed from a valley class representative."""

    valley_id: str = Field(..., description="Id of the relaxation (surface, site, engine settings)")
    surface_id: str
    site_id: str
    site_index: int
    label: str = Field(..., description="Label of the starting valley (T_M or H)")
    binding_energy_ev: float = Field(..., description="E_b, positive = bound (eV)")
    energy_ev: float = Field(..., description="E(slab + Li) after relaxation (eV)")
    final_li_cart_ang: list[float]
    final_site_index: int = Field(..., description="Valley nearest to Li after relaxation")
    left_valley: bool = Field(..., description="Li ended nearer another valley than its start")
    displacement_ang: float = Field(..., description="In-plane distance Li moved (Angstrom)")
    force_calls: int
    converged: bool
    fmax_ev_ang: float | None = Field(None, description="Largest force at the end (eV/Angstrom)")
    wall_time_s: float | None = None
    structure: StructureDict
    updated_at: datetime = Field(default_factory=utc_now)


class NebDoc(LabelProvenance):
    """A CINEB hop between two relaxed valleys."""

    neb_id: str
    surface_id: str
    hop_id: str
    valley_ids: tuple[str, str] = Field(..., description="Relaxation ids of the two end points")
    image_energies_ev: list[float]
    saddle_binding_energy_ev: float = Field(..., description="E_b at the highest image (eV)")
    forward_barrier_ev: float = Field(
        ..., description="Forward barrier: E(max) - E(first end point, the T_M valley) (eV)"
    )
    reverse_barrier_ev: float = Field(
        ..., description="Reverse barrier: E(max) - E(last end point, the H valley) (eV)"
    )
    climbing_image: int
    converged: bool
    fmax_ev_ang: float | None = Field(
        None,
        description="Largest image force at the end (eV/Angstrom); None for VASP, whose EDIFFG decides "
        "``converged``",
    )
    force_calls: int
    steps: int | None = Field(None, description="Optimiser steps")
    retries: int = Field(0, description="Reruns after an unconverged first run (from its last images)")
    optimizer: str | None = Field(
        None,
        description="ASE optimiser of the CINEB (fire, bfgs); None: VASP's own, or a document from before it "
        "was recorded (FIRE). Not part of the id: a converged CINEB does not depend on it",
    )
    n_images: int
    wall_time_s: float | None = None
    image_structures: list[StructureDict] | None = Field(
        None, description="Final images, end points included (pymatgen Structure.as_dict())"
    )
    updated_at: datetime = Field(default_factory=utc_now)
