"""``make gpu-check``: the CUDA training path (mixed precision) on the reference fragments, timed and checked.

For each model (default DenseNet121 and EfficientNet-Lite0) and input size (default 64 and 128 px):

* **timing**: a fixed number of optimiser steps with the trainer's own step
  (:func:`epdi_ml.training.train_step`: float16 autocast, GradScaler) after a few warm-up steps,
  then as many inference batches in float32 (the prediction path) and under autocast (the
  validation path); images/s of each and the peak GPU memory (``torch.cuda.max_memory_allocated``);
* **trainer**: :func:`epdi_ml.training.train_fold` (augmentation, batch-norm recalibration) for one
  epoch of at most that many steps with per-epoch checkpoints, then resumed for a second epoch
  (grad-scaler state, CUDA RNG state); losses, validation MAE and grad scale must be finite;
* **agreement**: the trained fold model in eval mode on held-out fragments, on the device and on the
  CPU with the same weights. A few steps from a zero head leave predictions nearly constant, which
  would hide any backbone error, so the head is first refit by ridge regression on the CPU
  float32 features of these fragments (standardised, alpha = 1): predictions then spread like the
  labels (~0.3 eV). Compared: E_b through :func:`epdi_ml.training.predict_ensemble` (float32; cuDNN
  may use TF32 there, torch's default) and under float16 autocast (the validation path), largest and
  mean absolute difference in eV; the penultimate features are reported (relative to their largest
  magnitude) and must be finite.

Tolerances. float16 and TF32 keep 11 significant bits (unit roundoff 2^-11 = 4.9e-4); E_b of
2-4 eV alone rounds to steps of 0.002 eV in float16. Batch norm re-estimated on potential
fragments has channels of almost zero variance (eps 1e-3), which amplify the rounding of their
input ~30x: measured with float16 autocast on the CPU, 64 px, the 549 reference fragments and such
a ridge head, EfficientNet-Lite0's features differ by up to 43 % of their largest value (mean 8 %)
and E_b by up to 0.050 eV (mean 0.009 eV, test MAE changed by 0.001 eV); DenseNet121 (random
init) by 0.3 % and 0.007 eV (mean 0.0014 eV). Defaults: under autocast at most 0.1 eV anywhere and
0.02 eV on average, in float32/TF32 0.05 and 0.01 eV: twice the measured rounding effect, and a mean
below half the smallest test MAE of the paper benchmark (0.041 eV), so a disagreement within them
cannot move a reported figure, while a wrong kernel or a layout error gives differences of order
1 eV (or NaN).

DenseNet121's ImageNet weights are used when the verified cache has them
(:func:`epdi_ml.models.weights.locate_weights`), else the model starts from random initialisation (the
report says so): the check is about the CUDA path, not accuracy. With ``device="cpu"`` the same
logic runs on the CPU, autocast included (float16 autocast on the CPU), which tests the script
without a GPU; its figures are not GPU figures.
"""

from __future__ import annotations

import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from epdi_ml.fragments import augment as site_symmetry
from epdi_ml.models.networks import MODEL_NAMES, build_model
from epdi_ml.training.config import TrainConfig, clone_config
from epdi_ml.training.data import FragmentData, augment_module_prepare, images_to_tensor
from epdi_ml.training.ensemble import predict_ensemble
from epdi_ml.training.splits import group_kfold
from epdi_ml.training.trainer import autocast, train_fold, train_step
from stores.errors import RunError

#: where the packaged reference dataset lives (one compact archive per surface)
REFERENCE_DIR = Path(__file__).parents[1] / "data" / "reference"
#: exit code when no CUDA device is visible (1: a check failed, 2: bad input)
EXIT_NO_GPU = 3
DEFAULT_MODELS = ("densenet121", "efficientnet_lite0")
CHECK_PIXELS = (64, 128)
MIB = 2**20


class NoGpuError(RunError):
    """A CUDA check was asked for and torch sees no CUDA device."""

    exit_code = EXIT_NO_GPU


class GpuCheckConfig(BaseModel):
    """Settings of the GPU check.

    Attributes
    ----------
    device : {"cuda", "cpu"}
        ``cuda`` for the check; ``cpu`` runs the same logic on the CPU (a test of the script).
    models : tuple of str
        Models to check.
    pixels : tuple of int
        Input edges (px) to time and check.
    steps : int
        Timed optimiser steps (and inference batches) per model and size; also the steps of each
        trainer epoch.
    warmup_steps : int
        Untimed steps first (cuDNN algorithm choice, lazy kernel loading).
    batch : int
        Batch size of training and inference (paper training batch: 40).
    surfaces : int, optional
        Load only the first this many reference archives (default: all 30).
    agreement_images : int
        Held-out fragments compared between device and CPU.
    amp_tolerance_ev, fp32_tolerance_ev : float
        Largest accepted |E_b(device) - E_b(CPU)| under float16 autocast and in float32 (eV).
    amp_mean_tolerance_ev, fp32_mean_tolerance_ev : float
        Largest accepted mean |E_b(device) - E_b(CPU)| (eV).
    seed : int
        Seed of the fold split and training.
    """

    model_config = ConfigDict(extra="forbid")

    device: Literal["cuda", "cpu"] = "cuda"
    models: tuple[str, ...] = DEFAULT_MODELS
    pixels: tuple[int, ...] = CHECK_PIXELS
    steps: int = Field(20, ge=1)
    warmup_steps: int = Field(3, ge=0)
    batch: int = Field(40, ge=2)
    surfaces: int | None = Field(None, ge=2)
    agreement_images: int = Field(256, ge=1)
    amp_tolerance_ev: float = Field(0.1, gt=0)
    fp32_tolerance_ev: float = Field(0.05, gt=0)
    amp_mean_tolerance_ev: float = Field(0.02, gt=0)
    fp32_mean_tolerance_ev: float = Field(0.01, gt=0)
    seed: int = 0

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in MODEL_NAMES]
        if unknown or not value:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODEL_NAMES)}")
        return value


def device_info(device: str) -> dict[str, Any]:
    """Describe torch and the device; raise :class:`NoGpuError` for ``cuda`` without a GPU."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA build {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise NoGpuError(
                f"no CUDA device: torch {torch.__version__} ({build}) sees none; run on a machine with "
                "an NVIDIA GPU and its driver, or use --device cpu to exercise the check's logic"
            )
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": torch.cuda.get_device_name(0),
            "gpu_memory_mib": round(props.total_memory / MIB),
            "compute_capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    return info


def load_reference_fragments(folder: Path, surfaces: int | None = None) -> FragmentData:
    """Load the packaged reference archives into an embedded store under ``folder``.

    Returns the labelled representative fragments (as the benchmarks train on them).
    """
    from epdi_ml.fragments.build import rebuild_fragments
    from epdi_ml.training.store_data import load_fragments
    from stores.dataset_io import load_dataset
    from stores.facade import StoreFacade
    from stores.settings import Settings, StoreSettings

    archives = sorted(REFERENCE_DIR.glob("*.tar.gz"))[:surfaces]
    if len(archives) < 2:
        raise RunError(f"{REFERENCE_DIR} holds {len(archives)} reference archives; the check needs 2 or more")
    facade = StoreFacade(Settings(data_dir=folder, store=StoreSettings(backend="embedded")))
    rebuild: set[str] = set()
    for path in archives:
        manifest = load_dataset(facade, path)
        if "fragments.array" in manifest.get("omitted", []):  # compact archive: cut them again
            rebuild.update(manifest.get("surface_ids", []))
    if rebuild:
        rebuild_fragments(facade, sorted(rebuild), "reference")
    fragments = load_fragments(facade, dataset="reference", distinct_only=True)
    return fragments.data.subset(fragments.labelled)


def _pretrained(model: str) -> tuple[bool, str]:
    """Use verified ImageNet weights where they are at hand, else random initialisation."""
    from epdi_ml.models.weights import KNOWN_WEIGHTS, WeightsError, locate_weights

    if model not in KNOWN_WEIGHTS:
        return False, "random init (no pretrained weights exist for this model)"
    try:
        return True, f"ImageNet weights {locate_weights(model)}"
    except WeightsError as exc:
        return False, f"random init: {exc}"


def _batches(n: int, batch: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` index batches of ``batch`` over ``n`` items (cycled when ``n`` is smaller)."""
    order = np.random.default_rng(seed).permutation(n)
    flat = np.resize(order, batch * count)
    return [flat[i * batch : (i + 1) * batch] for i in range(count)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated() / MIB, 1) if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def time_steps(
    model_name: str, pretrained: bool, data: FragmentData, pixels: int, config: GpuCheckConfig
) -> dict[str, Any]:
    """Images/s of training steps (autocast + GradScaler) and inference, and peak memory."""
    device = torch.device(config.device)
    x_all = images_to_tensor(augment_module_prepare(data.images, data.kinds), pixels)
    y_all = torch.from_numpy(data.energies_ev.astype(np.float32))
    torch.manual_seed(config.seed)
    model = build_model(model_name, pretrained, in_pixels=pixels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=1e-2)
    scaler = torch.amp.GradScaler(device.type, enabled=True)
    total = config.warmup_steps + config.steps
    batches = _batches(len(x_all), config.batch, total, config.seed)
    _reset_peak(device)
    model.train()
    losses = []
    for i, index in enumerate(batches):
        if i == config.warmup_steps:
            _sync(device)
            start = time.perf_counter()
        x, y = x_all[index].to(device, non_blocking=True), y_all[index].to(device, non_blocking=True)
        losses.append(train_step(model, optimizer, scaler, x, y, amp=True))
    _sync(device)
    train_s = time.perf_counter() - start
    train_peak = _peak_mib(device)
    losses_ev = [float(v) for v in losses]
    out: dict[str, Any] = {
        "train_images_per_s": round(config.steps * config.batch / train_s, 1),
        "train_peak_mib": train_peak,
        "train_loss_ev": [round(v, 4) for v in losses_ev],
        "grad_scale": float(scaler.get_scale()),
    }
    model.eval()
    for label, amp in (("fp32", False), ("amp", True)):
        _reset_peak(device)
        with torch.no_grad():
            for i, index in enumerate(batches):
                if i == config.warmup_steps:
                    _sync(device)
                    start = time.perf_counter()
                with autocast(device, amp):
                    model(x_all[index].to(device, non_blocking=True))
            _sync(device)
        elapsed = time.perf_counter() - start
        out[f"infer_{label}_images_per_s"] = round(config.steps * config.batch / elapsed, 1)
        out[f"infer_{label}_peak_mib"] = _peak_mib(device)
    out["finite"] = bool(np.isfinite(losses_ev).all())
    return out


def _forward(
    model: torch.nn.Module, x_all: torch.Tensor, batch: int, device: torch.device, amp: bool, features: bool
) -> np.ndarray:
    model = model.to(device).eval()
    parts = []
    with torch.no_grad():
        for i in range(0, len(x_all), batch):
            with autocast(device, amp):
                x = x_all[i : i + batch].to(device)
                out = model.embedding(x) if features else model(x)
            parts.append(out.float().cpu().numpy())
    return np.concatenate(parts)


def ridge_head(features: np.ndarray, energies_ev: np.ndarray, alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Head weights (``head.weight``, ``head.bias``) of a ridge fit of E_b (eV) on standardised features."""
    feats = np.asarray(features, dtype=np.float64)
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-8
    z = (feats - mean) / std
    target = np.asarray(energies_ev, dtype=np.float64)
    coef = np.linalg.solve(z.T @ z + alpha * len(z) * np.eye(z.shape[1]), z.T @ (target - target.mean()))
    weight = coef / std
    bias = target.mean() - float(mean @ weight)
    return {
        "head.weight": torch.tensor(weight[None, :], dtype=torch.float32),
        "head.bias": torch.tensor([bias], dtype=torch.float32),
    }


def trainer_and_agreement(
    model_name: str, pretrained: bool, data: FragmentData, pixels: int, config: GpuCheckConfig, folder: Path
) -> dict[str, Any]:
    """Run :func:`train_fold` (checkpoint + resume) on the device and compare its model with the CPU."""
    train_idx, val_idx = group_kfold(data.surface_ids, 2, config.seed)[0]
    train = data.subset(train_idx[: config.steps * config.batch])
    val = data.subset(val_idx[: config.agreement_images])
    run = TrainConfig(
        model=model_name,
        pretrained=pretrained,
        epochs=1,
        patience=10,
        batch_train=config.batch,
        batch_val=config.batch,
        folds=2,
        seed=config.seed,
        device=config.device,
        amp=True,
        pixels=pixels,
        checkpoint_dir=folder / f"{model_name}-{pixels}px",
        keep_last=True,  # resumed below for a second epoch
    )
    train_fold(0, train, val, run, progress=False)
    resumed = train_fold(0, train, val, clone_config(run, epochs=2), progress=False, resume=True)
    ckpt = torch.load(run.checkpoint_dir / "fold0" / "last.pt", map_location="cpu", weights_only=True)
    scale = float(ckpt["scaler"].get("scale", float("nan"))) if ckpt["scaler"] else float("nan")
    curves = resumed.train_loss_ev + resumed.val_mae_ev
    out: dict[str, Any] = {
        "trainer_epochs": len(resumed.train_loss_ev),
        "trainer_steps_per_epoch": -(-len(train) // config.batch),
        "trainer_train_loss_ev": [round(v, 4) for v in resumed.train_loss_ev],
        "trainer_val_mae_ev": [round(v, 4) for v in resumed.val_mae_ev],
        "trainer_images_per_s": round(resumed.images_per_second, 1),
        "checkpoint_grad_scale": scale,
        "trainer_finite": bool(np.isfinite(curves).all() and np.isfinite(scale) and scale > 0),
    }
    cpu, device = torch.device("cpu"), torch.device(config.device)
    kinds = list(val.kinds)
    model = build_model(model_name, pretrained=False, in_pixels=pixels)
    model.load_state_dict(resumed.state_dict)
    x_all = images_to_tensor(augment_module_prepare(val.images, kinds), pixels)
    ref_feat = _forward(model, x_all, config.batch, cpu, False, True)
    state = resumed.state_dict | ridge_head(ref_feat, val.energies_ev)
    model.load_state_dict(state)
    predict = dict(model_name=model_name, pixels=pixels, batch_size=config.batch, kinds=kinds)
    ref_ev = predict_ensemble([state], val.images, device="cpu", **predict)[0]
    dev_ev = predict_ensemble([state], val.images, device=config.device, **predict)[0]
    amp_ev = _forward(model, x_all, config.batch, device, True, False)
    scale_feat = float(np.abs(ref_feat).max()) or 1.0
    dev_feat = _forward(model, x_all, config.batch, device, False, True)
    amp_feat = _forward(model, x_all, config.batch, device, True, True)
    out |= {
        "agreement_images": len(val),
        "head": "ridge on the CPU float32 features of these fragments (standardised, alpha 1)",
        "prediction_std_ev": round(float(np.std(ref_ev)), 4),
        "fp32_max_abs_diff_ev": float(np.max(np.abs(dev_ev - ref_ev))),
        "fp32_mean_abs_diff_ev": float(np.mean(np.abs(dev_ev - ref_ev))),
        "amp_max_abs_diff_ev": float(np.max(np.abs(amp_ev - ref_ev))),
        "amp_mean_abs_diff_ev": float(np.mean(np.abs(amp_ev - ref_ev))),
        "fp32_feature_max_rel_diff": float(np.max(np.abs(dev_feat - ref_feat)) / scale_feat),
        "amp_feature_max_rel_diff": float(np.max(np.abs(amp_feat - ref_feat)) / scale_feat),
        "features_finite": bool(np.isfinite(dev_feat).all() and np.isfinite(amp_feat).all()),
    }
    return out


def _failures(case: dict[str, Any], config: GpuCheckConfig) -> list[str]:
    where = f"{case['model']} {case['pixels']} px"
    found = []
    if not case.get("finite", True):
        found.append(f"{where}: non-finite training loss {case['train_loss_ev']}")
    if not case.get("trainer_finite", True):
        found.append(f"{where}: trainer run gave non-finite losses or grad scale")
    if not case.get("features_finite", True):
        found.append(f"{where}: non-finite features on the device")
    limits = (
        ("fp32_max_abs_diff_ev", config.fp32_tolerance_ev),
        ("fp32_mean_abs_diff_ev", config.fp32_mean_tolerance_ev),
        ("amp_max_abs_diff_ev", config.amp_tolerance_ev),
        ("amp_mean_abs_diff_ev", config.amp_mean_tolerance_ev),
    )
    for key, limit in limits:
        value = case.get(key)
        if value is not None and not value <= limit:  # NaN fails too
            found.append(f"{where}: {key} = {value:.3g} eV exceeds {limit:g} eV")
    return found


def run_gpu_check(config: GpuCheckConfig) -> dict[str, Any]:
    """Run every model and size; return the report (``passed`` false when any check failed).

    Raises
    ------
    NoGpuError
        ``device="cuda"`` and no CUDA device is visible (nothing is run).
    """
    started = time.perf_counter()
    report: dict[str, Any] = {
        "mode": "gpu" if config.device == "cuda" else "cpu (logic check, not GPU figures)",
        "environment": device_info(config.device),
        "config": config.model_dump(),
    }
    cases: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="epdi-gpu-check-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        data = load_reference_fragments(folder / "data", config.surfaces)
        report["data"] = {
            "fragments": len(data),
            "valleys": int(np.sum(data.kinds == site_symmetry.VALLEY)),
            "saddles": int(np.sum(data.kinds == site_symmetry.SADDLE)),
            "surfaces": len(set(data.surface_ids.tolist())),
            "load_s": round(time.perf_counter() - t0, 1),
        }
        for model_name in config.models:
            pretrained, weights_note = _pretrained(model_name)
            for pixels in config.pixels:
                case: dict[str, Any] = {"model": model_name, "pixels": pixels, "weights": weights_note}
                t0 = time.perf_counter()
                try:
                    case |= time_steps(model_name, pretrained, data, pixels, config)
                    case |= trainer_and_agreement(model_name, pretrained, data, pixels, config, folder)
                except Exception as exc:  # noqa: BLE001 - a check reports every failure, CUDA's included
                    case["error"] = f"{type(exc).__name__}: {exc}"
                    case["traceback"] = traceback.format_exc()
                    failures.append(f"{model_name} {pixels} px: {case['error']}")
                case["seconds"] = round(time.perf_counter() - t0, 1)
                failures += _failures(case, config)
                cases.append(case)
    report |= {
        "cases": cases,
        "failures": failures,
        "passed": not failures,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    return report
