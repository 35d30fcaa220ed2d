"""Training settings of a fold ensemble (:class:`TrainConfig`), the device and mixed-precision choice."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from epdi_ml.fragments.crops import DEFAULT_PIXELS
from epdi_ml.models.architectures import DEFAULT_MODEL, MODEL_NAMES, check_architecture
from stores.errors import InputError


class TrainConfig(BaseModel):
    """Training settings of a fold ensemble.

    Attributes
    ----------
    model : str
        Model name (see :data:`epdi_ml.models.networks.MODEL_NAMES`).
    pretrained : bool
        Start from verified ImageNet weights.
    weights_dir : Path, optional
        Weights cache folder (default from the settings).
    epochs : int
        Maximum epochs per fold.
    patience : int
        Early stopping: stop a fold after this many epochs without a better validation MAE.
    lr, weight_decay : float
        AdamW settings.
    batch_train, batch_val, batch_test : int
        Batch sizes (paper: 40/16/16).
    folds : int
        Cross-validation folds (ensemble members).
    seed : int
        Seed for splits, initialisation, shuffling and augmentation.
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks CUDA when available.
    amp : bool, optional
        Mixed precision (autocast float16 + GradScaler); ``None`` = on exactly when on CUDA.
        ``True`` on the CPU runs the same path there (slowly; the checks use it without a GPU).
    pixels : int
        Input edge in pixels (fragments are resized when they differ).
    augment : bool
        Site-symmetry augmentation of training crops.
    deterministic : bool
        Ask torch for deterministic algorithms (warn only). Off by default: it makes DenseNet121
        training about 4x slower on CPU, where runs with the same seed and thread count repeat
        anyway; cuDNN benchmarking is always off.
    num_workers : int
        DataLoader workers.
    checkpoint_dir : Path, optional
        Folder for per-epoch checkpoints (one sub-folder per fold, see :mod:`epdi_ml.training.checkpoints`);
        none written when unset.
    keep_last : bool
        Keep each fold's resumable ``last.pt`` (optimiser state included, ~4x the weights) after the
        fold finished, so that a later run can resume it for more epochs. Off by default: a
        finished fold keeps only ``best.pt``, its best-epoch weights (the ensemble member).
    anchor : {"none", "valley-midpoint"}
        ``valley-midpoint``: the models learn each saddle's E_b minus the mean labelled E_b of its
        hop's two valleys, which is added back to every prediction
        (:meth:`epdi_ml.training.data.FragmentData.offsets_ev`); valleys are learnt as they are. On
        the reference set that residual has a standard deviation of 0.015 eV where saddle E_b spans
        0.3 eV per host.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = DEFAULT_MODEL
    pretrained: bool = True
    weights_dir: Path | None = None
    epochs: int = Field(3000, ge=1)
    patience: int = Field(200, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    batch_train: int = Field(40, ge=1)
    batch_val: int = Field(16, ge=1)
    batch_test: int = Field(16, ge=1)
    folds: int = Field(5, ge=2)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool | None = None
    pixels: int = Field(DEFAULT_PIXELS, ge=8)
    augment: bool = True
    deterministic: bool = False
    num_workers: int = Field(0, ge=0)
    checkpoint_dir: Path | None = None
    keep_last: bool = False
    anchor: Literal["none", "valley-midpoint"] = "none"

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; choose one of {', '.join(MODEL_NAMES)}")
        return value

    @model_validator(mode="after")
    def _buildable(self) -> TrainConfig:
        """Pretrained weights exist for the model, and the input is large enough for it."""
        check_architecture(self.model, self.pretrained, self.pixels, ("--model", "--pretrained", "--pixels"))
        return self


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"device {device!r} asked for, but no CUDA device is available here; give cpu or auto"
        )
    return torch.device(device)


def use_amp(config: TrainConfig, device: torch.device) -> bool:
    """Whether a run with ``config`` on ``device`` uses mixed precision (see :attr:`TrainConfig.amp`)."""
    return device.type == "cuda" if config.amp is None else config.amp


def clone_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Return a validated copy of ``config`` with ``changes``."""
    return TrainConfig.model_validate({**copy.deepcopy(config.model_dump()), **changes})
