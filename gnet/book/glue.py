"""Glue for chapters that must also run outside the book build.

The book inserts measured numbers into its prose with MyST-NB's ``glue``. On Colab or in a plain Jupyter, where
MyST-NB is not installed, :func:`glue` shows the value instead, so that the same chapter runs everywhere and the
reader still sees every number the text refers to.
"""

from __future__ import annotations

import importlib.util

__all__ = ["glue"]


def glue(name: str, value: object, display: bool = True) -> None:
    """``myst_nb.glue(name, value, display)`` when MyST-NB is installed; otherwise print ``name = value``
    (or display the value itself when ``display`` is true, as MyST-NB would)."""
    if importlib.util.find_spec("myst_nb") is not None:
        from myst_nb import glue as myst_glue

        myst_glue(name, value, display=display)
    elif display:
        from IPython.display import display as ipython_display

        ipython_display(value)
    else:
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        print(f"[{name} = {shown}]")
