"""The note placed beside an interactive control that needs a live kernel.

ipywidgets render in the static HTML book (their JavaScript is vendored in ``book/widgets_js``), but their Python
callbacks need a running kernel: in the static page a slider moves while its output stays frozen
(ipywidgets #2069, #3319). Chapters put :func:`kernel_only_note` next to any control whose output depends on a
callback, so that readers know to open the page in Colab or Jupyter::

    from gnet.book.widgets import kernel_only_note

    kernel_only_note()  # last expression of the cell that builds the slider, or display(kernel_only_note())
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["KernelOnlyNote", "kernel_only_note"]

_TITLE = "Needs a live kernel"
_MESSAGE = (
    "{what} runs Python code when you change it. On the static web page it only shows the state the page was "
    "built with. To use it, open this page in Colab (rocket icon at the top of the page) or run the notebook "
    "in a local Jupyter."
)


@dataclass(frozen=True)
class KernelOnlyNote:
    """A note that renders as an admonition in the book, in Jupyter and in Colab, and as text elsewhere."""

    what: str = "This control"

    @property
    def message(self) -> str:
        return _MESSAGE.format(what=self.what)

    def _repr_html_(self) -> str:
        # The classes are the book theme's admonition styling; the inline styles are a fallback for
        # Jupyter and Colab, which do not know those classes.
        return (
            '<div class="admonition note gnet-kernel-only" '
            'style="border-left: 4px solid #4c72b0; padding: 0.2em 0.8em; margin: 0.5em 0;">'
            f'<p class="admonition-title" style="font-weight: bold;">{_TITLE}</p>'
            f"<p>{html.escape(self.message)}</p></div>"
        )

    def _repr_markdown_(self) -> str:
        return f"> **{_TITLE}.** {self.message}"

    def __str__(self) -> str:
        return f"{_TITLE}: {self.message}"


def kernel_only_note(what: str = "This control") -> KernelOnlyNote:
    """Return a note saying that ``what`` (an interactive control) needs a live kernel to respond.

    Display it next to an ipywidgets control; ``what`` names the control, e.g. ``"The channel slider"``.
    Raises ``ValueError`` for an empty name, since the note would then read badly.
    """
    if not isinstance(what, str) or not what.strip():
        raise ValueError(f"what must name the control as a non-empty string, got {what!r}")
    return KernelOnlyNote(what.strip())
