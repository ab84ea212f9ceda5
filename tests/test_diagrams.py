"""gnet.book.diagrams: the SVG diagrams show what the built modules are and what a forward pass computes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

import gnet
from gnet.book.diagrams import SvgDiagram, inception_module_svg, network_svg
from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS
from gnet.model import AUX_TAPS, BRANCH_NAMES, TORCHVISION_CONFIG, Inception, NaiveInception
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS

SVG = "{http://www.w3.org/2000/svg}"
SPEC_3A = INCEPTION_SPECS["inception3a"]


def parse(diagram: SvgDiagram) -> ET.Element:
    root = ET.fromstring(diagram.svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(element: ET.Element) -> list[str]:
    """What a reader sees: the content of every <text>, not the tooltips or the style sheet."""
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def steps(root: ET.Element) -> list[tuple[str, str, int]]:
    """(branch, label, channels) of every box of a module diagram, in drawing order."""
    return [(g.get("data-branch"), g.get("data-label"), int(g.get("data-channels"))) for g in groups(root, "step")]


def forward_sizes(model: gnet.GoogLeNet, image_size: int) -> dict[str, str]:
    """Output size ("832×7×7") of every direct submodule, from a real forward pass in training mode (aux heads too)."""
    sizes: dict[str, str] = {}

    def record(name: str):
        def hook(_module, _inputs, output) -> None:  # returns None: a hook's return value would replace the output
            sizes.setdefault(name, "×".join(map(str, output.shape[1:])))

        return hook

    children = [(name, m) for name, m in model.named_children() if not isinstance(m, nn.Identity)]
    hooks = [module.register_forward_hook(record(name)) for name, module in children]
    # A batch of 2: in training mode BatchNorm refuses one value per channel.
    with torch.no_grad():
        model.train()(torch.zeros(2, 3, image_size, image_size))
    for hook in hooks:
        hook.remove()
    return sizes


# ------------------------------------------------------------------------------------------------------------
# One Inception module
# ------------------------------------------------------------------------------------------------------------


def test_module_diagram_is_svg_that_displays_inline_in_a_notebook_and_in_the_book():
    diagram = inception_module_svg("inception3a")
    parse(diagram)
    assert diagram._repr_svg_() == diagram._repr_html_() == str(diagram) == diagram.svg


def test_module_diagram_of_3a_shows_every_width_of_table1_and_the_256_channel_output():
    root = parse(inception_module_svg("inception3a"))
    shown = texts(root)
    for field in WIDTH_FIELDS:
        assert f"{getattr(SPEC_3A, field)} channels" in shown, field
    block = Inception.from_spec(SPEC_3A)
    side = gnet.googlenet().feature_map_sizes(224)["inception3a"]
    assert f"{SPEC_3A.in_channels} channels · {side}×{side}" in shown
    assert any(t.endswith(f"= {block.out_channels} channels · {side}×{side}") for t in shown)
    assert block.out_channels == 256


def test_module_diagram_of_3a_has_the_boxes_of_figure_2b_with_the_built_modules_widths():
    block = Inception.from_spec(SPEC_3A)
    assert steps(parse(inception_module_svg("inception3a"))) == [
        ("branch1", "1×1 conv", block.branch1.conv.out_channels),
        ("branch2", "1×1 conv (reduce)", block.branch2[0].conv.out_channels),
        ("branch2", "3×3 conv", block.branch2[1].conv.out_channels),
        ("branch3", "1×1 conv (reduce)", block.branch3[0].conv.out_channels),
        ("branch3", "5×5 conv", block.branch3[1].conv.out_channels),
        ("branch4", "3×3 max pool", block.in_channels),
        ("branch4", "1×1 conv (pool proj)", block.branch4[1].conv.out_channels),
    ]


def test_naive_module_has_no_reduction_and_outputs_the_sum_of_its_branches():
    naive = NaiveInception(SPEC_3A.in_channels, SPEC_3A.n1x1, SPEC_3A.n3x3, SPEC_3A.n5x5)
    root = parse(inception_module_svg("inception3a", naive=True))
    drawn = steps(root)
    assert [label for _, label, _ in drawn] == ["1×1 conv", "3×3 conv", "5×5 conv", "3×3 max pool"]
    assert not any("reduce" in t or "proj" in t for t in texts(root))
    with torch.no_grad():
        out_channels = naive(torch.zeros(1, SPEC_3A.in_channels, 8, 8)).shape[1]
    assert sum(channels for _, _, channels in drawn) == out_channels == naive.out_channels
    side = gnet.googlenet().feature_map_sizes(224)["inception3a"]
    assert any(t.endswith(f"= {out_channels} channels · {side}×{side}") for t in texts(root))


@pytest.mark.parametrize(
    "block",
    ["inception4d", INCEPTION_SPECS["inception4d"], Inception.from_spec(INCEPTION_SPECS["inception4d"])],
    ids=["name", "spec", "module"],
)
def test_a_name_a_spec_and_a_built_module_draw_the_same_branches(block):
    expected = steps(parse(inception_module_svg("inception4d")))
    assert steps(parse(inception_module_svg(block))) == expected


def test_only_a_named_module_knows_its_map_size_in_the_network():
    side = gnet.googlenet().feature_map_sizes(160)["inception4a"]
    in_channels = INCEPTION_SPECS["inception4d"].in_channels
    (named,) = groups(parse(inception_module_svg("inception4d", image_size=160)), "input")
    (unnamed,) = groups(parse(inception_module_svg(INCEPTION_SPECS["inception4d"])), "input")
    assert texts(named) == ["previous layer", f"{in_channels} channels · {side}×{side}"]
    assert texts(unnamed) == ["previous layer", f"{in_channels} channels"]


def test_module_diagram_draws_the_kernel_the_module_has_not_the_one_its_branch_is_called():
    torchvision_block = Inception.from_spec(SPEC_3A, branch3_kernel=3)  # pytorch/vision#906
    drawn = [label for branch, label, _ in steps(parse(inception_module_svg(torchvision_block)))]
    assert drawn.count("3×3 conv") == 2 and "5×5 conv" not in drawn


def test_each_branch_is_drawn_in_its_book_colour_and_labelled_with_its_book_label():
    root = parse(inception_module_svg("inception3a"))
    style = "".join(root.find(f"{SVG}style").itertext())
    for name, color in BRANCH_COLORS.items():
        assert f".gnet-diagram .{name} {{ fill: {color}; stroke: {color}; }}" in style
    for g in groups(root, "step"):
        assert g.find(f"{SVG}rect").get("class") == f"branch {g.get('data-branch')}"
    shown = texts(root)
    assert all(label in shown for label in BRANCH_LABELS.values())


@pytest.mark.parametrize("diagram", [inception_module_svg, network_svg], ids=["module", "network"])
def test_lines_and_text_take_the_pages_colour_so_light_and_dark_pages_both_read(diagram):
    svg = diagram().svg
    assert "text { fill: currentColor;" in svg and "stroke: currentColor" in svg
    for fixed in ("#000", "#fff", "black", "white"):
        assert fixed not in svg.lower()
    style = svg[svg.index("<style>") : svg.index("</style>")]
    rules = [line for line in style.splitlines() if "{" in line]
    assert rules and all(rule.startswith(".gnet-diagram") for rule in rules)  # a <style> in a page styles the page


# ------------------------------------------------------------------------------------------------------------
# The whole network
# ------------------------------------------------------------------------------------------------------------


def test_network_diagram_names_all_nine_modules_and_both_aux_heads_beside_the_modules_they_read():
    root = parse(network_svg())
    layers = {g.get("data-name"): g for g in groups(root, "layer")}
    assert [name for name in layers if name.startswith("inception")] == list(INCEPTION_SPECS)
    heads = {g.get("data-name"): g for g in groups(root, "aux")}
    assert {name: g.get("data-tap") for name, g in heads.items()} == AUX_TAPS
    for head, tap in AUX_TAPS.items():
        assert heads[head].find(f"{SVG}rect").get("y") == layers[tap].find(f"{SVG}rect").get("y")


@pytest.mark.parametrize("image_size", [224, 160])
@pytest.mark.parametrize(
    "config", [{}, TORCHVISION_CONFIG, {"width": 0.5, "num_classes": 10}], ids=["paper", "tv", "small"]
)
def test_network_diagram_shows_the_output_sizes_of_a_forward_pass(config, image_size):
    model = gnet.googlenet(**config)
    root = parse(network_svg(model, image_size=image_size))
    sizes = forward_sizes(model, image_size)
    drawn = {g.get("data-name"): g.get("data-size") for g in groups(root, "layer")}
    assert list(drawn.items()) == [(name, size) for name, size in sizes.items() if not name.startswith("aux")]
    for g in groups(root, "layer"):
        assert g.get("data-size") in texts(g)
    for g in groups(root, "aux"):
        assert texts(g)[-2:] == ["fc2 linear", sizes[g.get("data-name")]]  # the last line: the head's logits


def test_changing_the_image_size_changes_every_drawn_map_size_and_no_channel_count():
    def drawn(image_size: int) -> dict[str, list[str]]:
        root = parse(network_svg(image_size=image_size))
        return {g.get("data-name"): g.get("data-size").split("×") for g in groups(root, "layer")}

    large, small = drawn(224), drawn(160)
    assert large.keys() == small.keys()
    for name, (channels, *spatial) in large.items():
        assert small[name][0] == channels, name
        has_a_map = spatial not in ([], ["1", "1"])  # the pooled vector and the logits have none
        assert (small[name][1:] != spatial) == has_a_map, name


def test_network_diagram_draws_lrn_and_aux_heads_only_where_the_model_has_them():
    def drawn(model: gnet.GoogLeNet) -> tuple[list[str], list[str]]:
        root = parse(network_svg(model))
        return [g.get("data-name") for g in groups(root, "layer")], [g.get("data-name") for g in groups(root, "aux")]

    paper_layers, paper_heads = drawn(gnet.googlenet())
    plain_layers, plain_heads = drawn(gnet.googlenet(aux_logits=False, lrn=False))
    assert {"lrn1", "lrn2"} <= set(paper_layers) and paper_heads == list(AUX_TAPS)
    assert plain_layers == [name for name in paper_layers if not name.startswith("lrn")] and plain_heads == []


# ------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inception_module_svg("inception6a"), "unknown Inception module 'inception6a'"),
        (lambda: inception_module_svg(42), "block must be a Table 1 module name"),
        (lambda: inception_module_svg(nn.Conv2d(3, 3, 1)), "block must be a Table 1 module name"),
        (lambda: inception_module_svg("inception3a", naive="yes"), "naive must be True or False"),
        (lambda: inception_module_svg(Inception.from_spec(SPEC_3A), naive=True), "naive=True asks for the naive"),
        (lambda: inception_module_svg("inception3a", image_size=32), "image_size"),
        (lambda: network_svg(nn.Linear(2, 2)), "model must be a gnet.GoogLeNet"),
        (lambda: network_svg(image_size=64), "image_size must be an int >= 65, got 64"),
        (lambda: network_svg(image_size="224"), "image_size"),
        (lambda: network_svg(image_size=True), "image_size"),
    ],
)
def test_bad_input_raises_one_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("naive", [False, True], ids=["reduced", "naive"])
@pytest.mark.parametrize("name", list(INCEPTION_SPECS))
def test_every_table1_module_draws_four_branches_that_add_up_to_its_output(name, naive):
    drawn = steps(parse(inception_module_svg(name, naive=naive)))
    last = {branch: channels for branch, _, channels in drawn}  # each branch's last box is its output
    assert list(last) == list(BRANCH_NAMES)
    spec = INCEPTION_SPECS[name]
    expected = NaiveInception(*spec[:2], spec.n3x3, spec.n5x5) if naive else Inception.from_spec(spec)
    assert sum(last.values()) == expected.out_channels
