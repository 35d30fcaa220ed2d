"""Li site graph above the top anion layer of a TMD monolayer.

- Valleys: hollows (triangle centroids) of the top anion triangular lattice, labelled ``T_M`` when a
  metal atom lies beneath, ``H`` otherwise (2H: above the empty hexagon centre; 1T: above a
  bottom-layer anion).
- Saddles: midpoints of the anion-anion bridges (nearest-neighbour edges of that lattice).
- Hops: (T_M valley, saddle, H valley); every bridge separates exactly one T_M and one H triangle,
  so an n x n cell has 2n^2 valleys, 3n^2 saddles and 3n^2 hops.

The graph is computed from the atoms (no tabulated positions), so it also holds for user structures
with in-plane a1, a2 and c along z. All site z coordinates are the height of the top anion plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

_IMAGES = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float)


@dataclass(frozen=True)
class Site:
    """A valley or saddle point; ``anion_indices`` are the structure indices of its anions."""

    kind: str
    label: str
    frac_coords: tuple[float, float, float]
    cart_coords: tuple[float, float, float]
    anion_indices: tuple[int, ...]


@dataclass(frozen=True)
class Hop:
    """One hop through ``saddle`` between valleys ``valleys = (T_M index, H index)``."""

    saddle: int
    valleys: tuple[int, int]
    length_ang: float


@dataclass
class SiteGraph:
    """Valleys, saddles and hops of one surface."""

    valleys: list[Site] = field(default_factory=list)
    saddles: list[Site] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)

    def count_labels(self) -> dict[str, int]:
        """Number of valleys per label."""
        labels: dict[str, int] = {}
        for site in self.valleys:
            labels[site.label] = labels.get(site.label, 0) + 1
        return labels


def _wrap(frac: np.ndarray) -> np.ndarray:
    wrapped = np.mod(np.round(frac, 8), 1.0)
    wrapped[np.isclose(wrapped, 1.0, atol=1e-7)] = 0.0
    return wrapped


def _check_cell(structure: Structure) -> None:
    matrix = structure.lattice.matrix
    if abs(matrix[0, 2]) > 1e-6 or abs(matrix[1, 2]) > 1e-6 or np.linalg.norm(matrix[2, :2]) > 1e-6:
        raise ValueError("site graph needs a1, a2 in the xy plane and c along z")


def in_plane_distances(structure: Structure, frac_xy: np.ndarray, targets_xy: np.ndarray) -> np.ndarray:
    """Minimum-image in-plane distances (Angstrom) between fractional xy points.

    Returns an array of shape ``(len(frac_xy), len(targets_xy))``.
    """
    m2 = structure.lattice.matrix[:2, :2]
    delta = frac_xy[:, None, :] - targets_xy[None, :, :]
    delta -= np.round(delta)
    shifted = delta[:, :, None, :] + _IMAGES[None, None, :, :]
    cart = shifted @ m2
    return np.linalg.norm(cart, axis=-1).min(axis=-1)


def top_anion_indices(structure: Structure, anion: str) -> list[int]:
    """Indices of the anions above the metal plane (highest anion layer)."""
    z = structure.cart_coords[:, 2]
    anions = [i for i, s in enumerate(structure) if s.specie.symbol == anion]
    if not anions:
        raise ValueError(f"structure has no {anion} atoms")
    metal_z = np.mean([z[i] for i, s in enumerate(structure) if s.specie.symbol != anion])
    return [i for i in anions if z[i] > metal_z + 0.1]


def build_site_graph(structure: Structure, anion: str, tolerance: float = 0.2) -> SiteGraph:
    """Compute the valleys, saddles and hops above the top ``anion`` layer.

    Parameters
    ----------
    structure
        Monolayer supercell (a1, a2 in plane, c along z), unrelaxed or relaxed.
    anion
        Element symbol of the anion (S, Se, ...).
    tolerance
        Relative tolerance on the anion-anion nearest-neighbour distance.

    """
    _check_cell(structure)
    top = top_anion_indices(structure, anion)
    frac = structure.frac_coords
    xy = frac[top, :2]
    z_top = float(np.mean(structure.cart_coords[top, 2]))
    z_frac = z_top / structure.lattice.c
    m2 = structure.lattice.matrix[:2, :2]

    # unwrapped neighbour candidates: every top anion in the 3x3 images around the cell
    cand_xy = (xy[None, :, :] + _IMAGES[:, None, :]).reshape(-1, 2)
    cand_idx = np.tile(np.arange(len(top)), len(_IMAGES))
    diff = (xy[:, None, :] - cand_xy[None, :, :]) @ m2
    dist = np.linalg.norm(diff, axis=-1)
    nn = dist[dist > 1e-6].min()
    neigh = (dist > 1e-6) & (dist < nn * (1 + tolerance))

    graph = SiteGraph()
    saddle_key: dict[tuple, int] = {}
    valley_key: dict[tuple, int] = {}

    def _add(kind: str, point_xy: np.ndarray, members: tuple[int, ...], table: dict) -> int:
        wrapped = _wrap(np.array([*point_xy, z_frac]))
        key = tuple(np.round(wrapped[:2], 5))
        if key not in table:
            table[key] = len(table)
            site = Site(
                kind=kind,
                label="bridge" if kind == "saddle" else "?",
                frac_coords=tuple(float(x) for x in wrapped),
                cart_coords=tuple(float(x) for x in structure.lattice.get_cartesian_coords(wrapped)),
                anion_indices=tuple(sorted(top[m] for m in members)),
            )
            (graph.saddles if kind == "saddle" else graph.valleys).append(site)
        return table[key]

    for i in range(len(top)):
        for c in np.nonzero(neigh[i])[0]:
            _add("saddle", (xy[i] + cand_xy[c]) / 2, (i, int(cand_idx[c])), saddle_key)
            # third corners: neighbours of i that are also neighbours of candidate c
            for d in np.nonzero(neigh[i])[0]:
                if d == c:
                    continue
                if np.linalg.norm((cand_xy[c] - cand_xy[d]) @ m2) < nn * (1 + tolerance):
                    centroid = (xy[i] + cand_xy[c] + cand_xy[d]) / 3
                    members = (i, int(cand_idx[c]), int(cand_idx[d]))
                    _add("valley", centroid, members, valley_key)

    _label_valleys(structure, anion, graph)
    _connect_hops(structure, graph, nn)
    return graph


def _label_valleys(structure: Structure, anion: str, graph: SiteGraph) -> None:
    metals = np.array([s.frac_coords[:2] for s in structure if s.specie.symbol != anion])
    valley_xy = np.array([v.frac_coords[:2] for v in graph.valleys])
    nearest = in_plane_distances(structure, valley_xy, metals).min(axis=1)
    graph.valleys = [
        Site(v.kind, "T_M" if d < 0.3 else "H", v.frac_coords, v.cart_coords, v.anion_indices)
        for v, d in zip(graph.valleys, nearest, strict=False)
    ]


def _connect_hops(structure: Structure, graph: SiteGraph, nn: float) -> None:
    valley_xy = np.array([v.frac_coords[:2] for v in graph.valleys])
    saddle_xy = np.array([s.frac_coords[:2] for s in graph.saddles])
    dist = in_plane_distances(structure, saddle_xy, valley_xy)
    expected = nn / (2 * np.sqrt(3))  # edge midpoint to the centroid of an equilateral triangle
    for s_index, row in enumerate(dist):
        pair = [int(v) for v in np.argsort(row)[:2]]
        if not np.allclose(row[pair], expected, rtol=0.25):
            raise ValueError(f"saddle {s_index} does not sit between two valleys")
        pair.sort(key=lambda v: (graph.valleys[v].label != "T_M", v))
        length = in_plane_distances(structure, valley_xy[pair[:1]], valley_xy[pair[1:]])[0, 0]
        graph.hops.append(Hop(saddle=s_index, valleys=(pair[0], pair[1]), length_ang=float(length)))
