"""gnet.book.widgets: the note placed beside controls that need a live kernel."""

import pytest

from gnet.book.widgets import KernelOnlyNote, kernel_only_note


def test_kernel_only_note_names_the_control_and_points_to_colab():
    note = kernel_only_note("The channel slider")
    assert isinstance(note, KernelOnlyNote)
    for text in (note._repr_html_(), note._repr_markdown_(), str(note)):
        assert "The channel slider" in text
        assert "Colab" in text
        assert "kernel" in text


def test_kernel_only_note_renders_as_an_admonition_in_the_book():
    html = kernel_only_note()._repr_html_()
    assert html.startswith('<div class="admonition note')
    assert '<p class="admonition-title"' in html


def test_kernel_only_note_escapes_html_in_the_control_name():
    assert "<b>" not in kernel_only_note("The <b> slider")._repr_html_()


@pytest.mark.parametrize("what", ["", "   ", None])
def test_kernel_only_note_rejects_an_empty_control_name(what):
    with pytest.raises(ValueError, match="non-empty string"):
        kernel_only_note(what)
