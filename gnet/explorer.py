"""Explore the widths of an Inception block: what do its six channel numbers cost?

Two explorers, for two ways of reading the book:

* :func:`static_explorer_html` (shown with :func:`static_explorer`) works in the **static web page**. It is
  self-contained HTML and vanilla JavaScript: six range inputs, and the MACs, parameters and output channels
  recomputed in the browser with the closed form of :func:`gnet.analysis.inception_counts`. No kernel, no
  network. The tests run its JavaScript formula with ``node`` and check it against fvcore on a grid of
  configurations, and drive the page in headless Chromium.
* :func:`inception_sliders` builds **ipywidgets** sliders whose callback builds a real :class:`gnet.Inception`
  and measures it with fvcore (:func:`gnet.analysis.count_macs`). It needs a live kernel (Colab, Jupyter): in a
  static page the callback never runs (ipywidgets #2069, #3319).

The six widths, in the order of the paper's Table 1 columns: ``c1`` (#1×1), ``c2_reduce`` (#3×3 reduce),
``c2_out`` (#3×3), ``c3_reduce`` (#5×5 reduce), ``c3_out`` (#5×5), ``c4`` (pool proj).
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from gnet._validate import positive_int
from gnet.analysis import count_macs, count_params, inception_counts
from gnet.model import Inception
from gnet.plotting import BRANCH_COLORS, BRANCH_LABELS, format_count
from gnet.table1 import INCEPTION_SPECS, InceptionSpec

__all__ = [
    "WIDTH_FIELDS",
    "WIDTH_LABELS",
    "FORMULA_BEGIN",
    "FORMULA_END",
    "EXPLORER_FORMULA_JS",
    "spec_widths",
    "spec_from_widths",
    "static_explorer_html",
    "static_explorer",
    "LiveCounts",
    "measure_inception",
    "InceptionSliders",
    "inception_sliders",
]

#: The six widths an explorer sets, in Table 1's column order.
WIDTH_FIELDS = ("c1", "c2_reduce", "c2_out", "c3_reduce", "c3_out", "c4")

#: Each width's label: Table 1's column name, then the argument of :class:`gnet.Inception` it sets.
WIDTH_LABELS = {
    "c1": "#1×1 (c1)",
    "c2_reduce": "#3×3 reduce (c2[0])",
    "c2_out": "#3×3 (c2[1])",
    "c3_reduce": "#5×5 reduce (c3[0])",
    "c3_out": "#5×5 (c3[1])",
    "c4": "pool proj (c4)",
}

_DEFAULT_SPEC = INCEPTION_SPECS["inception3a"]

# The closed form, in JavaScript. The markers let the tests cut this exact text out of the emitted HTML and run
# it with node, so what is tested is what the page runs.
FORMULA_BEGIN = "/* gnet-explorer-formula:begin */"
FORMULA_END = "/* gnet-explorer-formula:end */"
EXPLORER_FORMULA_JS = f"""{FORMULA_BEGIN}
function gnetInceptionCounts(cfg) {{
  // Every convolution of an Inception block keeps H x W ("same" padding, stride 1), so a k x k convolution
  // costs C_in * C_out * k * k * H * W multiply-adds and has C_in * C_out * k * k weights (+ C_out biases).
  // Max pooling and concatenation cost no multiply-adds and have no parameters.
  var hw = cfg.height * cfg.width;
  var bias = cfg.bias === undefined ? true : cfg.bias;
  var k3 = cfg.branch3Kernel === undefined ? 5 : cfg.branch3Kernel;
  function conv(cin, cout, k) {{
    var weights = cin * cout * k * k;
    return {{ macs: weights * hw, params: weights + (bias ? cout : 0) }};
  }}
  function chain(convs) {{
    var total = {{ macs: 0, params: 0 }};
    convs.forEach(function (c) {{ total.macs += c.macs; total.params += c.params; }});
    return total;
  }}
  var branches = {{
    branch1: chain([conv(cfg.inChannels, cfg.c1, 1)]),
    branch2: chain([conv(cfg.inChannels, cfg.c2Reduce, 1), conv(cfg.c2Reduce, cfg.c2Out, 3)]),
    branch3: chain([conv(cfg.inChannels, cfg.c3Reduce, 1), conv(cfg.c3Reduce, cfg.c3Out, k3)]),
    branch4: chain([conv(cfg.inChannels, cfg.c4, 1)])
  }};
  var channels = {{ branch1: cfg.c1, branch2: cfg.c2Out, branch3: cfg.c3Out, branch4: cfg.c4 }};
  var result = {{ macs: 0, params: 0, outChannels: 0, branches: branches, channels: channels }};
  Object.keys(branches).forEach(function (name) {{
    result.macs += branches[name].macs;
    result.params += branches[name].params;
    result.outChannels += channels[name];
  }});
  return result;
}}
{FORMULA_END}"""

# JavaScript keys of the six widths (the formula's cfg fields).
_JS_KEYS = {
    "c1": "c1",
    "c2_reduce": "c2Reduce",
    "c2_out": "c2Out",
    "c3_reduce": "c3Reduce",
    "c3_out": "c3Out",
    "c4": "c4",
}

_element_ids = itertools.count(1)


# ------------------------------------------------------------------------------------------------------------
# Widths <-> InceptionSpec
# ------------------------------------------------------------------------------------------------------------


def spec_widths(spec: InceptionSpec) -> dict[str, int]:
    """The six widths of ``spec`` as a dict keyed by :data:`WIDTH_FIELDS`."""
    if not isinstance(spec, InceptionSpec):
        raise ValueError(f"spec must be a gnet.table1.InceptionSpec, got {type(spec).__name__}")
    return {
        "c1": spec.c1,
        "c2_reduce": spec.c2[0],
        "c2_out": spec.c2[1],
        "c3_reduce": spec.c3[0],
        "c3_out": spec.c3[1],
        "c4": spec.c4,
    }


def spec_from_widths(in_channels: int, widths: Mapping[str, int]) -> InceptionSpec:
    """An :class:`~gnet.table1.InceptionSpec` from ``in_channels`` and the six widths of :data:`WIDTH_FIELDS`."""
    positive_int("in_channels", in_channels)
    if set(widths) != set(WIDTH_FIELDS):
        raise ValueError(f"widths must have exactly the keys {WIDTH_FIELDS}, got {tuple(widths)}")
    for name in WIDTH_FIELDS:
        positive_int(name, widths[name])
    return InceptionSpec(
        in_channels,
        widths["c1"],
        (widths["c2_reduce"], widths["c2_out"]),
        (widths["c3_reduce"], widths["c3_out"]),
        widths["c4"],
    )


# ------------------------------------------------------------------------------------------------------------
# The static explorer: HTML + vanilla JavaScript, no kernel, no network
# ------------------------------------------------------------------------------------------------------------

_CSS = """
#{id} {{ border: 1px solid rgba(127, 127, 127, 0.45); border-radius: 6px; padding: 0.8em 1em; margin: 0.8em 0;
  font-size: 0.92em; line-height: 1.35; color: inherit; max-width: 46em; }}
#{id} .gnet-title {{ font-weight: bold; margin: 0 0 0.2em 0; }}
#{id} .gnet-sub {{ margin: 0 0 0.6em 0; opacity: 0.85; }}
#{id} .gnet-controls {{ display: grid; grid-template-columns: 11.5em 1fr 3.2em; gap: 0.25em 0.6em;
  align-items: center; }}
#{id} .gnet-controls input[type=range] {{ width: 100%; margin: 0; }}
#{id} .gnet-controls output {{ font-variant-numeric: tabular-nums; text-align: right; font-weight: bold; }}
#{id} button {{ margin: 0.6em 0 0.4em 0; padding: 0.2em 0.7em; border: 1px solid rgba(127, 127, 127, 0.6);
  border-radius: 4px; background: rgba(127, 127, 127, 0.12); color: inherit; cursor: pointer; font: inherit; }}
#{id} table {{ border-collapse: collapse; margin: 0.3em 0; width: 100%; }}
#{id} th, #{id} td {{ padding: 0.15em 0.6em; text-align: right; border-bottom: 1px solid rgba(127, 127, 127, 0.3);
  font-variant-numeric: tabular-nums; }}
#{id} th:first-child, #{id} td:first-child {{ text-align: left; }}
#{id} .gnet-bars {{ margin-top: 0.5em; }}
#{id} .gnet-bar-row {{ display: grid; grid-template-columns: 4.5em 1fr 5.5em; gap: 0.5em; align-items: center;
  margin: 0.15em 0; }}
#{id} .gnet-bar-track {{ position: relative; height: 0.9em; background: rgba(127, 127, 127, 0.12);
  border-radius: 2px; }}
#{id} .gnet-bar {{ height: 100%; border-radius: 2px; }}
#{id} .gnet-bar-paper {{ position: absolute; top: -0.15em; bottom: -0.15em; width: 2px; background: currentColor;
  opacity: 0.7; }}
#{id} .gnet-bar-value {{ text-align: right; font-variant-numeric: tabular-nums; }}
#{id} .gnet-note {{ margin: 0.4em 0 0 0; font-size: 0.9em; opacity: 0.85; }}
"""

# The part of the script that wires the controls to the formula; {id} and the JSON blobs are filled in.
_SCRIPT = """
(function () {{
  "use strict";
  {formula}
  var root = document.getElementById({id_json});
  if (!root) {{ return; }}
  var paper = {paper_json};
  var fixed = {fixed_json};
  var jsKeys = {js_keys_json};
  var colors = {colors_json};
  function formatCount(n) {{
    // Three significant digits and an SI prefix, like gnet.plotting.format_count.
    var prefixes = [[1e12, " T"], [1e9, " G"], [1e6, " M"], [1e3, " k"]];
    for (var i = 0; i < prefixes.length; i++) {{
      if (n >= prefixes[i][0]) {{ return Number((n / prefixes[i][0]).toPrecision(3)) + prefixes[i][1]; }}
    }}
    return String(Number(n.toPrecision(3)));
  }}
  function exact(n) {{ return n.toLocaleString("en-US"); }}
  function ratio(a, b) {{ return "\\u00d7" + (a / b).toFixed(2); }}
  function config(widths) {{
    var cfg = {{ inChannels: fixed.inChannels, height: fixed.height, width: fixed.width,
                branch3Kernel: fixed.branch3Kernel, bias: fixed.bias }};
    Object.keys(jsKeys).forEach(function (name) {{ cfg[jsKeys[name]] = widths[name]; }});
    return cfg;
  }}
  var reference = gnetInceptionCounts(config(paper));
  var inputs = root.querySelectorAll("input[data-width]");
  function set(field, text) {{ root.querySelector('[data-gnet="' + field + '"]').textContent = text; }}
  function update() {{
    var widths = {{}};
    inputs.forEach(function (input) {{
      widths[input.dataset.width] = parseInt(input.value, 10);
      root.querySelector('output[data-width="' + input.dataset.width + '"]').textContent = input.value;
    }});
    var counts = gnetInceptionCounts(config(widths));
    set("macs", exact(counts.macs) + " (" + formatCount(counts.macs) + ")");
    set("params", exact(counts.params) + " (" + formatCount(counts.params) + ")");
    set("out-channels", exact(counts.outChannels));
    set("ratio-macs", ratio(counts.macs, reference.macs));
    set("ratio-params", ratio(counts.params, reference.params));
    set("ratio-out-channels", ratio(counts.outChannels, reference.outChannels));
    var scale = Math.max(counts.macs, reference.macs);
    Object.keys(counts.branches).forEach(function (name) {{
      var bar = root.querySelector('[data-bar="' + name + '"]');
      bar.style.width = (100 * counts.branches[name].macs / scale).toFixed(2) + "%";
      bar.style.background = colors[name];
      root.querySelector('[data-bar-paper="' + name + '"]').style.left =
        (100 * reference.branches[name].macs / scale).toFixed(2) + "%";
      root.querySelector('[data-bar-value="' + name + '"]').textContent = formatCount(counts.branches[name].macs);
    }});
    root.dataset.updates = String(parseInt(root.dataset.updates || "0", 10) + 1);
  }}
  inputs.forEach(function (input) {{ input.addEventListener("input", update); }});
  root.querySelector('button[data-action="reset"]').addEventListener("click", function () {{
    inputs.forEach(function (input) {{ input.value = paper[input.dataset.width]; }});
    update();
  }});
  update();
  root.dataset.ready = "true";
}})();
"""


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
    """Self-contained HTML and JavaScript: six range inputs for the widths of an Inception block, and its MACs,
    parameters and output channels recomputed in the browser with the closed form, beside ``defaults``.

    ``defaults`` (an :class:`~gnet.table1.InceptionSpec`, the paper's inception 3a unless given) fixes the input
    channels and is the reference the ratios compare with; the block sees a ``height × width`` map. Sliders run
    from 1 to ``max_width`` (default: ``max(256, 2 × the widest default)``). The numbers shown before the script
    runs come from :func:`gnet.analysis.inception_counts`, so the page is right even with JavaScript off.
    Needs no kernel and no network; ``element_id`` (default: a fresh ``gnet-explorer-N``) must be unique on the
    page. ``title`` and ``reference_name`` default to the paper's block name when ``defaults`` is one of
    :data:`~gnet.table1.INCEPTION_SPECS` (e.g. "the paper's 3a").
    """
    if not isinstance(defaults, InceptionSpec):
        raise ValueError(f"defaults must be a gnet.table1.InceptionSpec, got {type(defaults).__name__}")
    for name, value in (("height", height), ("width", width), ("branch3_kernel", branch3_kernel)):
        positive_int(name, value)
    if branch3_kernel % 2 == 0:
        raise ValueError(f"branch3_kernel must be odd (so 'same' padding exists), got {branch3_kernel}")
    paper = spec_widths(defaults)
    spec_from_widths(defaults.in_channels, paper)  # validates every width
    if max_width is None:
        max_width = max(256, 2 * max(paper.values()))
    positive_int("max_width", max_width)
    if max_width < max(paper.values()):
        raise ValueError(f"max_width must be at least the widest default ({max(paper.values())}), got {max_width}")
    if element_id is None:
        element_id = f"gnet-explorer-{next(_element_ids)}"
    if not isinstance(element_id, str) or not element_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"element_id must be letters, digits, '-' or '_', got {element_id!r}")

    block_name = next((name.removeprefix("inception") for name, s in INCEPTION_SPECS.items() if s == defaults), None)
    if title is None:
        title = f"Inception {block_name or 'block'} explorer (computed in your browser)"
    if reference_name is None:
        reference_name = f"the paper's {block_name}" if block_name else "the default setting"

    counts = inception_counts(*defaults, height, width, branch3_kernel=branch3_kernel, bias=bias)
    esc = html.escape
    controls = "".join(
        f'<label for="{element_id}-{name}">{esc(WIDTH_LABELS[name])}</label>'
        f'<input type="range" id="{element_id}-{name}" data-width="{name}" min="1" max="{max_width}" step="1" '
        f'value="{paper[name]}" aria-label="{esc(WIDTH_LABELS[name])}">'
        f'<output data-width="{name}" for="{element_id}-{name}">{paper[name]}</output>'
        for name in WIDTH_FIELDS
    )
    scale = counts.macs
    bars = "".join(
        f'<div class="gnet-bar-row"><span>{esc(BRANCH_LABELS[name])}</span>'
        f'<div class="gnet-bar-track"><div class="gnet-bar" data-bar="{name}" '
        f'style="width: {100 * counts.branch_macs[name] / scale:.2f}%; background: {BRANCH_COLORS[name]};"></div>'
        f'<div class="gnet-bar-paper" data-bar-paper="{name}" '
        f'style="left: {100 * counts.branch_macs[name] / scale:.2f}%;"></div></div>'
        f'<span class="gnet-bar-value" data-bar-value="{name}">{format_count(counts.branch_macs[name])}</span></div>'
        for name in ("branch1", "branch2", "branch3", "branch4")
    )
    kernel_note = "" if branch3_kernel == 5 else f" Branch 3 uses a {branch3_kernel}×{branch3_kernel} kernel."
    bias_note = "weights and biases" if bias else "weights only (no biases)"
    rows = "".join(
        f'<tr><td>{label}</td><td data-gnet="{field}">{shown}</td><td>{reference:,}</td>'
        f'<td data-gnet="ratio-{field}">×1.00</td></tr>'
        for label, field, shown, reference in (
            ("MACs", "macs", f"{counts.macs:,} ({format_count(counts.macs)})", counts.macs),
            (
                f"Parameters ({bias_note})",
                "params",
                f"{counts.params:,} ({format_count(counts.params)})",
                counts.params,
            ),
            ("Output channels", "out-channels", f"{counts.out_channels:,}", counts.out_channels),
        )
    )
    script = _SCRIPT.format(
        formula=EXPLORER_FORMULA_JS,
        id_json=json.dumps(element_id),
        paper_json=json.dumps(paper),
        fixed_json=json.dumps(
            {
                "inChannels": defaults.in_channels,
                "height": height,
                "width": width,
                "branch3Kernel": branch3_kernel,
                "bias": bias,
            }
        ),
        js_keys_json=json.dumps(_JS_KEYS),
        colors_json=json.dumps(BRANCH_COLORS),
    )
    return (
        f'<div id="{element_id}" class="gnet-explorer" data-ready="false">'
        f"<style>{_CSS.format(id=element_id)}</style>"
        f'<p class="gnet-title">{esc(title)}</p>'
        f'<p class="gnet-sub">Input: {height}×{width}×{defaults.in_channels}. Move a slider: the counts use the '
        f"closed form C<sub>in</sub>·C<sub>out</sub>·k²·H·W per convolution, computed by this page itself "
        f"(no kernel, no network).{kernel_note}</p>"
        f'<div class="gnet-controls">{controls}</div>'
        f'<button type="button" data-action="reset">Reset to {esc(reference_name)}</button>'
        f"<table><thead><tr><th></th><th>this setting</th><th>{esc(reference_name)}</th><th>ratio</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        f'<div class="gnet-bars">{bars}</div>'
        f'<p class="gnet-note">Bars: MACs per branch (1×1, 3×3, 5×5, pool); the thin line marks '
        f"{esc(reference_name)}. Pooling and concatenation cost no multiply-adds.</p>"
        f'<noscript><p class="gnet-note">This explorer needs JavaScript; the numbers above are '
        f"{esc(reference_name)}'s.</p></noscript>"
        f"<script>{script}</script></div>"
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
def _torch_threads(n: int) -> Iterator[None]:
    # One thread: on the book's small shared CPUs, tracing a 28×28 block with two threads was several times
    # slower (threads wait for each other) and far less steady. Restored afterwards: set_num_threads is global.
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_inception(
    spec: InceptionSpec, height: int = 28, width: int = 28, *, branch3_kernel: int = 5, threads: int = 1
) -> LiveCounts:
    """Build :class:`gnet.Inception` with ``spec``'s widths and measure it with fvcore on ``1 × C × H × W``.

    MACs come from :func:`gnet.analysis.count_macs` (convolutions, as the paper counts), parameters from
    :func:`gnet.analysis.count_params`, output channels from the block (the sum of its four branch widths).
    """
    if not isinstance(spec, InceptionSpec):
        raise ValueError(f"spec must be a gnet.table1.InceptionSpec, got {type(spec).__name__}")
    for name, value in (("height", height), ("width", width), ("threads", threads)):
        positive_int(name, value)
    start = time.perf_counter()
    with _torch_threads(threads), torch.no_grad():
        block = Inception(*spec, branch3_kernel=branch3_kernel)
        macs = count_macs(block, (1, spec.in_channels, height, width)).total
        params = count_params(block)
    return LiveCounts(spec, macs, params, block.out_channels, time.perf_counter() - start)


class InceptionSliders:
    """Six ipywidgets sliders for the widths of an Inception block, measured live with fvcore.

    Each change builds a fresh :class:`gnet.Inception` and counts it with fvcore (:func:`measure_inception`),
    then shows MACs, parameters and output channels beside ``defaults`` (the paper's inception 3a unless given).
    Sliders update on release (``continuous_update=False``), so dragging does not queue up measurements.
    ``latencies_ms`` records how long each update took, callback start to shown result.

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

        self.defaults = defaults
        self.height, self.width, self.branch3_kernel = height, width, branch3_kernel
        paper = spec_widths(defaults)
        max_width = max(256, 2 * max(paper.values())) if max_width is None else max_width
        positive_int("max_width", max_width)
        self.reference = measure_inception(defaults, height, width, branch3_kernel=branch3_kernel)
        self.latencies_ms: list[float] = []
        self.last: LiveCounts = self.reference
        self.sliders = {
            name: widgets.IntSlider(
                value=paper[name],
                min=1,
                max=max_width,
                description=WIDTH_LABELS[name],
                continuous_update=False,
                style={"description_width": "11em"},
                layout=widgets.Layout(width="34em"),
            )
            for name in WIDTH_FIELDS
        }
        self.output = widgets.HTML()
        reset = widgets.Button(description="Reset to the paper's widths")
        reset.on_click(lambda _button: self.set_widths(**paper))
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([*self.sliders.values(), reset, self.output])
        self._show(self.reference)

    def widths(self) -> dict[str, int]:
        """The sliders' current widths, keyed by :data:`WIDTH_FIELDS`."""
        return {name: slider.value for name, slider in self.sliders.items()}

    def set_widths(self, **widths: int) -> None:
        """Move sliders as a reader would (each move runs the callback), e.g. ``set_widths(c3_reduce=192)``."""
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

    def _on_change(self, _change: object) -> None:
        start = time.perf_counter()
        spec = spec_from_widths(self.defaults.in_channels, self.widths())
        self.last = measure_inception(spec, self.height, self.width, branch3_kernel=self.branch3_kernel)
        self._show(self.last)
        self.latencies_ms.append(1000 * (time.perf_counter() - start))

    def _show(self, counts: LiveCounts) -> None:
        ref = self.reference
        rows = "".join(
            f"<tr><td>{label}</td><td style='text-align:right'>{value:,}</td>"
            f"<td style='text-align:right'>{reference:,}</td>"
            f"<td style='text-align:right'>×{value / reference:.2f}</td></tr>"
            for label, value, reference in (
                ("MACs (fvcore)", counts.macs, ref.macs),
                ("Parameters", counts.params, ref.params),
                ("Output channels", counts.out_channels, ref.out_channels),
            )
        )
        self.output.value = (
            "<table><tr><th></th><th>this setting</th><th>paper's setting</th><th>ratio</th></tr>"
            f"{rows}</table><p>Built and measured with fvcore in {1000 * counts.seconds:.0f} ms "
            f"({self.height}×{self.width}×{self.defaults.in_channels} input, batch 1).</p>"
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def inception_sliders(
    defaults: InceptionSpec = _DEFAULT_SPEC, height: int = 28, width: int = 28, **kwargs
) -> InceptionSliders:
    """Kernel-backed sliders for the six widths of ``defaults`` (see :class:`InceptionSliders`)."""
    return InceptionSliders(defaults, height, width, **kwargs)
