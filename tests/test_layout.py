"""The package's layout: the core stands without the book's dependencies, and the book's helpers live in gnet.book."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import gnet.book

CORE = (
    "gnet",
    "gnet.analysis",
    "gnet.checkpoint",
    "gnet.data",
    "gnet.device",
    "gnet.evaluate",
    "gnet.model",
    "gnet.table1",
    "gnet.train",
    "gnet.weights",
)
BOOK_ONLY = ("scipy", "skimage", "ipywidgets", "IPython", "pandas")  # the [book] extra
BOOK_MODULES = ("claims", "correlation", "dataset", "diagrams", "explorer", "figures", "glue", "gradients", "runs",
                "stacks", "trained", "widgets")  # fmt: skip


def test_importing_the_core_loads_none_of_the_books_dependencies_and_no_gnet_book_module():
    # A fresh interpreter: this test process has imported pandas and friends already.
    program = (
        f"import sys; import {', '.join(CORE)}; "
        f"print(sorted(m for m in {BOOK_ONLY!r} if m in sys.modules)); "
        "print(sorted(m for m in sys.modules if m == 'gnet.book' or m.startswith('gnet.book.')))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "[]"], done.stdout + done.stderr


@pytest.mark.parametrize("name", BOOK_MODULES)
def test_every_book_helper_module_imports_from_gnet_book(name):
    module = importlib.import_module(f"gnet.book.{name}")
    assert all(hasattr(module, public) for public in getattr(module, "__all__", ()))


def test_the_book_helpers_moved_out_of_the_top_level_package():
    top_level = {info.name for info in pkgutil.iter_modules(gnet.__path__)}
    moved = {
        "plotting",
        "notebook",
        "widgets",
        "explorer",
        "correlation",
        "modules_plots",
        "compare",
        "gradients",
        "reporting",
    }
    assert not top_level & moved, sorted(top_level & moved)
    assert set(BOOK_MODULES) <= {info.name for info in pkgutil.iter_modules(gnet.book.__path__)}
