"""The book's structure: chapters, table of contents, notebook hygiene and the Colab install cells."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def toc_files() -> list[str]:
    """Every page in _toc.yml, in-depth pages (a chapter's ``sections:``) included."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def pages(entries: list[dict]) -> list[str]:
        return [page for entry in entries for page in (entry["file"], *pages(entry.get("sections", [])))]

    return [page for part in toc["parts"] for page in pages(part["chapters"])]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_notebook_is_a_page_of_the_toc_and_every_page_exists():
    assert len(CHAPTERS) == 10  # chapters 1-9 and chapter 9's in-depth page
    listed = set(toc_files())
    assert {f"book/{p.stem}" for p in CHAPTERS} <= listed
    for entry in listed:
        assert (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists(), entry


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_sets_its_own_timeouts(path):
    meta = load(path)["metadata"]
    assert meta["execution"]["timeout"] == meta["mystnb"]["execution_timeout"] > 0


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_goals_summary_and_hidden_solutions(path):
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    assert "Learning goals" in markdown
    assert "## Summary" in markdown and "## Exercises" in markdown
    assert re.search(r"\{solution(-start)?\}[^\n]*\n:class: dropdown", markdown), "solutions must be hidden"


# The [book] extra's distributions, by the module a chapter imports.
BOOK_MODULES = {"ipywidgets": "ipywidgets", "ipython": "IPython", "pandas": "pandas", "scipy": "scipy",
                "scikit-image": "skimage"}  # fmt: skip


def run_install_cell(source: str, monkeypatch, missing: set[str]) -> list[list[str]]:
    """Execute an install cell with ``missing`` modules reported absent; return the commands it would run."""
    import importlib.util
    import subprocess

    commands: list[list[str]] = []
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: commands.append(command))
    exec(compile(source, "install-cell", "exec"), {})
    return commands


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_installs_gnet_with_its_book_extra_and_keeps_the_installed_torch(path, monkeypatch):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    first = next(c for c in load(path)["cells"] if c["cell_type"] == "code")
    source = "".join(first["source"])
    assert f"gnet[book] @ git+{url}@main" in source, "run `python scripts/set_repo_url.py` after changing the url"
    extra = re.search(r"^book = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert set(re.findall(r'"([A-Za-z-]+)', extra)) == set(BOOK_MODULES)  # the cell looks for every one

    assert run_install_cell(source, monkeypatch, missing=set()) == []  # all there: nothing is installed
    for module in ["gnet", *BOOK_MODULES.values()]:  # any one missing: gnet and its extra, torch held where it is
        (command,) = run_install_cell(source, monkeypatch, missing={module})
        assert command[1:5] == ["-m", "pip", "install", "-q"] and command[5] == f"gnet[book] @ git+{url}@main"
        assert command[6:] == [f"torch=={version('torch')}", f"torchvision=={version('torchvision')}"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_title_leaves_numbering_to_the_toc(path):
    first = "".join(load(path)["cells"][0]["source"])
    # _toc.yml numbers the chapters; a number in the title would print twice ("2. 2. Why go wide").
    assert first.startswith("# ") and not re.match(r"# \d+\.\s", first)
