"""``epdi bench selection``: test-saddle MAE against the labelled fraction for each selection strategy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from epdi_ml.fragments.crops import DEFAULT_PIXELS
from stores.facade import StoreFacade
from stores.settings import get_settings
from stores.validation import check_output_file, validation_message
from workflows.cli.common import reports_input_errors


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _ev(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _selection_report(result: dict) -> None:
    """Print the selection benchmark as text: setup, MAE table, fractions per seed count, intervals."""
    typer.echo(
        f"dataset {result['dataset']}: {result['n_surfaces']} surfaces, {result['n_valleys']} valleys "
        f"(all labelled), {result['n_saddles']} distinct saddles in the pool, {result['n_paths']} paths; "
        f"{len(result['seeds'])} seeds, {result['folds']} folds"
    )
    typer.echo(f"learner: {result['features']}")
    typer.echo(f"test set: {result['test_set']}")
    names = list(result["strategies"])
    typer.echo(f"{'labelled':>8}  " + "  ".join(f"{n:>17}" for n in names) + "   (test MAE, eV, mean +- std)")
    for i, fraction in enumerate(result["labelled_fractions"]):
        cells = [
            f"{info['mae_mean_ev'][i]:.4f} +- {info['mae_std_ev'][i]:.4f}"
            for info in result["strategies"].values()
        ]
        typer.echo(f"{100 * fraction:>7.1f}%  " + "  ".join(f"{c:>17}" for c in cells))
    baseline = result["strategies"]["random"]["mean_baseline_mae_ev"]
    typer.echo(
        "mean-label baseline (random picks): " + ", ".join(f"{b:.4f}" for b in baseline) + " eV per fraction"
    )
    midpoint = result["strategies"]["random"]["valley_midpoint_baseline_mae_ev"]
    typer.echo(
        "valley-midpoint baseline (random picks; mean E_b of the hop's two valleys + one offset): "
        + ", ".join(f"{b:.4f}" for b in midpoint)
        + " eV per fraction"
    )
    match = 100 * result["match_fraction"]
    counts = list(result["by_seed_count"])
    typer.echo(
        f"fraction needed to reach random's MAE at {match:.0f} %, for the first "
        + " / ".join(counts)
        + " seeds (random's MAE: "
        + " / ".join(f"{result['by_seed_count'][n]['random_mae_at_match_ev']:.4f}" for n in counts)
        + " eV):"
    )
    first = result["labelled_fractions"][0]
    for name in names:
        fractions = [result["by_seed_count"][n]["fraction_to_match"][name] for n in counts]
        text = " / ".join("not reached" if f is None else f"{100 * f:.2f} %" for f in fractions)
        if any(f is not None and f == first for f in fractions):
            text += " (at the first point)"
        typer.echo(f"  {name:<12} {text}")
    typer.echo(
        "calibrated intervals on test saddles (coverage of the nominal 68 % / 90 %, mean full width; "
        "path global barriers after the bar):"
    )
    for name, info in result["strategies"].items():
        typer.echo(
            f"  {name:<12} {_pct(info['coverage_68'])} / {_pct(info['coverage_90'])}, "
            f"{_ev(info['width_68_ev'])} / {_ev(info['width_90_ev'])} eV | barriers "
            f"{_pct(info['barrier_coverage_68'])} / {_pct(info['barrier_coverage_90'])}, "
            f"{_ev(info['barrier_width_68_ev'])} / {_ev(info['barrier_width_90_ev'])} eV"
        )
    best, best_f = result["best_strategy"], result["best_fraction_to_match"]
    found = "no strategy reaches it" if best is None else f"best {best} at {100 * best_f:.1f} %"
    goal = "met" if result["goal_met"] else "not met"
    required = "met" if result["required_met"] else "not met"
    typer.echo(
        f"goal: <= {100 * result['goal_fraction']:.0f} % for the best strategy ({goal}; required <= "
        f"{100 * result['required_fraction']:.0f} %: {required}), {len(result['seeds'])} seeds: {found}"
    )
    typer.echo(f"plot: {result['plot']}")


@reports_input_errors
def selection(
    dataset: Annotated[str, typer.Option(help="Colour-scale dataset of the fragments.")] = "reference",
    seeds: Annotated[
        int, typer.Option(help="Seeds per strategy (figures for the first 5, 10, 20 of them too).")
    ] = 20,
    seed_counts: Annotated[
        str | None,
        typer.Option(help="Comma-separated seed counts to report (default: 5, 10, 20 up to --seeds)."),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", help="Strategy to run (repeatable; default all; random always runs)."),
    ] = None,
    initial: Annotated[float, typer.Option(help="Initial random fraction of saddles.")] = 0.05,
    max_fraction: Annotated[float, typer.Option(help="Last labelled fraction.")] = 0.6,
    step: Annotated[float, typer.Option(help="Fraction added per round.")] = 0.05,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Saddles picked between two refits (a campaign's batch_size); 0: a whole step at once."
        ),
    ] = 4,
    match_fraction: Annotated[float, typer.Option(help="Random's fraction whose MAE must be matched.")] = 0.5,
    learner: Annotated[
        str, typer.Option(help="ridge: heads on frozen CNN embeddings (CPU); cnn: retrain the CNN ensemble.")
    ] = "ridge",
    anchor: Annotated[
        str | None,
        typer.Option(
            help="Ridge: valley-midpoint (default; saddle = its valleys' mean label + residual) or none."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="CNN (default efficientnet_lite0, small_cnn with --no-pretrained)."),
    ] = None,
    pretrained: Annotated[bool, typer.Option(help="ImageNet weights for the CNN.")] = True,
    pixels: Annotated[int, typer.Option(help="CNN input size in pixels.")] = DEFAULT_PIXELS,
    folds: Annotated[int, typer.Option(help="Ensemble members (folds split by surface).")] = 10,
    mep: Annotated[bool, typer.Option(help="Ridge learner: add the fragment MEP as a feature.")] = True,
    valley_features: Annotated[
        bool,
        typer.Option(
            help="Ridge learner: add the labelled valleys of each saddle's hop (step, midpoint, their "
            "distance from the host's median, host) as features."
        ),
    ] = True,
    components: Annotated[
        int | None, typer.Option(help="Ridge learner: principal components kept (default: all).")
    ] = None,
    hybrid_weight: Annotated[float, typer.Option(help="Weight of the spread in the hybrid score.")] = 0.5,
    design_noise: Annotated[
        float, typer.Option(help="Design strategy: noise variance relative to the prior variance.")
    ] = 0.01,
    epochs: Annotated[int, typer.Option(help="CNN learner: epochs per fold and round.")] = 10,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    plot: Annotated[
        Path | None, typer.Option(help="Plot file (default DATA_DIR/bench/selection.png).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Active selection of saddles: test-saddle MAE vs labelled fraction per strategy (reference set).

    Also the coverage and width of the calibrated 68 % / 90 % intervals on the test saddles and on
    the paths' global barriers; JSON keys ``coverage_68``, ``coverage_90``, ``width_68_ev``, ... (of
    random) and per strategy, fractions to match per seed count in ``by_seed_count``.
    """
    from pydantic import ValidationError

    from epdi_ml.bench.selection import SelectionBenchConfig, SelectionBenchError
    from epdi_ml.bench.selection_summary import plot_selection, selection_benchmark
    from epdi_ml.models.weights import WeightsError
    from epdi_ml.selection.strategies import STRATEGIES
    from epdi_ml.training.store_data import NoFragments
    from workflows.cli.common import fail

    settings = get_settings()
    if plot is not None:
        check_output_file(plot, "--plot")
    try:
        counts = tuple(int(c) for c in seed_counts.split(",") if c.strip()) if seed_counts else None
    except ValueError:
        fail(f"--seed-counts {seed_counts!r}: give integers separated by commas, e.g. 5,10,20")
    try:
        config = SelectionBenchConfig(
            dataset=dataset,
            strategies=tuple(strategy) if strategy else STRATEGIES,
            seeds=seeds,
            seed_counts=counts,
            initial_fraction=initial,
            max_fraction=max_fraction,
            step=step,
            batch_size=batch_size or None,
            match_fraction=match_fraction,
            learner=learner,
            anchor=anchor,
            model=model,
            pretrained=pretrained,
            weights_dir=settings.weights_dir,
            pixels=pixels,
            folds=folds,
            use_mep=mep,
            valley_features=valley_features,
            n_components=components,
            hybrid_weight=hybrid_weight,
            design_noise=design_noise,
            epochs=epochs,
            device=device,
        )
    except ValidationError as exc:
        fail(f"invalid option: {validation_message(exc, prefix='--')}")
    try:
        result = selection_benchmark(StoreFacade(settings), config, progress=not as_json)
    except NoFragments as exc:
        fail(str(exc), code=1)
    except (WeightsError, SelectionBenchError, ValueError) as exc:
        fail(str(exc))
    result["plot"] = str(plot_selection(result, plot or settings.folder("bench", "selection.png")))
    if as_json:
        typer.echo(json.dumps(result))
        return
    _selection_report(result)
