"""Shared parts of the ``metalearn`` command line: options, error decorators and small helpers.

Light on purpose (a command's ``--help`` imports this module): the helpers import the knowledge base and the settings
when they are called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from metalearn.errors import KnowledgeBaseError, MetalearnError
from metalearn.protocol import dumps_json

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[str | None, typer.Option("--db", help="Knowledge base path or SQLAlchemy URL "
                                                             "(default: METALEARN_DB).")]
TargetOption = Annotated[str, typer.Option("--target", "-t", help="Name of the target column.")]
NameOption = Annotated[str | None, typer.Option("--name", help="Dataset name (default: the file's stem).")]
TaskOption = Annotated[str | None, typer.Option("--task", help="classification or regression (default: detected "
                                                                "from the target, and the reason printed).")]
MetricOption = Annotated[str | None, typer.Option("--metric", help="balanced_accuracy, accuracy, f1_macro, roc_auc, "
                                                                    "log_loss; r2, rmse, mae, mape (errors are "
                                                                    "reported negated: higher is better). Default: "
                                                                    "balanced_accuracy or r2.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TrustOption = Annotated[bool, typer.Option("--trust-unsigned", help="Load a model file without a valid signature "
                                                                    "(an unsigned file from an older version, or one "
                                                                    "signed with another key). Loading a model runs "
                                                                    "code from it: only for files you trust.")]


def user_errors(func: F) -> F:
    """Turn :class:`MetalearnError` into ``error: ...`` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MetalearnError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def kb_errors(func: F) -> F:
    """For the ``kb`` commands: a database error is one ``error:`` line (under :func:`user_errors`), never a
    traceback; the knowledge base's own errors already hide the URL's password. SQLAlchemy is imported when the
    command runs, not for its ``--help``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise KnowledgeBaseError(f"knowledge base error: {lines[0] if lines else type(exc).__name__}") from None

    return wrapper  # type: ignore[return-value]


def _shown(url: str) -> str:
    """A database URL as printed: the password hidden."""
    from metalearn.settings import redact_url

    return redact_url(url)


def _print_json(data: Any) -> None:
    """``data`` as indented JSON on standard output."""
    typer.echo(dumps_json(data, indent=2))


def _kb(db: str | None) -> Any:
    """The knowledge base ``db`` (default METALEARN_DB), with the shipped seed loaded when empty."""
    from metalearn.knowledge_base.snapshot import open_kb

    return open_kb(db)
