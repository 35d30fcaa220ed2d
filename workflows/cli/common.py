"""Helpers shared by the CLI commands: error reporting and table/JSON/CSV output."""

from __future__ import annotations

import csv
import errno
import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

try:  # typer vendors click from 0.20 on; its usage errors are that copy's classes
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on the click package
    from click.exceptions import NoArgsIsHelpError, UsageError

from stores.errors import EpdiError

F = TypeVar("F", bound=Callable[..., Any])

#: exit code for bad user input (same as click's usage errors)
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    from stores.validation import one_line  # pydantic: not needed to start ``epdi --help``

    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def reports_input_errors(func: F) -> F:
    """Turn the platform's own errors into a one-line message on stderr and their exit code.

    :class:`~stores.errors.EpdiError` subclasses carry the code: 2 for bad input, 1 for a failed
    run. A MongoDB server that cannot be reached is reported as
    :class:`stores.facade.StoreUnreachable` (exit 1), wherever pymongo noticed it. Any other
    exception is a bug and keeps its traceback.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import ConnectionFailure

        from stores.facade import store_unreachable

        try:
            return func(*args, **kwargs)
        except EpdiError as exc:
            fail(str(exc), exc.exit_code)
        except ConnectionFailure as exc:  # raised inside maggma, jobflow or FireWorks
            error = store_unreachable(exc)
            fail(str(error), error.exit_code)
        except OSError as exc:  # a file the command writes, on a full disk
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            fail(f"the disk is full: cannot write {exc.filename or 'a file'}; free some space and rerun", 1)

    return wrapper  # type: ignore[return-value]


class OneLineUsageErrors(TyperGroup):
    """The root command group: click's usage errors (bad option value, missing argument) on one line.

    ``error: Invalid value for '--size': ... (see `epdi surfaces build --help`)`` and exit 2, like
    the platform's own errors, instead of click's usage block.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        """Run the command; report a usage error of any sub-command as one line."""
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)


def emit_mapping(mapping: dict[str, Any], as_json: bool) -> None:
    """Print one mapping as a JSON object, or as aligned ``key: value`` lines."""
    if as_json:
        typer.echo(json.dumps(mapping, default=str))
        return
    width = max((len(k) for k in mapping), default=0)
    for key, value in mapping.items():
        typer.echo(f"{key:>{width}}: {value}")


def emit_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, as_csv: bool) -> None:
    """Print ``rows`` as JSON (a list), CSV, or an aligned text table."""
    if as_json:
        typer.echo(json.dumps(list(rows), indent=1, default=str))
        return
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in columns})
        return
    text = [[("-" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)))
    for r in text:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)))
