"""The one model file format: a fitted pipeline, its metadata and its feature schema, in one signed bundle.

A model file (format ``metalearn-model/2``) is one JSON header line followed by a payload::

    {"format": "metalearn-model/2", "signature": "hmac-sha256:<hex>", "key_id": "<hex>", "payload_bytes": N}\n
    <N bytes: joblib of {"model": pipeline, "metadata": {...}}>

The signature is HMAC-SHA256 over the payload bytes with the model key (:func:`metalearn.settings.model_key`:
``METALEARN_MODEL_KEY``, else ``model.key`` beside the knowledge base). Unpickling a file runs any code it
holds, so :meth:`ModelBundle.load` reads the header, checks the signature and only then unpickles;
unsigned files (``metalearn-model/1``, plain joblib) and files whose signature does not match are refused
unless the caller trusts them knowingly (``trust_unsigned=True``, ``--trust-unsigned`` on the CLI).

The metadata holds the search id, dataset, metric, CV score, configuration, target and the feature schema
(``columns``, ``categorical``, ``numeric``, ``classes``), and ``fairness`` when the model was mitigated
(:mod:`metalearn.mitigation`). The payload may also hold ``profile``: the training data's distribution profile
(:mod:`metalearn.drift`) that ``metalearn monitor`` compares new data with; bundles written before it load with
``profile`` None. :class:`ModelBundle` is the only reader and writer: every front end (CLI, API, estimator)
saves, loads and predicts through it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from metalearn.datasets import FeatureSchema
from metalearn.errors import MetalearnError
from metalearn.settings import ModelKey, model_key

FORMAT = "metalearn-model/2"
LEGACY_FORMAT = "metalearn-model/1"  # unsigned joblib of {"format", "model", "metadata"}
SIGNATURE = "hmac-sha256"
MAX_HEADER_BYTES = 4096
TRUST_HINT = "pass --trust-unsigned (ModelBundle.load(path, trust_unsigned=True)) only if you trust where it came from"


def sign(payload: bytes, key: ModelKey) -> str:
    """The signature of ``payload`` as written in a model file's header."""
    return f"{SIGNATURE}:{hmac.new(key.secret, payload, hashlib.sha256).hexdigest()}"


def _header(handle: io.BufferedReader) -> dict[str, Any] | None:
    """The JSON header of a signed model file, or ``None`` for anything else (nothing is unpickled)."""
    line = handle.readline(MAX_HEADER_BYTES)
    if not line.startswith(b"{") or not line.endswith(b"\n"):
        return None
    try:
        header = json.loads(line)
    except ValueError:
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def _verify(name: str, header: dict[str, Any], payload: bytes, key: ModelKey | None) -> None:
    """Raise :class:`MetalearnError` unless ``payload`` carries a valid signature by ``key``."""
    if key is None or header.get("key_id") != key.id:
        mine = f"key {key.id} from {key.source}" if key is not None else "no model key"
        raise MetalearnError(
            f"{name} was signed with another key (key id {header.get('key_id')}; this machine has {mine}): set "
            f"METALEARN_MODEL_KEY (or METALEARN_MODEL_KEY_FILE) to the key of the machine or server that wrote it, "
            f"or {TRUST_HINT}")
    if len(payload) != header.get("payload_bytes") or not hmac.compare_digest(
            str(header.get("signature", "")), sign(payload, key)):
        raise MetalearnError(f"{name} fails its signature check (it was changed or damaged after it was written); "
                             f"refusing to load it: {TRUST_HINT}")


def _unpickle(name: str, source: Any) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return joblib.load(source)
    except Exception as exc:
        raise MetalearnError(f"cannot read model file {name}: {exc}") from None


def _check_model(name: str, model: Any) -> None:
    """A clear error for a payload that is not a fitted model pipeline."""
    if not callable(getattr(model, "predict", None)):
        raise MetalearnError(f"{name} holds a {type(model).__name__}, not a fitted model pipeline")
    if isinstance(model, BaseEstimator):
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise MetalearnError(f"{name} holds a {type(model).__name__} that was never fitted") from None
        except (TypeError, AttributeError):
            pass  # an estimator check_is_fitted cannot inspect: its predict will tell


@dataclass
class ModelBundle:
    """A fitted pipeline with what produced it; ``predict`` types its input through the schema."""

    model: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the training data's profile (:func:`metalearn.drift.profile_of`), or None (older bundles, or not computed)
    profile: dict[str, Any] | None = None

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

    def save(self, path: str | Path, key: ModelKey | None = None) -> Path:
        """Write the bundle signed with ``key`` (default :func:`~metalearn.settings.model_key`), atomically
        (a unique temporary file in the same folder, then a rename)."""
        key = key or model_key()
        buffer = io.BytesIO()
        content = {"model": self.model, "metadata": self.metadata}
        if self.profile is not None:
            content["profile"] = self.profile
        joblib.dump(content, buffer)
        payload = buffer.getvalue()
        header = {"format": FORMAT, "signature": sign(payload, key), "key_id": key.id, "payload_bytes": len(payload)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(json.dumps(header).encode() + b"\n")
                out.write(payload)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path, *, trust_unsigned: bool = False, key: ModelKey | None = None) -> ModelBundle:
        """Read a model file, checking its signature before anything is unpickled.

        ``trust_unsigned`` loads a file without a valid signature (an unsigned ``metalearn-model/1`` file, or
        one signed with another key): only for files from a source you trust, since loading runs their code.
        """
        path = Path(path)
        if not path.is_file():
            raise MetalearnError(f"model file not found: {path}")
        with path.open("rb") as handle:
            header = _header(handle)
            payload = handle.read() if header is not None else b""
        if header is None:
            if not trust_unsigned:
                raise MetalearnError(f"{path.name} is not a signed metalearn model file (an unsigned file from an "
                                     f"older version, or not a model file); loading it would run any code it "
                                     f"holds: {TRUST_HINT}")
            content = _unpickle(path.name, path)
            if not isinstance(content, dict) or content.get("format") != LEGACY_FORMAT:
                raise MetalearnError(f"{path.name} is not a metalearn model file")
        else:
            if not trust_unsigned:
                _verify(path.name, header, payload, key or model_key(create=False))
            content = _unpickle(path.name, io.BytesIO(payload))
            if not isinstance(content, dict) or "model" not in content:
                raise MetalearnError(f"{path.name} is not a metalearn model file")
        _check_model(path.name, content["model"])
        profile = content.get("profile")
        return cls(content["model"], dict(content.get("metadata") or {}),
                   profile if isinstance(profile, dict) else None)


def save_model(model: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and its metadata to ``path`` (see :class:`ModelBundle`)."""
    return ModelBundle(model, dict(metadata or {})).save(path)


def load_model(path: str | Path, *, trust_unsigned: bool = False) -> tuple[Any, dict[str, Any]]:
    """Read a model written by :func:`save_model` (see :meth:`ModelBundle.load`); returns ``(model, metadata)``."""
    bundle = ModelBundle.load(path, trust_unsigned=trust_unsigned)
    return bundle.model, bundle.metadata
