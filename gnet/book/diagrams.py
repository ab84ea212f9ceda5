"""Diagrams of an Inception module and of the whole network, drawn from gnet's own modules as SVG.

A pasted picture of the paper's Figure 2 or 3 shows the numbers someone typed into it; these diagrams show what
the code builds. :func:`inception_module_svg` reads each branch's layers and widths from a built
:class:`gnet.Inception` or :class:`gnet.NaiveInception` (the paper's Figure 2b and 2a), and :func:`network_svg`
reads the layers of a :class:`gnet.GoogLeNet` and their output sizes from one forward pass on the ``meta``
device (:func:`gnet.analysis.meta_forward`). Change a switch or the image size and the drawing follows.

Both return an :class:`SvgDiagram`, which a notebook displays inline. The SVG is plain text built here, with no
drawing library. It needs no colour of its own for light and dark pages: lines and text use ``currentColor``, so an
SVG inlined in a page takes the page's text colour, and each branch keeps its
:data:`gnet.book.figures.BRANCH_COLORS` as a translucent fill that reads on white and on near-black alike. (In the
book's dark mode, pydata-sphinx-theme puts every HTML cell output on a light card with dark text, as it does
figures; the diagrams follow the card.)
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from torch import nn

from gnet._validate import int_at_least
from gnet.analysis import meta_forward
from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS
from gnet.model import AUX_TAPS, BRANCH_NAMES, ConvUnit, GoogLeNet, Inception, NaiveInception, googlenet
from gnet.table1 import INCEPTION_SPECS, InceptionSpec

__all__ = ["SvgDiagram", "inception_module_svg", "network_svg"]


@dataclass(frozen=True, repr=False)
class SvgDiagram:
    """An SVG document as a string (``.svg``), displayed inline by Jupyter and by the book."""

    svg: str

    def __repr__(self) -> str:  # the notebook's text/plain fallback: a line, not the whole document
        return f"SvgDiagram({len(self.svg):,} characters of SVG)"

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        # The book prefers text/html. Its image/svg+xml output would become an <img>, and inside an <img> the
        # drawing cannot take the page's text colour (currentColor); inline markup does.
        return self.svg

    def __str__(self) -> str:
        return self.svg


# ------------------------------------------------------------------------------------------------------------
# SVG primitives. Every CSS rule is scoped to .gnet-diagram: a <style> inside an inline SVG styles the whole page.
# ------------------------------------------------------------------------------------------------------------

FONT_SIZE = 13  # px at 1:1; no diagram is wider than 470 px, so a 1280 px page draws it 1:1
SMALL_FONT_SIZE = 12

_BRANCH_CSS = "\n".join(
    f".gnet-diagram .{name} {{ fill: {color}; stroke: {color}; }}" for name, color in BRANCH_COLORS.items()
)
_STYLE = f"""
.gnet-diagram {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }}
.gnet-diagram text {{ fill: currentColor; stroke: none; font-size: {FONT_SIZE}px; font-variant-numeric: tabular-nums; }}
.gnet-diagram .small {{ font-size: {SMALL_FONT_SIZE}px; }}
.gnet-diagram .strong {{ font-weight: 600; }}
.gnet-diagram .box {{ fill: currentColor; fill-opacity: 0.07; stroke: currentColor; stroke-opacity: 0.6;
  stroke-width: 1.2; }}
.gnet-diagram .band {{ fill: currentColor; fill-opacity: 0.04; stroke: currentColor; stroke-opacity: 0.25;
  stroke-dasharray: 4 3; }}
.gnet-diagram .branch {{ fill-opacity: 0.22; stroke-width: 2; }}
.gnet-diagram .swatch {{ fill-opacity: 0.85; stroke-width: 1; }}
.gnet-diagram .edge {{ stroke: currentColor; stroke-opacity: 0.7; stroke-width: 1.4; fill: none; }}
.gnet-diagram .tip {{ fill: currentColor; fill-opacity: 0.7; stroke: none; }}
{_BRANCH_CSS}
"""

Part = str | tuple[str, str]  # plain text, or (text, css class) for a <tspan>


def _text(x: float, y: float, *parts: Part, cls: str = "", anchor: str = "start") -> str:
    spans = "".join(
        html.escape(p) if isinstance(p, str) else f'<tspan class="{p[1]}">{html.escape(p[0])}</tspan>' for p in parts
    )
    css = f' class="{cls}"' if cls else ""
    return f'<text x="{x:g}" y="{y:g}"{css} text-anchor="{anchor}">{spans}</text>'


def _rect(x: float, y: float, width: float, height: float, cls: str, title: str = "") -> str:
    tooltip = f"<title>{html.escape(title)}</title>" if title else ""
    return f'<rect x="{x:g}" y="{y:g}" width="{width:g}" height="{height:g}" rx="4" class="{cls}">{tooltip}</rect>'


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    """A line ending in a filled head at (x2, y2); drawn inline, not as a <marker>, whose id would have to be
    unique among all the diagrams of a page."""
    length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1e-9)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 6 * ux, y2 - 6 * uy  # base of the head, 6 px back along the line
    head = f"{x2:g},{y2:g} {bx - 3.5 * uy:g},{by + 3.5 * ux:g} {bx + 3.5 * uy:g},{by - 3.5 * ux:g}"
    return f'<line x1="{x1:g}" y1="{y1:g}" x2="{bx:g}" y2="{by:g}" class="edge"/><polygon points="{head}" class="tip"/>'


def _svg(width: float, height: float, title: str, body: Sequence[str]) -> SvgDiagram:
    return SvgDiagram(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gnet-diagram" role="img" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" style="max-width: 100%; height: auto;">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>" + "".join(body) + "</svg>"
    )


def _group(cls: str, body: Sequence[str], **data: str) -> list[str]:
    """``body`` inside a <g>: one element per thing drawn, with data-* attributes that name it (the tests read them)."""
    attributes = "".join(f' data-{key}="{html.escape(value)}"' for key, value in data.items())
    return [f'<g class="{cls}"{attributes}>', *body, "</g>"]


def _size(shape: Sequence[int]) -> str:
    return "×".join(str(n) for n in shape)


def _side(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


# ------------------------------------------------------------------------------------------------------------
# Reading the model: each branch's layers, and each layer's shapes from one pass on the meta device
# ------------------------------------------------------------------------------------------------------------


class _Step(NamedTuple):
    """One layer of a branch: what it is, its role in the branch, and the channels it outputs."""

    kind: str  # "1×1 conv", "3×3 max pool"
    role: str  # "reduce", "pool proj" or ""
    channels: int

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.role})" if self.role else self.kind


def _branch_steps(block: Inception | NaiveInception) -> dict[str, list[_Step]]:
    """The layers of each branch in the order they run, read from the block's own submodules."""
    steps: dict[str, list[_Step]] = {}
    for name in BRANCH_NAMES:
        layers = [m for m in getattr(block, name).modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
        channels, row = block.in_channels, []
        for i, layer in enumerate(layers):
            k = _side(layer.kernel_size)
            if isinstance(layer, nn.MaxPool2d):  # a pool keeps its input's channels
                row.append(_Step(f"{k}×{k} max pool", "", channels))
                continue
            channels = layer.out_channels
            # The paper's names: a 1×1 that feeds a bigger conv is a reduction, one after the pool a projection.
            after_pool = i > 0 and isinstance(layers[i - 1], nn.MaxPool2d)
            before_conv = i + 1 < len(layers) and isinstance(layers[i + 1], nn.Conv2d)
            role = "pool proj" if after_pool else "reduce" if before_conv and k == 1 else ""
            row.append(_Step(f"{k}×{k} conv", role, channels))
        steps[name] = row
    return steps


class _Layer(NamedTuple):
    """A direct submodule as it ran: its name, the module, and its input and output shapes without the batch."""

    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def _trace(model: nn.Module, input_shape: Sequence[int]) -> list[_Layer]:
    """The direct submodules of ``model`` that run in eval mode, in the order they run (identities left out)."""
    layers: list[_Layer] = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            layers.append(_Layer(name, module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in model.named_children()]
    try:
        meta_forward(model, (1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return [layer for layer in layers if not isinstance(layer.module, nn.Identity)]


def _checked_size(model: GoogLeNet, image_size: object) -> int:
    return int_at_least("image_size", image_size, model.min_input_size)  # the network's smallest input


# ------------------------------------------------------------------------------------------------------------
# One Inception module (the paper's Figure 2)
# ------------------------------------------------------------------------------------------------------------

_MODULE_MARGIN, _COLUMN_WIDTH, _COLUMN_GAP = 8, 104, 6
_MODULE_WIDTH = 2 * _MODULE_MARGIN + 4 * _COLUMN_WIDTH + 3 * _COLUMN_GAP


def _resolve_block(block: object, naive: object) -> tuple[str | None, Inception | NaiveInception]:
    """The module to draw, and its Table 1 name when it was asked for by name."""
    if not isinstance(naive, bool):
        raise ValueError(f"naive must be True or False, got {naive!r}")
    if isinstance(block, (Inception, NaiveInception)):
        if naive and isinstance(block, Inception):
            raise ValueError("naive=True asks for the naive module, but block is a gnet.Inception (with reductions)")
        return None, block
    if isinstance(block, str):
        if block not in INCEPTION_SPECS:
            raise ValueError(f"unknown Inception module {block!r}; expected one of {', '.join(INCEPTION_SPECS)}")
        name, spec = block, INCEPTION_SPECS[block]
    elif isinstance(block, InceptionSpec):
        name, spec = None, block
    else:
        raise ValueError(
            "block must be a Table 1 module name such as 'inception3a', an InceptionSpec, or a gnet.Inception or "
            f"gnet.NaiveInception, got {type(block).__name__}"
        )
    if naive:  # the paper's Figure 2a with the same output widths: no reductions, no pool projection
        return name, NaiveInception(spec.in_channels, spec.n1x1, spec.n3x3, spec.n5x5)
    return name, Inception.from_spec(spec)


def _map_side(name: str | None, image_size: object) -> str:
    """ " · 28×28": the map a Table 1 block reads in the paper's network at ``image_size``, or "" if unnamed."""
    model = googlenet()
    size = _checked_size(model, image_size)
    if name is None:
        return ""
    block_input = next(layer.in_shape for layer in _trace(model, (3, size, size)) if layer.name == name)
    return f" · {_size(block_input[1:])}"


def _module_box(x: float, y: float, height: float, branch: str, step: _Step) -> list[str]:
    lines: list[tuple[Part, ...]] = [(step.kind,)]
    if step.role:
        lines.append((f"({step.role})",))
    lines.append(((str(step.channels), "strong"), " channels"))  # the number the reader looks for, in bold
    first = y + height / 2 - (len(lines) - 1) * 8 + 4.5  # centre the 16 px lines in the box
    cx = x + _COLUMN_WIDTH / 2
    title = f"{BRANCH_LABELS[branch]} branch, {step.label}: {step.channels} channels"
    body = [_rect(x, y, _COLUMN_WIDTH, height, f"branch {branch}", title)]
    body += [_text(cx, first + 16 * i, *line, anchor="middle") for i, line in enumerate(lines)]
    return _group("step", body, branch=branch, label=step.label, channels=str(step.channels))


def _wide_box(y: float, cls: str, heading: str, text: str) -> list[str]:
    """The input or the concatenation: a box across all four branches."""
    body = [
        _rect(_MODULE_MARGIN, y, _MODULE_WIDTH - 2 * _MODULE_MARGIN, 42, "box", f"{heading}: {text}"),
        _text(_MODULE_WIDTH / 2, y + 17, (heading, "strong"), anchor="middle"),
        _text(_MODULE_WIDTH / 2, y + 34, text, anchor="middle"),
    ]
    return _group(cls, body)


def _module_branches(steps: dict[str, list[_Step]], top: float) -> tuple[list[str], float]:
    """The four branches side by side below ``top``, in their colours; returns them and their bottom."""
    rows = max(len(row) for row in steps.values())
    box_height = 56 if any(step.role for row in steps.values() for step in row) else 42
    rows_top = top + 26
    bottom = rows_top + rows * box_height + (rows - 1) * 22
    body = []
    for column, (branch, row) in enumerate(steps.items()):
        x = _MODULE_MARGIN + column * (_COLUMN_WIDTH + _COLUMN_GAP)
        cx, y = x + _COLUMN_WIDTH / 2, top
        body.append(_text(cx + 7, top + 17, (BRANCH_LABELS[branch], "strong"), cls="small"))
        for i, step in enumerate(row):  # bottom-aligned, as in the paper: every branch ends on the last row
            box_top = rows_top + (rows - len(row) + i) * (box_height + 22)
            body += [_arrow(cx, y, cx, box_top), *_module_box(x, box_top, box_height, branch, step)]
            y = box_top + box_height
        body.append(_arrow(cx, bottom, cx, bottom + 24))
    return body, bottom


def inception_module_svg(
    block: str | InceptionSpec | Inception | NaiveInception = "inception3a",
    *,
    naive: bool = False,
    image_size: int = 224,
) -> SvgDiagram:
    """One Inception module: the shared input, the four branches, and their filter concatenation.

    ``block`` is a Table 1 name (``"inception3a"``), an :class:`~gnet.table1.InceptionSpec`, or a built
    :class:`~gnet.Inception` / :class:`~gnet.NaiveInception`. Names and specs are built into a module first,
    with ``naive=True`` into the naive module of the paper's Figure 2a with the same output widths. Every box
    shows what that module's layers output. For a name, the input and output also show the map size that block
    sees in :func:`gnet.googlenet` at ``image_size`` (28×28 for 3a at 224 px).
    """
    name, module = _resolve_block(block, naive)
    side = _map_side(name, image_size)
    steps = _branch_steps(module)
    is_naive = isinstance(module, NaiveInception)
    title = "Inception module, naive version" if is_naive else "Inception module with dimension reductions"
    body = [_text(_MODULE_MARGIN, 17, (title, "strong"), f" (Figure {'2a' if is_naive else '2b'})")]
    y = 24
    if name is not None:
        where = f"widths of {name} (Table 1), in a {image_size}×{image_size} image"
        body.append(_text(_MODULE_MARGIN, 36, where, cls="small"))
        y += 20
    body += _wide_box(y, "input", "previous layer", f"{module.in_channels} channels{side}")
    branches, bottom = _module_branches(steps, y + 42)
    widths = " + ".join(str(row[-1].channels) for row in steps.values())
    concat = f"{widths} = {module.out_channels} channels{side}"
    body += [*branches, *_wide_box(bottom + 24, "concatenation", "filter concatenation", concat)]
    return _svg(_MODULE_WIDTH, bottom + 72, f"{title}: {concat}", body)


# ------------------------------------------------------------------------------------------------------------
# The whole network (the paper's Figure 3, with Table 1's sizes measured)
# ------------------------------------------------------------------------------------------------------------

_MAIN_X, _MAIN_WIDTH, _AUX_X, _AUX_WIDTH = 12, 282, 306, 156
_NETWORK_WIDTH = _AUX_X + _AUX_WIDTH + 8
_ROW, _INCEPTION_ROW, _GAP, _BAND_HEADER, _LINE = 26, 36, 14, 18, 16


def _describe(layer: _Layer) -> str:
    """What a layer is, in Table 1's words ("7×7/2 conv"), read from the module."""
    module = layer.module
    if isinstance(module, ConvUnit):
        k, s = module.conv.kernel_size[0], module.conv.stride[0]
        return f"{k}×{k}/{s} conv"  # its BatchNorm, if any, is named once in the legend
    if isinstance(module, nn.MaxPool2d):
        k, s = _side(module.kernel_size), _side(module.stride)
        return f"{k}×{k}/{s} max pool"
    if isinstance(module, nn.LocalResponseNorm):
        return "LRN"  # local response normalisation
    if isinstance(module, nn.AdaptiveAvgPool2d):  # global: its window is the whole map it is given
        return f"{_size(layer.in_shape[1:])} avg pool"
    if isinstance(module, nn.Dropout):
        return f"{module.p:.0%}"
    if isinstance(module, nn.Linear):
        return "linear"
    return "" if isinstance(module, Inception) else type(module).__name__


def _branch_bar(x: float, y: float, width: float, block: Inception) -> list[str]:
    """A bar split in the branch colours by how many output channels each branch contributes."""
    widths = {name: row[-1].channels for name, row in _branch_steps(block).items()}
    body, left = [], x
    for name, channels in widths.items():
        share = width * channels / block.out_channels
        body.append(f'<rect x="{left:g}" y="{y:g}" width="{share:g}" height="7" class="swatch {name}"/>')
        left += share
    return body


def _main_row(layer: _Layer, y: float, height: float) -> list[str]:
    description = _describe(layer)
    title = f"{layer.name}: {description or 'Inception module'}, output {_size(layer.out_shape)}"
    if isinstance(layer.module, Inception):
        widths = " + ".join(str(row[-1].channels) for row in _branch_steps(layer.module).values())
        title = f"{layer.name}: {widths} = {layer.module.out_channels} channels, {_size(layer.out_shape[1:])}"
    body = [
        _rect(_MAIN_X, y, _MAIN_WIDTH, height, "box", title),
        _text(_MAIN_X + 8, y + 17, (layer.name, "strong"), *([(f" {description}", "small")] if description else [])),
        _text(_MAIN_X + _MAIN_WIDTH - 8, y + 17, _size(layer.out_shape), anchor="end"),
    ]
    if isinstance(layer.module, Inception):
        body += _branch_bar(_MAIN_X + 8, y + 23, _MAIN_WIDTH - 16, layer.module)
    return _group("layer", body, name=layer.name, size=_size(layer.out_shape))


def _groups(layers: Sequence[_Layer]) -> list[str | None]:
    """The band each layer is drawn in: the stem, stage 3, 4 or 5 (by the paper's module names), the classifier;
    ``None`` for the max pools between two stages."""
    blocks = [i for i, layer in enumerate(layers) if isinstance(layer.module, Inception)]
    groups: list[str | None] = []
    for i, layer in enumerate(layers):
        if i < blocks[0] or i > blocks[-1]:
            groups.append("stem" if i < blocks[0] else "classifier")
        elif isinstance(layer.module, Inception):
            groups.append(f"stage {layer.name.removeprefix('inception')[:-1]}")
        else:
            groups.append(None)
    return groups


def _main_path(layers: Sequence[_Layer], y: float) -> tuple[list[str], float, dict[str, float]]:
    """The main path drawn from ``y`` down, in bands: its SVG, its bottom, and the top of each layer's box."""
    groups, bands, body, tops = _groups(layers), [], [], {}
    previous_bottom, band_top = y - _GAP, 0.0
    for i, (layer, group) in enumerate(zip(layers, groups, strict=True)):
        if group is not None and (i == 0 or groups[i - 1] != group):
            band_top = y
            side = f" · {_size(layer.out_shape[1:])}" if group.startswith("stage") else ""
            bands.append(_text(_MAIN_X + 2, y + 13, group + side, cls="small strong"))
            y += _BAND_HEADER
        height = _INCEPTION_ROW if isinstance(layer.module, Inception) else _ROW
        body.append(_arrow(_MAIN_X + _MAIN_WIDTH / 2, previous_bottom, _MAIN_X + _MAIN_WIDTH / 2, y))
        body += _main_row(layer, y, height)
        tops[layer.name], previous_bottom = y, y + height
        y += height
        if group is not None and (i + 1 == len(layers) or groups[i + 1] != group):
            y += 6
            bands.insert(0, _rect(_MAIN_X - 4, band_top, _MAIN_WIDTH + 8, y - band_top, "band"))
        y += _GAP
    return bands + body, y - _GAP, tops  # the bands first, so that they lie behind the boxes


def _aux_head(model: GoogLeNet, head_name: str, tap: _Layer, top: float) -> tuple[list[str], float]:
    """One auxiliary head beside the module it reads: its layers and their sizes, from a pass on the tap's shape."""
    head = getattr(model, head_name)
    layers = _trace(head, tap.out_shape)
    lines: list[tuple[str, str]] = [("avg pool", _size(layers[0].in_shape))]  # a function in AuxHead.forward
    for layer in layers:
        description = _describe(layer)
        named = isinstance(layer.module, (nn.Linear, nn.Dropout))  # "fc1 linear", "dropout 70%"
        label = f"{layer.name} {description}" if named else description
        lines.append((label, _size(layer.out_shape)))
    height = _LINE * (len(lines) + 1) + 10
    title = f"{head_name}: auxiliary classifier on {tap.name}, run in training mode only"
    body = [
        _rect(_AUX_X, top, _AUX_WIDTH, height, "box", title),
        _text(_AUX_X + 8, top + 17, (head_name, "strong"), " · training only", cls="small"),
        _arrow(_MAIN_X + _MAIN_WIDTH, top + 13, _AUX_X, top + 13),
    ]
    for i, (label, size) in enumerate(lines, start=1):
        y = top + 17 + _LINE * i
        body += [
            _text(_AUX_X + 8, y, label, cls="small"),
            _text(_AUX_X + _AUX_WIDTH - 8, y, size, cls="small", anchor="end"),
        ]
    return _group("aux", body, name=head_name, tap=tap.name), top + height


def _network_legend(model: GoogLeNet, image_size: int) -> list[str]:
    units = [m for m in model.modules() if isinstance(m, ConvUnit)]
    after = "BatchNorm and ReLU" if all(u.bn is not None for u in units) else "ReLU"
    body = [
        _text(
            _MAIN_X, 16, f"output sizes: channels×height×width, for one {image_size}×{image_size} image", cls="small"
        ),
        _text(_MAIN_X, 34, f"every conv is followed by {after}", cls="small"),
        _text(_MAIN_X, 52, "each Inception bar splits its output channels by branch:", cls="small"),
    ]
    for i, (name, label) in enumerate(BRANCH_LABELS.items()):
        x = _MAIN_X + 72 * i
        body += [
            f'<rect x="{x}" y="60" width="12" height="12" class="swatch {name}"/>',
            _text(x + 17, 70.5, label, cls="small"),
        ]
    return body


def network_svg(model: GoogLeNet | None = None, *, image_size: int = 224) -> SvgDiagram:
    """The whole network, top to bottom: the stem, stages 3 to 5 of Inception modules with the max pools between
    them, the classifier, and the auxiliary heads beside the modules they read (:data:`gnet.model.AUX_TAPS`).

    ``model`` is a :class:`gnet.GoogLeNet` (default: the paper's, :func:`gnet.googlenet`). Each layer and each
    output size (channels × height × width) comes from one eval-mode pass of an ``image_size`` × ``image_size``
    image on the meta device, so the diagram shows what this model computes, switches and width included.
    """
    model = googlenet() if model is None else model
    if not isinstance(model, GoogLeNet):
        raise ValueError(f"model must be a gnet.GoogLeNet (or None for the paper's), got {type(model).__name__}")
    size = _checked_size(model, image_size)
    layers = _trace(model, (3, size, size))
    body = _network_legend(model, size)
    input_top = 84
    body += [
        _rect(_MAIN_X, input_top, _MAIN_WIDTH, _ROW, "box", f"input: {_size((3, size, size))}"),
        _text(_MAIN_X + 8, input_top + 17, ("input", "strong"), (" RGB image", "small")),
        _text(_MAIN_X + _MAIN_WIDTH - 8, input_top + 17, _size((3, size, size)), anchor="end"),
    ]
    path, bottom, tops = _main_path(layers, input_top + _ROW + _GAP)
    body += path
    by_name = {layer.name: layer for layer in layers}
    for head_name, tap in AUX_TAPS.items():
        if getattr(model, head_name) is not None:
            head, head_bottom = _aux_head(model, head_name, by_name[tap], tops[tap])
            body += head
            bottom = max(bottom, head_bottom)
    title = (
        f"GoogLeNet on a {size}×{size} image: {len(layers)} layers from the input to {layers[-1].out_shape[0]} logits"
    )
    return _svg(_NETWORK_WIDTH, bottom + 8, title, body)
