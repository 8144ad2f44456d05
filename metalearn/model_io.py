"""Save and load fitted pipelines (joblib) together with what produced them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib

from metalearn.errors import MetalearnError

FORMAT = "metalearn-model/1"


def save_model(model: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and its metadata (search id, configuration, CV score, columns) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"format": FORMAT, "model": model, "metadata": metadata or {}}, path)
    return path


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read a model written by :func:`save_model`; returns ``(model, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise MetalearnError(f"model file not found: {path}")
    try:
        payload = joblib.load(path)
    except Exception as exc:
        raise MetalearnError(f"cannot read model file {path.name}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MetalearnError(f"{path.name} is not a metalearn model file")
    return payload["model"], payload["metadata"]
