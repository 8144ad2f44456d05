"""The one model file format: a fitted pipeline, its metadata and its feature schema, in one bundle.

A file is ``joblib`` of ``{"format": FORMAT, "model": pipeline, "metadata": {...}}``; the metadata
holds the search id, dataset, metric, CV score, configuration, target and the feature schema
(``columns``, ``categorical``, ``numeric``, ``classes``). :class:`ModelBundle` is the only reader and
writer: every front end (CLI, API, estimator) saves, loads and predicts through it.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from metalearn.datasets import FeatureSchema
from metalearn.errors import MetalearnError

FORMAT = "metalearn-model/1"


@dataclass
class ModelBundle:
    """A fitted pipeline with what produced it; ``predict`` types its input through the schema."""

    model: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> FeatureSchema | None:
        return FeatureSchema.from_json(self.metadata) if self.metadata.get("columns") else None

    def features(self, frame: Any) -> pd.DataFrame:
        """``frame`` typed as in training (columns the model does not use are dropped)."""
        schema = self.schema
        if schema is None:
            return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        return schema.apply(frame)

    def predict(self, frame: Any) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.model.predict(self.features(frame))

    def predict_proba(self, frame: Any) -> np.ndarray | None:
        if not hasattr(self.model, "predict_proba"):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.model.predict_proba(self.features(frame))

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.model, "classes_", None)
        return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]

    def save(self, path: str | Path) -> Path:
        """Write the bundle atomically (a unique temporary file in the same folder, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        try:
            joblib.dump({"format": FORMAT, "model": self.model, "metadata": self.metadata}, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        path = Path(path)
        if not path.is_file():
            raise MetalearnError(f"model file not found: {path}")
        try:
            payload = joblib.load(path)
        except Exception as exc:
            raise MetalearnError(f"cannot read model file {path.name}: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise MetalearnError(f"{path.name} is not a metalearn model file")
        if not hasattr(payload.get("model"), "predict"):
            raise MetalearnError(f"{path.name} holds no fitted model")
        return cls(payload["model"], dict(payload.get("metadata") or {}))


def save_model(model: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and its metadata to ``path`` (see :class:`ModelBundle`)."""
    return ModelBundle(model, dict(metadata or {})).save(path)


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read a model written by :func:`save_model`; returns ``(model, metadata)``."""
    bundle = ModelBundle.load(path)
    return bundle.model, bundle.metadata
