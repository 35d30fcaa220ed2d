"""Site-symmetry augmentation of square fragments whose +x axis (columns) is the hop direction.

Labels (binding energies) are invariant under any rotation or mirror of the whole system, but only
the site's own point symmetry maps a fragment onto a fragment that really occurs:

* valley (hollow, C3v): rotations by 120° and 240° and the mirror across the x axis (rows
  reversed), six operations in all. 120° rotations of a pixel grid need interpolation, so every
  valley crop, augmented or not, at training and at prediction, gets the same circular mask.
* saddle (bridge, C2v): 180° rotation and the mirrors across the x and y axes, which are exact
  pixel permutations; no mask is needed.

No colour or scale jitter. Images are ``(P, P)`` or ``(P, P, C)`` arrays; row index = y, column
index = x, rotations about the crop centre ``((P - 1) / 2, (P - 1) / 2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import ndimage

VALLEY = "valley"
SADDLE = "saddle"
KINDS = (VALLEY, SADDLE)

#: symmetry operations per site kind: (rotation in degrees, mirror across x applied first)
SYMMETRY_OPS: dict[str, tuple[tuple[int, bool], ...]] = {
    VALLEY: ((0, False), (120, False), (240, False), (0, True), (120, True), (240, True)),
    SADDLE: ((0, False), (180, False), (0, True), (180, True)),  # (180, True) = mirror across y
}


def _check_kind(kind: str) -> str:
    if kind not in SYMMETRY_OPS:
        raise ValueError(f"site kind must be one of {KINDS}, got {kind!r}")
    return kind


def needs_mask(kind: str) -> bool:
    """Whether crops of this site kind get the circular mask (their rotations interpolate)."""
    return any(angle % 90 for angle, _ in SYMMETRY_OPS[_check_kind(kind)])


@lru_cache(maxsize=16)
def circular_mask(pixels: int) -> np.ndarray:
    """Boolean ``(P, P)`` disc of diameter ``P`` centred on the crop centre (True inside)."""
    centre = (pixels - 1) / 2
    yy, xx = np.mgrid[0:pixels, 0:pixels]
    mask = (yy - centre) ** 2 + (xx - centre) ** 2 <= (pixels / 2) ** 2
    mask.flags.writeable = False
    return mask


def apply_mask(image: np.ndarray, fill: float = 0) -> np.ndarray:
    """Return a copy of ``image`` with the pixels outside the circular mask set to ``fill``."""
    out = np.array(image, copy=True)
    out[~circular_mask(image.shape[0])] = fill
    return out


def _rotate(image: np.ndarray, angle_deg: int, order: int) -> np.ndarray:
    if angle_deg % 360 == 0:
        return np.array(image, copy=True)
    if angle_deg % 90 == 0:
        return np.rot90(image, k=angle_deg // 90, axes=(0, 1)).copy()
    rotated = ndimage.rotate(
        image.astype(np.float64), angle_deg, axes=(1, 0), reshape=False, order=order, mode="nearest"
    )
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        rotated = np.clip(np.rint(rotated), info.min, info.max)
    return rotated.astype(image.dtype)


def apply_op(image: np.ndarray, kind: str, op: int, order: int = 1, fill: float = 0) -> np.ndarray:
    """Apply symmetry operation number ``op`` of ``kind`` (index into :data:`SYMMETRY_OPS`).

    Valley crops come back masked (also for the identity); saddle crops are pixel permutations.
    """
    angle, mirror = SYMMETRY_OPS[_check_kind(kind)][op]
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"fragments must be square, got {image.shape[:2]}")
    out = image[::-1] if mirror else image
    out = _rotate(out, angle, order)
    return apply_mask(out, fill) if needs_mask(kind) else out


def prepare(image: np.ndarray, kind: str, fill: float = 0) -> np.ndarray:
    """Test-time treatment of one crop: the identity, masked where the kind needs it."""
    return apply_op(image, kind, 0, fill=fill)


def random_symmetry(image: np.ndarray, kind: str, rng: np.random.Generator, fill: float = 0) -> np.ndarray:
    """Return ``image`` under a random symmetry operation of its site kind."""
    return apply_op(image, kind, int(rng.integers(len(SYMMETRY_OPS[_check_kind(kind)]))), fill=fill)


def orbit(image: np.ndarray, kind: str, fill: float = 0) -> list[np.ndarray]:
    """Return the images of ``image`` under all symmetry operations of its kind."""
    return [apply_op(image, kind, i, fill=fill) for i in range(len(SYMMETRY_OPS[_check_kind(kind)]))]


def prepare_batch(images: np.ndarray, kinds: Sequence[str], fill: float = 0) -> np.ndarray:
    """Apply :func:`prepare` to a stack ``(N, P, P[, C])``."""
    return np.stack([prepare(img, kind, fill) for img, kind in zip(images, kinds, strict=True)])
