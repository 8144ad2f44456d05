"""User-facing errors: one clear line of text, turned into a non-zero exit or a 4xx by the front ends."""

from __future__ import annotations


class MetalearnError(ValueError):
    """Base class for errors caused by the user's input or settings (never a bug in metalearn)."""


class DatasetError(MetalearnError):
    """The dataset cannot be used: missing file, unreadable format, bad target, too large, ..."""


class KnowledgeBaseError(MetalearnError):
    """The knowledge base cannot be opened or does not hold what was asked for."""
