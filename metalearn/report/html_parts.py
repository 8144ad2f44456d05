"""Building blocks of the report page: escaping and number formatting, tables, notes, and matplotlib figures
embedded as base64 PNG ``data:`` URIs (:mod:`metalearn.figures`: ``Figure`` + Agg canvas, no pyplot state, so it
is safe inside a server)."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from metalearn import figures

DPI = 90
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
ORIGIN_COLOURS = {"warm_start": "#d62728", "smac_initial": "#ff7f0e", "smac": "#1f77b4", "random": "#7f7f7f"}


def esc(value: Any) -> str:
    """HTML-escaped text (None is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell: numbers rounded, missing as a dash, booleans as yes / no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.2e}"
    return esc(value)


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure (no pyplot) with a constrained layout; ImportError without matplotlib."""
    return figures.new_figure(width, height, dpi=DPI, layout="constrained")


def img(fig: Any, alt: str) -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI (Agg canvas, no pyplot)."""
    buffer = io.BytesIO()
    figures.save_png(fig, buffer, DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned labels."""
    head = "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>" for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = "".join(f'<td class="l">{c if isinstance(c, Raw) else esc(c)}</td>' if i < left
                        else f"<td>{c if isinstance(c, Raw) else fmt(c)}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of labels and formatted values."""
    return '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in rows) + "</table>"


class Raw(str):
    """Trusted HTML inside a table cell."""


def note(text: str) -> str:
    """A small explanatory paragraph."""
    return f'<p class="note">{esc(text)}</p>'


def short(text: Any, limit: int = 28) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unavailable(data: Mapping[str, Any]) -> str | None:
    """The message of a section that failed or was skipped, else None."""
    if "error" in data:
        return f'<div class="warn">Not computed: {esc(data["error"])}</div>'
    if "skipped" in data:
        return note(f"Skipped: {data['skipped']}")
    return None
