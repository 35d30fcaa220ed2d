"""``epdi bench``: commands that print measured figures (no assertions, no thresholds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.fragments.crops import DEFAULT_PIXELS, check_crop
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.settings import get_settings
from stores.validation import (
    build_validated,
    check_choice,
    check_positive,
    validation_message,
)
from workflows.cli.bench_selection import selection
from workflows.cli.bench_slurm import slurm
from workflows.cli.common import emit_mapping, emit_rows, reports_input_errors
from workflows.engines import DEFAULT_CINEB_IMAGES, check_cineb_images
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.flows.barrier import run_barrier
from workflows.structures.supercells import DEFAULT_SIZE
from workflows.structures.surfaces import surface_from_request

app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.command("slurm")(slurm)
app.command("selection")(selection)

#: fields of :class:`epdi_ml.bench.gpu.GpuCheckConfig` whose option is spelled otherwise
GPU_OPTION_NAMES = {
    "models": "--model",
    "warmup_steps": "--warmup",
    "amp_tolerance_ev": "--amp-tolerance",
    "fp32_tolerance_ev": "--fp32-tolerance",
}

#: force-call budget for one hop CINEB of a 6x6x1 cell with the embedded engine (issue target)
HOP_FORCE_CALL_TARGET = 200


@app.command("hop")
@reports_input_errors
def hop(
    host: Annotated[str, typer.Option(help="Host monolayer.")] = "MoS2",
    dopant: Annotated[str | None, typer.Option(help="Dopant ('none' for pristine).")] = "Co",
    size: Annotated[int, typer.Option(help="Supercell n.")] = DEFAULT_SIZE,
    images: Annotated[int, typer.Option(help="Intermediate images.")] = DEFAULT_CINEB_IMAGES,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Force calls and wall time of the hop nearest the dopant (embedded engine: CHGNet + D3)."""
    check_cineb_images(images)
    settings = get_settings()
    bundle = surface_from_request(host, dopant, size, hosts_file=settings.hosts_file)
    result = run_barrier(bundle, ChgnetSettings(show_progress=True), images, facade=StoreFacade(settings))
    s = result.summary()
    figures = {
        "surface": f"{s['host']} {s['dopant'] or 'pristine'} {size}x{size}x1",
        "natoms_with_li": bundle.surface.natoms + 1,
        "neb_force_calls": s["neb_force_calls"],
        "neb_force_call_target": HOP_FORCE_CALL_TARGET,
        "valley_force_calls": s["total_force_calls"] - s["neb_force_calls"],
        "wall_time_s": s["wall_time_s"],
        "seconds_per_force_call": round(s["wall_time_s"] / max(1, s["total_force_calls"]), 2),
        "local_barrier_ev": s["local_barrier_ev"],
        "neb_converged": s["neb_converged"],
    }
    emit_mapping(figures, as_json)


@app.command("fragments")
@reports_input_errors
def fragments(
    host: Annotated[str, typer.Option(help="Host monolayer.")] = "MoS2",
    dopant: Annotated[str | None, typer.Option(help="Dopant ('none' for pristine).")] = "Co",
    size: Annotated[int, typer.Option(help="Supercell n.")] = DEFAULT_SIZE,
    pixels: Annotated[int, typer.Option(help="Pixels per crop side.")] = DEFAULT_PIXELS,
    seconds: Annotated[float, typer.Option(help="Time to keep cutting (s).")] = 3.0,
    order: Annotated[int, typer.Option(help="Spline order of the map sampling (1 or 3).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fragments per second cut from a 6x6x1 map on one core (synthetic map on the real lattice)."""
    check_choice(str(order), "--order", ("1", "3"))
    check_crop(None, pixels, ("--size-ang", "--pixels"))
    check_positive(seconds, "--seconds", " s")
    import os
    import time

    os.environ.update({k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    import numpy as np

    from epdi_ml.fragments.build import site_geometry
    from epdi_ml.fragments.crops import DEFAULT_SIZE_IN_ANION_SPACINGS, FragmentCutter, frames_from_directions
    from epdi_ml.fragments.synthetic import synthetic_map

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is optional here
        pass
    bundle = surface_from_request(host, dopant, size, hosts_file=get_settings().hosts_file)
    sites = [s.model_dump() for s in sorted(bundle.sites, key=lambda s: (s.kind != "valley", s.index))]
    hops = [h.model_dump() for h in bundle.hops]
    # map on a ~0.1 Angstrom mesh, like a GPAW/VASP grid of a 6x6x1 cell
    n_mesh = int(np.ceil(bundle.structure.lattice.a / 0.1))
    pmap = synthetic_map(bundle.structure, (n_mesh, n_mesh))
    pmap.order = order
    centres, directions = site_geometry(bundle.structure, sites, hops)
    frames = frames_from_directions(directions)
    cutter = FragmentCutter(DEFAULT_SIZE_IN_ANION_SPACINGS * bundle.surface.a_ang, pixels)
    cutter.cut(pmap, centres, frames)  # warm-up (spline coefficients)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        cutter.cut(pmap, centres, frames)
        count += len(centres)
    elapsed = time.perf_counter() - start
    figures = {
        "surface": f"{host} {dopant or 'pristine'} {size}x{size}x1",
        "map_shape": list(pmap.shape),
        "fragments_per_pass": len(centres),
        "pixels": pixels,
        "interpolation": f"cubic spline order {pmap.order}, periodic",
        "fragments": count,
        "seconds": round(elapsed, 3),
        "fragments_per_s": round(count / elapsed, 1),
        "target_per_s": 1000,
    }
    emit_mapping(figures, as_json)


@app.command("paper")
@reports_input_errors
def paper(
    model: Annotated[
        str, typer.Option(help="Architecture (densenet121 is the paper's best).")
    ] = "densenet121",
    pretrained: Annotated[bool, typer.Option(help="Start from cached ImageNet weights.")] = True,
    epochs: Annotated[int, typer.Option(help="Maximum epochs per fold.")] = 100,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs).")] = 20,
    folds: Annotated[int, typer.Option(help="CV folds (split by surface).")] = 5,
    pixels: Annotated[int, typer.Option(help="Input size in pixels.")] = DEFAULT_PIXELS,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    fraction: Annotated[
        list[float] | None,
        typer.Option(
            "--fraction",
            min=0.0,
            max=1.0,
            help="Fraction f of saddle labels to train on (repeatable; default 0, 0.17, 0.33, 0.5).",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Per-epoch checkpoints here; running again with the same folder resumes."),
    ] = None,
    keep_last: Annotated[
        bool, typer.Option("--keep-last", help="Keep each fold's resumable last.pt once it finished.")
    ] = False,
    anchor: Annotated[
        str,
        typer.Option(help="none, or valley-midpoint (saddles learnt relative to their two valleys' mean)."),
    ] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Test-saddle and profile MAE (eV) for f = 0, 17, 33, 50 % of saddle labels, with baselines."""
    from epdi_ml.bench.paper import PAPER_FRACTIONS, paper_benchmark
    from epdi_ml.models.weights import WeightsError
    from epdi_ml.training.config import TrainConfig
    from epdi_ml.training.store_data import NoFragments
    from workflows.cli.common import fail

    options = {
        "model": model,
        "pretrained": pretrained,
        "epochs": epochs,
        "patience": patience,
        "folds": folds,
        "pixels": pixels,
        "seed": seed,
        "device": device,
        "keep_last": keep_last,
        "anchor": anchor,
    }
    config = build_validated(TrainConfig, options, "invalid option", prefix="--")
    try:
        rows = paper_benchmark(
            StoreFacade(get_settings()),
            config,
            tuple(fraction or PAPER_FRACTIONS),
            progress=not as_json,
            checkpoint_dir=checkpoint_dir,
        )
    except (NoFragments, WeightsError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(
        f"{'f':>5} {'n_train':>7} {'n_test':>6} {'test MAE':>9} {'MEP-linear':>10} {'mean':>7} "
        f"{'profile MAE':>11} {'spread':>7} {'time':>7}   (eV; time in s)"
    )
    for r in rows:
        cells = [
            r["test_mae_ev"],
            r["mep_linear_mae_ev"],
            r["mean_mae_ev"],
            r["profile_mae_ev"],
            r["mean_spread_ev"],
        ]
        text = ["-" if c is None else f"{c:.4f}" for c in cells]
        typer.echo(
            f"{r['fraction']:>5.2f} {r['n_train']:>7} {r['n_test']:>6} {text[0]:>9} {text[1]:>10} "
            f"{text[2]:>7} {text[3]:>11} {text[4]:>7} {r['wall_time_s']:>7.0f}"
        )


@app.command("labels")
@reports_input_errors
def labels(
    dft: Annotated[str, typer.Option(help="DFT engine of the labels compared against.")] = "gpaw",
    mlip: Annotated[str, typer.Option(help="MLIP engine whose labels are measured.")] = "chgnet",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """MLIP vs DFT labels per valley and hop on surfaces that hold both (`epdi dataset load dft-check`)."""
    from epdi_ml.bench.labels import compare_labels

    check_choice(dft, "--dft", ("gpaw", "vasp"))
    check_choice(mlip, "--mlip", ("chgnet",))

    result = compare_labels(StoreFacade(get_settings()), dft=dft, mlip=mlip)
    if as_json:
        typer.echo(json.dumps(result))
        return
    emit_rows(result["hops"], list(result["hops"][0]) if result["hops"] else [], False, False)
    summary = {k: v for k, v in result.items() if k not in ("hops", "valleys", "site_order")}
    emit_mapping(summary, False)
    for surface, order in result["site_order"].items():
        typer.echo(f"site order {surface}: {order}")


@app.command("dft-neb")
@reports_input_errors
def dft_neb(
    host: Annotated[str, typer.Option(help="Host monolayer.")] = "MoS2",
    dopant: Annotated[str | None, typer.Option(help="Dopant; omit for pristine.")] = None,
    spec: Annotated[str, typer.Option(help="Spec whose neb settings are used.")] = "dft-check",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """DFT CINEB of one hop from IDPP vs from the CHGNet path: force calls, barriers, ratio."""
    from workflows.bench.dft_neb import dft_neb_benchmark
    from workflows.flows.campaign_spec import load_spec

    settings = get_settings()
    campaign = load_spec(spec, settings.hosts_file)
    if campaign.neb.engine not in ("gpaw",):
        raise InputError(f"spec {spec!r} has neb.engine {campaign.neb.engine}; this bench runs GPAW (gpaw)")

    def say(line: str) -> None:
        typer.echo(f"[bench] {line}", err=True)

    result = dft_neb_benchmark(campaign, host, dopant, StoreFacade(settings), echo=say)
    emit_mapping(result, as_json)


@app.command("cineb-start")
@reports_input_errors
def cineb_start(
    optimizer: Annotated[str, typer.Option(help="Comma-separated CINEB optimisers: fire, bfgs.")] = (
        "fire,bfgs"
    ),
    host: Annotated[list[str] | None, typer.Option(help="Only surfaces of this host (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """CHGNet CINEBs from IDPP, from the DFT path as is and moved onto CHGNet's valleys: force calls."""
    from workflows.bench.cineb_start import cineb_start_benchmark

    def say(line: str) -> None:
        typer.echo(f"[bench] {line}", err=True)

    names = [name.strip() for name in optimizer.split(",") if name.strip()]
    result = cineb_start_benchmark(StoreFacade(get_settings()), names, host, echo=say)
    if as_json:
        typer.echo(json.dumps(result))
        return
    emit_rows(result["runs"], list(result["runs"][0]), False, False)
    emit_mapping({k: v for k, v in result.items() if k != "runs"}, False)


@app.command("gpu")
@reports_input_errors
def gpu(
    device: Annotated[str, typer.Option(help="cuda (the check) or cpu (same logic, on the CPU).")] = "cuda",
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Model to check (repeatable; default densenet121, efficientnet_lite0)."),
    ] = None,
    pixels: Annotated[
        list[int] | None, typer.Option("--pixels", help="Input size in px (repeatable; default 64, 128).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Timed training steps (and inference batches) per case.")] = 20,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up steps per case.")] = 3,
    batch: Annotated[int, typer.Option(help="Batch size (training and inference).")] = 40,
    surfaces: Annotated[
        int | None, typer.Option(help="Load only the first N reference archives (default all 30).")
    ] = None,
    agreement_images: Annotated[int, typer.Option(help="Held-out fragments compared with the CPU.")] = 256,
    amp_tolerance: Annotated[float, typer.Option(help="Largest |E_b GPU - CPU| under autocast (eV).")] = 0.1,
    fp32_tolerance: Annotated[float, typer.Option(help="Largest |E_b GPU - CPU| in float32 (eV).")] = 0.05,
    out: Annotated[
        Path | None, typer.Option(help="JSON report (default DATA_DIR/bench/gpu-check.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report, not the table.")] = False,
) -> None:
    """CUDA training path (AMP) on the reference fragments: images/s, peak memory, GPU-vs-CPU agreement.

    Exit codes: 0 passed, 1 a check failed (CUDA error, non-finite loss, disagreement), 2 bad
    input, 3 no CUDA device.
    """
    from pydantic import ValidationError

    from epdi_ml.bench.gpu import CHECK_PIXELS, DEFAULT_MODELS, GpuCheckConfig, run_gpu_check
    from epdi_ml.bench.gpu_report import format_report, write_report
    from workflows.cli.common import fail

    try:
        config = GpuCheckConfig(
            device=device,
            models=tuple(model or DEFAULT_MODELS),
            pixels=tuple(pixels or CHECK_PIXELS),
            steps=steps,
            warmup_steps=warmup,
            batch=batch,
            surfaces=surfaces,
            agreement_images=agreement_images,
            amp_tolerance_ev=amp_tolerance,
            fp32_tolerance_ev=fp32_tolerance,
        )
    except ValidationError as exc:
        fail(validation_message(exc, prefix="--", names=GPU_OPTION_NAMES))
    report = run_gpu_check(config)
    path = write_report(report, out or get_settings().folder("bench", "gpu-check.json"))
    if as_json:
        typer.echo(json.dumps(report, default=str))
    else:
        for line in format_report(report):
            typer.echo(line)
        typer.echo(f"report: {path}")
    for case in report["cases"]:
        if "traceback" in case:
            typer.echo(case["traceback"], err=True)
    if not report["passed"]:
        fail(f"gpu check failed: {'; '.join(report['failures'])} (report: {path})", code=1)
