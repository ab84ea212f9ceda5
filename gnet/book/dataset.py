"""How a chapter finds Imagenette, and what it says when the images are not there.

Every page must build without the dataset and without network, and say in each place that needs the images what
is missing and how to get it: :func:`find_imagenette` looks (and tries a download), :func:`missing_data_note` is
the warning a page shows instead of the numbers it could not re-measure.
"""

from __future__ import annotations

from pathlib import Path

from gnet import data as gdata

__all__ = ["find_imagenette", "missing_data_note", "how_to_get_imagenette"]


def find_imagenette(size: str = "160px") -> Path | None:
    """The Imagenette folder, found where every gnet command looks (``$GNET_DATA_DIR``, then gnet's download folder
    ``~/.cache/gnet/data``) or downloaded there, or None after printing what is missing."""
    try:
        return gdata.resolve_data_dir(size=size, download=True)
    except gdata.DataNotFoundError:
        # A reader gets a sentence, not the exception: its text holds urllib's "<urlopen error …>" and the build's
        # own folders. The page's missing_data_note then says how to get the images.
        print("This page was built without Imagenette: gnet did not find it, and it could not be downloaded.")
        return None


def missing_data_note(what: str) -> str:
    """A MyST warning for a page built without Imagenette: what was not re-measured, and how to get the images."""
    return (
        f":::{{warning}}\nThis build had no Imagenette, so {what} **not** re-measured: the numbers shown are the "
        f"recorded ones alone. {how_to_get_imagenette()}\n:::"
    )


def how_to_get_imagenette() -> str:
    """One sentence: the variable to set, or the command that downloads the images."""
    return (
        f"Set `{gdata.DATA_ENV_VAR}` to a folder holding `imagenette2-160/`, or download it (99 MB) with "
        f"`{gdata.download_command()}`."
    )
