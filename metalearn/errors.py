"""Every error type metalearn raises for the user's input or state, with its exit code and HTTP status.

Front ends read ``exit_code`` (CLI) and ``http_status`` (API) from the exception class, so the
mapping lives here and nowhere else.
"""

from __future__ import annotations


class MetalearnError(ValueError):
    """Base class for errors caused by the user's input or settings (never a bug in metalearn)."""

    exit_code: int = 2
    http_status: int = 400


class DatasetError(MetalearnError):
    """The dataset cannot be used: missing file, unreadable format, bad target, too large, ..."""


class KnowledgeBaseError(MetalearnError):
    """The knowledge base cannot be opened or does not hold what was asked for."""


class NotFound(MetalearnError):
    """No such dataset, search or model."""

    http_status = 404


class Conflict(MetalearnError):
    """The request does not fit the current state, e.g. the model of a running search."""

    http_status = 409


class QueueFull(MetalearnError):
    """Too many searches are running or waiting; retry later."""

    http_status = 429
    exit_code = 3


class ServiceStopping(MetalearnError):
    """The server is shutting down and accepts no new search."""

    http_status = 503
    exit_code = 3


def http_status(exc: BaseException) -> int:
    """The HTTP status of ``exc`` (500 for anything that is not a :class:`MetalearnError`)."""
    return exc.http_status if isinstance(exc, MetalearnError) else 500
