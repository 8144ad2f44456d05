"""metalearn: meta-learning AutoML for tabular classification and regression.

dataset -> meta-features (pymfe) -> nearest datasets in the knowledge base -> their best
pipelines as SMAC's initial design -> search -> every trial back into the knowledge base.

Layers (imports run downward only; ``lint-imports`` checks it): ``cli`` -> ``api`` / ``benchmark`` /
``seeding`` / ``client`` -> ``service`` (the use cases) -> ``report`` -> ``warmstart`` ->
``knowledge_base`` -> core modules (``model_io``, ``evaluation``, ``pipeline``, ``space``, ``metafeatures``,
``datasets``, ``settings``, ``protocol``, ``errors``). The public API below is imported lazily so that
``import metalearn`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "search": "metalearn.warmstart.estimator",
    "recommend": "metalearn.warmstart.estimator",
    "AutoClassifier": "metalearn.warmstart.estimator",
    "AutoRegressor": "metalearn.warmstart.estimator",
    "KnowledgeBase": "metalearn.knowledge_base",
    "Client": "metalearn.client",
    "MetalearnError": "metalearn.errors",
}

__all__ = ["AutoClassifier", "AutoRegressor", "Client", "KnowledgeBase", "MetalearnError", "__version__", "recommend",
           "search"]


def __getattr__(name: str) -> Any:
    """Import the public API lazily so ``import metalearn`` stays fast (the CLI starts quickly)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'metalearn' has no attribute {name!r}")
