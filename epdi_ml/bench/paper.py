"""The paper's benchmark: test-saddle and profile MAE against the fraction f of saddle labels.

For each f, an ensemble is trained on every valley label plus f of the (distinct) saddle labels;
the remaining saddles are the test set. Two baselines are scored on the same split: a linear fit
E_b = a * MEP + b per site kind on the training labels ("MEP-linear"), and the mean training label
per kind ("mean"). The profile MAE compares, along the zigzag paths of every fully labelled surface,
the energy profile built from training labels + predictions with the all-DFT profile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epdi_ml.analysis.labels import class_labels, computed_labels
from epdi_ml.analysis.paths import surface_paths
from epdi_ml.analysis.profiles import build_profile, mix_labels_and_predictions
from epdi_ml.training.config import TrainConfig, clone_config
from epdi_ml.training.ensemble import predict_ensemble
from epdi_ml.training.splits import split_paper_protocol
from epdi_ml.training.store_data import load_fragments
from epdi_ml.training.trainer import train_ensemble
from stores.facade import StoreFacade

PAPER_FRACTIONS = (0.0, 0.17, 0.33, 0.50)


@dataclass
class _Split:
    train: np.ndarray
    test: np.ndarray


def _baselines(kinds, meps, labels, split: _Split) -> dict[str, np.ndarray]:
    """Predictions of the MEP-linear and mean baselines for the test indices."""
    test_kinds = kinds[split.test]
    linear, mean = np.zeros(len(split.test)), np.zeros(len(split.test))
    for kind in set(test_kinds.tolist()):
        train_k = split.train[kinds[split.train] == kind]
        if len(train_k) == 0:  # f = 0: no saddle labels, fall back to every training label
            train_k = split.train
        target = test_kinds == kind
        mean[target] = labels[train_k].mean()
        if len(train_k) >= 2 and np.ptp(meps[train_k]) > 0:
            slope, intercept = np.polyfit(meps[train_k], labels[train_k], 1)
            linear[target] = slope * meps[split.test][target] + intercept
        else:
            linear[target] = mean[target]
    return {"mep_linear": linear, "mean": mean}


def _profile_mae(
    facade: StoreFacade, dft: dict[str, float], predicted: dict[str, tuple[float, float]]
) -> float | None:
    """MAE (eV) of path energies built from training labels + predictions vs all-DFT paths."""
    errors = []
    for surface in facade.query("surfaces", properties=["surface_id", "structure"]):
        sid = surface["surface_id"]
        sites = facade.query("sites", {"surface_id": sid})
        if not sites or not all(s["site_id"] in dft for s in sites):
            continue
        hops = facade.query("hops", {"surface_id": sid})
        lattice = np.array(surface["structure"]["lattice"]["matrix"])[:2, :2]
        for _, path in surface_paths(sites, hops, lattice):
            ids, kinds = [p["site_id"] for p in path], [p["kind"] for p in path]
            truth = build_profile(mix_labels_and_predictions(ids, kinds, dft, {}))
            known = {i: dft[i] for i in ids if i not in predicted}
            guess = build_profile(mix_labels_and_predictions(ids, kinds, known, predicted))
            errors += list(np.abs(np.array(guess.energies_ev) - np.array(truth.energies_ev))[1:])
    return float(np.mean(errors)) if errors else None


def paper_benchmark(
    facade: StoreFacade,
    config: TrainConfig,
    fractions=PAPER_FRACTIONS,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> list[dict]:
    """Train one ensemble per fraction and score it with the baselines.

    Parameters
    ----------
    facade : StoreFacade
        Store with labelled fragments.
    config : TrainConfig
        Ensemble settings (model, epochs, folds, ...).
    fractions : sequence of float
        Fractions f of the distinct saddle labels to train on, each within [0, 1], in run order.
    progress : bool
        tqdm progress bars.
    checkpoint_dir : Path, optional
        Per-epoch checkpoints in ``<checkpoint_dir>/f<f>``; a second call with the same folder and
        settings resumes every fraction from there (finished folds are not trained again; the
        row's wall time then counts only the resumed part; a finished fold goes on for more epochs
        only with ``config.keep_last``). Use a fresh folder for other settings.

    Returns
    -------
    list of dict
        One row per fraction: sizes, test-saddle MAE of the ensemble and the two baselines, profile
        MAE, mean ensemble spread, mean CV MAE (all in eV) and ``wall_time_s`` (training + scoring).
    """
    fractions = tuple(float(f) for f in fractions)
    bad = [f for f in fractions if not 0.0 <= f <= 1.0]
    if bad or not fractions:
        raise ValueError(f"fractions must be within [0, 1], got {list(fractions) or 'none'}")
    fragments = load_fragments(facade, distinct_only=True)
    labelled = fragments.labelled
    data = fragments.data.subset(labelled)
    docs = [fragments.docs[i] for i in labelled]
    meps = np.array([d["mep_ev"] for d in docs])
    kinds = np.asarray(data.kinds).astype(str)
    all_docs = facade.query("fragments", properties=["site_id", "representative_site_id"])
    dft = class_labels(all_docs, computed_labels(facade))
    rows = []
    for fraction in fractions:
        started = time.perf_counter()
        train_idx, test_idx = split_paper_protocol(kinds, data.surface_ids, fraction, config.seed)
        split = _Split(train_idx, test_idx)
        run = config
        if checkpoint_dir is not None:
            run = clone_config(config, checkpoint_dir=Path(checkpoint_dir) / f"f{fraction:.2f}")
        resume = checkpoint_dir is not None
        result = train_ensemble(data.subset(train_idx), run, progress=progress, resume=resume)
        test = data.subset(test_idx)
        offsets = result.offsets_ev(test)
        mean, std = predict_ensemble(
            result, test.images, kinds=test.kinds, batch_size=config.batch_test, offsets_ev=offsets
        )
        truth = data.energies_ev[test_idx]
        baselines = _baselines(kinds, meps, data.energies_ev, split)
        # predictions of the test saddles are shared with their symmetry-equivalent sites
        rep_of = {d["site_id"]: d["representative_site_id"] for d in all_docs}
        test_pred = {data.ids[i]: (float(m), float(s)) for i, m, s in zip(test_idx, mean, std, strict=True)}
        predicted = {sid: test_pred[rep] for sid, rep in rep_of.items() if rep in test_pred}
        rows.append(
            {
                "fraction": fraction,
                "n_train": len(train_idx),
                "n_test": len(test_idx),
                "test_mae_ev": float(np.mean(np.abs(mean - truth))) if len(test_idx) else None,
                "mep_linear_mae_ev": float(np.mean(np.abs(baselines["mep_linear"] - truth)))
                if len(test_idx)
                else None,
                "mean_mae_ev": float(np.mean(np.abs(baselines["mean"] - truth))) if len(test_idx) else None,
                "profile_mae_ev": _profile_mae(facade, dft, predicted),
                "mean_spread_ev": float(np.mean(std)) if len(test_idx) else None,
                "cv_mae_ev": float(np.mean(result.val_mae_ev)),
                "wall_time_s": round(time.perf_counter() - started, 1),
            }
        )
    return rows
