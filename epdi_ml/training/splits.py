"""Train/test and cross-validation splits: the paper's saddle fraction and surface-grouped folds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from epdi_ml.fragments import augment as site_symmetry


def split_paper_protocol(
    kinds: Sequence[str], surface_ids: Sequence[str], fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Paper split: all valleys + a fraction of saddles for training/validation, other saddles test.

    Parameters
    ----------
    kinds : sequence of str
        ``valley``/``saddle`` per labelled fragment.
    surface_ids : sequence of str
        Surface per fragment (kept for the signature's symmetry with :func:`group_kfold`; the
        paper draws saddles at random over all surfaces).
    fraction : float
        Fraction ``f`` of saddle labels used for training/validation (0 ≤ f ≤ 1).
    seed : int
        Seed of the saddle draw.

    Returns
    -------
    train_val, test : ndarray of int
        Sorted indices.
    """
    kinds = np.asarray(kinds).astype(str)
    if len(np.asarray(surface_ids)) != len(kinds):
        raise ValueError("kinds and surface_ids differ in length")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    valleys = np.flatnonzero(kinds == site_symmetry.VALLEY)
    saddles = np.flatnonzero(kinds == site_symmetry.SADDLE)
    rng = np.random.default_rng(seed)
    n_train = int(round(fraction * len(saddles)))
    chosen = rng.permutation(saddles)[:n_train]
    train_val = np.sort(np.concatenate([valleys, chosen]))
    test = np.sort(np.setdiff1d(saddles, chosen))
    return train_val, test


def group_kfold(surface_ids: Sequence[str], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds that never split a surface between training and validation.

    Surfaces are shuffled with ``seed`` and assigned, largest first, to the fold with fewest
    fragments so far.

    Returns
    -------
    list of (train, val)
        Sorted index arrays per fold.
    """
    groups = np.asarray(surface_ids).astype(str)
    unique = np.unique(groups)
    if len(unique) < k:
        raise ValueError(f"{k} folds need at least {k} surfaces, got {len(unique)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    sizes = {g: int(np.sum(groups == g)) for g in order}
    order = sorted(order, key=lambda g: -sizes[g])  # stable: ties keep the shuffled order
    load = np.zeros(k, dtype=int)
    fold_of: dict[str, int] = {}
    for g in order:
        target = int(np.argmin(load))
        fold_of[g] = target
        load[target] += sizes[g]
    assignment = np.array([fold_of[g] for g in groups])
    return [(np.flatnonzero(assignment != f), np.flatnonzero(assignment == f)) for f in range(k)]
