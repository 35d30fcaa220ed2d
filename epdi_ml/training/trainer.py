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
written every epoch and training resumes from them; when a fold finishes only its best-epoch
weights are kept unless the run asks to keep the resumable state (:mod:`epdi_ml.training.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from epdi_ml.fragments import augment as site_symmetry
from epdi_ml.models.networks import build_model
from epdi_ml.training.checkpoints import (
    BEST_FILE,
    LAST_FILE,
    fold_folder,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from epdi_ml.training.config import TrainConfig, resolve_device, use_amp
from epdi_ml.training.data import FragmentData, FragmentDataset
from epdi_ml.training.ensemble import EnsembleResult, FoldResult, predict_ensemble
from epdi_ml.training.splits import group_kfold
from stores.progress import progress as show_progress

#: autocast dtype of mixed-precision runs
AMP_DTYPE = torch.float16


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    valley_offset_ev: float = 0.0,
) -> FoldResult:
    """Train one fold model with early stopping on ``val``; see :func:`train_ensemble`.

    With ``config.anchor`` the model learns E_b minus the fragments' offsets
    (:meth:`~epdi_ml.training.data.FragmentData.offsets_ev`, valleys relative to ``valley_offset_ev``).

    With ``config.checkpoint_dir`` the fold's ``last.pt`` is written every epoch and its ``best.pt``
    when it finishes (then ``last.pt`` is deleted unless ``config.keep_last``); see
    :mod:`epdi_ml.training.checkpoints`. With ``resume`` the fold goes on from its ``last.pt``, or, when only
    ``best.pt`` is left, is returned from there as finished.
    """
    fold_dir = fold_folder(config.checkpoint_dir, fold)
    last = None if fold_dir is None else fold_dir / LAST_FILE
    best = None if fold_dir is None else fold_dir / BEST_FILE
    if resume and last is not None and not last.is_file() and best.is_file():
        return FoldResult(**read_checkpoint(best, config.model)["result"])

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
    offsets = train.offsets_ev(config.anchor, valley_offset_ev)
    val_offsets = val.offsets_ev(config.anchor, valley_offset_ev)
    train_set = FragmentDataset(
        train, config.pixels, augment=config.augment, seed=fold_seed, offsets_ev=offsets
    )
    val_set = FragmentDataset(val, config.pixels, offsets_ev=val_offsets)
    val_loader = _loader(val_set, config.batch_val, False, config)
    generator = torch.Generator()

    start_epoch, best_val, best_epoch, bad_epochs = 0, float("inf"), -1, 0
    best_state: dict[str, torch.Tensor] = {}
    train_curve: list[float] = []
    val_curve: list[float] = []
    elapsed, seen, done = 0.0, 0, False
    labels = train.energies_ev - offsets  # what the model learns
    with torch.no_grad():
        # start at the mean label everywhere: E_b ~ 3 eV is far from 0 at lr 5e-5, and a randomly
        # initialised head on ~1000 features scatters its first predictions by ~1 eV around it
        model.head.bias.fill_(float(np.mean(labels)) if len(labels) else 0.0)
        model.head.weight.zero_()
    if len(train):
        plain = FragmentDataset(train, config.pixels, offsets_ev=offsets)
        recalibrate_batchnorm(model, _loader(plain, config.batch_val, False, config), device)
    if resume and last is not None and last.is_file():
        ckpt = read_checkpoint(last, config.model)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = ckpt["epoch"] + 1
        best_val, best_epoch, bad_epochs = ckpt["best_val_mae_ev"], ckpt["best_epoch"], ckpt["bad_epochs"]
        best_state = ckpt["best_state"]
        train_curve, val_curve = list(ckpt["train_loss_ev"]), list(ckpt["val_mae_ev"])
        elapsed, seen, done = ckpt["elapsed_s"], ckpt["images_seen"], ckpt["done"]
        set_rng_state(ckpt["rng"])

    bar = show_progress(
        range(start_epoch, config.epochs),
        desc=f"fold {fold}",
        unit="epoch",
        show=progress and not done,
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
            payload = {
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
                "rng": rng_state(),
            }
            write_checkpoint(payload, last)
    bar.close()
    epochs_run = max(len(train_curve), 1)
    result = FoldResult(
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
    if best is not None:  # the fold is finished: keep its ensemble member, drop the resumable state
        finished = {"model_name": config.model, "fold": fold, "result": dataclasses.asdict(result)}
        write_checkpoint(finished, best)
        if not config.keep_last:
            last.unlink(missing_ok=True)
    return result


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
        Settings; ``checkpoint_dir`` enables per-epoch checkpoints, ``keep_last`` keeps each
        fold's resumable ``last.pt`` after the fold finished (default: only ``best.pt`` stays).
    progress : bool
        tqdm progress bars.
    resume : bool
        Continue every fold from its last checkpoint (finished folds are not retrained; a finished
        fold goes on for more epochs only when its ``last.pt`` was kept).
    test : FragmentData, optional
        Held-out fragments; the ensemble-mean MAE on them is reported.

    Returns
    -------
    EnsembleResult
    """
    if np.isnan(data.energies_ev).any():
        raise ValueError("training fragments need labels (energies_ev has NaN)")
    splits = group_kfold(data.surface_ids, config.folds, config.seed)
    valleys = data.energies_ev[data.kinds == site_symmetry.VALLEY]
    anchored = config.anchor != "none" and len(valleys)
    result = EnsembleResult(config=config, valley_offset_ev=float(valleys.mean()) if anchored else 0.0)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        for fold, (train_idx, val_idx) in enumerate(splits):
            train, val = data.subset(train_idx), data.subset(val_idx)
            result.folds.append(
                train_fold(fold, train, val, config, progress, resume, result.valley_offset_ev)
            )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    if test is not None and len(test):
        mean, _ = predict_ensemble(
            result,
            test.images,
            kinds=test.kinds,
            batch_size=config.batch_test,
            offsets_ev=result.offsets_ev(test),
        )
        result.test_mae_ev = float(np.mean(np.abs(mean - test.energies_ev)))
    return result
