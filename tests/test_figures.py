"""gnet.book.figures: branch colours, count formatting, and the helpers every plot_* function ends with."""

from __future__ import annotations

import matplotlib
import pytest

from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS, axes_or_new, finish, format_count, new_figure
from gnet.model import BRANCH_NAMES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def test_every_branch_has_a_colour_and_a_label_in_network_order():
    assert list(BRANCH_COLORS) == list(BRANCH_LABELS) == list(BRANCH_NAMES)
    assert list(BRANCH_LABELS.values()) == ["1×1", "3×3", "5×5", "pool"]
    assert len(set(BRANCH_COLORS.values())) == 4


@pytest.mark.parametrize(
    ("n", "unit", "text"),
    [(1_582_671_872, "", "1.58 G"), (128_049_152, "", "128 M"), (163_696, "", "164 k"), (12, "", "12"),
     (-2_500, "B", "-2.5 kB"), (0, "MACs", "0 MACs")],
)  # fmt: skip
def test_format_count_writes_three_significant_digits_and_an_si_prefix(n, unit, text):
    assert format_count(n, unit) == text


@pytest.mark.parametrize("n", [float("nan"), True, "12"])
def test_format_count_rejects_what_is_not_a_finite_number(n):
    with pytest.raises(ValueError, match="n must be a finite number"):
        format_count(n)


def test_axes_or_new_reuses_given_axes_or_makes_a_figure_of_the_asked_size():
    fig, ax = new_figure()
    assert axes_or_new(ax) == (fig, ax)
    new_fig, new_ax = axes_or_new(width=5, height=3.5)
    assert new_fig is not fig and tuple(new_fig.get_size_inches()) == (5, 3.5)
    plt.close("all")


def test_finish_titles_and_labels_one_panel_and_titles_several_panels_above_them():
    fig, ax = new_figure()
    ax.plot([0, 1], label="line")
    assert finish(fig, ax, title="one") == (fig, ax)
    assert ax.get_title() == "one" and ax.get_legend() is not None
    fig2, axes = new_figure(2)
    axes[0].plot([0, 1], label="a")
    handles = axes[0].get_lines()
    assert finish(fig2, axes, title="two", legend={"handles": handles, "loc": "upper left"})[1] is axes
    assert fig2.get_suptitle() == "two" and axes[0].get_legend() is not None and axes[1].get_legend() is None
    fig3, ax3 = new_figure()
    finish(fig3, ax3, legend=False)
    assert ax3.get_legend() is None and ax3.get_title() == ""
    plt.close("all")
