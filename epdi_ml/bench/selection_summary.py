"""The selection benchmark run end to end: every strategy and seed, then figures per seed count and a plot.

:func:`selection_benchmark` runs :func:`epdi_ml.bench.selection.run_strategy` for every strategy and
seed and summarises: per strategy the mean MAE curve, the fraction needed to reach random's MAE at
``match_fraction``, and the coverage and mean width of the calibrated 68 % / 90 % intervals on test
saddles and on path global barriers (mean over seeds and fractions), all for the first n seeds of
every ``seed_counts`` entry. The top-level ``coverage_68``, ``coverage_90``, widths and
``barrier_*`` figures are those of ``random`` at the full seed count (its test set is an unbiased
draw; the others' test sets are what the strategy left).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from epdi_ml.bench.learners import CnnLearner, RidgeLearner, frozen_embeddings, ridge_features
from epdi_ml.bench.selection import (
    GOAL_FRACTION,
    REQUIRED_FRACTION,
    SelectionBenchConfig,
    SelectionBenchError,
    fraction_to_match,
    labelled_counts,
    run_strategy,
)
from epdi_ml.bench.selection_pool import load_pool
from stores.facade import StoreFacade
from stores.progress import progress as show_progress

#: interval figures averaged over seeds and fractions
INTERVAL_KEYS = ("coverage_68", "coverage_90", "width_68_ev", "width_90_ev")


def _learner(pool, config: SelectionBenchConfig, progress: bool) -> tuple[Any, str, float]:
    """The learner, its one-line description and the seconds spent on embeddings."""
    if config.learner == "cnn":
        from epdi_ml.training.config import TrainConfig

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
        described = f"{config.model_name} CNN fold ensemble retrained each round ({config.epochs} epochs)"
        return CnnLearner(pool, train_config), described, 0.0
    t0 = time.perf_counter()
    embeddings = frozen_embeddings(pool.data, config, progress=progress)
    seconds = time.perf_counter() - t0
    extra = pool.valley_features() if config.valley_features else None
    meps = pool.meps_ev if config.use_mep else None
    features = ridge_features(embeddings, meps, config.n_components, extra)
    n_components = features.shape[1] - (1 if config.use_mep else 0) - (0 if extra is None else extra.shape[1])
    anchored = config.anchor == "valley-midpoint"
    described = (
        f"ridge fold heads on frozen {config.model_name} embeddings "
        f"({'ImageNet' if config.pretrained else 'random'} weights, {n_components} "
        f"principal components{' + MEP' if config.use_mep else ''}"
        f"{' + valley features' if config.valley_features else ''})"
        + ("; saddles anchored on the mean labelled E_b of their two valleys" if anchored else "")
    )
    offsets = pool.valley_midpoints_ev() if anchored else None
    return RidgeLearner(pool, embeddings, features, config.folds, offsets), described, seconds


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def summarise(curves: dict[str, dict[str, list]], labelled: list[float], n_seeds: int, match: float) -> dict:
    """Figures of the first ``n_seeds`` runs of every strategy (see the module docstring)."""
    random_mean = np.mean(np.array(curves["random"]["mae_ev"])[:n_seeds], axis=0)
    target = float(np.interp(match, labelled, random_mean))
    strategies: dict[str, dict[str, Any]] = {}
    for strategy, curve in curves.items():
        maes = np.array(curve["mae_ev"])[:n_seeds]
        mean = maes.mean(axis=0)
        info: dict[str, Any] = {
            "mae_mean_ev": mean.tolist(),
            "mae_std_ev": (maes.std(axis=0, ddof=1) if n_seeds > 1 else np.zeros(len(mean))).tolist(),
            "fraction_to_match": fraction_to_match(labelled, mean.tolist(), target),
        }
        for prefix in ("", "barrier_"):
            for key in INTERVAL_KEYS:
                values = np.array(curve[prefix + key], dtype=float)[:n_seeds]
                info[prefix + key] = _mean(values)
                info[f"{prefix}{key}_per_fraction"] = [_mean(values[:, i]) for i in range(values.shape[1])]
        info["out_of_domain"] = _mean(np.array(curve["out_of_domain"], dtype=float)[:n_seeds])
        strategies[strategy] = info
    reached = {s: v["fraction_to_match"] for s, v in strategies.items() if v["fraction_to_match"] is not None}
    best = min(reached, key=reached.get) if reached else None
    return {
        "n_seeds": n_seeds,
        "random_mae_at_match_ev": target,
        "strategies": strategies,
        "best_strategy": best,
        "best_fraction_to_match": reached.get(best) if best else None,
    }


def selection_benchmark(
    facade: StoreFacade, config: SelectionBenchConfig, progress: bool = True
) -> dict[str, Any]:
    """Run every strategy for every seed and summarise (all MAEs and widths in eV).

    Returns
    -------
    dict
        JSON-friendly: dataset counts, fraction grid, per-strategy curves and figures at the full
        seed count (``strategies``), the same per seed count (``by_seed_count``), the headline
        interval figures of ``random``, the best strategy and the goal verdicts.
    """
    start = time.perf_counter()
    pool = load_pool(facade, config.dataset)
    if pool.n_surfaces < config.folds:
        raise SelectionBenchError(
            f"{config.folds} folds need at least {config.folds} surfaces; dataset {config.dataset!r} has "
            f"{pool.n_surfaces}: lower --folds"
        )
    counts = labelled_counts(len(pool.saddles), config.fractions)
    learner, described, t_embed = _learner(pool, config, progress)
    curves: dict[str, dict[str, list]] = {}
    total = len(config.strategies) * config.seeds * len(counts)
    t0 = time.perf_counter()
    with show_progress(total=total, desc="selection rounds", unit="round", show=progress) as bar:
        for strategy in config.strategies:
            runs = []
            for seed in range(config.seeds):
                bar.set_postfix(strategy=strategy, seed=seed)
                runs.append(
                    run_strategy(
                        learner,
                        pool,
                        strategy,
                        seed,
                        counts,
                        config.hybrid_weight,
                        bar.update,
                        config.design_noise,
                        config.batch_size,
                    )  # fmt: skip
                )
            curves[strategy] = {k: [run[k] for run in runs] for k in runs[0]}
    t_rounds = time.perf_counter() - t0
    labelled = [c / len(pool.saddles) for c in counts]
    by_count = {
        str(n): summarise(curves, labelled, n, config.match_fraction) for n in config.reported_seed_counts
    }
    full = by_count[str(config.seeds)]
    for strategy, info in full["strategies"].items():
        info["mae_per_seed_ev"] = curves[strategy]["mae_ev"]
        info["mean_spread_ev"] = np.mean(curves[strategy]["mean_spread_ev"], axis=0).tolist()
        info["mean_baseline_mae_ev"] = np.mean(curves[strategy]["mean_baseline_mae_ev"], axis=0).tolist()
        info["valley_midpoint_baseline_mae_ev"] = np.mean(
            curves[strategy]["valley_midpoint_baseline_mae_ev"], axis=0
        ).tolist()
    headline = {k: full["strategies"]["random"][k] for k in INTERVAL_KEYS}
    headline |= {f"barrier_{k}": full["strategies"]["random"][f"barrier_{k}"] for k in INTERVAL_KEYS}
    best_f = full["best_fraction_to_match"]
    return {
        "dataset": config.dataset,
        "learner": config.learner,
        "anchor": config.anchor,
        "model": config.model_name,
        "pretrained": config.pretrained,
        "features": described,
        "n_surfaces": pool.n_surfaces,
        "n_valleys": len(pool.valleys),
        "n_saddles": len(pool.saddles),
        "n_paths": len(pool.paths),
        "folds": config.folds,
        "batch_size": config.batch_size,
        "seeds": list(range(config.seeds)),
        "fractions": config.fractions,
        "labelled_fractions": labelled,
        "n_labelled_saddles": counts,
        "test_set": "the saddles not selected at each fraction (paper's definition)",
        "intervals": "calibrated 68 % / 90 % intervals (epdi_ml.training.calibration); headline figures: "
        "random",
        "match_fraction": config.match_fraction,
        "random_mae_at_match_ev": full["random_mae_at_match_ev"],
        "strategies": full["strategies"],
        "by_seed_count": {
            n: {"random_mae_at_match_ev": s["random_mae_at_match_ev"]}
            | {"fraction_to_match": {k: v["fraction_to_match"] for k, v in s["strategies"].items()}}
            | {"best_strategy": s["best_strategy"], "best_fraction_to_match": s["best_fraction_to_match"]}
            for n, s in by_count.items()
        },
        **headline,
        "best_strategy": full["best_strategy"],
        "best_fraction_to_match": best_f,
        "goal_fraction": GOAL_FRACTION,
        "required_fraction": REQUIRED_FRACTION,
        "goal_met": bool(best_f is not None and best_f <= GOAL_FRACTION),
        "required_met": bool(best_f is not None and best_f <= REQUIRED_FRACTION),
        "seconds": {
            "embeddings": round(t_embed, 2),
            "rounds": round(t_rounds, 2),
            "per_round": round(t_rounds / max(total, 1), 4),
            "total": round(time.perf_counter() - start, 2),
        },
    }


def plot_selection(result: dict[str, Any], path: Path) -> Path:
    """MAE against labelled fraction per strategy (mean line, +-1 std band over seeds) and coverage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = 100 * np.array(result["labelled_fractions"])
    fig, (ax, cov) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    for strategy, info in result["strategies"].items():
        mean, std = np.array(info["mae_mean_ev"]), np.array(info["mae_std_ev"])
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=strategy)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
        for key, style in (("coverage_68", "-"), ("coverage_90", "--")):
            values = np.array([np.nan if v is None else v for v in info[f"{key}_per_fraction"]], dtype=float)
            cov.plot(x, 100 * values, style, color=line.get_color(), lw=1)
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
    for nominal in (68, 90):
        cov.axhline(nominal, color="grey", lw=0.8, ls=":")
    cov.set_xlabel("saddles labelled (%)")
    cov.set_ylabel("test saddles inside the interval (%)")
    cov.set_title("calibrated 68 % (solid) and 90 % (dashed) intervals", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
