"""Training a fold ensemble of CNN regressors on potential-image fragments.

The protocol follows the paper: training/validation = all valley labels + a fraction ``f`` of the
saddle labels (:func:`split_paper_protocol`), the remaining saddles are the test set; 5-fold
cross-validation split by surface (:func:`group_kfold`, neighbouring crops share pixels); L1 loss,
AdamW with lr 5e-5, batches 40/16/16 (train/val/test). Each fold model is kept at its best
validation epoch; the folds together are the ensemble whose spread (:func:`predict_ensemble`) drives
selection.

Before the first step each fold model predicts its mean training label everywhere (zero head weights,
bias = mean label) and its batch-norm statistics are re-estimated on its training fragments
(:func:`recalibrate_batchnorm`). Both matter for short fine-tunes (a campaign's rounds): a random
head scatters predictions by ~1 eV, and ImageNet running statistics make evaluation outputs differ
from the training ones (on the quickstart's 22 fragments, 10 epochs: CV MAE 0.89 → 0.08 eV).

Data enter as in-memory arrays (:class:`FragmentData`); loading them from the store is a thin layer
on top. Checkpoints (model, optimiser, grad scaler, epoch, best validation MAE, RNG states) are
written every epoch and training resumes from them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from epdi_ml import augment as site_symmetry
from epdi_ml.models import (
    DEFAULT_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_NAMES,
    EPDIRegressor,
    build_model,
    check_architecture,
)
from stores.errors import InputError

CHECKPOINT_FORMAT = 1
#: autocast dtype of mixed-precision runs
AMP_DTYPE = torch.float16


class TrainConfig(BaseModel):
    """Training settings of a fold ensemble.

    Attributes
    ----------
    model : str
        Model name (see :data:`epdi_ml.models.MODEL_NAMES`).
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
        Folder for per-epoch checkpoints (one sub-folder per fold); none written when unset.
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
    pixels: int = Field(64, ge=8)
    augment: bool = True
    deterministic: bool = False
    num_workers: int = Field(0, ge=0)
    checkpoint_dir: Path | None = None

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


# --------------------------------------------------------------------------------------------------
# data


def to_rgb(raw: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """Colour-map raw float fragments ``(N, P, P)`` onto one fixed scale as RGB uint8 ``(N, P, P, 3)``.

    Parameters
    ----------
    raw : ndarray
        Potential values (e.g. in V); values outside ``[vmin, vmax]`` are clipped.
    vmin, vmax : float
        The dataset-wide colour scale, same unit as ``raw``.
    cmap : str
        Matplotlib colour map name.
    """
    import matplotlib

    if not vmax > vmin:
        raise ValueError(f"colour scale needs vmax > vmin, got {vmin}, {vmax}")
    scaled = np.clip((np.asarray(raw, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    rgba = matplotlib.colormaps[cmap](scaled)
    return np.rint(rgba[..., :3] * 255).astype(np.uint8)


@dataclass
class FragmentData:
    """Labelled (or unlabelled) fragments in memory.

    Attributes
    ----------
    images : ndarray
        RGB uint8 fragments ``(N, P, P, 3)``, +x (columns) along the hop direction.
    energies_ev : ndarray
        Binding energies E_b in eV ``(N,)``; NaN where unknown.
    kinds : ndarray
        ``"valley"`` or ``"saddle"`` per fragment.
    surface_ids : ndarray
        Surface of each fragment (fold groups).
    ids : ndarray, optional
        Fragment/site ids, carried through for bookkeeping.
    """

    images: np.ndarray
    energies_ev: np.ndarray
    kinds: np.ndarray
    surface_ids: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        if (
            self.images.ndim != 4
            or self.images.shape[-1] != 3
            or self.images.shape[1] != self.images.shape[2]
        ):
            raise ValueError(f"images must be (N, P, P, 3) RGB, got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError("images must be uint8 RGB; convert raw arrays with FragmentData.from_raw")
        n = len(self.images)
        self.energies_ev = np.asarray(self.energies_ev, dtype=np.float64).reshape(-1)
        self.kinds = np.asarray(self.kinds).astype(str)
        self.surface_ids = np.asarray(self.surface_ids).astype(str)
        if self.ids is not None:
            self.ids = np.asarray(self.ids).astype(str)
        for name in ("energies_ev", "kinds", "surface_ids", "ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")
        bad = set(self.kinds) - set(site_symmetry.KINDS)
        if bad:
            raise ValueError(f"kinds must be valley or saddle, got {sorted(bad)}")

    @classmethod
    def from_raw(
        cls,
        raw: np.ndarray,
        energies_ev: np.ndarray,
        kinds: Sequence[str],
        surface_ids: Sequence[str],
        vmin: float,
        vmax: float,
        cmap: str = "viridis",
        ids: Sequence[str] | None = None,
    ) -> FragmentData:
        """Build from raw float fragments ``(N, P, P)`` with a fixed colour scale (see :func:`to_rgb`)."""
        return cls(
            to_rgb(raw, vmin, vmax, cmap), energies_ev, np.asarray(kinds), np.asarray(surface_ids), ids
        )

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: Sequence[int] | np.ndarray) -> FragmentData:
        """Return the fragments at ``index``."""
        index = np.asarray(index, dtype=int)
        return FragmentData(
            self.images[index],
            self.energies_ev[index],
            self.kinds[index],
            self.surface_ids[index],
            None if self.ids is None else self.ids[index],
        )


def images_to_tensor(images: np.ndarray, pixels: int | None = None) -> torch.Tensor:
    """RGB uint8 ``(N, P, P, 3)`` → ImageNet-normalised float ``(N, 3, pixels, pixels)``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if pixels is not None and x.shape[-1] != pixels:
        x = F.interpolate(x, size=(pixels, pixels), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class FragmentDataset(Dataset):
    """Torch dataset over :class:`FragmentData`.

    Items are ``(image, energy_ev)``: a normalised float image ``(3, pixels, pixels)`` and a float32
    label. Valley crops are masked (train and test alike). With ``augment`` a random site-symmetry
    operation is drawn from a generator seeded by ``(seed, epoch, index)``, so an epoch's
    augmentation does not depend on history (resuming reproduces it); set :attr:`epoch` per epoch.
    """

    def __init__(self, data: FragmentData, pixels: int, augment: bool = False, seed: int = 0) -> None:
        self.data = data
        self.pixels = pixels
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        if not augment:  # fixed inputs: prepare once
            prepared = augment_module_prepare(data.images, data.kinds)
            self._fixed = images_to_tensor(prepared, pixels)
        self._labels = torch.from_numpy(np.nan_to_num(data.energies_ev, nan=0.0).astype(np.float32))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.augment:
            return self._fixed[index], self._labels[index]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        image = site_symmetry.random_symmetry(self.data.images[index], str(self.data.kinds[index]), rng)
        return images_to_tensor(image[None], self.pixels)[0], self._labels[index]


def augment_module_prepare(images: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Test-time preparation of a stack of crops (mask where the kind needs it)."""
    return site_symmetry.prepare_batch(images, kinds) if len(images) else images


# --------------------------------------------------------------------------------------------------
# splits


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


# --------------------------------------------------------------------------------------------------
# training


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"device {device!r} asked for, but no CUDA device is available here; give cpu or auto"
        )
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    """

    config: TrainConfig
    folds: list[FoldResult] = field(default_factory=list)
    test_mae_ev: float | None = None

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
        return _models_from_state_dicts(self.state_dicts, self.config.model, self.config.pixels, device)

    def save(self, path: Path | str) -> Path:
        """Write the ensemble (config, fold state dicts and curves) to one ``torch.save`` file."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.model_dump_json(),
            "test_mae_ev": self.test_mae_ev,
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


def _loader(dataset: Dataset, batch: int, shuffle: bool, config: TrainConfig, generator=None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle,
        num_workers=config.num_workers,
        generator=generator,
        pin_memory=False,
        drop_last=False,
    )


def use_amp(config: TrainConfig, device: torch.device) -> bool:
    """Whether a run with ``config`` on ``device`` uses mixed precision (see :attr:`TrainConfig.amp`)."""
    return device.type == "cuda" if config.amp is None else config.amp


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """The trainer's autocast context: float16 where ``amp``, else a no-op."""
    return torch.autocast(device.type, dtype=AMP_DTYPE, enabled=amp)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    x: torch.Tensor,
    y: torch.Tensor,
    amp: bool,
) -> torch.Tensor:
    """One optimiser step as the trainer takes it; returns the (detached) L1 loss in eV.

    The forward pass runs under :func:`autocast`, the loss in float32, the backward pass on the
    scaled loss; ``scaler.step`` skips the update when the scaled gradients overflowed.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(x.device, amp):
        pred = model(x)
    loss = F.l1_loss(pred.float(), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


@torch.no_grad()
def _evaluate_mae(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool) -> float:
    model.eval()
    total, count = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with autocast(device, amp):
            pred = model(x)
        total += float((pred.float() - y).abs().sum())
        count += len(y)
    return total / max(count, 1)


def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, device: torch.device) -> int:
    """Re-estimate every batch-norm layer's running mean and variance on ``loader``'s images.

    Pretrained running statistics describe ImageNet photographs, not potential fragments; until
    enough training steps have moved them (momentum 0.1), evaluation-mode outputs differ from the
    training-mode outputs the loss saw, and a short fine-tune predicts far off its labels. One
    forward pass in training mode without gradients, with a cumulative average (``momentum=None``),
    sets them to the statistics of the data at hand. Returns the number of layers reset.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for x, _ in loader:
            model(x.to(device, non_blocking=True))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def _fold_seed(seed: int, fold: int) -> int:
    return seed * 1000 + fold


def train_fold(
    fold: int,
    train: FragmentData,
    val: FragmentData,
    config: TrainConfig,
    progress: bool = True,
    resume: bool = False,
) -> FoldResult:
    """Train one fold model with early stopping on ``val``; see :func:`train_ensemble`."""
    from tqdm.auto import tqdm

    device = resolve_device(config.device)
    amp = use_amp(config, device)
    fold_seed = _fold_seed(config.seed, fold)
    seed_everything(fold_seed)
    torch.backends.cudnn.benchmark = False
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)

    model = build_model(config.model, config.pretrained, config.weights_dir, config.pixels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    train_set = FragmentDataset(train, config.pixels, augment=config.augment, seed=fold_seed)
    val_loader = _loader(FragmentDataset(val, config.pixels), config.batch_val, False, config)
    generator = torch.Generator()

    fold_dir = None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / f"fold{fold}"
    last = None if fold_dir is None else fold_dir / "last.pt"
    start_epoch, best_val, best_epoch, bad_epochs = 0, float("inf"), -1, 0
    best_state: dict[str, torch.Tensor] = {}
    train_curve: list[float] = []
    val_curve: list[float] = []
    elapsed, seen, done = 0.0, 0, False
    labels = train.energies_ev
    with torch.no_grad():
        # start at the mean label everywhere: E_b ~ 3 eV is far from 0 at lr 5e-5, and a randomly
        # initialised head on ~1000 features scatters its first predictions by ~1 eV around it
        model.head.bias.fill_(float(np.mean(labels)) if len(labels) else 0.0)
        model.head.weight.zero_()
    if len(train):
        recalibrate_batchnorm(
            model, _loader(FragmentDataset(train, config.pixels), config.batch_val, False, config), device
        )
    if resume and last is not None and last.is_file():
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("model_name") != config.model:
            raise ValueError(f"{last} is not a checkpoint of this run (model {ckpt.get('model_name')})")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = ckpt["epoch"] + 1
        best_val, best_epoch, bad_epochs = ckpt["best_val_mae_ev"], ckpt["best_epoch"], ckpt["bad_epochs"]
        best_state = ckpt["best_state"]
        train_curve, val_curve = list(ckpt["train_loss_ev"]), list(ckpt["val_mae_ev"])
        elapsed, seen, done = ckpt["elapsed_s"], ckpt["images_seen"], ckpt["done"]
        _set_rng_state(ckpt["rng"])

    bar = tqdm(
        range(start_epoch, config.epochs),
        desc=f"fold {fold}",
        disable=not progress or done,
        initial=start_epoch,
        total=config.epochs,
        leave=False,
    )
    for epoch in bar:
        if done:
            break
        t0 = time.perf_counter()
        model.train()
        train_set.epoch = epoch
        generator.manual_seed(fold_seed * 100_003 + epoch)
        loader = _loader(train_set, config.batch_train, True, config, generator)
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = train_step(model, optimizer, scaler, x, y, amp)
            total += float(loss) * len(y)
            count += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - t0
        seen += count
        train_curve.append(total / max(count, 1))
        val_curve.append(_evaluate_mae(model, val_loader, device, amp))
        if val_curve[-1] < best_val:
            best_val, best_epoch, bad_epochs = val_curve[-1], epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        done = bad_epochs >= config.patience  # early stop; a resumed run with more epochs goes on
        bar.set_postfix(train=f"{train_curve[-1]:.4f}", val=f"{val_curve[-1]:.4f}", best=f"{best_val:.4f}")
        if last is not None:
            fold_dir.mkdir(parents=True, exist_ok=True)
            payload = {
                "format": CHECKPOINT_FORMAT,
                "model_name": config.model,
                "fold": fold,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "best_val_mae_ev": best_val,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "best_state": best_state,
                "train_loss_ev": train_curve,
                "val_mae_ev": val_curve,
                "elapsed_s": elapsed,
                "images_seen": seen,
                "done": done,
                "rng": _rng_state(),
            }
            tmp = last.with_suffix(".tmp")
            torch.save(payload, tmp)
            tmp.replace(last)
    bar.close()
    epochs_run = max(len(train_curve), 1)
    return FoldResult(
        fold=fold,
        state_dict=best_state or {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        train_loss_ev=train_curve,
        val_mae_ev=val_curve,
        best_epoch=best_epoch,
        best_val_mae_ev=best_val,
        val_surfaces=sorted(set(val.surface_ids.tolist())),
        seconds_per_epoch=elapsed / epochs_run,
        images_per_second=seen / elapsed if elapsed > 0 else float("nan"),
    )


def train_ensemble(
    data: FragmentData,
    config: TrainConfig,
    progress: bool = True,
    resume: bool = False,
    test: FragmentData | None = None,
) -> EnsembleResult:
    """Train ``config.folds`` models by surface-grouped cross-validation.

    Parameters
    ----------
    data : FragmentData
        Labelled training/validation fragments (e.g. ``all.subset(split_paper_protocol(...)[0])``).
    config : TrainConfig
        Settings; ``checkpoint_dir`` enables per-epoch checkpoints.
    progress : bool
        tqdm progress bars.
    resume : bool
        Continue every fold from its last checkpoint (finished folds are not retrained).
    test : FragmentData, optional
        Held-out fragments; the ensemble-mean MAE on them is reported.

    Returns
    -------
    EnsembleResult
    """
    if np.isnan(data.energies_ev).any():
        raise ValueError("training fragments need labels (energies_ev has NaN)")
    splits = group_kfold(data.surface_ids, config.folds, config.seed)
    result = EnsembleResult(config=config)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        for fold, (train_idx, val_idx) in enumerate(splits):
            train, val = data.subset(train_idx), data.subset(val_idx)
            result.folds.append(train_fold(fold, train, val, config, progress=progress, resume=resume))
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    if test is not None and len(test):
        mean, _ = predict_ensemble(result, test.images, kinds=test.kinds, batch_size=config.batch_test)
        result.test_mae_ev = float(np.mean(np.abs(mean - test.energies_ev)))
    return result


# --------------------------------------------------------------------------------------------------
# prediction


def _models_from_state_dicts(
    state_dicts: Sequence[dict[str, torch.Tensor]], model_name: str, pixels: int, device: str | torch.device
) -> list[EPDIRegressor]:
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
            models.extend(_models_from_state_dicts([member], model_name, pixels, dev))
    if not models:
        raise ValueError("no models given")
    x_all = images_to_tensor(augment_module_prepare(images, list(kinds)), pixels)
    preds = np.zeros((len(models), len(images)))
    for start in range(0, len(images), batch_size):
        x = x_all[start : start + batch_size].to(dev)
        for m, model in enumerate(models):
            preds[m, start : start + len(x)] = model(x).float().cpu().numpy()
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


def clone_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Return a validated copy of ``config`` with ``changes``."""
    return TrainConfig.model_validate({**copy.deepcopy(config.model_dump()), **changes})
