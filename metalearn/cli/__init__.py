"""The ``metalearn`` command line (typer). Errors in the user's input print one line and exit 2.

The commands are listed in :data:`COMMANDS`, and each one's module (which registers it on its own ``commands``
Typer) is imported only when that command runs or shows its own help: click's "lazily loading subcommands", so
``metalearn --help`` and ``metalearn kb --help`` import none of the command modules.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "CommandSpec", "GroupSpec", "LazyGroup", "app", "main"]


class CommandSpec(NamedTuple):
    """A command of the table: the module that registers it and the function that implements it."""

    module: str
    function: str

    @property
    def help(self) -> str:
        """The short help ``--help`` lists: the first paragraph of the function's docstring, read from the module's
        source without importing it (the docstring stays the one home of the text)."""
        return _docstrings(self.module).get(self.function, "")


class GroupSpec(NamedTuple):
    """A sub-group of the table (``metalearn kb ...``): its help and its own table of commands."""

    help: str
    commands: dict[str, CommandSpec]


@cache
def _docstrings(module: str) -> dict[str, str]:
    """First paragraph of the docstring of each top-level function of ``module`` (parsed, not imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return {}
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return {node.name: (ast.get_docstring(node) or "").split("\n\n")[0] for node in tree.body
            if isinstance(node, ast.FunctionDef)}


KB_COMMANDS = {
    "init": CommandSpec("metalearn.cli.kb", "kb_init"),
    "stats": CommandSpec("metalearn.cli.kb", "kb_stats"),
    "upgrade": CommandSpec("metalearn.cli.kb", "kb_upgrade"),
    "seed": CommandSpec("metalearn.cli.seed", "kb_seed"),
    "export": CommandSpec("metalearn.cli.kb", "kb_export"),
    "import": CommandSpec("metalearn.cli.kb", "kb_import"),
}

#: every command, in the order ``--help`` lists them
COMMANDS: dict[str, CommandSpec | GroupSpec] = {
    "benchmark": CommandSpec("metalearn.cli.bench", "benchmark"),
    "metafeatures": CommandSpec("metalearn.cli.search", "metafeatures"),
    "recommend": CommandSpec("metalearn.cli.search", "recommend"),
    "search": CommandSpec("metalearn.cli.search", "search"),
    "predict": CommandSpec("metalearn.cli.search", "predict"),
    "report": CommandSpec("metalearn.cli.search", "report"),
    "monitor": CommandSpec("metalearn.cli.monitor", "monitor"),
    "serve": CommandSpec("metalearn.cli.serve", "serve"),
    "kb": GroupSpec("Manage the knowledge base (METALEARN_DB).", KB_COMMANDS),
}

_LISTING = "metalearn.cli.listing"  # set in ctx.meta while a group formats its help


class LazyGroup(TyperGroup):
    """A group whose commands come from a table: ``list_commands`` returns its names, ``get_command`` imports the
    command's module. The group's own help lists the table's short help and imports nothing; :attr:`commands`
    holds placeholders of every name, so typer's "Did you mean ...?" knows them."""

    def __init__(self, *, table: dict[str, CommandSpec | GroupSpec] = COMMANDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.commands.update({name: TyperCommand(name) for name in table})  # short help filled in when listed
        self._loaded: dict[str, TyperCommand | TyperGroup] = {}

    def list_commands(self, ctx: typer.Context) -> list[str]:
        """The table's names, in its order."""
        return list(self.table)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        """The command ``cmd_name``, its module imported (a placeholder with its short help while listing)."""
        spec = self.table.get(cmd_name)
        if spec is None:
            return None
        if ctx.meta.get(_LISTING):  # the docstrings are parsed only here, not on every start-up
            placeholder = self.commands[cmd_name]
            placeholder.short_help = spec.help
            return placeholder
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = self._load(cmd_name, spec)
        return self._loaded[cmd_name]

    def _load(self, name: str, spec: CommandSpec | GroupSpec) -> TyperCommand | TyperGroup:
        if isinstance(spec, GroupSpec):
            return LazyGroup(table=spec.commands, name=name, help=spec.help, no_args_is_help=True,
                             rich_markup_mode=self.rich_markup_mode)
        registry = importlib.import_module(spec.module).commands
        return typer.main.get_group(registry).commands[name]  # type: ignore[return-value]

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """This group's help; its list of commands from the table."""
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


app = typer.Typer(help="Meta-learning AutoML for tabular classification and regression.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=LazyGroup)


@app.callback()
def _root() -> None:
    """Nothing to do before a command (a callback makes typer build a group even with no command registered)."""


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()
