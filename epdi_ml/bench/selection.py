"""Benchmark of the saddle-selection strategies: test-saddle MAE and interval coverage against labels used.

Protocol (on a dataset whose every valley and every distinct saddle is labelled, e.g. the reference
set): all valley labels are known; the saddle pool is every labelled distinct saddle (one per hop
class). Each run starts from the same seeded random ``initial_fraction`` of the pool, then repeats
*fit the fold ensemble -> calibrate its intervals -> select a batch with the strategy -> reveal its
labels* until ``max_fraction`` is labelled. At every fraction the test set is the saddles not
selected so far (the paper's definition): the MAE (eV) of the ensemble mean, the coverage of the
calibrated 68 % and 90 % intervals (:mod:`epdi_ml.training.calibration`) and their mean full widths are
recorded, and the same for the global barriers (:func:`epdi_ml.analysis.barriers.global_barrier`) of the
zigzag paths through each dopant that cross a test saddle (valleys and selected saddles labelled,
the rest predicted, as in the report). Strategies that pick hard saddles also remove them from that
test set, so part of their gain is an easier test set; the figures are comparable with the paper's,
not an unbiased generalisation error. The uncertainty and hybrid strategies use the calibrated 68 %
half-width, ``committee`` the fold members' raw spread and, for its diversity, the learner's own
features (the ridge heads' inputs; the CNN's penultimate features).

Per strategy the MAE curve is averaged over seeds 0..n-1, and the labelled fraction it needs to reach
the MAE that ``random`` reaches at ``match_fraction`` (50 %) is found by linear interpolation. One
run gives these figures for every seed count in ``seed_counts`` (the first 5, 10, 20 seeds of the
same runs). The learners are in :mod:`epdi_ml.bench.learners`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from epdi_ml.analysis.barriers import global_barrier
from epdi_ml.bench.learners import CnnLearner, RidgeLearner, RoundFit
from epdi_ml.bench.selection_pool import SelectionPool
from epdi_ml.fragments.crops import DEFAULT_PIXELS
from epdi_ml.models.architectures import MODEL_NAMES
from epdi_ml.selection.strategies import (
    DESIGN_NOISE,
    LEARNER_FEATURES,
    MEMBER_SPREAD,
    NEEDS_EMBEDDINGS,
    STRATEGIES,
    select_batch,
)
from epdi_ml.training.calibration import (
    EnsembleIntervals,
    calibrate_ensemble,
    difference_half_width,
    member_correlation,
)
from stores.errors import InputError

#: goal: the best strategy reaches random's MAE at 50 % with at most this labelled fraction (20 seeds)
GOAL_FRACTION = 0.20
#: the least that is required of the best strategy (20 seeds)
REQUIRED_FRACTION = 0.22
#: anchors of the ridge learner's saddle predictions
ANCHORS = ("none", "valley-midpoint")


class SelectionBenchError(InputError):
    """The dataset cannot support the requested benchmark (too few surfaces or saddles)."""


class SelectionBenchConfig(BaseModel):
    """Settings of the selection benchmark.

    Attributes
    ----------
    dataset : str
        Colour-scale dataset name of the fragments.
    strategies : tuple of str
        Strategies to compare (``random`` is always run: it sets the target MAE).
    seeds : int
        Number of seeds (0 .. seeds-1); each seed draws its own initial set and folds.
    seed_counts : tuple of int, optional
        Seed counts to report (the first n seeds); default 5, 10, 20 up to ``seeds``, and ``seeds``.
    initial_fraction, max_fraction, step : float
        Fraction grid of labelled saddles: ``initial_fraction`` (random) to ``max_fraction`` by ``step``.
    batch_size : int, optional
        Saddles picked between two refits of the ensemble (a campaign's ``selection.batch_size``,
        whose default is 4); ``None``: each grid step in one batch.
    match_fraction : float
        The fraction whose random-strategy MAE the other strategies must reach.
    learner : {"ridge", "cnn"}
        Ridge heads on frozen embeddings (cheap) or a retrained CNN ensemble per round.
    anchor : {"none", "valley-midpoint"}, optional
        Ridge learner: predict saddle E_b as is, or as the mean labelled E_b of the hop's two valleys
        plus a learned residual; default ``valley-midpoint`` for the ridge learner (on the reference
        set the residual spans 0.015 eV (std) where saddle E_b spans 0.3 eV), ``none`` for the CNN.
    model : str, optional
        CNN architecture; default ``efficientnet_lite0`` when pretrained, else ``small_cnn``.
    pretrained : bool
        ImageNet weights for the CNN.
    weights_dir : Path, optional
        Weights cache folder.
    pixels : int
        CNN input edge in pixels (fragments are resized).
    folds : int
        Ensemble members (surface-grouped folds); 10 by default: ``committee`` ranks saddles by the
        members' disagreement, which five members estimate too noisily (on the reference set, 20
        seeds, batches of 4, it needs 20.5 % of the saddles with 5 folds and 17.5 % with 10).
    use_mep : bool
        Ridge learner: add the fragment MEP as a feature.
    valley_features : bool
        Ridge learner: add what the labelled valleys of each saddle's hop say
        (:meth:`SelectionPool.valley_features`); every valley is labelled before any saddle is
        selected, in the benchmark as in a campaign.
    n_components : int, optional
        Ridge learner: principal components of the embeddings kept (``None``: all, up to the rank).
    hybrid_weight : float
        Weight of the uncertainty in the hybrid strategy.
    design_noise : float
        Relative noise variance of the design strategy's linear model.
    epochs : int
        CNN learner: epochs per fold and round.
    device : {"auto", "cpu", "cuda"}
        Torch device.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str = "reference"
    strategies: tuple[str, ...] = STRATEGIES
    seeds: int = Field(20, ge=1)
    seed_counts: tuple[int, ...] | None = None
    initial_fraction: float = Field(0.05, gt=0, lt=1)
    max_fraction: float = Field(0.6, gt=0, lt=1)
    step: float = Field(0.05, gt=0, lt=1)
    batch_size: int | None = Field(4, ge=1)
    match_fraction: float = Field(0.5, gt=0, lt=1)
    learner: Literal["ridge", "cnn"] = "ridge"
    anchor: Literal["none", "valley-midpoint"] | None = None
    model: str | None = None
    pretrained: bool = True
    weights_dir: Path | None = None
    pixels: int = Field(DEFAULT_PIXELS, ge=8)
    folds: int = Field(10, ge=2)
    use_mep: bool = True
    valley_features: bool = True
    n_components: int | None = Field(None, ge=1)
    hybrid_weight: float = Field(0.5, ge=0, le=1)
    design_noise: float = Field(DESIGN_NOISE, gt=0)
    epochs: int = Field(10, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
        chosen = tuple(dict.fromkeys(value))
        return chosen if "random" in chosen else ("random", *chosen)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        if value is not None and value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; choose one of {', '.join(MODEL_NAMES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SelectionBenchConfig:
        if self.max_fraction <= self.initial_fraction:
            raise ValueError(
                f"max_fraction {self.max_fraction} must exceed initial_fraction {self.initial_fraction}"
            )
        if not self.initial_fraction <= self.match_fraction <= self.max_fraction:
            raise ValueError(
                f"match_fraction {self.match_fraction} must lie within [initial_fraction, max_fraction] = "
                f"[{self.initial_fraction}, {self.max_fraction}]"
            )
        if self.seed_counts is not None and not all(1 <= n <= self.seeds for n in self.seed_counts):
            raise ValueError(f"seed_counts {self.seed_counts} must lie within 1..seeds ({self.seeds})")
        if self.anchor is None:
            self.anchor = "valley-midpoint" if self.learner == "ridge" else "none"
        if self.anchor != "none" and self.learner != "ridge":
            raise ValueError("anchor works with the ridge learner only")
        return self

    @property
    def model_name(self) -> str:
        """The CNN architecture used."""
        return self.model or ("efficientnet_lite0" if self.pretrained else "small_cnn")

    @property
    def fractions(self) -> list[float]:
        """Nominal fraction grid, ``initial_fraction`` to ``max_fraction`` (both included)."""
        grid = np.arange(self.initial_fraction, self.max_fraction + 1e-9, self.step)
        return [float(f) for f in np.unique(np.round(np.append(grid, self.max_fraction), 6))]

    @property
    def reported_seed_counts(self) -> list[int]:
        """Seed counts whose figures are reported."""
        counts = self.seed_counts or tuple(n for n in (5, 10, 20) if n <= self.seeds)
        return sorted(set(counts) | {self.seeds})


def labelled_counts(n_saddles: int, fractions: list[float]) -> list[int]:
    """Saddles labelled at each fraction (at least 1, fewer than the pool)."""
    counts = [max(1, int(round(f * n_saddles))) for f in fractions]
    if counts[-1] >= n_saddles:
        raise SelectionBenchError(
            f"max fraction {fractions[-1]} labels all {n_saddles} saddles and leaves no test set: lower it"
        )
    return counts


def _coverage(errors: np.ndarray, ci68: np.ndarray, ci90: np.ndarray) -> dict[str, float]:
    """Observed coverage and mean full width (eV) of the two intervals (NaN without points)."""
    if not len(errors):
        return dict.fromkeys(("coverage_68", "coverage_90", "width_68_ev", "width_90_ev"), float("nan"))
    return {
        "coverage_68": float(np.mean(errors <= ci68)),
        "coverage_90": float(np.mean(errors <= ci90)),
        "width_68_ev": float(np.mean(2 * ci68)),
        "width_90_ev": float(np.mean(2 * ci90)),
    }


def _path_barriers(
    pool: SelectionPool, mean_ev: np.ndarray, ci: dict[str, np.ndarray], members_ev: np.ndarray
) -> dict[str, float]:
    """Coverage of the global barriers of the paths that cross a predicted saddle (see module doc).

    ``mean_ev``, ``ci`` and ``members_ev`` cover every pool row (NaN / 0 / NaN where labelled);
    the barrier's half-widths come from the pair of sites that sets it, as in
    :func:`epdi_ml.analysis.profiles.build_profile`.
    """
    labels = pool.data.energies_ev
    errors, ci68, ci90 = [], [], []
    for path in pool.paths:
        rows = np.array(path.rows)
        guessed = ~np.isnan(mean_ev[rows])
        if not guessed.any():
            continue
        truth = global_barrier(labels[rows[0]] - labels[rows])[0]
        eb = np.where(guessed, mean_ev[rows], labels[rows])
        value, i, j = global_barrier(eb[0] - eb)
        a, b = rows[i], rows[j]
        rho = 0.0
        if guessed[i] and guessed[j] and i != j:
            rho = float(member_correlation(members_ev[:, [a]], members_ev[:, [b]])[0])
        errors.append(abs(value - truth))
        ci68.append(difference_half_width(float(ci["68"][a]), float(ci["68"][b]), rho))
        ci90.append(difference_half_width(float(ci["90"][a]), float(ci["90"][b]), rho))
    return _coverage(np.array(errors), np.array(ci68), np.array(ci90)) | {"n_paths": len(errors)}


@dataclass
class _Round:
    """One fit of the fold ensemble on the valleys and the selected saddles, calibrated.

    ``unselected`` indexes ``pool.saddles``; ``query`` are their pool rows (the test saddles); the
    query's figures are the rows after the training rows of ``fit``.
    """

    unselected: np.ndarray
    query: np.ndarray
    fit: RoundFit
    calibrated: EnsembleIntervals

    @property
    def q(self) -> slice:
        """The query columns of ``fit`` and ``calibrated``."""
        return slice(len(self.fit.rows) - len(self.query), None)

    @property
    def std_ev(self) -> np.ndarray:
        """Raw member spread at the query rows (eV)."""
        return self.calibrated.std_ev[self.q]

    def ci_ev(self, level: str) -> np.ndarray:
        """Calibrated half-width at the query rows (eV), ``level`` "68" or "90"."""
        return self.calibrated.ci_ev[level][self.q]


def _fit_round(learner, pool: SelectionPool, selected: list[int], seed: int) -> _Round:
    """Fit and calibrate the fold ensemble on the valleys and the selected saddles."""
    labels = pool.data.energies_ev
    unselected = np.setdiff1d(np.arange(len(pool.saddles)), selected)
    train = np.concatenate([pool.valleys, pool.saddles[selected]])
    query = pool.saddles[unselected]
    fit = learner.fit(train, query, seed)
    known = np.where(np.arange(len(fit.rows)) < len(train), labels[fit.rows], np.nan)
    calibrated = calibrate_ensemble(
        fit.members_ev, known, pool.data.kinds[fit.rows], fit.fold_of, fit.embeddings
    )
    return _Round(unselected, query, fit, calibrated)


def _figures(pool: SelectionPool, selected: list[int], fitted: _Round) -> dict[str, float]:
    """The recorded figures of one labelled count (see :func:`run_strategy`)."""
    labels = pool.data.energies_ev
    query, q = fitted.query, fitted.q
    mean, ci68, ci90 = fitted.calibrated.mean_ev[q], fitted.ci_ev("68"), fitted.ci_ev("90")
    n_rows = len(pool.data)
    on_pool = np.full(n_rows, np.nan), {"68": np.zeros(n_rows), "90": np.zeros(n_rows)}
    members = np.full((fitted.fit.members_ev.shape[0], n_rows), np.nan)
    on_pool[0][query], on_pool[1]["68"][query], on_pool[1]["90"][query] = mean, ci68, ci90
    members[:, query] = fitted.fit.members_ev[:, q]
    baseline = labels[pool.saddles[selected]].mean()
    midpoints = pool.valley_midpoints_ev()
    offset = np.mean(labels[pool.saddles[selected]] - midpoints[pool.saddles[selected]])
    figures = {
        "mae_ev": float(np.mean(np.abs(mean - labels[query]))),
        "mean_spread_ev": float(np.mean(fitted.std_ev)),
        "mean_baseline_mae_ev": float(np.mean(np.abs(baseline - labels[query]))),
        "valley_midpoint_baseline_mae_ev": float(np.mean(np.abs(midpoints[query] + offset - labels[query]))),
        "out_of_domain": float(np.mean(fitted.calibrated.out_of_domain[q])),
    }
    figures |= _coverage(np.abs(mean - labels[query]), ci68, ci90)
    return figures | {f"barrier_{k}": v for k, v in _path_barriers(pool, *on_pool, members).items()}


def run_strategy(
    learner: RidgeLearner | CnnLearner,
    pool: SelectionPool,
    strategy: str,
    seed: int,
    counts: list[int],
    hybrid_weight: float = 0.5,
    on_round=None,
    design_noise: float = DESIGN_NOISE,
    batch_size: int | None = None,
) -> dict[str, list[float]]:
    """One active-learning run on the saddle pool, recorded at every labelled count.

    Between two counts the strategy picks ``batch_size`` saddles at a time and the ensemble is
    refitted (and recalibrated) after each batch, as a campaign does round by round; ``None``: the
    whole step between two counts in one batch. ``random`` ignores the model, so it always draws
    the whole step at once (its curve does not depend on ``batch_size``).

    Returns
    -------
    dict
        One value per count: ``mae_ev`` (ensemble MAE on the unselected saddles), ``mean_spread_ev``
        (their mean raw ensemble spread), ``mean_baseline_mae_ev`` (MAE of predicting the mean label
        of the selected saddles, a floor any informed learner must beat),
        ``valley_midpoint_baseline_mae_ev`` (MAE of predicting each saddle as the mean labelled E_b of
        its hop's two valleys plus the mean offset of the selected saddles: no image at all),
        ``coverage_68``,
        ``coverage_90``, ``width_68_ev``, ``width_90_ev`` of the test saddles' intervals and the same
        with a ``barrier_`` prefix for the paths' global barriers; energies in eV.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    selected = list(np.random.default_rng(seed).permutation(len(pool.saddles))[: counts[0]])  # same start
    embed = learner.own_features if strategy in LEARNER_FEATURES else learner.embed
    needs_embeddings = strategy in NEEDS_EMBEDDINGS
    out: dict[str, list[float]] = {}
    for r in range(len(counts)):
        fitted = _fit_round(learner, pool, selected, seed)
        for key, value in _figures(pool, selected, fitted).items():
            out.setdefault(key, []).append(value)
        if on_round is not None:
            on_round()
        if r + 1 == len(counts):
            break
        while len(selected) < counts[r + 1]:
            if len(selected) > counts[r]:  # a later batch of this step: refit on the labels so far
                fitted = _fit_round(learner, pool, selected, seed)
            need = counts[r + 1] - len(selected)
            size = need if batch_size is None or strategy == "random" else min(batch_size, need)
            picks = select_batch(
                strategy,
                size,
                spread_ev=fitted.std_ev if strategy in MEMBER_SPREAD else fitted.ci_ev("68"),
                embeddings=embed(fitted.query) if needs_embeddings else None,
                labelled_embeddings=embed(pool.saddles[selected]) if needs_embeddings else None,
                seed=seed * 1000 + r + 1,
                hybrid_weight=hybrid_weight,
                design_noise=design_noise,
            )
            selected += [int(i) for i in fitted.unselected[picks]]
    return out


def fraction_to_match(fractions: list[float], maes: list[float], target_ev: float) -> float | None:
    """Labelled fraction at which the MAE curve first reaches ``target_ev`` (linear interpolation).

    Returns the first grid fraction when the curve starts at or below the target, ``None`` when it
    never reaches it.
    """
    for i, (f, mae) in enumerate(zip(fractions, maes, strict=True)):
        if mae <= target_ev:
            if i == 0:
                return float(f)
            f0, m0 = fractions[i - 1], maes[i - 1]
            return float(f0 + (m0 - target_ev) / (m0 - mae) * (f - f0))
    return None
