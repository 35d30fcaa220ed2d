"""Symmetry-distinct classes of Li valleys, saddles and hops of a (doped) slab.

Two independent routes give the classes:

- :func:`symmetry_classes` applies the space-group operations of the slab (spglib through
  pymatgen's ``SpacegroupAnalyzer``) to the sites and joins each site with its images.
- :func:`isometry_classes` searches directly, with numpy only, for in-plane isometries (rotations
  and mirrors about z, plus translations) that carry one site onto another and the whole slab onto
  itself.

Both must give the same partition; tests and ``epdi surfaces build`` check it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from workflows.structures.site_graph import SiteGraph, in_plane_distances


@dataclass(frozen=True)
class Classes:
    """Partition of ``n`` members into classes.

    Attributes
    ----------
    class_of
        Class index of every member (classes are numbered in order of their lowest member).
    representatives
        Lowest member index of each class.
    multiplicities
        Number of members of each class.

    """

    class_of: tuple[int, ...]
    representatives: tuple[int, ...]
    multiplicities: tuple[int, ...]

    @property
    def n_classes(self) -> int:
        """Number of distinct classes."""
        return len(self.representatives)

    def as_sets(self) -> set[frozenset[int]]:
        """The partition as a set of member sets (order-free, for comparisons)."""
        groups: dict[int, set[int]] = {}
        for member, cls in enumerate(self.class_of):
            groups.setdefault(cls, set()).add(member)
        return {frozenset(g) for g in groups.values()}


@dataclass(frozen=True)
class GraphClasses:
    """Classes of the valleys, saddles and hops of one site graph."""

    valleys: Classes
    saddles: Classes
    hops: Classes


def _partition(labels: list) -> Classes:
    """Turn per-member labels (equal label = same class) into a :class:`Classes`."""
    first: dict = {}
    class_of = []
    for label in labels:
        if label not in first:
            first[label] = len(first)
        class_of.append(first[label])
    reps = [-1] * len(first)
    mult = [0] * len(first)
    for member, cls in enumerate(class_of):
        if reps[cls] < 0:
            reps[cls] = member
        mult[cls] += 1
    return Classes(tuple(class_of), tuple(reps), tuple(mult))


def _union_find_classes(n: int, permutations: list[np.ndarray]) -> Classes:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for perm in permutations:
        for a, b in enumerate(perm):
            ra, rb = find(a), find(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return _partition([find(i) for i in range(n)])


_GRID = 10_000  # fractional coordinates are matched on a 1e-4 grid first (exact for built cells)


def _grid_keys(frac_xy: np.ndarray) -> list[tuple[int, int]]:
    cells = np.round(np.mod(frac_xy, 1.0) * _GRID).astype(int) % _GRID
    return [tuple(row) for row in cells]


def _site_permutation(
    structure: Structure, op, frac: np.ndarray, lookup: dict[tuple[int, int], int], tol_ang: float
) -> np.ndarray | None:
    """Map every point to the index of its image under ``op``; ``None`` if the set is not closed."""
    images = frac @ op.rotation_matrix.T + op.translation_vector
    if not np.allclose(np.mod(images[:, 2] - frac[:, 2] + 0.5, 1.0) - 0.5, 0, atol=1e-3):
        return None  # operation moves the points off their plane (e.g. the 2H mirror z -> -z)
    perm = [lookup.get(key, -1) for key in _grid_keys(images[:, :2])]
    if min(perm) < 0:  # off-grid (relaxed or user structures): match by distance
        dist = in_plane_distances(structure, images[:, :2], frac[:, :2])
        perm = list(dist.argmin(axis=1))
        if not np.all(dist[np.arange(len(perm)), perm] < tol_ang):
            return None
    if len(set(perm)) != len(perm):
        return None
    return np.array(perm)


def symmetry_classes(structure: Structure, graph: SiteGraph, symprec: float = 0.01) -> GraphClasses:
    """Classes of valleys, saddles and hops under the space group of ``structure``.

    Parameters
    ----------
    structure
        The slab (without Li).
    graph
        Its site graph.
    symprec
        spglib tolerance (Angstrom).

    """
    ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(cartesian=False)
    v_frac = np.array([v.frac_coords for v in graph.valleys])
    s_frac = np.array([s.frac_coords for s in graph.saddles])
    v_perms, s_perms, h_perms = [], [], []
    hop_of_saddle = {h.saddle: i for i, h in enumerate(graph.hops)}
    v_lookup = {key: i for i, key in enumerate(_grid_keys(v_frac[:, :2]))}
    s_lookup = {key: i for i, key in enumerate(_grid_keys(s_frac[:, :2]))}
    for op in ops:
        vp = _site_permutation(structure, op, v_frac, v_lookup, tol_ang=0.05)
        sp = _site_permutation(structure, op, s_frac, s_lookup, tol_ang=0.05)
        if vp is None or sp is None:
            continue
        v_perms.append(vp)
        s_perms.append(sp)
        hp = np.array([hop_of_saddle[int(sp[h.saddle])] for h in graph.hops])
        for h, image in zip(graph.hops, hp, strict=False):
            mapped = {int(vp[v]) for v in h.valleys}
            if mapped != set(graph.hops[image].valleys):
                raise RuntimeError("symmetry operation maps a hop onto a non-hop")
        h_perms.append(hp)
    return GraphClasses(
        valleys=_union_find_classes(len(graph.valleys), v_perms),
        saddles=_union_find_classes(len(graph.saddles), s_perms),
        hops=_union_find_classes(len(graph.hops), h_perms),
    )


def _plane_ops() -> list[np.ndarray]:
    """The 12 in-plane orthogonal 2x2 matrices of the hexagonal point group (6 rotations, 6 mirrors)."""
    ops = []
    for k in range(6):
        c, s = np.cos(k * np.pi / 3), np.sin(k * np.pi / 3)
        ops.append(np.array([[c, -s], [s, c]]))
        ops.append(np.array([[c, s], [s, -c]]))
    return ops


class _IsometryTester:
    """Tests whether an in-plane isometry taking point ``p`` to ``q`` maps the slab onto itself."""

    def __init__(self, structure: Structure, tol_ang: float = 0.05):
        self.structure = structure
        self.tol = tol_ang
        self.cart = structure.cart_coords
        self.species = np.array([s.specie.symbol for s in structure])
        counts = {el: int((self.species == el).sum()) for el in set(self.species)}
        rarest = min(counts, key=lambda el: (counts[el], el))
        self.anchor = np.nonzero(self.species == rarest)[0]
        self.inv = np.linalg.inv(structure.lattice.matrix[:2, :2])
        self.ops = _plane_ops()

    def _maps(self, indices: np.ndarray, rot: np.ndarray, p: np.ndarray, q: np.ndarray) -> bool:
        moved = (self.cart[indices, :2] - p) @ rot.T + q
        for el in set(self.species[indices]):
            src = moved[self.species[indices] == el] @ self.inv
            targets = np.nonzero(self.species == el)[0]
            dist = in_plane_distances(self.structure, src, self.cart[targets, :2] @ self.inv)
            z_src = self.cart[indices[self.species[indices] == el], 2]
            z_ok = np.abs(z_src[:, None] - self.cart[targets, 2][None, :]) < self.tol
            if not np.all(np.any((dist < self.tol) & z_ok, axis=1)):
                return False
        return True

    def find(self, p: np.ndarray, q: np.ndarray) -> np.ndarray | None:
        """Return a 2x2 operation R with x -> R(x - p) + q mapping the slab onto itself, or None."""
        everything = np.arange(len(self.structure))
        for rot in self.ops:
            if self._maps(self.anchor, rot, p[:2], q[:2]) and self._maps(everything, rot, p[:2], q[:2]):
                return rot
        return None


def _isometry_partition(tester: _IsometryTester, points: np.ndarray) -> Classes:
    reps: list[int] = []
    labels = []
    for i, q in enumerate(points):
        match = next((r for r in reps if tester.find(points[r], q) is not None), None)
        if match is None:
            reps.append(i)
            match = i
        labels.append(match)
    return _partition(labels)


def isometry_classes(structure: Structure, graph: SiteGraph) -> GraphClasses:
    """Classes from a direct search for in-plane isometries (independent of spglib).

    Two sites are equivalent when one of the 12 hexagonal in-plane operations, centred on the
    first site and moved onto the second, maps every atom of the slab onto an atom of the same
    element (periodic images included, z kept). Two hops are equivalent when such an operation
    maps one saddle onto the other and the valleys of one hop onto the valleys of the other.
    """
    tester = _IsometryTester(structure)
    v_cart = np.array([v.cart_coords for v in graph.valleys])
    s_cart = np.array([s.cart_coords for s in graph.saddles])
    v_frac = np.array([v.frac_coords[:2] for v in graph.valleys])
    valleys = _isometry_partition(tester, v_cart)
    saddles = _isometry_partition(tester, s_cart)

    hop_labels: list[int] = []
    reps: list[int] = []
    for i, hop in enumerate(graph.hops):
        q = s_cart[hop.saddle]
        match = None
        for r in reps:
            p = s_cart[graph.hops[r].saddle]
            rot = tester.find(p, q)
            if rot is None:
                continue
            moved = (v_cart[list(graph.hops[r].valleys), :2] - p[:2]) @ rot.T + q[:2]
            dist = in_plane_distances(structure, moved @ tester.inv, v_frac[list(hop.valleys)])
            if np.all(dist.min(axis=1) < tester.tol):
                match = r
                break
        if match is None:
            reps.append(i)
            match = i
        hop_labels.append(match)
    return GraphClasses(valleys, saddles, _partition(hop_labels))
