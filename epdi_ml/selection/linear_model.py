"""A Bayesian linear model on fragment features: the variance behind ``design`` selection and intervals.

Features are standardised (mean 0, std 1 per feature over every block together). The model has
prior weights ``w ~ N(0, I)`` and noise variance ``noise_var``; conditioned on the training rows
``T`` its posterior predictive variance at ``x`` is ``v(x) = x.x - k^T (T T^T + noise_var I)^-1 k``
with ``k = T x`` (a linear kernel). :func:`variance_ratio` returns ``v(x) / noise_var``: 0 on top of
many training rows, large far from all of them. The default noise is :data:`DESIGN_NOISE` times the
mean prior variance ``mean(x.x)`` of the rows.
"""

from __future__ import annotations

import numpy as np

#: noise variance of the linear model, relative to the mean prior variance of the rows
DESIGN_NOISE = 0.01


def standardise(*blocks: np.ndarray) -> list[np.ndarray]:
    """Scale features to mean 0 and std 1 over all ``blocks`` together (constant features become 0).

    Parameters
    ----------
    *blocks : ndarray
        Arrays ``(n_i, d)`` with the same ``d``.

    Returns
    -------
    list of ndarray
        The standardised blocks, in order.
    """
    stacked = np.concatenate(blocks, axis=0)
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    scale = np.where(std > 1e-12 * max(float(std.max(initial=0.0)), 1e-300), std, np.inf)
    return [(b - mean) / scale for b in blocks]


def variance_ratio(train: np.ndarray, query: np.ndarray, noise_var: float) -> np.ndarray:
    """Posterior predictive variance over the noise variance, ``v(x) / noise_var``, per query row.

    Parameters
    ----------
    train : ndarray
        ``(n, d)`` training rows (may be empty: the prior variance then).
    query : ndarray
        ``(m, d)`` rows to evaluate.
    noise_var : float
        Noise variance (> 0) in the units of ``x.x``.
    """
    if not noise_var > 0:
        raise ValueError(f"noise_var must be > 0, got {noise_var}")
    query = np.asarray(query, dtype=float)
    prior = np.einsum("ij,ij->i", query, query)
    train = np.asarray(train, dtype=float)
    if len(train) == 0 or len(query) == 0:
        return prior / noise_var
    gram = train @ train.T + noise_var * np.eye(len(train))
    cross = train @ query.T
    explained = np.einsum("ij,ij->j", cross, np.linalg.solve(gram, cross))
    return np.maximum(prior - explained, 0.0) / noise_var


def gram_variance_ratio(gram: np.ndarray, train: np.ndarray, noise_var: float) -> np.ndarray:
    """:func:`variance_ratio` of every row from the linear-kernel Gram matrix ``G = X X^T`` of all rows.

    ``train`` is a boolean mask (or index array) of the training rows.
    """
    if not noise_var > 0:
        raise ValueError(f"noise_var must be > 0, got {noise_var}")
    gram = np.asarray(gram, dtype=float)
    prior = np.diag(gram).copy()
    rows = np.flatnonzero(train) if np.asarray(train).dtype == bool else np.asarray(train, dtype=int)
    if len(rows) == 0:
        return prior / noise_var
    cross = gram[rows]
    system = gram[np.ix_(rows, rows)] + noise_var * np.eye(len(rows))
    explained = np.einsum("ij,ij->j", cross, np.linalg.solve(system, cross))
    return np.maximum(prior - explained, 0.0) / noise_var


def gram_nearest_distance(gram: np.ndarray, query: np.ndarray, train: np.ndarray) -> np.ndarray:
    """:func:`nearest_distance` of the ``query`` rows to the ``train`` rows (masks), from ``G = X X^T``."""
    gram = np.asarray(gram, dtype=float)
    rows, cols = np.flatnonzero(query), np.flatnonzero(train)
    if len(cols) == 0:
        return np.full(len(rows), np.inf)
    diag = np.diag(gram)
    d2 = diag[rows][:, None] + diag[cols][None, :] - 2.0 * gram[np.ix_(rows, cols)]
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def nearest_distance(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest training row (inf without any)."""
    query = np.asarray(query, dtype=float)
    out = np.full(len(query), np.inf)
    train = np.asarray(train, dtype=float)
    if len(train) == 0 or len(query) == 0:
        return out
    sq_t = np.einsum("ij,ij->i", train, train)
    sq_q = np.einsum("ij,ij->i", query, query)
    chunk = max(1, 2_000_000 // max(len(query), 1))
    for start in range(0, len(train), chunk):
        block = train[start : start + chunk]
        d2 = sq_q[:, None] + sq_t[None, start : start + chunk] - 2.0 * query @ block.T
        out = np.minimum(out, d2.min(axis=1))
    return np.sqrt(np.maximum(out, 0.0))
