"""A root command group that imports each sub-command's module only when that command runs.

``epdi --help`` lists every command from a table of one-line helps, so the root command starts
without torch, GPAW, atomate2 or custodian; ``epdi barrier ...`` (or ``epdi barrier --help``)
imports :mod:`workflows.cli.barrier` and what it needs. This is click's "lazily loading
sub-commands" pattern on top of Typer's group.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand

from workflows.cli.common import OneLineUsageErrors

try:  # typer vendors click from 0.20 on
    from typer._click import Command, Context
except ImportError:  # pragma: no cover - older typer on the click package
    from click import Command, Context


@dataclass(frozen=True)
class LazyCommand:
    """Where a sub-command lives and the line ``epdi --help`` shows for it.

    Parameters
    ----------
    module
        Dotted module that defines the command, e.g. ``"workflows.cli.barrier"``.
    attribute
        A :class:`typer.Typer` (a command group) or a function (one command) in ``module``.
    help
        The one-line help shown in the root command's list; it must equal the command's own
        short help (``tests/test_cli_front_door.py`` checks that).
    """

    module: str
    attribute: str
    help: str

    def load(self, name: str) -> Command:
        """Import the module and build the click command named ``name``."""
        target = getattr(importlib.import_module(self.module), self.attribute)
        if isinstance(target, typer.Typer):
            command: Command = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False)  # completion is the root command's
            single.command(name)(target)
            command = typer.main.get_command(single)
        command.name = name
        return flags_as_flags(command)


def flags_as_flags(command: Command) -> Command:
    """Show boolean flags without a value type in the help of ``command`` and its sub-commands.

    Typer's rich help puts ``<bool>`` in the type column of a flag (``--help`` included), as if it
    took a value; an empty metavar leaves that column blank (``--json``, not ``--json <bool>``).
    Parsing is unchanged.
    """
    ctx = Context(command, **command.context_settings)
    _blank_flag_types(command.get_params(ctx))  # with the (cached) --help option
    for sub in getattr(command, "commands", {}).values():
        flags_as_flags(sub)
    return command


def _blank_flag_types(params: list[Any]) -> None:
    for param in params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False) and param.metavar is None:
            param.metavar = ""


class LazyCommands(MutableMapping[str, Command]):
    """The group's ``commands`` mapping: commands built already, and names still to import."""

    def __init__(self, built: MutableMapping[str, Command], lazy: dict[str, LazyCommand]) -> None:
        self.built = dict(built)
        self.lazy = dict(lazy)

    def __getitem__(self, name: str) -> Command:
        if name not in self.built:
            if name not in self.lazy:
                raise KeyError(name)
            self.built[name] = self.lazy[name].load(name)
        return self.built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        self.built.pop(name, None)
        self.lazy.pop(name)

    def __iter__(self) -> Iterator[str]:
        yield from self.lazy
        yield from (name for name in self.built if name not in self.lazy)

    def __len__(self) -> int:
        return len(set(self.lazy) | set(self.built))


class LazyGroup(OneLineUsageErrors):
    """The ``epdi`` group: sub-commands from :attr:`lazy_commands`, imported when resolved.

    Subclasses set :attr:`lazy_commands`; commands registered on the Typer app directly (the
    light ones) stay as they are and are listed after the lazy ones.
    """

    lazy_commands: dict[str, LazyCommand] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(self.commands, self.lazy_commands)
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        """Names in table order, without importing any command."""
        return list(self.commands)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The command to run; while the help page is written, a stub with the table's help line."""
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        if self._listing and cmd_name not in commands.built and cmd_name in commands.lazy:
            return TyperCommand(name=cmd_name, short_help=commands.lazy[cmd_name].help)
        return commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: Any) -> None:
        """Write the help page from the table, importing no sub-command."""
        self._listing = True
        _blank_flag_types(self.get_params(ctx))  # the root's own flags, completion and --help included
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
