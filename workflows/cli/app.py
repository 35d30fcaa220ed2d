"""The ``epdi`` root command: global options and the table of sub-commands.

Every sub-command lives in its own module, imported only when that command runs (see
:mod:`workflows.cli.lazy`), so ``epdi --help`` and ``epdi --version`` start without torch, GPAW,
atomate2 or custodian.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from workflows.cli.lazy import LazyCommand, LazyGroup
from workflows.cli.output import filter_third_party_warnings, set_verbosity

#: the package whose installed metadata gives ``epdi --version``
DISTRIBUTION = "epdi"

COMMANDS: dict[str, LazyCommand] = {
    "barrier": LazyCommand(
        "workflows.cli.barrier",
        "barrier",
        "Relax the valleys of the hop nearest the dopant, run its CINEB, print E_b and the barrier (eV).",
    ),
    "static": LazyCommand(
        "workflows.cli.static",
        "static",
        "Run the surface static and store energy, potential (eV) and density (e/bohr^3) grids.",
    ),
    "train": LazyCommand(
        "workflows.cli.model",
        "train",
        "Train a fold ensemble on all valley labels + a fraction of saddle labels; register it.",
    ),
    "predict": LazyCommand(
        "workflows.cli.model",
        "predict",
        "Predict E_b for every stored fragment: ensemble mean, calibrated 68 % / 90 % intervals, "
        "domain flag.",
    ),
    "profiles": LazyCommand(
        "workflows.cli.model",
        "profiles",
        "Energy profiles along zigzag paths vp -> sp -> vp through the dopant, with barriers (eV).",
    ),
    "launch": LazyCommand(
        "workflows.cli.cluster",
        "launch",
        "Run Fireworks from the LaunchPad here (or in a queue job): rapidfire or singleshot.",
    ),
    "retrain": LazyCommand(
        "workflows.cli.retrain",
        "retrain",
        "Train a new model version when enough new labels arrived; promote it only if its CV MAE is not "
        "worse.",
    ),
    "status": LazyCommand(
        "workflows.cli.status",
        "status",
        "A campaign's state: Fireworks by state (with errors), its Slurm jobs, labels, model and CV MAE.",
    ),
    "report": LazyCommand(
        "workflows.cli.report",
        "report",
        "Write the campaign report (index.html + PNGs); print its path and the barrier table (eV).",
    ),
    "quickstart": LazyCommand(
        "workflows.cli.campaign",
        "quickstart",
        "Run the packaged ``quickstart`` campaign (3x3x1 MoS2 pristine, Zn, Al) and print the barriers.",
    ),
    "surfaces": LazyCommand(
        "workflows.cli.surfaces", "app", "Build doped TMD monolayer supercells and their Li site graphs."
    ),
    "hops": LazyCommand("workflows.cli.hops", "app", "Li hops: CINEB labels of surfaces."),
    "dataset": LazyCommand(
        "workflows.cli.dataset", "app", "Datasets: export to one archive, load into any store, summary."
    ),
    "campaign": LazyCommand(
        "workflows.cli.campaign",
        "app",
        "Active-learning campaigns: surfaces -> DFT -> fragments -> select -> CINEB -> learn.",
    ),
    "query": LazyCommand("workflows.cli.query", "app", "Query the store."),
    "bench": LazyCommand("workflows.cli.bench", "app", "Benchmarks that print figures."),
    "vasp": LazyCommand(
        "workflows.cli.vasp", "app", "VASP inputs for the EPDI steps (POTCAR.spec instead of POTCARs)."
    ),
    "import": LazyCommand("workflows.cli.imports", "app", "Import finished calculations into the store."),
    "weights": LazyCommand(
        "workflows.cli.learn",
        "app",
        "Pretrained CNN weights: fetch into the cache folder (needs network), list what is verified.",
    ),
    "fragments": LazyCommand(
        "workflows.cli.fragments",
        "app",
        "Potential maps on the density isosurface and fragments at Li sites.",
    ),
    "analyze": LazyCommand(
        "workflows.cli.fragments", "analyze_app", "Analyses of the stored fragments and energies."
    ),
}


class EpdiGroup(LazyGroup):
    """The ``epdi`` group: the commands of :data:`COMMANDS`, each imported when it runs."""

    lazy_commands = COMMANDS


app = typer.Typer(
    name="epdi",
    help="EPDI: Li diffusion on doped TMD monolayers (surfaces, DFT/MLIP, potential images, learning).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=EpdiGroup,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"epdi {version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Data folder for this command (stores, runs, reports); overrides EPDI_DATA_DIR.",
        file_okay=False,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log jobflow's and FireWorks' INFO lines."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only warnings and errors from jobflow and FireWorks."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the installed epdi version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    """EPDI: Li diffusion on doped TMD monolayers (surfaces, DFT/MLIP, potential images, learning)."""
    if verbose and quiet:
        from workflows.cli.common import fail

        fail("--verbose and --quiet exclude each other; give one")
    if data_dir is not None:
        from stores.settings import get_settings

        os.environ["EPDI_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    set_verbosity(verbose, quiet)


def main() -> None:
    """Console-script entry point: third-party warnings off, then the ``epdi`` command."""
    filter_third_party_warnings()
    app()
