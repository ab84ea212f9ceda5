"""Explore the widths of an Inception block: what do its six channel numbers cost?

Two explorers, for two ways of reading the book:

* :func:`static_explorer_html` (shown with :func:`static_explorer`) works in the **static web page**. It is
  self-contained HTML and vanilla JavaScript: a slider and a number box per width, and the MACs, parameters and
  output channels recomputed in the browser with the closed form of :func:`gnet.analysis.inception_counts`,
  beside the paper's block and the naive block with the same output widths (the paper's Figure 2a,
  :func:`gnet.analysis.naive_inception_counts`). The ``#5×5 reduce`` slider marks its break-even width
  (:func:`break_even_n5x5_reduce`). No kernel, no network. The tests run its JavaScript formulas with ``node``
  and check them against fvcore on a grid of configurations, and drive the page in headless Chromium.
* :func:`inception_sliders` builds **ipywidgets** sliders whose callback builds a real :class:`gnet.Inception`
  (and :class:`gnet.NaiveInception`) and measures it with fvcore (:func:`gnet.analysis.count_macs`). It needs a
  live kernel (Colab, Jupyter): in a static page the callback never runs (ipywidgets #2069, #3319).

Both set the six widths of :class:`~gnet.table1.InceptionSpec` under its own names (Table 1's columns,
:data:`gnet.table1.WIDTH_FIELDS`): ``n1x1``, ``n3x3_reduce``, ``n3x3``, ``n5x5_reduce``, ``n5x5``, ``pool_proj``.
The same names are the explorer's HTML attributes, the keys of its JavaScript and the arguments of
:meth:`InceptionSliders.set_widths`; the labels are Table 1's column headers ("#3×3 reduce").

One K convention: the book's prose writes the paper's K = 1024 for parameters, so the explorers never write
"k" or "K". Parameters are exact; MACs are exact, with an "M" (10⁶) or "G" (10⁹) form beside them.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import torch

from gnet._validate import positive_int
from gnet.analysis import BlockCounts, count_macs, count_params, naive_inception_counts, spec_counts
from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS
from gnet.model import BRANCH_NAMES, Inception, NaiveInception
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS, InceptionSpec

__all__ = [
    "WIDTH_LABELS",
    "FORMULA_BEGIN",
    "FORMULA_END",
    "EXPLORER_FORMULA_JS",
    "break_even_n5x5_reduce",
    "short_macs",
    "static_explorer_html",
    "static_explorer",
    "LiveCounts",
    "measure_inception",
    "InceptionSliders",
    "inception_sliders",
    "torch_threads",
]


def _table1_header(field: str) -> str:
    """Table 1's header of a width column: ``n3x3_reduce`` -> "#3×3 reduce", ``pool_proj`` -> "pool proj"."""
    header = field.replace("_", " ").replace("x", "×")
    return "#" + header[1:] if field.startswith("n") else header


#: Each width's label: its column header in Table 1 ("#1×1", "#3×3 reduce", … "pool proj").
WIDTH_LABELS: dict[str, str] = {name: _table1_header(name) for name in WIDTH_FIELDS}

_DEFAULT_SPEC = INCEPTION_SPECS["inception3a"]

# The closed forms, in JavaScript. The markers let the tests cut this exact text out of the emitted HTML and run
# it with node, so what is tested is what the page runs. ``cfg`` holds the InceptionSpec's fields under their
# Python names, plus height, width, branch3_kernel, bias and (optional, for chapter 5's budget explorer)
# batch_norm, which, as in gnet.analysis.inception_counts, trades each convolution's bias for BatchNorm's two
# parameters per channel.
FORMULA_BEGIN = "/* gnet-explorer-formula:begin */"
FORMULA_END = "/* gnet-explorer-formula:end */"
EXPLORER_FORMULA_JS = f"""{FORMULA_BEGIN}
function gnetConvCounts(cfg, cin, cout, k) {{
  // Every convolution of an Inception block keeps H x W ("same" padding, stride 1), so a k x k convolution
  // costs C_in * C_out * k * k * H * W multiply-adds and has C_in * C_out * k * k weights (+ C_out biases).
  var weights = cin * cout * k * k;
  var bias = cfg.bias === undefined ? true : cfg.bias;
  var perChannel = cfg.batch_norm === true ? 2 : bias ? 1 : 0;
  return {{ macs: weights * cfg.height * cfg.width, params: weights + perChannel * cout }};
}}
function gnetBranch3Kernel(cfg) {{ return cfg.branch3_kernel === undefined ? 5 : cfg.branch3_kernel; }}
function gnetBlockCounts(branches, channels) {{
  // Max pooling and concatenation cost no multiply-adds and have no parameters: a branch costs its convolutions.
  var result = {{ macs: 0, params: 0, out_channels: 0, branches: {{}}, channels: channels }};
  Object.keys(branches).forEach(function (name) {{
    var branch = {{ macs: 0, params: 0 }};
    branches[name].forEach(function (c) {{ branch.macs += c.macs; branch.params += c.params; }});
    result.branches[name] = branch;
    result.macs += branch.macs;
    result.params += branch.params;
    result.out_channels += channels[name];
  }});
  return result;
}}
function gnetInceptionCounts(cfg) {{
  var conv = gnetConvCounts.bind(null, cfg);
  return gnetBlockCounts({{
    branch1: [conv(cfg.in_channels, cfg.n1x1, 1)],
    branch2: [conv(cfg.in_channels, cfg.n3x3_reduce, 1), conv(cfg.n3x3_reduce, cfg.n3x3, 3)],
    branch3: [conv(cfg.in_channels, cfg.n5x5_reduce, 1), conv(cfg.n5x5_reduce, cfg.n5x5, gnetBranch3Kernel(cfg))],
    branch4: [conv(cfg.in_channels, cfg.pool_proj, 1)]
  }}, {{ branch1: cfg.n1x1, branch2: cfg.n3x3, branch3: cfg.n5x5, branch4: cfg.pool_proj }});
}}
function gnetNaiveInceptionCounts(cfg) {{
  // The paper's Figure 2a with the same #1x1, #3x3 and #5x5: no reductions, and the pool branch passes the
  // block's input channels through (gnet.NaiveInception). The reduce widths and pool proj are ignored.
  var conv = gnetConvCounts.bind(null, cfg);
  return gnetBlockCounts({{
    branch1: [conv(cfg.in_channels, cfg.n1x1, 1)],
    branch2: [conv(cfg.in_channels, cfg.n3x3, 3)],
    branch3: [conv(cfg.in_channels, cfg.n5x5, gnetBranch3Kernel(cfg))],
    branch4: []
  }}, {{ branch1: cfg.n1x1, branch2: cfg.n3x3, branch3: cfg.n5x5, branch4: cfg.in_channels }});
}}
function gnetBreakEvenReduce(cfg) {{
  // The #5x5 reduce width r at which 1x1 reduce + k x k, r (C_in + n5x5 k^2) H W MACs, costs as much as a direct
  // k x k from the input, C_in n5x5 k^2 H W: r = C_in n5x5 k^2 / (C_in + n5x5 k^2). Kept as a fraction of
  // integers, so that the page can print it without a rounding surprise.
  var kk = gnetBranch3Kernel(cfg) * gnetBranch3Kernel(cfg);
  var numerator = cfg.in_channels * cfg.n5x5 * kk, denominator = cfg.in_channels + cfg.n5x5 * kk;
  return {{ numerator: numerator, denominator: denominator, value: numerator / denominator }};
}}
{FORMULA_END}"""

_element_ids = itertools.count(1)


def _widths(spec: InceptionSpec) -> dict[str, int]:
    """The six widths of ``spec``, keyed by :data:`~gnet.table1.WIDTH_FIELDS`."""
    return {name: getattr(spec, name) for name in WIDTH_FIELDS}


def _check_spec(name: str, spec: object) -> InceptionSpec:
    """``spec`` if it is an InceptionSpec of positive ints, else ``ValueError`` naming the field that is not."""
    if not isinstance(spec, InceptionSpec):
        raise ValueError(f"{name} must be a gnet.table1.InceptionSpec, got {type(spec).__name__}")
    for field, value in spec._asdict().items():
        positive_int(f"{name}.{field}", value)
    return spec


def break_even_n5x5_reduce(in_channels: int, n5x5: int, branch3_kernel: int = 5) -> Fraction:
    """The ``n5x5_reduce`` width at which branch 3 (1×1 reduce, then k×k) costs as many MACs as the direct k×k
    convolution of the naive block (:class:`gnet.NaiveInception`'s branch 3), exactly.

    Per output pixel the reduced branch costs ``r · (C_in + n5x5 · k²)`` and the direct one ``C_in · n5x5 · k²``,
    so they are equal at ``r = C_in · n5x5 · k² / (C_in + n5x5 · k²)``; a narrower reduction is cheaper. For
    inception (3a), ``192 · 32 · 25 / (192 + 800) ≈ 154.8`` (chapter 4's exercise). The break-even is always below
    ``C_in``: a "reduction" that keeps every channel never pays.
    """
    for name, value in (("in_channels", in_channels), ("n5x5", n5x5), ("branch3_kernel", branch3_kernel)):
        positive_int(name, value)
    kk = branch3_kernel * branch3_kernel
    return Fraction(in_channels * n5x5 * kk, in_channels + n5x5 * kk)


def _one_decimal_down(value: Fraction) -> str:
    """``value`` as an integer when it is one, else cut (not rounded) to one decimal: 154.84 -> "154.8", and
    154.96 -> "154.9", never "155.0", which would claim a width at which the reduced branch is dearer."""
    if value.denominator == 1:
        return str(value.numerator)
    tenths = (10 * value.numerator) // value.denominator
    return f"{tenths // 10}.{tenths % 10}"


def short_macs(macs: int) -> str:
    """MACs with three significant digits and "M" (10⁶) or "G" (10⁹), and exact below a million: never "k",
    which the page's prose would read as the paper's K = 1024. ``short_macs(128_049_152) == "128 M"``."""
    for scale, prefix in ((10**9, "G"), (10**6, "M")):
        if macs >= scale:
            return f"{float(f'{macs / scale:.3g}'):g} {prefix}"
    return f"{macs:,}"


# ------------------------------------------------------------------------------------------------------------
# The static explorer: HTML + vanilla JavaScript, no kernel, no network
# ------------------------------------------------------------------------------------------------------------

# Colours come from pydata-sphinx-theme's variables (they follow its light and dark modes), with neutral
# fallbacks that read on white and on black for a page without the theme.
_CSS = """
#{id} {{ --gnet-border: var(--pst-color-border, rgba(127, 127, 127, 0.45)); box-sizing: border-box;
  border: 1px solid var(--gnet-border); border-radius: 6px; padding: 0.8em 1em; margin: 0.8em 0; max-width: 46em;
  font-size: 0.92em; line-height: 1.35; color: var(--pst-color-text-base, currentColor);
  background: var(--pst-color-on-background, transparent); }}
html[data-theme="dark"] .cell_output .text_html:has(> #{id}) {{ background: transparent; padding: 0; color: inherit; }}
#{id} .gnet-title {{ font-weight: bold; margin: 0 0 0.2em 0; }}
#{id} .gnet-sub, #{id} .gnet-note {{ margin: 0 0 0.6em 0; opacity: 0.85; }}
#{id} .gnet-note {{ margin: 0.4em 0 0 0; font-size: 0.9em; }}
#{id} .gnet-controls {{ display: grid; grid-template-columns: 11.5em minmax(0, 1fr) 5em; gap: 0.2em 0.6em;
  align-items: center; }}
#{id} .gnet-slider {{ position: relative; }}
#{id} .gnet-slider input {{ display: block; width: 100%; margin: 0.4em 0;
  accent-color: var(--pst-color-primary, auto); }}
#{id} .gnet-tick {{ position: absolute; bottom: -0.1em; width: 3px; height: 0.7em; margin-left: -1.5px;
  left: calc(8px + var(--gnet-at, 0) * (100% - 16px)); background: var(--pst-color-accent, currentColor);
  border-radius: 1px; pointer-events: none; }}
#{id} input[type=number] {{ box-sizing: border-box; width: 100%; min-width: 0; padding: 0.15em 0.3em; font: inherit;
  text-align: right; font-variant-numeric: tabular-nums; color: inherit; background: var(--pst-color-background,
  transparent); border: 1px solid var(--gnet-border); border-radius: 4px; }}
#{id} .gnet-break-even {{ grid-column: 2 / -1; margin: 0 0 0.3em 0; font-size: 0.88em; }}
#{id} .gnet-break-even b {{ color: var(--pst-color-accent, inherit); }}
#{id} button {{ margin: 0.6em 0 0.4em 0; padding: 0.2em 0.7em; border: 1px solid var(--gnet-border); border-radius: 4px;
  background: var(--pst-color-surface, rgba(127, 127, 127, 0.12)); color: inherit; cursor: pointer; font: inherit; }}
#{id} table {{ display: table; border-collapse: collapse; margin: 0.3em 0; width: 100%; }}
#{id} th, #{id} td {{ padding: 0.2em 0.5em; text-align: right; vertical-align: top; font-variant-numeric: tabular-nums;
  border-bottom: 1px solid var(--gnet-border); }}
#{id} th:first-child {{ text-align: left; padding-left: 0; }}
#{id} tbody th {{ font-weight: normal; }}
#{id} .gnet-ratio {{ opacity: 0.85; }}
#{id} .gnet-whole {{ display: inline-block; white-space: nowrap; }}
#{id} .gnet-bars {{ margin-top: 0.5em; }}
#{id} .gnet-bar-row {{ display: grid; grid-template-columns: 4.5em minmax(0, 1fr) 5.5em; gap: 0.5em;
  align-items: center; margin: 0.15em 0; }}
#{id} .gnet-bar-track {{ position: relative; height: 0.9em; background: rgba(127, 127, 127, 0.15);
  border-radius: 2px; }}
#{id} .gnet-bar {{ height: 100%; border-radius: 2px; }}
#{id} .gnet-bar-reference {{ position: absolute; top: -0.15em; bottom: -0.15em; width: 2px; background: currentColor;
  opacity: 0.7; }}
#{id} .gnet-bar-value {{ text-align: right; font-variant-numeric: tabular-nums; }}
@media (max-width: 40em) {{
  #{id} {{ padding: 0.7em 0.6em; }}
  #{id} .gnet-controls {{ grid-template-columns: minmax(0, 1fr) 5.5em; grid-auto-flow: row dense; }}
  #{id} .gnet-slider, #{id} .gnet-break-even {{ grid-column: 1 / -1; }}
  #{id} table {{ font-size: 0.86em; }}
  #{id} th, #{id} td {{ padding: 0.2em 0.2em; }}
}}
@media (max-width: 22.5em) {{ #{id} table {{ font-size: 0.8em; }} }}
"""
# Why the rule on .cell_output: in dark mode pydata-sphinx-theme paints every HTML cell output on a light panel
# (for outputs drawn for white pages). This explorer follows the theme, so it takes that panel off its own output,
# and only its own (the id); the id also outranks the theme's selector.
# Why "display: table": the book's layout.css makes every output table a scroll box (display: block), whose rows
# then shrink to their content; this table fits a phone (tested at 320 px), so it stays a full-width table.
# Why 22.5em (360 px): below it, the widest numbers (every width at 256: "1,901,068,288" MACs) need a smaller table.
# Why "dense" in the narrow layout: each slider takes a whole row under its label, and its number box goes back up
# beside the label.

# The part of the script that wires the controls to the formulas; the formulas, the element id and the JSON
# blobs are filled in by _script.
_SCRIPT = """
(function () {{
  "use strict";
  {formula}
  var root = document.getElementById({id_json});
  if (!root) {{ return; }}
  var defaults = {defaults_json};
  var fixed = {fixed_json};
  var colors = {colors_json};
  var maxWidth = {max_width};
  var sliders = root.querySelectorAll('input[type="range"][data-width]');
  var boxes = root.querySelectorAll('input[type="number"][data-width]');
  function el(name) {{ return root.querySelector('[data-gnet="' + name + '"]'); }}
  function set(name, text) {{ el(name).textContent = text; }}
  function slider(field) {{ return root.querySelector('input[type="range"][data-width="' + field + '"]'); }}
  function box(field) {{ return root.querySelector('input[type="number"][data-width="' + field + '"]'); }}
  function exact(n) {{ return n.toLocaleString("en-US"); }}
  function shortMacs(n) {{
    // Like gnet.book.explorer.short_macs: M or G, exact below a million, never "k" (the prose's K is 1024).
    var scales = [[1e9, " G"], [1e6, " M"]];
    for (var i = 0; i < scales.length; i++) {{
      if (n >= scales[i][0]) {{ return Number((n / scales[i][0]).toPrecision(3)) + scales[i][1]; }}
    }}
    return exact(n);
  }}
  function ratio(a, b) {{  // mirrors _ratio_text: two significant digits below 0.01, never "\\u00d70.00"
    var r = a / b;
    return "\\u00d7" + r.toFixed(r > 0 && r < 0.01 ? 1 - Math.floor(Math.log10(r)) : 2);
  }}
  function config() {{
    var cfg = Object.assign({{}}, fixed);
    sliders.forEach(function (s) {{ cfg[s.dataset.width] = parseInt(s.value, 10); }});
    return cfg;
  }}
  function showCounts(prefix, counts) {{
    set(prefix + "macs-exact", exact(counts.macs));
    set(prefix + "macs-short", counts.macs >= 1e6 ? "(" + shortMacs(counts.macs) + ")" : "");
    set(prefix + "params", exact(counts.params));
    set(prefix + "out-channels", exact(counts.out_channels));
  }}
  function showRatios(prefix, counts, base) {{
    ["macs", "params", "out_channels"].forEach(function (key) {{
      set(prefix + key.replace("_", "-"), ratio(counts[key], base[key]));
    }});
  }}
  function showBars(counts, reference) {{
    var scale = Math.max(counts.macs, reference.macs);
    Object.keys(counts.branches).forEach(function (name) {{
      var bar = root.querySelector('[data-bar="' + name + '"]');
      bar.style.width = (100 * counts.branches[name].macs / scale).toFixed(2) + "%";
      bar.style.background = colors[name];
      root.querySelector('[data-bar-reference="' + name + '"]').style.left =
        (100 * reference.branches[name].macs / scale).toFixed(2) + "%";
      root.querySelector('[data-bar-value="' + name + '"]').textContent = shortMacs(counts.branches[name].macs);
    }});
  }}
  function showBreakEven(cfg) {{
    // Printed as an integer when it is one, else cut to one decimal from the exact fraction (integer division),
    // like the Python side: 154.96 shows as 154.9, never 155.0.
    var even = gnetBreakEvenReduce(cfg);
    var tenths = Math.floor(10 * even.numerator / even.denominator);
    set("break-even", even.numerator % even.denominator === 0 ? String(even.numerator / even.denominator)
      : Math.floor(tenths / 10) + "." + (tenths % 10));
    var onTrack = even.value >= 1 && even.value <= maxWidth;
    el("break-even-tick").hidden = !onTrack;
    el("break-even-mark").hidden = !onTrack;
    var at = onTrack ? (even.value - 1) / Math.max(1, maxWidth - 1) : 0;
    el("break-even-tick").style.setProperty("--gnet-at", at.toFixed(4));
  }}
  var reference = gnetInceptionCounts(Object.assign({{}}, fixed, defaults));
  function update() {{
    var cfg = config();
    var counts = gnetInceptionCounts(cfg), naive = gnetNaiveInceptionCounts(cfg);
    showCounts("", counts);
    showCounts("naive-", naive);
    showRatios("ratio-", counts, reference);
    showRatios("ratio-naive-", counts, naive);
    showBars(counts, reference);
    showBreakEven(cfg);
    root.dataset.updates = String(parseInt(root.dataset.updates || "0", 10) + 1);
  }}
  // A box follows its slider at once. A slider follows its box whenever the box holds a number, clamped to the
  // slider's range and rounded; an empty or half-typed box changes nothing, and on leaving (change) the box
  // shows its slider's value again.
  function fromBox(input, leaving) {{
    var s = slider(input.dataset.width), typed = input.valueAsNumber;
    if (isFinite(typed)) {{
      s.value = String(Math.min(maxWidth, Math.max(1, Math.round(typed))));
      update();
    }}
    if (leaving) {{ input.value = s.value; }}
  }}
  sliders.forEach(function (s) {{
    s.addEventListener("input", function () {{ box(s.dataset.width).value = s.value; update(); }});
  }});
  boxes.forEach(function (b) {{
    b.addEventListener("input", function () {{ fromBox(b, false); }});
    b.addEventListener("change", function () {{ fromBox(b, true); }});
  }});
  root.querySelector('button[data-action="reset"]').addEventListener("click", function () {{
    sliders.forEach(function (s) {{ s.value = defaults[s.dataset.width]; box(s.dataset.width).value = s.value; }});
    update();
  }});
  update();
  root.dataset.ready = "true";
}})();
"""


def _default_max_width(widths: dict[str, int]) -> int:
    return max(256, 2 * max(widths.values()))


def _paper_block_name(spec: InceptionSpec) -> str | None:
    """The paper's name of ``spec`` (``"3a"`` … ``"5b"``) when it is one of INCEPTION_SPECS, else ``None``."""
    return next((name.removeprefix("inception") for name, s in INCEPTION_SPECS.items() if s == spec), None)


def _check_element_id(element_id: str | None) -> str:
    if element_id is None:
        return f"gnet-explorer-{next(_element_ids)}"
    if not isinstance(element_id, str) or not element_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"element_id must be letters, digits, '-' or '_', got {element_id!r}")
    return element_id


def _tick_html(break_even: Fraction, max_width: int) -> str:
    """The break-even mark on the #5×5 reduce track, where a thumb at that value would be centred: the thumb
    (16 px in Chromium and Firefox) travels from 8 px to the track's width minus 8 px. Hidden when off the track."""
    on_track = 1 <= break_even <= max_width
    at = float((break_even - 1) / max(1, max_width - 1)) if on_track else 0.0
    return (
        f'<span class="gnet-tick" data-gnet="break-even-tick" style="--gnet-at: {at:.4f};"'
        f"{'' if on_track else ' hidden'}></span>"
    )


def _break_even_html(break_even: Fraction, branch3_kernel: int, max_width: int) -> str:
    """The line under the #5×5 reduce slider: its break-even width, and what it means."""
    k = f"{branch3_kernel}×{branch3_kernel}"
    hidden = "" if 1 <= break_even <= max_width else " hidden"
    return (
        f'<p class="gnet-break-even">Break-even at <b data-gnet="break-even">{_one_decimal_down(break_even)}</b>'
        f'<span data-gnet="break-even-mark"{hidden}> (the mark)</span>: below it, 1×1 reduce + {k} costs fewer '
        f"MACs than the naive block's direct {k}.</p>"
    )


def _controls_html(element_id: str, spec: InceptionSpec, max_width: int, branch3_kernel: int) -> str:
    """For each width a label, a range input and a number box; under #5×5 reduce, its break-even width."""
    esc = html.escape
    break_even = break_even_n5x5_reduce(spec.in_channels, spec.n5x5, branch3_kernel)
    parts = []
    for name, value in _widths(spec).items():
        label, input_id = esc(WIDTH_LABELS[name]), f"{element_id}-{name}"
        tick = _tick_html(break_even, max_width) if name == "n5x5_reduce" else ""
        parts.append(
            f'<label for="{input_id}">{label}</label>'
            f'<div class="gnet-slider"><input type="range" id="{input_id}" data-width="{name}" min="1" '
            f'max="{max_width}" step="1" value="{value}" aria-label="{label}">{tick}</div>'
            f'<input type="number" id="{input_id}-box" data-width="{name}" min="1" max="{max_width}" step="1" '
            f'value="{value}" inputmode="numeric" aria-label="{label} (number)">'
        )
        if name == "n5x5_reduce":
            parts.append(_break_even_html(break_even, branch3_kernel, max_width))
    return f'<div class="gnet-controls">{"".join(parts)}</div>'


def _macs_cell(macs: int, field: str) -> str:
    """A MACs cell: the exact number, then its M or G form; each part wraps as a whole on a narrow page."""
    short = f"({short_macs(macs)})" if macs >= 10**6 else ""
    return (
        f'<td data-gnet="{field}"><span class="gnet-whole" data-gnet="{field}-exact">{macs:,}</span> '
        f'<span class="gnet-whole" data-gnet="{field}-short">{short}</span></td>'
    )


def _counts_row(label: str, counts: BlockCounts, prefix: str) -> str:
    """One setting's row, its cells named ``prefix`` + "macs", "params", "out-channels" for the script."""
    return (
        f'<tr><th scope="row">{label}</th>{_macs_cell(counts.macs, prefix + "macs")}'
        f'<td data-gnet="{prefix}params">{counts.params:,}</td>'
        f'<td data-gnet="{prefix}out-channels">{counts.out_channels:,}</td></tr>'
    )


def _ratio_text(a: float, b: float) -> str:
    """``a / b`` as "×0.25"; below 0.01 with two significant digits and no exponent ("×0.0031"), so a tiny
    block never reads "×0.00". The page's script (``ratio`` in :data:`_SCRIPT`) writes the same text."""
    r = a / b
    decimals = 1 - math.floor(math.log10(r)) if 0 < r < 0.01 else 2  # two significant digits, no exponent
    return f"×{r:.{decimals}f}"


def _ratio_row(label: str, counts: BlockCounts, base: BlockCounts, prefix: str) -> str:
    cells = "".join(
        f'<td data-gnet="{prefix}{field}">{_ratio_text(getattr(counts, key), getattr(base, key))}</td>'
        for field, key in (("macs", "macs"), ("params", "params"), ("out-channels", "out_channels"))
    )
    return f'<tr class="gnet-ratio"><th scope="row">{label}</th>{cells}</tr>'


def _counts_table_html(counts: BlockCounts, naive: BlockCounts, reference_name: str) -> str:
    """MACs, parameters and output channels of this setting, the reference and the naive block with the same
    outputs, then this setting's ratios to both. One row per setting (three narrow columns) fits a phone.
    Filled with the reference's numbers until the script runs."""
    ref = html.escape(reference_name)
    return (
        # A soft hyphen lets "Parameters" break on a phone, so that its column is no wider than its numbers.
        "<table><thead><tr><th></th><th>MACs</th><th>Param&shy;eters</th><th>Output channels</th></tr></thead>"
        "<tbody>"
        f"{_counts_row('this setting', counts, '')}"
        f"{_counts_row(ref, counts, 'reference-')}"
        f"{_counts_row('naive (Figure 2a)', naive, 'naive-')}"
        f"{_ratio_row(f'this ÷ {ref}', counts, counts, 'ratio-')}"
        f"{_ratio_row('this ÷ naive', counts, naive, 'ratio-naive-')}"
        "</tbody></table>"
    )


def _branch_bars_html(counts: BlockCounts) -> str:
    """One bar per branch, its length the branch's share of the MACs, with a mark where the reference's ends."""
    rows = []
    for name in BRANCH_NAMES:
        share = f"{100 * counts.branch_macs[name] / counts.macs:.2f}%"
        rows.append(
            f'<div class="gnet-bar-row"><span>{html.escape(BRANCH_LABELS[name])}</span>'
            f'<div class="gnet-bar-track"><div class="gnet-bar" data-bar="{name}" '
            f'style="width: {share}; background: {BRANCH_COLORS[name]};"></div>'
            f'<div class="gnet-bar-reference" data-bar-reference="{name}" style="left: {share};"></div></div>'
            f'<span class="gnet-bar-value" data-bar-value="{name}">{short_macs(counts.branch_macs[name])}</span>'
            "</div>"
        )
    return f'<div class="gnet-bars">{"".join(rows)}</div>'


def _script(
    element_id: str, defaults: InceptionSpec, height: int, width: int, branch3_kernel: int, bias: bool, max_width: int
) -> str:
    """The explorer's JavaScript: the formulas, and the wiring of the controls to them."""
    # What the controls do not change; the formulas' cfg is this plus the six widths.
    fixed = {
        "in_channels": defaults.in_channels,
        "height": height,
        "width": width,
        "branch3_kernel": branch3_kernel,
        "bias": bias,
    }
    return _SCRIPT.format(
        formula=EXPLORER_FORMULA_JS,
        id_json=json.dumps(element_id),
        defaults_json=json.dumps(_widths(defaults)),
        fixed_json=json.dumps(fixed),
        colors_json=json.dumps(BRANCH_COLORS),
        max_width=max_width,
    )


def _check_static_arguments(defaults, height, width, branch3_kernel, max_width) -> int:
    """Check :func:`static_explorer_html`'s arguments; return the sliders' maximum."""
    _check_spec("defaults", defaults)
    for name, value in (("height", height), ("width", width), ("branch3_kernel", branch3_kernel)):
        positive_int(name, value)
    if branch3_kernel % 2 == 0:
        raise ValueError(f"branch3_kernel must be odd (so 'same' padding exists), got {branch3_kernel}")
    default_widths = _widths(defaults)
    widest = max(default_widths.values())
    max_width = _default_max_width(default_widths) if max_width is None else positive_int("max_width", max_width)
    if max_width < widest:
        raise ValueError(f"max_width must be at least the widest default ({widest}), got {max_width}")
    return max_width


def static_explorer_html(
    defaults: InceptionSpec = _DEFAULT_SPEC,
    height: int = 28,
    width: int = 28,
    *,
    branch3_kernel: int = 5,
    bias: bool = True,
    max_width: int | None = None,
    title: str | None = None,
    reference_name: str | None = None,
    element_id: str | None = None,
) -> str:
    """Self-contained HTML and JavaScript: a slider and a number box for each width of an Inception block, and its
    MACs, parameters and output channels recomputed in the browser with the closed form, beside ``defaults`` and
    beside the naive block with the same output widths; the #5×5 reduce slider marks its break-even width.

    ``defaults`` (an :class:`~gnet.table1.InceptionSpec`, the paper's inception 3a unless given) fixes the input
    channels and is the reference the ratios compare with; the block sees a ``height × width`` map. Widths run
    from 1 to ``max_width`` (default: ``max(256, 2 × the widest default)``). The numbers shown before the script
    runs come from :func:`gnet.analysis.spec_counts`, so the page is right even with JavaScript off.
    Needs no kernel and no network; ``element_id`` (default: a fresh ``gnet-explorer-N``) must be unique on the
    page. ``title`` and ``reference_name`` default to the paper's block name when ``defaults`` is one of
    :data:`~gnet.table1.INCEPTION_SPECS` (e.g. "the paper's 3a").
    """
    max_width = _check_static_arguments(defaults, height, width, branch3_kernel, max_width)
    element_id = _check_element_id(element_id)
    block_name = _paper_block_name(defaults)
    if title is None:
        title = f"Inception {block_name or 'block'} explorer (computed in your browser)"
    if reference_name is None:
        reference_name = f"the paper's {block_name}" if block_name else "the default setting"

    counts = spec_counts(defaults, height, width, branch3_kernel=branch3_kernel, bias=bias)
    naive = naive_inception_counts(
        defaults.in_channels, defaults.n1x1, defaults.n3x3, defaults.n5x5, height, width,
        branch3_kernel=branch3_kernel, bias=bias,
    )  # fmt: skip
    kernel_note = "" if branch3_kernel == 5 else f" Branch 3 uses a {branch3_kernel}×{branch3_kernel} kernel."
    bias_note = "weights and biases" if bias else "weights only (no biases)"
    esc = html.escape
    return (
        f'<div id="{element_id}" class="gnet-explorer" data-ready="false">'
        f"<style>{_CSS.format(id=element_id)}</style>"
        f'<p class="gnet-title">{esc(title)}</p>'
        f'<p class="gnet-sub">Input: {height}×{width}×{defaults.in_channels}. Move a slider or type a width: the '
        f"counts use the closed form C<sub>in</sub>·C<sub>out</sub>·k²·H·W per convolution, computed by this page "
        f"itself (no kernel, no network).{kernel_note}</p>"
        f"{_controls_html(element_id, defaults, max_width, branch3_kernel)}"
        f'<button type="button" data-action="reset">Reset to {esc(reference_name)}</button>'
        f"{_counts_table_html(counts, naive, reference_name)}"
        f"<p class=\"gnet-note\">Parameters: {bias_note}, exact. Naive: the paper's Figure 2a with this setting's "
        f"#1×1, #3×3 and #5×5, no reductions; its pool branch passes the {defaults.in_channels} input channels "
        f"through.</p>"
        f"{_branch_bars_html(counts)}"
        f'<p class="gnet-note">Bars: MACs per branch (1×1, 3×3, 5×5, pool); the thin line marks '
        f"{esc(reference_name)}. Pooling and concatenation cost no multiply-adds.</p>"
        f'<noscript><p class="gnet-note">This explorer needs JavaScript; the numbers above are '
        f"{esc(reference_name)}'s.</p></noscript>"
        f"<script>{_script(element_id, defaults, height, width, branch3_kernel, bias, max_width)}</script></div>"
    )


def static_explorer(defaults: InceptionSpec = _DEFAULT_SPEC, height: int = 28, width: int = 28, **kwargs):
    """:func:`static_explorer_html` wrapped in ``IPython.display.HTML``, ready to be a cell's last expression."""
    from IPython.display import HTML

    return HTML(static_explorer_html(defaults, height, width, **kwargs))


# ------------------------------------------------------------------------------------------------------------
# The kernel-backed explorer: ipywidgets sliders, measured live with fvcore
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCounts:
    """What fvcore measured for one setting of the widths, and how long building + measuring took."""

    spec: InceptionSpec
    macs: int
    params: int
    out_channels: int
    seconds: float


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous number."""
    # One thread: on the book's small shared CPUs, tracing a 28×28 block with two threads was several times
    # slower (threads wait for each other) and far less steady. Restored afterwards: set_num_threads is global.
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_inception(
    spec: InceptionSpec,
    height: int = 28,
    width: int = 28,
    *,
    branch3_kernel: int = 5,
    threads: int = 1,
    naive: bool = False,
) -> LiveCounts:
    """Build :class:`gnet.Inception` with ``spec``'s widths and measure it with fvcore on ``1 × C × H × W``.

    With ``naive=True`` it builds :class:`gnet.NaiveInception` with the same ``n1x1``, ``n3x3`` and ``n5x5``
    instead (the paper's Figure 2a: ``spec``'s reduce widths and pool proj are not used). MACs come from
    :func:`gnet.analysis.count_macs` (convolutions, as the paper counts), parameters from
    :func:`gnet.analysis.count_params`, output channels from the block.
    """
    _check_spec("spec", spec)
    for name, value in (("height", height), ("width", width), ("threads", threads)):
        positive_int(name, value)
    start = time.perf_counter()
    with torch_threads(threads), torch.no_grad():
        if naive:
            block = NaiveInception(spec.in_channels, spec.n1x1, spec.n3x3, spec.n5x5, branch3_kernel=branch3_kernel)
        else:
            block = Inception.from_spec(spec, branch3_kernel=branch3_kernel)
        macs = count_macs(block, (1, spec.in_channels, height, width)).total
        params = count_params(block)
    return LiveCounts(spec, macs, params, block.out_channels, time.perf_counter() - start)


class InceptionSliders:
    """Six ipywidgets sliders for the widths of an Inception block, each with a number box, measured live with
    fvcore.

    Each change builds a fresh :class:`gnet.Inception` and counts it with fvcore (:func:`measure_inception`),
    then shows MACs, parameters and output channels beside ``defaults`` (the paper's inception 3a unless given)
    and beside the naive block with the same output widths, measured too (again only when #1×1, #3×3 or #5×5
    changed), and the break-even #5×5 reduce (:func:`break_even_n5x5_reduce`). Sliders update on release
    (``continuous_update=False``), so dragging does not queue up measurements; a box updates on Enter, clamped to
    the slider's range. ``latencies_ms`` records how long each update took, callback start to shown result.

    Needs a live kernel: in the static HTML book the callback never runs (ipywidgets #2069, #3319).
    """

    def __init__(
        self,
        defaults: InceptionSpec = _DEFAULT_SPEC,
        height: int = 28,
        width: int = 28,
        *,
        branch3_kernel: int = 5,
        max_width: int | None = None,
    ) -> None:
        import ipywidgets as widgets

        self.defaults = _check_spec("defaults", defaults)
        self.height, self.width, self.branch3_kernel = height, width, branch3_kernel
        default_widths = _widths(defaults)
        max_width = _default_max_width(default_widths) if max_width is None else positive_int("max_width", max_width)
        self._reference_label = "paper's" if _paper_block_name(defaults) else "default"
        self._naive_cache: dict[tuple[int, int, int], LiveCounts] = {}
        self.reference = measure_inception(defaults, height, width, branch3_kernel=branch3_kernel)
        self.latencies_ms: list[float] = []
        self.last: LiveCounts = self.reference
        self.last_naive: LiveCounts = self._measure_naive(defaults)
        self.sliders, self.boxes = self._controls(widgets, default_widths, max_width)
        self.output = widgets.HTML()
        reset = widgets.Button(description=f"Reset to the {self._reference_label} widths")
        reset.on_click(lambda _button: self.set_widths(**default_widths))
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        rows = [widgets.HBox([self.sliders[name], self.boxes[name]]) for name in WIDTH_FIELDS]
        self.widget = widgets.VBox([*rows, reset, self.output])
        self._show(self.reference, self.last_naive)

    @staticmethod
    def _controls(widgets, default_widths: dict[str, int], max_width: int) -> tuple[dict, dict]:
        """A slider and a number box per width, linked both ways (the box replaces the slider's readout)."""
        sliders, boxes = {}, {}
        for name, value in default_widths.items():
            sliders[name] = widgets.IntSlider(
                value=value,
                min=1,
                max=max_width,
                description=WIDTH_LABELS[name],
                continuous_update=False,
                readout=False,
                style={"description_width": "11em"},
                layout=widgets.Layout(width="100%", max_width="34em"),
            )
            boxes[name] = widgets.BoundedIntText(value=value, min=1, max=max_width, layout=widgets.Layout(width="6em"))
            widgets.link((boxes[name], "value"), (sliders[name], "value"))
        return sliders, boxes

    def widths(self) -> dict[str, int]:
        """The sliders' current widths, keyed by :data:`WIDTH_FIELDS`."""
        return {name: slider.value for name, slider in self.sliders.items()}

    def set_widths(self, **widths: int) -> None:
        """Move sliders as a reader would (each move runs the callback), e.g. ``set_widths(n5x5_reduce=192)``."""
        unknown = set(widths) - set(WIDTH_FIELDS)
        if unknown:
            raise ValueError(f"unknown widths {sorted(unknown)}; expected some of {WIDTH_FIELDS}")
        for name, value in widths.items():
            self.sliders[name].value = value

    def median_latency_ms(self, last: int | None = None) -> float:
        """Median of the recorded update latencies (of the ``last`` ones, if given)."""
        samples = self.latencies_ms if last is None else self.latencies_ms[-last:]
        if not samples:
            raise ValueError("no update has been timed yet: move a slider (or call set_widths) first")
        return statistics.median(samples)

    def _measure_naive(self, spec: InceptionSpec) -> LiveCounts:
        # The naive block depends on three of the six widths: moving a reduction or pool proj reuses its count.
        key = (spec.n1x1, spec.n3x3, spec.n5x5)
        if key not in self._naive_cache:
            self._naive_cache[key] = measure_inception(
                spec, self.height, self.width, branch3_kernel=self.branch3_kernel, naive=True
            )
        return self._naive_cache[key]

    def _on_change(self, _change: object) -> None:
        start = time.perf_counter()
        spec = self.defaults._replace(**self.widths())
        self.last = measure_inception(spec, self.height, self.width, branch3_kernel=self.branch3_kernel)
        self.last_naive = self._measure_naive(spec)
        self._show(self.last, self.last_naive)
        self.latencies_ms.append(1000 * (time.perf_counter() - start))

    def _show(self, counts: LiveCounts, naive: LiveCounts) -> None:
        """The panel: one row per setting (this, the reference, the naive block), then this one's ratios."""
        keys = ("macs", "params", "out_channels")
        reference = f"{self._reference_label} setting"
        rows = [
            ("this setting", [f"{getattr(counts, k):,}" for k in keys]),
            (reference, [f"{getattr(self.reference, k):,}" for k in keys]),
            ("naive, same outputs (Figure 2a)", [f"{getattr(naive, k):,}" for k in keys]),
            (f"this ÷ {reference}", [_ratio_text(getattr(counts, k), getattr(self.reference, k)) for k in keys]),
            ("this ÷ naive", [_ratio_text(getattr(counts, k), getattr(naive, k)) for k in keys]),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{label}</th>"
            + "".join(f"<td style='text-align:right'>{v}</td>" for v in values)
            + "</tr>"
            for label, values in rows
        )
        k = self.branch3_kernel
        even = break_even_n5x5_reduce(counts.spec.in_channels, counts.spec.n5x5, k)
        self.output.value = (
            "<table><tr><th></th><th>MACs (fvcore)</th><th>Parameters</th><th>Output channels</th></tr>"
            f"{body}</table><p>Break-even #5×5 reduce: {_one_decimal_down(even)} (narrower, 1×1 reduce + {k}×{k} "
            f"costs fewer MACs than a direct {k}×{k}). Built and measured with fvcore in "
            f"{1000 * counts.seconds:.0f} ms ({self.height}×{self.width}×{counts.spec.in_channels} input, batch 1).</p>"
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def inception_sliders(
    defaults: InceptionSpec = _DEFAULT_SPEC, height: int = 28, width: int = 28, **kwargs
) -> InceptionSliders:
    """Kernel-backed sliders for the six widths of ``defaults`` (see :class:`InceptionSliders`)."""
    return InceptionSliders(defaults, height, width, **kwargs)
