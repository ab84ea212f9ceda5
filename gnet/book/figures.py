"""One look for every figure in the book.

Chapters call :func:`use_book_style` once and build their figures with :func:`new_figure`, so axes, fonts and
colours stay the same from page to page. :data:`BRANCH_COLORS` gives each Inception branch the same colour
everywhere, and :func:`format_count` writes counts the way the prose does ("1.58 G").

Every ``plot_*`` function of :mod:`gnet.book` draws on a given ``ax`` or on a new figure (:func:`axes_or_new`),
ends with :func:`finish` (title, legend, ``(fig, ax)``) and never saves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gnet.model import BRANCH_NAMES

__all__ = ["BRANCH_COLORS", "BRANCH_LABELS", "use_book_style", "new_figure", "format_count", "axes_or_new", "finish"]

#: A colour per Inception branch (colour-blind-safe Okabe–Ito palette), used by every chapter.
BRANCH_COLORS: dict[str, str] = dict(zip(BRANCH_NAMES, ("#0072B2", "#E69F00", "#009E73", "#CC79A7"), strict=True))
#: What each branch is, in the paper's words: 1×1, 3×3, 5×5, pool.
BRANCH_LABELS: dict[str, str] = dict(zip(BRANCH_NAMES, ("1×1", "3×3", "5×5", "pool"), strict=True))


def use_book_style() -> None:
    """Set matplotlib defaults for the book: readable sizes, light grid, no top/right spines, crisp PNGs."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.constrained_layout.use": True,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
            "axes.labelsize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "axes.prop_cycle": mpl.cycler(color=["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]),
        }
    )


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 7.0, height: float = 4.0, **kwargs):
    """``plt.subplots`` with the book's size conventions; returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def format_count(n: float, unit: str = "") -> str:
    """A count with an SI prefix and three significant digits: ``format_count(1_582_671_872) == "1.58 G"``."""
    if not isinstance(n, (int, float)) or isinstance(n, bool) or not math.isfinite(n):
        raise ValueError(f"n must be a finite number, got {n!r}")
    sign = "-" if n < 0 else ""
    n = abs(n)
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= threshold:
            return f"{sign}{n / threshold:.3g} {prefix}{unit}"
    return f"{sign}{n:.3g} {unit}".rstrip()


def axes_or_new(ax=None, *, width: float | None = None, height: float | None = None):
    """``(ax.figure, ax)`` for a given ``ax``; otherwise a new one-panel figure of ``width × height`` inches
    (matplotlib's default size when they are not given)."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=None if width is None or height is None else (width, height))


def finish(fig, ax, *, title: str | None = None, legend: bool | Mapping[str, object] = True):
    """The last steps of every ``plot_*`` function: set the title, draw the legend, return ``(fig, ax)``.

    ``ax`` is one axes, or several (a tuple or an array of panels): then ``title`` goes above all of them
    (``fig.suptitle``) and the legend on the first. ``legend=True`` draws the book's small legend, a mapping
    passes its keyword arguments to ``ax.legend`` instead (``handles=``, ``loc=``), and ``False`` draws none.
    """
    one_panel = hasattr(ax, "set_title")
    if title:
        (ax.set_title if one_panel else fig.suptitle)(title)
    if legend:
        first = ax if one_panel else next(iter(getattr(ax, "flat", ax)))
        first.legend(**({"fontsize": "small"} if legend is True else legend))
    return fig, ax
