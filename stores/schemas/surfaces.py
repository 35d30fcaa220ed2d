"""Pydantic documents for surfaces, Li sites and Li hops.

Every document carries a deterministic id (see :mod:`stores.ids`) used as the store key, plus the
fields that queries filter on (``host``, ``dopant``, ``kind``), which are indexed.
Lengths are in Angstrom, coordinates are Cartesian Angstrom unless named ``frac_*``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from stores.schemas.campaigns import CampaignDoc, RoundDoc
from stores.schemas.fields import StructureDict, utc_now
from stores.schemas.fragments import ColourScaleDoc, FragmentDoc, PotentialMapDoc
from stores.schemas.models import ModelDoc, PredictionDoc

SiteKind = Literal["valley", "saddle"]
SiteLabel = Literal["T_M", "H", "bridge"]


class SymmetryClass(BaseModel):
    """Membership of one site (or hop) in a symmetry-equivalence class of its surface."""

    class_index: int = Field(..., description="Index of the class within its surface and kind")
    representative_index: int = Field(..., description="Index of the class representative")
    multiplicity: int = Field(..., description="Number of equivalent members in the cell")


class SurfaceDoc(BaseModel):
    """A (doped) TMD monolayer supercell with its Li site-graph summary."""

    surface_id: str
    kind: Literal["surface"] = "surface"
    host: str
    phase: Literal["2H", "1T"]
    metal: str
    anion: str
    group: str = Field(..., description="Periodic-table group of the host metal (VIB, VB, IVB)")
    dopant: str | None = Field(None, description="Substituted metal element; None when pristine")
    dopant_site_index: int | None = Field(None, description="Index of the substituted metal atom")
    supercell: int = Field(..., description="n of the n x n x 1 supercell")
    a_ang: float = Field(..., description="Primitive in-plane lattice constant (Angstrom)")
    anion_height_ang: float = Field(..., description="Metal-plane to anion-plane distance (Angstrom)")
    vacuum_ang: float = Field(..., description="Vacuum thickness along z (Angstrom)")
    host_source: str = Field(..., description="Literature source of the host geometry")
    formula: str
    natoms: int
    structure: StructureDict = Field(..., description="pymatgen Structure.as_dict()")
    n_valleys: int
    n_saddles: int
    n_hops: int
    n_distinct_valleys: int
    n_distinct_saddles: int
    n_distinct_hops: int
    n_valleys_by_label: dict[str, int] = Field(default_factory=dict)
    updated_at: datetime = Field(default_factory=utc_now)


class SiteDoc(BaseModel):
    """A Li valley (hollow of the top anion layer) or saddle (anion-anion bridge midpoint)."""

    site_id: str
    surface_id: str
    kind: SiteKind
    label: SiteLabel = Field(..., description="T_M (above a metal), H (hollow) or bridge")
    host: str
    dopant: str | None
    index: int = Field(..., description="Index among the sites of this kind on the surface")
    frac_coords: list[float]
    cart_coords_ang: list[float]
    anion_indices: list[int] = Field(..., description="Structure indices of the top anions around")
    dopant_distance_ang: float | None = Field(
        None, description="In-plane distance to the nearest dopant image (Angstrom)"
    )
    symmetry: SymmetryClass
    updated_at: datetime = Field(default_factory=utc_now)


class HopDoc(BaseModel):
    """A Li hop valley(T_M) -> saddle -> valley(H) through one anion-anion bridge."""

    hop_id: str
    surface_id: str
    kind: Literal["hop"] = "hop"
    host: str
    dopant: str | None
    index: int
    saddle_index: int
    valley_indices: tuple[int, int] = Field(..., description="(T_M valley, H valley) indices")
    saddle_id: str
    valley_ids: tuple[str, str]
    length_ang: float = Field(..., description="In-plane T_M -> H distance (Angstrom)")
    dopant_distance_ang: float | None = None
    symmetry: SymmetryClass
    updated_at: datetime = Field(default_factory=utc_now)


def _collections() -> dict[str, tuple[type[BaseModel], str, tuple[str, ...]]]:
    return {
        "surfaces": (SurfaceDoc, "surface_id", ("host", "dopant", "kind")),
        "sites": (SiteDoc, "site_id", ("surface_id", "host", "dopant", "kind")),
        "hops": (HopDoc, "hop_id", ("surface_id", "host", "dopant", "kind")),
        "calculations": (CalculationDoc, "calc_id", ("kind", "engine", "surface_id")),
        "li_references": (LiReferenceDoc, "reference_id", ("engine",)),
        "valleys": (ValleyDoc, "valley_id", ("surface_id", "engine")),
        "nebs": (NebDoc, "neb_id", ("surface_id", "hop_id", "engine")),
        "potential_maps": (PotentialMapDoc, "map_id", ("surface_id", "calc_id")),
        "fragments": (FragmentDoc, "fragment_id", ("surface_id", "site_id", "kind", "host", "dopant")),
        "colour_scales": (ColourScaleDoc, "scale_id", ("dataset",)),
        "models": (ModelDoc, "model_id", ("name", "version", "status")),
        "predictions": (PredictionDoc, "prediction_id", ("model_id", "surface_id", "site_id", "kind")),
        "campaigns": (CampaignDoc, "campaign_id", ("name", "status")),
        "campaign_rounds": (RoundDoc, "round_id", ("campaign_id", "round")),
    }


#: collection name -> (document class, key field, indexed fields)
COLLECTIONS: dict[str, tuple[type[BaseModel], str, tuple[str, ...]]] = _collections()
