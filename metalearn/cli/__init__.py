"""The ``metalearn`` command line (typer). Errors in the user's input print one line and exit 2.

Each module registers its commands on :data:`app` (or ``kb_app``) when imported.
"""

from metalearn.cli import bench, kb, monitor, search, serve
from metalearn.cli.common import app

__all__ = ["app", "main"]
_COMMANDS = (bench, kb, monitor, search, serve)


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()
