"""Fold ensembles: per-fold results, the saved ensemble file, predictions with spread and embeddings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from epdi_ml.fragments import augment as site_symmetry
from epdi_ml.models.networks import EPDIRegressor, build_model
from epdi_ml.training.checkpoints import CHECKPOINT_FORMAT
from epdi_ml.training.config import TrainConfig, resolve_device
from epdi_ml.training.data import FragmentData, augment_module_prepare, images_to_tensor


@dataclass
class FoldResult:
    """One fold's outcome."""

    fold: int
    state_dict: dict[str, torch.Tensor]
    train_loss_ev: list[float]
    val_mae_ev: list[float]
    best_epoch: int
    best_val_mae_ev: float
    val_surfaces: list[str]
    seconds_per_epoch: float
    images_per_second: float


@dataclass
class EnsembleResult:
    """Fold ensemble: state dicts, learning curves, validation errors and timings.

    Attributes
    ----------
    config : TrainConfig
        The configuration used.
    folds : list of FoldResult
        Per fold: best-epoch state dict (CPU tensors), per-epoch training L1 loss and validation
        MAE (eV), best epoch (0-based), validation surfaces, seconds per epoch, training images/s.
    test_mae_ev : float, optional
        MAE of the ensemble mean on the test set when one was given.
    valley_offset_ev : float
        Valley-anchored ensembles (``config.anchor``): the mean training valley E_b (eV) that the
        models' valley outputs are relative to (0 otherwise).
    """

    config: TrainConfig
    folds: list[FoldResult] = field(default_factory=list)
    test_mae_ev: float | None = None
    valley_offset_ev: float = 0.0

    def offsets_ev(self, data: FragmentData) -> np.ndarray:
        """Per fragment of ``data`` what is added to every model's output (eV; zeros unless anchored)."""
        return data.offsets_ev(self.config.anchor, self.valley_offset_ev)

    @property
    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Best-epoch state dict of every fold."""
        return [f.state_dict for f in self.folds]

    @property
    def val_mae_ev(self) -> list[float]:
        """Best validation MAE of every fold (eV)."""
        return [f.best_val_mae_ev for f in self.folds]

    @property
    def best_epochs(self) -> list[int]:
        """Best epoch (0-based) of every fold."""
        return [f.best_epoch for f in self.folds]

    def models(self, device: str | torch.device = "cpu") -> list[EPDIRegressor]:
        """Return the fold models in eval mode."""
        return models_from_state_dicts(self.state_dicts, self.config.model, self.config.pixels, device)

    def save(self, path: Path | str) -> Path:
        """Write the ensemble (config, fold state dicts and curves) to one ``torch.save`` file."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.model_dump_json(),
            "test_mae_ev": self.test_mae_ev,
            "valley_offset_ev": self.valley_offset_ev,
            "folds": [dataclasses.asdict(f) for f in self.folds],
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> EnsembleResult:
        """Read a file written by :meth:`save` (``weights_only=True``)."""
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        return cls(
            config=TrainConfig.model_validate_json(payload["config"]),
            folds=[FoldResult(**f) for f in payload["folds"]],
            test_mae_ev=payload["test_mae_ev"],
            valley_offset_ev=payload.get("valley_offset_ev", 0.0),
        )

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (no tensors) for documents and reports."""
        return {
            "config": json.loads(self.config.model_dump_json()),
            "val_mae_ev": self.val_mae_ev,
            "best_epochs": self.best_epochs,
            "test_mae_ev": self.test_mae_ev,
            "learning_curves": [
                {"train_loss_ev": f.train_loss_ev, "val_mae_ev": f.val_mae_ev} for f in self.folds
            ],
            "val_surfaces": [f.val_surfaces for f in self.folds],
            "seconds_per_epoch": [f.seconds_per_epoch for f in self.folds],
            "images_per_second": [f.images_per_second for f in self.folds],
        }


def models_from_state_dicts(
    state_dicts: Sequence[dict[str, torch.Tensor]], model_name: str, pixels: int, device: str | torch.device
) -> list[EPDIRegressor]:
    """Fold models of ``model_name`` in eval mode on ``device``, one per state dict."""
    models = []
    for state in state_dicts:
        model = build_model(model_name, pretrained=False, in_pixels=pixels)
        model.load_state_dict(state)
        models.append(model.to(device).eval())
    return models


@torch.no_grad()
def predict_ensemble(
    models_or_state_dicts: EnsembleResult | Sequence[nn.Module | dict[str, torch.Tensor]],
    images: np.ndarray,
    kinds: Sequence[str] | None = None,
    model_name: str | None = None,
    pixels: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    return_members: bool = False,
    offsets_ev: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predict E_b (eV) with every fold model; return the ensemble mean and spread per sample.

    Parameters
    ----------
    models_or_state_dicts : EnsembleResult or sequence of modules / state dicts
        The fold models; state dicts need ``model_name`` and ``pixels`` (taken from an
        :class:`EnsembleResult` automatically).
    images : ndarray
        RGB uint8 fragments ``(N, P, P, 3)``.
    kinds : sequence of str, optional
        Site kind per fragment (valley crops get the circular mask as in training). Required unless
        all fragments are saddles.
    model_name, pixels : optional
        Architecture and input size for state dicts.
    batch_size : int
        Prediction batch (paper test batch 16).
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    return_members : bool
        Also return the per-model predictions ``(n_models, N)``.
    offsets_ev : ndarray, optional
        Added to every model's output per fragment: the valley anchors of a valley-anchored
        ensemble (:meth:`epdi_ml.training.data.FragmentData.offsets_ev` with its config's ``anchor``).

    Returns
    -------
    mean_ev, std_ev : ndarray
        Mean and population standard deviation (ddof 0) across the fold models, in eV.
    """
    dev = resolve_device(device)
    if isinstance(models_or_state_dicts, EnsembleResult):
        model_name = model_name or models_or_state_dicts.config.model
        pixels = pixels or models_or_state_dicts.config.pixels
        members: Sequence[Any] = models_or_state_dicts.state_dicts
    else:
        members = models_or_state_dicts
    images = np.asarray(images)
    if kinds is None:
        kinds = [site_symmetry.SADDLE] * len(images)
    if pixels is None:
        pixels = images.shape[1]
    models: list[nn.Module] = []
    for member in members:
        if isinstance(member, nn.Module):
            models.append(member.to(dev).eval())
        else:
            if model_name is None:
                raise ValueError("state dicts need model_name")
            models.extend(models_from_state_dicts([member], model_name, pixels, dev))
    if not models:
        raise ValueError("no models given")
    x_all = images_to_tensor(augment_module_prepare(images, list(kinds)), pixels)
    preds = np.zeros((len(models), len(images)))
    for start in range(0, len(images), batch_size):
        x = x_all[start : start + batch_size].to(dev)
        for m, model in enumerate(models):
            preds[m, start : start + len(x)] = model(x).float().cpu().numpy()
    if offsets_ev is not None:
        preds += np.asarray(offsets_ev, dtype=float)[None, :]
    mean, std = preds.mean(axis=0), preds.std(axis=0)
    return (mean, std, preds) if return_members else (mean, std)


@torch.no_grad()
def compute_embeddings(
    model: EPDIRegressor,
    images: np.ndarray,
    kinds: Sequence[str] | None = None,
    pixels: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> np.ndarray:
    """Penultimate features ``(N, embedding_dim)`` of fragments (for diversity selection)."""
    dev = resolve_device(device)
    images = np.asarray(images)
    kinds = list(kinds) if kinds is not None else [site_symmetry.SADDLE] * len(images)
    x_all = images_to_tensor(augment_module_prepare(images, kinds), pixels or images.shape[1])
    model = model.to(dev).eval()
    parts = [
        model.embedding(x_all[i : i + batch_size].to(dev)).float().cpu()
        for i in range(0, len(x_all), batch_size)
    ]
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.embedding_dim), dtype=np.float32)
