"""``epdi weights``: fetch pretrained CNN weights ahead of time and list the verified cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workflows.cli.common import emit_rows, fail, reports_input_errors

app = typer.Typer(
    help="Pretrained CNN weights: fetch into the cache folder (needs network), list what is verified.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Weights cache folder (default: EPDI_WEIGHTS_DIR, else <data_dir>/weights)."),
]


@app.command("fetch")
@reports_input_errors
def fetch(
    models: Annotated[
        list[str], typer.Argument(help="Model names, e.g. densenet121 resnet34 efficientnet_lite0.")
    ],
    weights_dir: DirOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No download progress.")] = False,
) -> None:
    """Download the ImageNet weights of MODELS, verify their SHA-256 and write sidecars."""
    from epdi_ml.models.weights import KNOWN_WEIGHTS, WeightsError, fetch_weights
    from stores.validation import check_output_dir

    if weights_dir is not None:
        check_output_dir(weights_dir, "--dir")
    unknown = [m for m in models if m not in KNOWN_WEIGHTS]
    if unknown:
        fail(
            f"no pretrained weights known for {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_WEIGHTS))}"
        )
    try:
        paths = fetch_weights(models, weights_dir, progress=not quiet)
    except (WeightsError, OSError) as exc:
        fail(f"fetching weights failed (downloads need network access): {exc}", code=1)
    for model, path in paths.items():
        typer.echo(f"{model}: {path} (verified)")


@app.command("list")
@reports_input_errors
def list_weights(
    weights_dir: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the known weight files: cached or not, verified or not."""
    from epdi_ml.models.weights import cached_weights, resolve_weights_dir
    from stores.validation import check_output_dir

    if weights_dir is not None:
        check_output_dir(weights_dir, "--dir")

    rows = cached_weights(weights_dir)
    if not as_json:
        typer.echo(f"weights folder: {resolve_weights_dir(weights_dir)}")
    emit_rows(rows, ["model", "file", "location", "verified", "size_mb", "error"], as_json, False)
