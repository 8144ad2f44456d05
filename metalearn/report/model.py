"""The report as data: its options (:class:`ReportOptions`), the built report (:class:`ModelReport`) and
:func:`render_report`, which turns the data (or JSON read back) into HTML or JSON text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metalearn.defaults import REPORT_SAMPLE_SIZE, REPORT_SHAP_SECONDS
from metalearn.errors import MetalearnError
from metalearn.protocol import dumps_json, to_jsonable
from metalearn.report.html import REGRESSION_SECTIONS, SECTIONS, render_html

__all__ = ["MEDIA_TYPES", "REGRESSION_SECTIONS", "REPORT_FORMAT", "SECTIONS", "ModelReport", "ReportOptions",
           "render_report"]

MEDIA_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json"}
REPORT_FORMAT = "metalearn-report/1"


@dataclass
class ReportOptions:
    """Sizes and budgets of a report (defaults keep 10k rows x 50 columns under a minute)."""

    sample_size: int = REPORT_SAMPLE_SIZE  # rows for permutation importance, partial dependence, SHAP background pool
    folds: int | None = None  # folds of cross_val_predict without a test split; None: 5, or 3 above 5,000 rows
    seed: int = 0
    permutation_repeats: int = 5
    pdp_features: int = 4
    pdp_grid: int = 20
    shap: bool = True
    shap_rows: int = 100  # at most this many rows are explained
    shap_background: int = 50
    shap_max_permutations: int = 10
    #: time budget of the SHAP step, compilation included (None: no reduction)
    shap_seconds: float | None = REPORT_SHAP_SECONDS
    n_local: int = 3  # individual predictions explained (SHAP and/or LIME)
    lime: bool | str = "auto"  # "auto": only where SHAP does not fit; True: always; False: never
    lime_samples: int = 1000
    surrogate_depth: int = 4
    surrogate_rows: int = 5000
    calibration_bins: int = 10
    fairness_threshold: float = 0.1
    positive_class: Any = None  # binary problems; default: the second of the sorted classes
    metric: str | None = None  # permutation-importance scoring; default: the search's metric or the task's default

    def validate(self) -> ReportOptions:
        if self.sample_size < 10:
            raise MetalearnError(f"sample_size must be at least 10, got {self.sample_size}")
        if self.folds is not None and self.folds < 2:
            raise MetalearnError(f"folds must be at least 2, got {self.folds}")
        if self.lime not in (True, False, "auto"):
            raise MetalearnError(f"lime must be True, False or 'auto', got {self.lime!r}")
        if not 1 <= self.surrogate_depth <= 8:
            raise MetalearnError(f"surrogate_depth must be between 1 and 8, got {self.surrogate_depth}")
        return self


@dataclass
class ModelReport:
    """A built report: ``data`` is JSON-ready; ``artifacts`` keeps in-memory objects (not serialised)."""

    data: dict[str, Any]
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sections(self) -> dict[str, Any]:
        return self.data["sections"]

    @property
    def warnings(self) -> list[str]:
        return self.data["warnings"]

    def __getitem__(self, section: str) -> Any:
        return self.data["sections"][section]

    def to_json(self) -> dict[str, Any]:
        return self.data

    def to_html(self) -> str:
        return render_report(self, "html")

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write HTML or JSON (``fmt``, else from the suffix: ``.json`` is JSON, anything else HTML)."""
        path = Path(path)
        fmt = fmt or ("json" if path.suffix.lower() == ".json" else "html")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(self, fmt), encoding="utf-8")
        return path


def render_report(report: ModelReport | Mapping[str, Any], fmt: str = "html") -> str:
    """The report as a self-contained HTML page or as JSON text (``MEDIA_TYPES[fmt]`` is its media type).

    Accepts a :class:`ModelReport` or its ``data`` (e.g. read back from JSON); meant for the CLI and for
    the HTTP API (``GET /v1/searches/{id}/report?format=html|json``).
    """
    data = report.data if isinstance(report, ModelReport) else dict(report)
    if fmt == "json":
        return dumps_json(data, indent=1)
    if fmt == "html":
        return render_html(to_jsonable(data))
    raise MetalearnError(f"unknown report format {fmt!r}; use html or json")
