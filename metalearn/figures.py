"""matplotlib's one home (optional extra ``bench`` / ``report``): object-oriented figures on an Agg canvas.

No pyplot and no ``matplotlib.use``: every figure is a :class:`~matplotlib.figure.Figure` with its own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, so nothing global changes and nothing needs closing
(safe inside a server). Without matplotlib the module still imports; :func:`available` says False and the helpers
raise the same :class:`ImportError` (type and message) as the failed import.
"""

from __future__ import annotations

from os import PathLike
from typing import IO, Any

try:
    from matplotlib import colormaps
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
except ImportError as exc:  # optional extra
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

__all__ = ["available", "budget_ticks", "colormap", "new_figure", "require", "save_png"]


def available() -> bool:
    """Whether matplotlib is installed."""
    return _MISSING is None


def require() -> None:
    """Raise the :class:`ImportError` of the missing matplotlib (same type, message and name)."""
    if _MISSING is not None:
        raise type(_MISSING)(str(_MISSING), name=_MISSING.name, path=_MISSING.path)


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A ``width`` x ``height`` inch Figure (``kwargs`` to :class:`~matplotlib.figure.Figure`) on an Agg canvas."""
    require()
    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def colormap(name: str) -> Colormap:
    """The registered colormap ``name`` (e.g. ``"viridis"``)."""
    require()
    return colormaps[name]


def budget_ticks(ax: Axes, budgets: list[int]) -> None:
    """Major x ticks exactly at ``budgets`` with plain labels, no minor ticks (for a log-scaled budget axis)."""
    require()
    ax.xaxis.set_major_locator(FixedLocator(list(budgets)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def save_png(fig: Figure, target: str | PathLike[str] | IO[bytes], dpi: float) -> None:
    """Write ``fig`` as a PNG at ``dpi`` to a path or a binary file object."""
    require()
    fig.savefig(target, format="png", dpi=dpi)
