"""Fragments in memory (:class:`FragmentData`) and the torch dataset over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from epdi_ml.fragments import augment as site_symmetry
from epdi_ml.fragments.crops import ColourScale
from epdi_ml.models.networks import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class FragmentData:
    """Labelled (or unlabelled) fragments in memory.

    Attributes
    ----------
    images : ndarray
        RGB uint8 fragments ``(N, P, P, 3)``, +x (columns) along the hop direction.
    energies_ev : ndarray
        Binding energies E_b in eV ``(N,)``; NaN where unknown.
    kinds : ndarray
        ``"valley"`` or ``"saddle"`` per fragment.
    surface_ids : ndarray
        Surface of each fragment (fold groups).
    ids : ndarray, optional
        Fragment/site ids, carried through for bookkeeping.
    anchors_ev : ndarray, optional
        Per saddle the mean labelled E_b (eV) of its hop's two valleys (NaN for valleys and where a
        valley is unlabelled): what a valley-anchored model (``TrainConfig.anchor``) adds to its
        output (:meth:`offsets_ev`).
    """

    images: np.ndarray
    energies_ev: np.ndarray
    kinds: np.ndarray
    surface_ids: np.ndarray
    ids: np.ndarray | None = None
    anchors_ev: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        if (
            self.images.ndim != 4
            or self.images.shape[-1] != 3
            or self.images.shape[1] != self.images.shape[2]
        ):
            raise ValueError(f"images must be (N, P, P, 3) RGB, got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError("images must be uint8 RGB; convert raw arrays with FragmentData.from_raw")
        n = len(self.images)
        self.energies_ev = np.asarray(self.energies_ev, dtype=np.float64).reshape(-1)
        self.kinds = np.asarray(self.kinds).astype(str)
        self.surface_ids = np.asarray(self.surface_ids).astype(str)
        if self.ids is not None:
            self.ids = np.asarray(self.ids).astype(str)
        if self.anchors_ev is not None:
            self.anchors_ev = np.asarray(self.anchors_ev, dtype=np.float64).reshape(-1)
        for name in ("energies_ev", "kinds", "surface_ids", "ids", "anchors_ev"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")
        bad = set(self.kinds) - set(site_symmetry.KINDS)
        if bad:
            raise ValueError(f"kinds must be valley or saddle, got {sorted(bad)}")

    @classmethod
    def from_raw(
        cls,
        raw: np.ndarray,
        energies_ev: np.ndarray,
        kinds: Sequence[str],
        surface_ids: Sequence[str],
        vmin: float,
        vmax: float,
        cmap: str = "viridis",
        ids: Sequence[str] | None = None,
    ) -> FragmentData:
        """Build from raw float fragments ``(N, P, P)`` on the fixed colour scale ``[vmin, vmax]``.

        The colours are those of every stored fragment
        (:meth:`epdi_ml.fragments.crops.ColourScale.to_rgb`; values outside the scale are clipped).
        """
        rgb, _ = ColourScale(vmin, vmax, cmap).to_rgb(raw)
        return cls(rgb, energies_ev, np.asarray(kinds), np.asarray(surface_ids), ids)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: Sequence[int] | np.ndarray) -> FragmentData:
        """Return the fragments at ``index``."""
        index = np.asarray(index, dtype=int)
        return FragmentData(
            self.images[index],
            self.energies_ev[index],
            self.kinds[index],
            self.surface_ids[index],
            None if self.ids is None else self.ids[index],
            None if self.anchors_ev is None else self.anchors_ev[index],
        )

    def offsets_ev(self, anchor: str = "none", valley_offset_ev: float = 0.0) -> np.ndarray:
        """What a model with ``anchor`` adds to its output per fragment (eV): it learns E_b minus this.

        ``"none"``: zeros. ``"valley-midpoint"``: each saddle's :attr:`anchors_ev`, and
        ``valley_offset_ev`` (the training valleys' mean E_b, so that both kinds of target lie near
        zero) for valleys.

        Raises
        ------
        ValueError
            A saddle has no anchor (one of its valleys is unlabelled, or no anchors were loaded).
        """
        if anchor == "none":
            return np.zeros(len(self))
        saddles = self.kinds == site_symmetry.SADDLE
        anchors = np.full(len(self), np.nan) if self.anchors_ev is None else self.anchors_ev
        missing = saddles & np.isnan(anchors)
        if missing.any():
            names = [] if self.ids is None else self.ids[missing][:3].tolist()
            raise ValueError(
                f"{int(missing.sum())} saddle fragment(s) {', '.join(names)} have no valley anchor: "
                "relax both valleys of their hops first (every valley class), or train with anchor none"
            )
        return np.where(saddles, anchors, valley_offset_ev)


def images_to_tensor(images: np.ndarray, pixels: int | None = None) -> torch.Tensor:
    """RGB uint8 ``(N, P, P, 3)`` → ImageNet-normalised float ``(N, 3, pixels, pixels)``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if pixels is not None and x.shape[-1] != pixels:
        x = F.interpolate(x, size=(pixels, pixels), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class FragmentDataset(Dataset):
    """Torch dataset over :class:`FragmentData`.

    Items are ``(image, energy_ev)``: a normalised float image ``(3, pixels, pixels)`` and a float32
    label (E_b minus ``offsets_ev`` when given: the target of a valley-anchored model). Valley crops
    are masked (train and test alike). With ``augment`` a random site-symmetry operation is drawn
    from a generator seeded by ``(seed, epoch, index)``, so an epoch's
    augmentation does not depend on history (resuming reproduces it); set :attr:`epoch` per epoch.
    """

    def __init__(
        self,
        data: FragmentData,
        pixels: int,
        augment: bool = False,
        seed: int = 0,
        offsets_ev: np.ndarray | None = None,
    ) -> None:
        self.data = data
        self.pixels = pixels
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        if not augment:  # fixed inputs: prepare once
            prepared = augment_module_prepare(data.images, data.kinds)
            self._fixed = images_to_tensor(prepared, pixels)
        targets = data.energies_ev - (0.0 if offsets_ev is None else np.asarray(offsets_ev))
        self._labels = torch.from_numpy(np.nan_to_num(targets, nan=0.0).astype(np.float32))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.augment:
            return self._fixed[index], self._labels[index]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        image = site_symmetry.random_symmetry(self.data.images[index], str(self.data.kinds[index]), rng)
        return images_to_tensor(image[None], self.pixels)[0], self._labels[index]


def augment_module_prepare(images: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Test-time preparation of a stack of crops (mask where the kind needs it)."""
    return site_symmetry.prepare_batch(images, kinds) if len(images) else images
