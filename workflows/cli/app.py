"""The ``epdi`` root command."""

from __future__ import annotations

import typer

from workflows.cli import (
    bench,
    campaign,
    cluster,
    dataset,
    hops,
    imports,
    learn,
    query,
    retrain,
    status,
    surfaces,
    vasp,
)
from workflows.cli.barrier import barrier
from workflows.cli.common import OneLineUsageErrors
from workflows.cli.fragments import analyze_app
from workflows.cli.fragments import app as fragments_app
from workflows.cli.model import predict, profiles, train
from workflows.cli.report import report
from workflows.cli.static import static

app = typer.Typer(
    help="EPDI: Li diffusion on doped TMD monolayers (surfaces, DFT/MLIP, potential images, learning).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineUsageErrors,
)
app.add_typer(surfaces.app, name="surfaces")
app.add_typer(hops.app, name="hops")
app.add_typer(dataset.app, name="dataset")
app.add_typer(campaign.app, name="campaign")
app.add_typer(query.app, name="query")
app.command("barrier")(barrier)
app.command("static")(static)
app.add_typer(bench.app, name="bench")
app.add_typer(vasp.app, name="vasp")
app.add_typer(imports.app, name="import")
app.add_typer(learn.app, name="weights")
app.command("train")(train)
app.command("predict")(predict)
app.command("profiles")(profiles)
app.command("launch")(cluster.launch)
app.command("retrain")(retrain.retrain)
app.command("status")(status.status)
app.command("report")(report)
app.add_typer(fragments_app, name="fragments")
app.add_typer(analyze_app, name="analyze")


@app.command("quickstart")
def quickstart() -> None:
    """Run the packaged ``quickstart`` campaign (3x3x1 MoS2 pristine, Zn, Al) and print the barriers."""
    campaign.run("quickstart")


def main() -> None:
    """Console-script entry point."""
    app()
