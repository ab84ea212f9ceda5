"""No holes: every value a page pastes into its prose is there and is a value, with the dataset and without it.

Two checks:

* the built book (``_build/html``, made by README step 1): every pasted value (MyST-NB's ``glue``) is non-empty and
  is not a placeholder such as "n/a", "nan" or "None", and no page shows an unresolved glue role;
* the chapters that read Imagenette, executed here *without* it and without network: every ``{glue}`` key their
  Markdown uses is glued, to a value that is not a placeholder, and the page says what is missing instead.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BUILT = REPO / "_build" / "html"
PLACEHOLDER = re.compile(r"^\s*$|\bn/a\b|^\s*nan\s*$|^\s*None\s*$|not measured|<missing>", re.IGNORECASE)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
PASTED = re.compile(r'<span class="pasted-text">(.*?)</span>', re.DOTALL)
#: The chapters whose prose depends on the dataset.
NEEDS_DATA = ["02_sparse_correlations.ipynb", "05_googlenet_end_to_end.ipynb", "06_auxiliary_classifiers.ipynb",
              "07_training_imagenette.ipynb"]  # fmt: skip


def built_pages() -> list[Path]:
    if not (BUILT / "index.html").exists():
        if os.environ.get("GNET_REQUIRE_BROWSER") == "1":
            pytest.fail("the book is not built: run `jupyter-book build -W -n --keep-going .` first")
        pytest.skip("the book is not built (jupyter-book build .)")
    return sorted(p for p in BUILT.rglob("*.html") if "_static" not in p.parts and p.name not in ("genindex.html",))


def test_every_value_a_built_page_pastes_is_a_value():
    holes = []
    for page in built_pages():
        text = page.read_text(encoding="utf-8")
        holes += [f"{page.relative_to(BUILT)}: {v!r}" for v in map(html.unescape, PASTED.findall(text))
                  if PLACEHOLDER.search(re.sub(r"<[^>]+>", "", v))]  # fmt: skip
        if "{glue" in text or "Failed to format" in text:
            holes.append(f"{page.relative_to(BUILT)}: an unresolved glue role")
        if ":::{" in text:  # a MyST directive printed as text: an output rendered as CommonMark
            holes.append(f"{page.relative_to(BUILT)}: an unrendered ':::{{' directive")
    assert not holes, "\n".join(holes)


def test_the_placeholder_pattern_catches_what_it_must():
    for bad in ("", "  ", "n/a (no data)", "nan", "None", "not measured (no Imagenette)"):
        assert PLACEHOLDER.search(bad), bad
    for good in ("86.2 %", "0.35", "Nanjing", "none of them", "n/annual"):
        assert not PLACEHOLDER.search(good), good


# ------------------------------------------------------------------------------------------ built without the data
def glued_values(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``{key: text}`` of every glue call's output in an executed notebook (text/markdown, else text/plain)."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrapbook:
                data, prefix = output.get("data", {}), scrapbook.get("mime_prefix", "")
                text = data.get(prefix + "text/markdown", data.get(prefix + "text/plain", ""))
                values[scrapbook["name"]] = "".join(text) if isinstance(text, list) else str(text)
    return values


def glue_references(notebook: nbformat.NotebookNode) -> set[str]:
    keys = set()
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            # A key from another page ("07_training_imagenette.ipynb::rec_top1") is that page's to glue.
            keys |= {m.split(":")[0] for m in GLUE_ROLE.findall(cell.source) if "::" not in m}
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("name", NEEDS_DATA)
def test_a_chapter_built_without_imagenette_pastes_no_hole(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # No dataset (an empty folder, and an empty download folder), and no network: a download attempt fails at once.
    monkeypatch.setenv("GNET_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))  # gnet's download folder is looked in too
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.delenv("GNET_ONLINE", raising=False)
    notebook = nbformat.read(REPO / "book" / name, as_version=4)
    resources = {"metadata": {"path": str(REPO / "book")}}
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources).execute()

    values = glued_values(notebook)
    missing = sorted(glue_references(notebook) - set(values))
    assert not missing, f"{name} uses glue keys that were never glued without the data: {missing}"
    holes = {key: value for key, value in values.items() if PLACEHOLDER.search(value)}
    assert not holes, f"{name} pastes placeholders without the data: {json.dumps(holes, indent=1)}"
    shown = "".join(values.values()) + "".join(
        str(output.get("data", {}).get("text/markdown", "")) + str(output.get("text", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert "GNET_DATA_DIR" in shown, f"{name} does not say how to provide the missing dataset"
    if ":::{" in shown:  # a displayed admonition renders only where outputs are read as MyST
        assert notebook.metadata["mystnb"].get("render_markdown_format") == "myst", name


def test_a_page_without_the_data_says_what_is_missing_and_how_to_get_it(tmp_path, monkeypatch, capsys):
    from gnet.book import dataset

    monkeypatch.setenv("GNET_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))  # gnet's download folder is looked in too
    monkeypatch.setattr(dataset.gdata, "_download_imagenette", lambda root, size: (_ for _ in ()).throw(
        dataset.gdata.DataNotFoundError(f"Downloading Imagenette ({size}) into {root} failed: offline")))  # fmt: skip
    assert dataset.find_imagenette() is None
    shown = capsys.readouterr().out
    assert "could not be downloaded" in shown
    assert "offline" not in shown, shown  # the exception's own text (urllib's "<urlopen error …>") stays hidden
    note = dataset.missing_data_note("the ablations were")
    assert note.startswith(":::{warning}") and note.endswith(":::")
    assert "the ablations were **not** re-measured" in note and "GNET_DATA_DIR" in note
    assert "torchvision.datasets.Imagenette" in note  # the download command itself


def test_with_the_data_find_imagenette_returns_its_folder(tmp_path, monkeypatch):
    from gnet.book import dataset
    from gnet.testing import make_fixture_dataset

    root = make_fixture_dataset(tmp_path / "data", num_classes=2, per_split=1)
    monkeypatch.setenv("GNET_DATA_DIR", str(root))
    assert dataset.find_imagenette() == root
