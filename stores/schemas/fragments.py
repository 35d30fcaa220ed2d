"""Pydantic documents for potential maps, image fragments and the dataset colour scale.

Big arrays (the 2D map, the fragment stacks, their RGB images) live in the ``data`` store; the
documents keep an :class:`ArrayRef` (key, shape, dtype, hash) plus scalars. Potentials are in eV
(referenced to the vacuum level), lengths in Angstrom, densities in e/bohr^3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.schemas.fields import ArrayRef, utc_now


class PotentialMapDoc(BaseModel):
    """Electrostatic potential on the top density isosurface of one static calculation.

    The map lives on the (a, b) fractional mesh of the calculation grid: ``values[i, j]`` is the
    potential (eV, minus the vacuum level) of the column at fractional ``(i / n_a, j / n_b)``.
    """

    map_id: str
    surface_id: str | None
    calc_id: str
    shape: tuple[int, int]
    lattice_ang: list[list[float]] = Field(..., description="In-plane a, b rows (2 x 2, Angstrom)")
    spacing_ang: tuple[float, float] = Field(..., description="Mesh step along a and b (Angstrom)")
    isovalue_e_per_bohr3: float
    reference: Literal["vacuum"] = "vacuum"
    vacuum_level_ev: float = Field(..., description="Vacuum level subtracted from the potential (eV)")
    vacuum_level_source: Literal["calculation", "planar_average"]
    values: ArrayRef = Field(..., description="Potential on the isosurface (eV vs vacuum)")
    z_iso: ArrayRef = Field(..., description="Height of the isosurface per column (Angstrom)")
    min_ev: float
    max_ev: float
    mean_ev: float
    z_iso_mean_ang: float
    units: dict[str, str] = Field(
        default_factory=lambda: {"values": "eV", "z_iso": "Angstrom", "isovalue": "e/bohr^3"}
    )
    provenance: dict = Field(default_factory=dict, description="Engine, functional, grid shape, hashes")
    updated_at: datetime = Field(default_factory=utc_now)


class ColourScaleDoc(BaseModel):
    """The one colour scale of a dataset: fragments of every surface are coloured with it."""

    scale_id: str
    dataset: str
    vmin_ev: float
    vmax_ev: float
    cmap: str = "viridis"
    source: str = Field(..., description="How the limits were chosen (which maps, when)")
    updated_at: datetime = Field(default_factory=utc_now)


class FragmentDoc(BaseModel):
    """A square crop of a potential map centred on one Li valley or saddle.

    Orientation rule (same for every surface, see :mod:`epdi_ml.fragments.crops`): the crop's +x axis
    points, for a saddle, from its T_M valley to its H valley (the hop direction); for a valley,
    from the valley to the first of its three top anions counter-clockwise from the cell's a axis.
    Array index ``[iy, ix]``; ``iy`` grows along the crop's +y (counter-clockwise from +x).
    """

    fragment_id: str
    surface_id: str
    map_id: str
    site_id: str
    site_index: int
    kind: Literal["valley", "saddle"]
    label: str
    host: str
    dopant: str | None
    group: str
    class_index: int
    representative_site_id: str
    is_representative: bool
    mep_ev: float = Field(..., description="Area mean of the square crop (eV vs vacuum)")
    size_ang: float
    pixels: int
    orientation_deg: float = Field(..., description="Angle of the crop's +x from the Cartesian x axis")
    centre_cart_ang: tuple[float, float]
    array: ArrayRef = Field(..., description="Stack of raw crops of the surface (float32, eV)")
    rgb: ArrayRef = Field(..., description="Stack of RGB crops of the surface (uint8)")
    stack_index: int = Field(..., description="Index of this fragment in both stacks")
    sha256: str = Field(..., description="SHA-256 of this fragment's float32 array")
    colour_scale_id: str
    colour_scale: tuple[float, float, str] = Field(..., description="(vmin_ev, vmax_ev, cmap) used")
    clipped_pixels: int = Field(..., description="Pixels outside the colour scale (clipped)")
    symmetry_max_diff_ev: float | None = Field(
        None, description="Duplicates: max |crop - representative crop| after the symmetry operation"
    )
    updated_at: datetime = Field(default_factory=utc_now)
