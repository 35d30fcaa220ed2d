"""``epdi bench gpu`` (``make gpu-check``): the whole check on the CPU, and the no-GPU exit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from epdi_ml.bench.gpu import EXIT_NO_GPU, GpuCheckConfig
from workflows.cli.app import app

runner = CliRunner()

#: the smallest run that still takes every branch: 2 surfaces, 1 model, 2 sizes, 2 timed steps
CPU_ARGS = [
    "bench",
    "gpu",
    "--device",
    "cpu",
    "--model",
    "small_cnn",
    "--pixels",
    "32",
    "--pixels",
    "40",
    "--steps",
    "2",
    "--warmup",
    "1",
    "--batch",
    "4",
    "--surfaces",
    "2",
    "--agreement-images",
    "8",
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_it_says_so_in_one_line_with_its_own_exit_code(tmp_path):
    result = runner.invoke(app, ["bench", "gpu", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == EXIT_NO_GPU == 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: no CUDA device")
    assert "--device cpu" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_cpu_mode_runs_every_step_on_the_reference_fragments(tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(app, [*CPU_ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout and "logic check" in result.stdout
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["failures"] == []
    assert report["environment"]["torch"] == torch.__version__
    data = report["data"]
    assert data["surfaces"] == 2 and data["fragments"] == data["valleys"] + data["saddles"] > 8
    assert [(c["model"], c["pixels"]) for c in report["cases"]] == [("small_cnn", 32), ("small_cnn", 40)]
    for case in report["cases"]:
        assert "error" not in case
        assert case["weights"].startswith("random init")
        for key in ("train_images_per_s", "infer_fp32_images_per_s", "infer_amp_images_per_s"):
            assert case[key] > 0
        assert case["train_peak_mib"] is None  # no GPU memory on the CPU
        assert len(case["train_loss_ev"]) == 3 and all(math.isfinite(v) for v in case["train_loss_ev"])
        assert 0 < case["grad_scale"] <= 65536.0
        # the trainer ran one epoch, was resumed from its checkpoint for a second
        assert case["trainer_epochs"] == 2 and case["trainer_steps_per_epoch"] == 2
        assert len(case["trainer_val_mae_ev"]) == 2 and case["checkpoint_grad_scale"] > 0
        # labels are ~2-3 eV and the head starts at their mean: the trainer's MAE is far below that
        assert 0 < case["trainer_train_loss_ev"][0] < 1.0
        assert case["agreement_images"] == 8
        # the ridge head makes predictions vary across fragments, so the comparison can see errors
        assert case["prediction_std_ev"] > 0.01
        # the device is the CPU here: float32 agrees exactly, float16 autocast only within rounding
        assert case["fp32_max_abs_diff_ev"] == 0.0 and case["fp32_feature_max_rel_diff"] == 0.0
        defaults = GpuCheckConfig()
        assert 0 < case["amp_mean_abs_diff_ev"] <= case["amp_max_abs_diff_ev"] <= defaults.amp_tolerance_ev
        assert 0 < case["amp_feature_max_rel_diff"] < 1 and case["features_finite"]
    # the JSON on stdout is the same report
    again = runner.invoke(app, [*CPU_ARGS[:-2], "--agreement-images", "4", "--json", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["cases"][0]["agreement_images"] == 4


def test_a_disagreement_beyond_the_tolerance_fails_the_check(tmp_path):
    args = [*CPU_ARGS[:8], "--steps", "1", "--warmup", "0", "--batch", "4", "--surfaces", "2"]
    result = runner.invoke(app, [*args, "--amp-tolerance", "1e-9", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "amp_max_abs_diff_ev" in result.stderr and "exceeds 1e-09" in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False and len(report["failures"]) == 1


def test_bad_options_are_input_errors():
    result = runner.invoke(app, ["bench", "gpu", "--device", "cpu", "--model", "alexnet"])
    assert result.exit_code == 2 and "unknown model" in result.stderr


def test_ridge_head_reproduces_a_linear_relation_through_the_model_head():
    from epdi_ml.bench.gpu import ridge_head
    from epdi_ml.models.networks import build_model

    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 64)) * rng.uniform(0.1, 5.0, 64) + rng.normal(size=64)
    energies_ev = 3.0 + features[:, :3] @ np.array([0.1, -0.05, 0.02])
    model = build_model("small_cnn", pretrained=False, in_pixels=32)
    head = ridge_head(features, energies_ev, alpha=1e-4)
    model.head.load_state_dict({key.split(".")[1]: value for key, value in head.items()})
    with torch.no_grad():
        predicted = model.head(torch.tensor(features, dtype=torch.float32)).squeeze(-1).numpy()
    assert energies_ev.std() > 0.1
    np.testing.assert_allclose(predicted, energies_ev, atol=5e-3)
