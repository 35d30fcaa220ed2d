"""Diffusion paths vp -> sp -> vp -> ... across a surface, from its stored sites and hops.

A path is a zigzag of hops along one in-plane direction: from each valley it takes the hop whose
displacement points most along that direction. On an n x n cell it comes back to its start after
2n hops (one lattice period along a1 is two hops, T_M -> H -> T_M).
"""

from __future__ import annotations

import numpy as np

#: directions of the three zigzag paths through the start valley (degrees from the x axis)
PATH_ANGLES_DEG = (0.0, 120.0, 240.0)


def _min_image(delta_cart: np.ndarray, lattice_2d: np.ndarray) -> np.ndarray:
    frac = delta_cart @ np.linalg.inv(lattice_2d)
    frac -= np.round(frac)
    candidates = [(frac + (i, j)) @ lattice_2d for i in (-1, 0, 1) for j in (-1, 0, 1)]
    return min(candidates, key=lambda v: float(np.linalg.norm(v)))


def zigzag_path(
    sites: list[dict], hops: list[dict], lattice_2d: np.ndarray, start_site_id: str, angle_deg: float
) -> list[dict]:
    """Ordered site documents of the path through ``start_site_id`` along ``angle_deg``.

    Parameters
    ----------
    sites
        Site documents of one surface (``kind``, ``index``, ``site_id``, ``cart_coords_ang``).
    hops
        Hop documents of the same surface (``valley_indices``, ``saddle_index``).
    lattice_2d
        In-plane lattice vectors as rows (Angstrom).
    start_site_id
        A valley to start from.
    angle_deg
        Direction of travel, from the Cartesian x axis.
    """
    valleys = {s["index"]: s for s in sites if s["kind"] == "valley"}
    saddles = {s["index"]: s for s in sites if s["kind"] == "saddle"}
    start = next(s["index"] for s in valleys.values() if s["site_id"] == start_site_id)
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    links: dict[int, list[tuple[int, int]]] = {}
    for hop in hops:
        a, b = hop["valley_indices"]
        links.setdefault(a, []).append((b, hop["saddle_index"]))
        links.setdefault(b, []).append((a, hop["saddle_index"]))
    path = [valleys[start]]
    current = start
    for _ in range(2 * len(valleys)):
        here = np.array(valleys[current]["cart_coords_ang"][:2])

        def progress(link: tuple[int, int], here: np.ndarray = here) -> float:
            there = np.array(valleys[link[0]]["cart_coords_ang"][:2])
            return float(_min_image(there - here, lattice_2d) @ direction)

        nxt, saddle = max(links[current], key=progress)
        path += [saddles[saddle], valleys[nxt]]
        current = nxt
        if current == start:
            break
    return path


def surface_paths(
    sites: list[dict], hops: list[dict], lattice_2d: np.ndarray
) -> list[tuple[float, list[dict]]]:
    """The three zigzag paths of a surface, as ``(angle_deg, path)``.

    They start at the valley nearest the dopant (the T_M valley on top of it when doped; on a
    pristine surface the first T_M valley) and run along :data:`PATH_ANGLES_DEG`.
    """
    valleys = [s for s in sites if s["kind"] == "valley"]
    start = min(valleys, key=lambda v: (v["dopant_distance_ang"] or 0.0, v["label"] != "T_M", v["index"]))
    return [
        (angle, zigzag_path(sites, hops, lattice_2d, start["site_id"], angle)) for angle in PATH_ANGLES_DEG
    ]
