"""Fixtures for the learning tests: two CPU threads, tiny synthetic fragment sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from epdi_ml.training.data import FragmentData

torch.set_num_threads(2)


def synthetic_fragments(
    n_surfaces: int = 6, per_surface: int = 8, pixels: int = 32, seed: int = 0
) -> FragmentData:
    """Fragments whose label is a simple function of the image: E_b = 3 + 0.8 * mean brightness."""
    rng = np.random.default_rng(seed)
    n = n_surfaces * per_surface
    brightness = rng.uniform(0.1, 0.9, n)
    noise = rng.normal(0.0, 0.05, (n, pixels, pixels, 3))
    images = np.clip(brightness[:, None, None, None] + noise, 0, 1)
    images = np.rint(images * 255).astype(np.uint8)
    kinds = np.where(np.arange(n) % 3 == 0, "valley", "saddle")
    surfaces = np.repeat([f"surf{i}" for i in range(n_surfaces)], per_surface)
    energies = 3.0 + 0.8 * images.mean(axis=(1, 2, 3)) / 255.0
    ids = np.array([f"site{i}" for i in range(n)])
    return FragmentData(images, energies, kinds, surfaces, ids)


@pytest.fixture
def fragments() -> FragmentData:
    return synthetic_fragments()


@pytest.fixture
def make_fragments():
    return synthetic_fragments
