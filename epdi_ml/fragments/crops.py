"""Square crops ("fragments") of a potential map centred on Li valleys and saddles, and their colours.

Geometry of a crop
------------------
A fragment of ``pixels x pixels`` samples the map on a square of side ``size_ang`` centred on the
site. Pixel ``[iy, ix]`` sits at crop coordinates ``x = ((ix + 0.5) / pixels - 0.5) * size_ang``,
``y = ((iy + 0.5) / pixels - 0.5) * size_ang``; Cartesian point = centre + x * e_x + y * e_y,
where ``(e_x, e_y)`` is the crop frame (``e_y`` is ``e_x`` turned 90 degrees counter-clockwise).
Show arrays with ``origin="lower"`` to see the crop with +y up.

Orientation rule (the same for every surface)
---------------------------------------------
- Saddle: ``e_x`` points from the hop's T_M valley to its H valley (the hop direction), so hops
  point the same way in every saddle crop.
- Valley: ``e_x`` points from the valley to the first of its three top anions met going
  counter-clockwise from the cell's a axis (smallest polar angle in [0, 360) measured from a).

A symmetry operation of the slab carries hops onto hops (T_M onto T_M, H onto H), so two
equivalent saddles give equal crops, or crops mirrored about the crop's x axis when the operation
is a mirror. Two equivalent valleys give crops related by a rotation of 0, 120 or 240 degrees
and possibly a mirror (the anion triangle's own symmetry). The duplicate check
(:func:`transported_fragment`) samples a duplicate with the representative's frame carried by the
operation, which must reproduce the representative's crop exactly up to interpolation.

MEP
---
The MEP of a fragment is the area mean of the square crop (eV vs vacuum): all pixels, equal weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from epdi_ml.fragments.potential_map import PotentialMap
from stores.errors import InputError

if TYPE_CHECKING:
    from matplotlib.colors import Colormap

#: default number of pixels along each side of a crop
DEFAULT_PIXELS = 64
#: the pixel range a fragment may have along each side
MIN_PIXELS, MAX_PIXELS = 8, 512


def check_crop(size_ang: float | None, pixels: int, names: tuple[str, str] = ("size_ang", "pixels")) -> None:
    """Raise :class:`~stores.errors.InputError` unless a crop can be cut (``size_ang`` None: the default)."""
    if size_ang is not None and not (np.isfinite(size_ang) and size_ang > 0):
        raise InputError(f"{names[0]} {size_ang} is not allowed; accepted: a crop side > 0 Angstrom")
    if not MIN_PIXELS <= pixels <= MAX_PIXELS:
        raise InputError(
            f"{names[1]} {pixels} is out of range; accepted: {MIN_PIXELS} to {MAX_PIXELS} pixels"
        )


#: default crop side in units of the anion-anion distance (covers the site's first anion shell)
DEFAULT_SIZE_IN_ANION_SPACINGS = 2.0

_IMAGES = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float)


def minimum_image(delta_cart: np.ndarray, lattice_ang: np.ndarray) -> np.ndarray:
    """Shortest periodic images of in-plane Cartesian vectors ``(..., 2)`` (Angstrom)."""
    delta = np.asarray(delta_cart, dtype=float)
    frac = delta @ np.linalg.inv(lattice_ang)
    frac -= np.round(frac)
    candidates = (frac[..., None, :] + _IMAGES) @ lattice_ang
    best = np.linalg.norm(candidates, axis=-1).argmin(axis=-1)
    return np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]


def frames_from_directions(directions_xy: np.ndarray) -> np.ndarray:
    """Crop frames ``(N, 2, 2)``: columns ``e_x`` (along the direction) and ``e_y`` (90 deg CCW)."""
    d = np.asarray(directions_xy, dtype=float).reshape(-1, 2)
    ex = d / np.linalg.norm(d, axis=1, keepdims=True)
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)
    return np.stack([ex, ey], axis=2)


def saddle_direction(tm_cart_xy: np.ndarray, h_cart_xy: np.ndarray, lattice_ang: np.ndarray) -> np.ndarray:
    """Hop direction T_M -> H (minimum image), the saddle crop's +x."""
    return minimum_image(np.asarray(h_cart_xy) - np.asarray(tm_cart_xy), lattice_ang)


def valley_direction(
    valley_cart_xy: np.ndarray, anion_cart_xy: np.ndarray, lattice_ang: np.ndarray
) -> np.ndarray:
    """Valley crop's +x: towards the anion with the smallest polar angle from the cell's a axis."""
    vectors = minimum_image(np.asarray(anion_cart_xy) - np.asarray(valley_cart_xy), lattice_ang)
    a_angle = np.arctan2(lattice_ang[0, 1], lattice_ang[0, 0])
    angles = np.mod(np.arctan2(vectors[:, 1], vectors[:, 0]) - a_angle + 1e-6, 2 * np.pi)
    return vectors[int(np.argmin(angles))]


class FragmentCutter:
    """Cuts many fragments from one map in one vectorised interpolation.

    Parameters
    ----------
    size_ang
        Side of the square crop (Angstrom).
    pixels
        Pixels along each side.

    """

    def __init__(self, size_ang: float, pixels: int = DEFAULT_PIXELS):
        check_crop(size_ang, pixels)
        self.size_ang = float(size_ang)
        self.pixels = int(pixels)
        axis = ((np.arange(pixels) + 0.5) / pixels - 0.5) * size_ang
        x, y = np.meshgrid(axis, axis, indexing="xy")  # [iy, ix]
        self.offsets = np.stack([x, y], axis=-1)  # (P, P, 2) crop coordinates
        self._flat_offsets = self.offsets.reshape(-1, 2)

    def points(self, centres_xy: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Cartesian sample points ``(N, P, P, 2)`` of crops with these centres and frames."""
        centres = np.asarray(centres_xy, dtype=float).reshape(-1, 2)
        return centres[:, None, None, :] + np.einsum("nij,yxj->nyxi", frames, self.offsets)

    def cut(self, pmap: PotentialMap, centres_xy: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Fragments ``(N, P, P)`` (eV vs vacuum) for crop frames ``(N, 2, 2)``.

        The crop frame, the inverse lattice and the mesh size are folded into one 2 x 2 matrix per
        site, so all pixels of all sites go through one matrix product and one spline evaluation.
        """
        centres = np.asarray(centres_xy, dtype=float).reshape(-1, 2)
        to_index = np.linalg.inv(pmap.lattice_ang) * np.array(pmap.shape, dtype=float)[None, :]
        origin = centres @ to_index  # (N, 2) mesh index of the centres
        per_site = np.transpose(np.asarray(frames, dtype=float), (0, 2, 1)) @ to_index  # (N, 2, 2)
        index = origin[:, None, :] + self._flat_offsets @ per_site  # (N, P*P, 2)
        values = pmap.sample_index(np.moveaxis(index, -1, 0))
        return values.reshape(len(centres), self.pixels, self.pixels)

    def cut_along(self, pmap: PotentialMap, centres_xy: np.ndarray, directions_xy: np.ndarray) -> np.ndarray:
        """Fragments ``(N, P, P)`` whose +x points along ``directions_xy``."""
        return self.cut(pmap, centres_xy, frames_from_directions(directions_xy))


def cut_fragment(
    pmap: PotentialMap,
    centre_cart_xy: np.ndarray,
    direction_xy: np.ndarray,
    size_ang: float,
    pixels: int = DEFAULT_PIXELS,
) -> np.ndarray:
    """One ``(pixels, pixels)`` crop centred at ``centre_cart_xy`` with +x along ``direction_xy``."""
    cutter = FragmentCutter(size_ang, pixels)
    return cutter.cut_along(pmap, np.asarray(centre_cart_xy)[None, :2], np.asarray(direction_xy)[None, :2])[0]


def transported_fragment(
    pmap: PotentialMap,
    cutter: FragmentCutter,
    member_centre_xy: np.ndarray,
    representative_frame: np.ndarray,
    rotation_cart: np.ndarray,
) -> np.ndarray:
    """Crop of a duplicate in the representative's frame carried by a symmetry operation.

    ``rotation_cart`` is the 2 x 2 Cartesian rotation (or mirror) part of the operation taking
    the representative onto the member; when the map has the slab's symmetry the result equals
    the representative's crop.
    """
    frame = np.asarray(rotation_cart) @ np.asarray(representative_frame)
    return cutter.cut(pmap, np.asarray(member_centre_xy)[None, :2], frame[None])[0]


def mep_ev(fragments: np.ndarray) -> np.ndarray:
    """Area mean of each fragment (eV): the mean over the last two axes."""
    return np.asarray(fragments).mean(axis=(-2, -1))


def orientation_deg(direction_xy: np.ndarray) -> float:
    """Angle of a crop's +x from the Cartesian x axis (degrees, in [0, 360))."""
    return float(np.degrees(np.arctan2(direction_xy[1], direction_xy[0])) % 360.0)


def _colormap(name: str) -> Colormap:
    """The matplotlib colormap ``name`` (matplotlib is imported only when colours are made)."""
    from matplotlib import colormaps

    return colormaps[name]


@dataclass(frozen=True)
class ColourScale:
    """A fixed linear colour scale (eV) and a matplotlib colormap name."""

    vmin_ev: float
    vmax_ev: float
    cmap: str = "viridis"

    def __post_init__(self) -> None:
        if not self.vmax_ev > self.vmin_ev:
            raise ValueError(f"colour scale needs vmax > vmin, got {self.vmin_ev}, {self.vmax_ev}")
        _colormap(self.cmap)  # raises KeyError for an unknown colormap

    @classmethod
    def covering(cls, values: np.ndarray, cmap: str = "viridis", margin: float = 0.0) -> ColourScale:
        """The scale spanning ``values`` (widened by ``margin`` times the range on both sides)."""
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = max(margin * (hi - lo), 1e-6)
        return cls(lo - pad, hi + pad, cmap)

    def to_rgb(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 images ``(..., 3)`` and the number of clipped pixels per leading item."""
        values = np.asarray(values, dtype=float)
        norm = (values - self.vmin_ev) / (self.vmax_ev - self.vmin_ev)
        outside = (norm < 0) | (norm > 1)
        table = (_colormap(self.cmap).resampled(256)(np.linspace(0, 1, 256))[:, :3] * 255).round()
        idx = np.clip(np.floor(np.clip(norm, 0, 1) * 255.999), 0, 255).astype(np.intp)
        rgb = table.astype(np.uint8)[idx]
        clipped = outside.reshape(outside.shape[0], -1).sum(axis=1) if values.ndim > 2 else outside.sum()
        return rgb, np.asarray(clipped)
