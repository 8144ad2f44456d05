"""The command line's table of commands: every entry resolves to its registered command, the listed help is that
command's docstring, and listing the commands imports none of their modules."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest
import typer

from metalearn.cli import COMMANDS, CommandSpec, GroupSpec


def _specs() -> list[tuple[str, CommandSpec]]:
    out = []
    for name, spec in COMMANDS.items():
        if isinstance(spec, GroupSpec):
            out += [(f"{name} {sub}", s) for sub, s in spec.commands.items()]
        else:
            out.append((name, spec))
    return out


@pytest.mark.parametrize(("name", "spec"), _specs(), ids=[n for n, _ in _specs()])
def test_table_entry_is_the_registered_command_and_its_help(name: str, spec: CommandSpec) -> None:
    module = importlib.import_module(spec.module)
    registered = typer.main.get_group(module.commands).commands
    command = registered[name.split()[-1]]
    function = getattr(module, spec.function)
    assert command.callback is not None and inspect.unwrap(command.callback) is inspect.unwrap(function)
    assert spec.help and spec.help == inspect.getdoc(function).split("\n\n")[0]


def test_listing_the_commands_imports_none_of_them() -> None:
    code = ("import sys\nfrom metalearn.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('metalearn.cli.', 'metalearn.service', "
            "'sklearn', 'smac'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for name in COMMANDS:
        assert name in done.stdout
