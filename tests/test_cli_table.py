"""The command line's table of commands: every entry resolves to its registered command, the listed help is that
command's docstring, listing the commands imports none of their modules, and a command's own help imports none of
the heavy modules it runs."""

from __future__ import annotations

import importlib
import inspect
import json
import os
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


#: what a command's ``--help`` must not import (its module holds the options; the command imports these when it runs)
HEAVY = ("sklearn", "smac", "pymfe", "sqlalchemy", "scipy", "uvicorn", "fastapi", "metalearn.service",
         "metalearn.warmstart", "metalearn.knowledge_base", "metalearn.console")
_GROUPS = [name for name, spec in COMMANDS.items() if isinstance(spec, GroupSpec)]


@pytest.mark.parametrize("name", _GROUPS + [n for n, _ in _specs()])
def test_a_commands_help_imports_none_of_the_heavy_modules(name: str) -> None:
    args = [*name.split(), "--help"]
    code = ("import json, sys\nfrom metalearn.cli import app\n"
            f"try:\n    app({args!r}, prog_name='metalearn')\nexcept SystemExit as stop:\n    code = stop.code\n"
            f"heavy = [m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in {HEAVY!r})]\n"
            "print(json.dumps([code, sorted(heavy)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=os.environ | {"COLUMNS": "200"})
    *help_lines, last = done.stdout.strip().splitlines()
    assert json.loads(last) == [0, []]
    assert f"Usage: metalearn {name} [OPTIONS]" in "\n".join(help_lines)  # the command's own help was shown
