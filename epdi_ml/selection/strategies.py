"""Active selection of saddles: which hops deserve a CINEB next.

A campaign labels a few saddles, fits the fold ensemble, and asks :func:`select_batch` which of the
still unlabelled saddles to compute next; :func:`should_stop` says when to end the loop. Everything
here is pure numpy and knows nothing of the store.

Candidates must be *distinct* hop classes only: a CINEB labels the whole symmetry class of its hop
(:mod:`epdi_ml.analysis.labels` shares the label), so the caller passes one representative saddle per class
and never two members of one class. The returned indices point into the candidate arrays.

Strategies (:data:`STRATEGIES`):

``random``
    Seeded uniform draw without replacement (the paper's protocol).
``uncertainty``
    The largest uncertainties ``spread_ev`` (the campaign and the benchmark pass the calibrated 68 %
    half-width of each candidate's prediction, :mod:`epdi_ml.training.calibration`, eV).
``diversity``
    k-center greedy on the CNN embeddings: features are standardised (mean 0, std 1 per feature
    over candidates and labelled fragments together); each pick is the candidate farthest
    (Euclidean) from its nearest labelled fragment or already-picked candidate. Without labelled
    embeddings the first pick is the candidate farthest from the candidates' mean.
``hybrid``
    Greedy picks maximising ``w * u_i + (1 - w) * d_i`` with ``w = hybrid_weight``, where
    ``u_i = spread_i / max(spread)`` over the candidates (fixed) and ``d_i = dist_i / max(dist)``
    is the k-center distance of the candidates not yet picked, renormalised after each pick (the
    distance to the new pick shrinks its neighbours' scores). ``w = 1`` is ``uncertainty``, ``w = 0``
    is ``diversity``. Ties go to the lower index.
``committee``
    Query by committee (Seung, Opper & Sompolinsky, COLT 1992) with batch diversity: the hybrid greedy
    rule with weight :data:`COMMITTEE_WEIGHT` on the disagreement of the fold members themselves
    (``spread_ev`` is then their raw standard deviation, not the calibrated half-width: the
    calibration's difficulty term is the embedding posterior of ``design`` and ranks candidates by
    novelty, not by where the members disagree), and the k-center distances in the space the members
    regress on (the caller passes the learner's own inputs as ``embeddings``, :data:`LEARNER_FEATURES`:
    the ridge heads' features in the selection bench, the CNN's penultimate features in a campaign).
    On the reference set's selection bench (ridge learner, 10 folds, batches of 4, 20 seeds) it needs
    the fewest saddles of all strategies to reach random's MAE at 50 % (figures in the README).
``design``
    Greedy transductive experimental design (Yu, Bi & Tresp, ICML 2006) on the standardised
    embeddings: a Bayesian linear model on the CNN features (prior weight variance 1, noise variance
    ``design_noise`` times the mean prior variance of the candidates) is conditioned on the labelled
    fragments; each pick is the candidate whose label would most reduce the summed predictive
    variance over all candidates, and the posterior is updated with it before the next pick (no
    label is needed for that). It is uncertainty and diversity at once: a candidate far from the
    labelled ones has a large variance, and one in a dense region reduces the variance of many
    others. This linear model (:mod:`epdi_ml.selection.linear_model`) is the one whose posterior sd, scaled on
    cross-validation residuals, gives the calibrated intervals, so the criterion is the summed
    calibrated variance of the candidates up to a constant; ``spread_ev`` is not used.
"""

from __future__ import annotations

import numpy as np

from epdi_ml.selection.linear_model import DESIGN_NOISE, nearest_distance, standardise

__all__ = [
    "COMMITTEE_WEIGHT",
    "DESIGN_NOISE",
    "LEARNER_FEATURES",
    "MEMBER_SPREAD",
    "NEEDS_EMBEDDINGS",
    "NEEDS_SPREAD",
    "STRATEGIES",
    "select_batch",
    "should_stop",
    "standardise",
]

STRATEGIES = ("random", "uncertainty", "diversity", "hybrid", "committee", "design")

#: strategies that need the ensemble spread / the embeddings
NEEDS_SPREAD = ("uncertainty", "hybrid", "committee")
NEEDS_EMBEDDINGS = ("diversity", "hybrid", "committee", "design")
#: strategies whose ``spread_ev`` is the fold members' raw standard deviation (the others: calibrated 68 %)
MEMBER_SPREAD = ("committee",)
#: strategies whose ``embeddings`` are the learner's own regression inputs (the others: CNN embeddings)
LEARNER_FEATURES = ("committee",)
#: weight of the members' disagreement in ``committee``'s greedy picks (the rest: k-center distance);
#: chosen on the reference set's selection bench (ridge learner, 10 folds, batches of 4, seeds 0-19: 0.5
#: needs 17.5 % of the saddles, 0.7 18.9 %; on seeds 0-39 the two are even, 21.0 % and 20.8 %)
COMMITTEE_WEIGHT = 0.5


def _candidate_array(
    values: np.ndarray | None, name: str, strategy: str, needed_by: tuple[str, ...], layout: tuple[int, str]
) -> np.ndarray | None:
    """``values`` as a finite float array of ``layout`` = (ndim, what its axes are); ``None`` if absent.

    Absent values are an error for the strategies in ``needed_by``; ``spread_ev`` must also be >= 0.
    """
    ndim, axes = layout
    if values is None:
        if strategy in needed_by:
            raise ValueError(f"strategy {strategy!r} needs {name} ({axes})")
        return None
    array = np.asarray(values, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D ({axes}), got shape {array.shape}")
    nonnegative = name == "spread_ev"
    if not np.all(np.isfinite(array)) or (nonnegative and np.any(array < 0)):
        raise ValueError(f"{name} must be finite" + (" and >= 0 (eV)" if nonnegative else ""))
    return array


def _distance_to(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(np.einsum("ij,ij->i", points - centre, points - centre), 0.0))


def _greedy(
    n_pick: int, embeddings: np.ndarray, labelled: np.ndarray | None, spread: np.ndarray | None, weight: float
) -> np.ndarray:
    """Greedy k-center (``spread`` None) or hybrid picks on standardised features."""
    if labelled is not None and len(labelled):
        cand, lab = standardise(embeddings, labelled)
        dist = nearest_distance(lab, cand)
    else:
        (cand,) = standardise(embeddings)
        dist = _distance_to(cand, cand.mean(axis=0))
    if spread is not None:
        top = float(spread.max(initial=0.0))
        u = spread / top if top > 0 else np.zeros_like(spread)
    available = np.ones(len(cand), dtype=bool)
    picks: list[int] = []
    for _ in range(n_pick):
        if spread is None:
            score = dist
        else:
            top = float(dist[available].max(initial=0.0))
            d = dist / top if top > 0 else np.zeros_like(dist)
            score = weight * u + (1.0 - weight) * d
        score = np.where(available, score, -np.inf)
        pick = int(np.argmax(score))
        picks.append(pick)
        available[pick] = False
        dist = np.minimum(dist, _distance_to(cand, cand[pick]))
    return np.array(picks, dtype=int)


def _variance_reduction(
    n_pick: int, embeddings: np.ndarray, labelled: np.ndarray | None, noise: float
) -> np.ndarray:
    """Greedy picks that most reduce the summed posterior variance of a linear model (``design``)."""
    if labelled is not None and len(labelled):
        cand, lab = standardise(embeddings, labelled)
    else:
        (cand,), lab = standardise(embeddings), None
    prior = cand @ cand.T  # linear kernel: prior covariance of the candidates' predictions
    noise_var = noise * max(float(np.mean(np.diag(prior))), 1e-12)
    if lab is not None:
        cross = cand @ lab.T
        prior = prior - cross @ np.linalg.solve(lab @ lab.T + noise_var * np.eye(len(lab)), cross.T)
    cov = prior / noise_var  # posterior covariance in units of the noise variance
    available = np.ones(len(cand), dtype=bool)
    picks: list[int] = []
    for _ in range(n_pick):
        # labelling j (noise 1) lowers the variance of i by cov_ij^2 / (1 + cov_jj)
        gain = np.where(available, np.einsum("ij,ij->j", cov, cov) / (1.0 + np.diag(cov)), -np.inf)
        pick = int(np.argmax(gain))
        picks.append(pick)
        available[pick] = False
        cov = cov - np.outer(cov[:, pick], cov[pick, :]) / (1.0 + cov[pick, pick])
    return np.array(picks, dtype=int)


def select_batch(
    strategy: str,
    batch_size: int,
    *,
    spread_ev: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    labelled_embeddings: np.ndarray | None = None,
    seed: int = 0,
    hybrid_weight: float = 0.5,
    design_noise: float = DESIGN_NOISE,
) -> np.ndarray:
    """Choose the next saddles (distinct hop classes) to label by CINEB.

    The candidates must be one representative saddle per symmetry class of hops (symmetry is the
    caller's job: a CINEB labels its whole class), so no two picks are equivalent hops.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES` (see the module docstring for each rule).
    batch_size : int
        Number of candidates to pick (>= 0); fewer when there are fewer candidates.
    spread_ev : ndarray, optional
        Uncertainty per candidate ``(n,)``, eV (needed by ``uncertainty``, ``hybrid`` and
        ``committee``): the calibrated 68 % half-width in the campaign and the benchmark, the fold
        members' raw standard deviation for the strategies in :data:`MEMBER_SPREAD`.
    embeddings : ndarray, optional
        Features per candidate ``(n, d)`` (needed by the strategies in :data:`NEEDS_EMBEDDINGS`): CNN
        embeddings, or the learner's own inputs for the strategies in :data:`LEARNER_FEATURES`.
    labelled_embeddings : ndarray, optional
        Features ``(m, d)`` of the fragments already labelled (k-center distances start from them).
    seed : int
        Seed of the ``random`` draw.
    hybrid_weight : float
        Weight ``w`` of the normalised spread in ``hybrid`` (0 to 1).
    design_noise : float
        Noise variance of the ``design`` strategy's linear model relative to its mean prior variance
        (> 0; smaller trusts the labelled fragments more).

    Returns
    -------
    ndarray of int
        Unique indices into the candidate arrays, in pick order, ``min(batch_size, n)`` of them.

    Raises
    ------
    ValueError
        Unknown strategy, a missing or malformed input the strategy needs, inconsistent lengths.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if int(batch_size) != batch_size or batch_size < 0:
        raise ValueError(f"batch_size must be an integer >= 0, got {batch_size}")
    if not 0.0 <= hybrid_weight <= 1.0:
        raise ValueError(f"hybrid_weight must be within [0, 1], got {hybrid_weight}")
    if not design_noise > 0.0:
        raise ValueError(f"design_noise must be > 0, got {design_noise}")
    spread_layout = (1, "ensemble std per candidate, eV")
    spread = _candidate_array(spread_ev, "spread_ev", strategy, NEEDS_SPREAD, spread_layout)
    emb_layout = (2, "candidates x CNN features")
    emb = _candidate_array(embeddings, "embeddings", strategy, NEEDS_EMBEDDINGS, emb_layout)
    sizes = {len(a) for a in (spread, emb) if a is not None}
    if not sizes:
        raise ValueError("give spread_ev or embeddings: the number of candidates is unknown")
    if len(sizes) > 1:
        raise ValueError(f"spread_ev and embeddings differ in length ({len(spread)} vs {len(emb)})")
    n = sizes.pop()
    labelled = None
    if labelled_embeddings is not None and strategy in NEEDS_EMBEDDINGS:
        labelled = np.asarray(labelled_embeddings, dtype=float)
        if labelled.size == 0:
            labelled = None
        elif labelled.ndim != 2 or labelled.shape[1] != emb.shape[1]:
            raise ValueError(
                f"labelled_embeddings must be (m, {emb.shape[1]}) like embeddings, got {labelled.shape}"
            )
    k = min(int(batch_size), n)
    if k == 0:
        return np.zeros(0, dtype=int)
    if strategy == "random":
        return np.random.default_rng(seed).choice(n, size=k, replace=False).astype(int)
    if strategy == "uncertainty":
        return np.argsort(-spread, kind="stable")[:k].astype(int)
    if strategy == "diversity":
        return _greedy(k, emb, labelled, None, 0.0)
    if strategy == "design":
        return _variance_reduction(k, emb, labelled, float(design_noise))
    weight = COMMITTEE_WEIGHT if strategy == "committee" else float(hybrid_weight)
    return _greedy(k, emb, labelled, spread, weight)


def should_stop(
    fraction_labelled: float,
    budget_fraction: float | None,
    max_spread_ev: float | None,
    spread_target_ev: float | None,
    round_index: int,
    max_rounds: int | None,
) -> str | None:
    """Say why an active-learning campaign should end now, or ``None`` to go on.

    Parameters
    ----------
    fraction_labelled : float
        Fraction of the distinct hops (saddles) labelled so far (0 to 1).
    budget_fraction : float, optional
        Stop once this fraction is labelled (``None``: no budget).
    max_spread_ev : float, optional
        Largest uncertainty over the unlabelled saddles, eV (the campaign passes the calibrated 68 %
        half-width; ``None``: no model yet).
    spread_target_ev : float, optional
        Stop once ``max_spread_ev`` is at or below this target, eV (``None``: no target).
    round_index : int
        0-based index of the round just finished.
    max_rounds : int, optional
        Stop after this many rounds (``None``: no limit).

    Returns
    -------
    str or None
        A human-readable reason, checked in the order: every hop labelled, budget, uncertainty
        target, rounds.
    """
    if not 0.0 <= fraction_labelled <= 1.0:
        raise ValueError(f"fraction_labelled must be within [0, 1], got {fraction_labelled}")
    if budget_fraction is not None and not 0.0 < budget_fraction <= 1.0:
        raise ValueError(f"budget_fraction must be within (0, 1], got {budget_fraction}")
    if round_index < 0:
        raise ValueError(f"round_index must be >= 0, got {round_index}")
    if max_rounds is not None and max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    if fraction_labelled >= 1.0:
        return "every hop is labelled"
    if budget_fraction is not None and fraction_labelled >= budget_fraction:
        return f"budget reached: {fraction_labelled:.1%} of the hops labelled (budget {budget_fraction:.1%})"
    if spread_target_ev is not None and max_spread_ev is not None and max_spread_ev <= spread_target_ev:
        return (
            f"uncertainty target reached: largest calibrated 68 % half-width {max_spread_ev:.4f} eV "
            f"<= {spread_target_ev:.4f} eV"
        )
    if max_rounds is not None and round_index + 1 >= max_rounds:
        return f"round limit reached: {round_index + 1} of {max_rounds} rounds done"
    return None
