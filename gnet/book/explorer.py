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

Both set the six widths of :class:`~gnet.table1.InceptionSpec` under its own names (Table 1's columns,
:data:`gnet.table1.WIDTH_FIELDS`): ``n1x1``, ``n3x3_reduce``, ``n3x3``, ``n5x5_reduce``, ``n5x5``, ``pool_proj``.
The same names are the explorer's HTML attributes, the keys of its JavaScript and the arguments of
:meth:`InceptionSliders.set_widths`; the labels are Table 1's column headers ("#3×3 reduce").
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gnet._validate import positive_int
from gnet.analysis import BlockCounts, count_macs, count_params, spec_counts
from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS, format_count
from gnet.model import BRANCH_NAMES, Inception
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS, InceptionSpec

__all__ = [
    "WIDTH_LABELS",
    "FORMULA_BEGIN",
    "FORMULA_END",
    "EXPLORER_FORMULA_JS",
    "static_explorer_html",
    "static_explorer",
    "LiveCounts",
    "measure_inception",
    "InceptionSliders",
    "inception_sliders",
]


def _table1_header(field: str) -> str:
    """Table 1's header of a width column: ``n3x3_reduce`` -> "#3×3 reduce", ``pool_proj`` -> "pool proj"."""
    header = field.replace("_", " ").replace("x", "×")
    return "#" + header[1:] if field.startswith("n") else header


#: Each width's label: its column header in Table 1 ("#1×1", "#3×3 reduce", … "pool proj").
WIDTH_LABELS: dict[str, str] = {name: _table1_header(name) for name in WIDTH_FIELDS}

_DEFAULT_SPEC = INCEPTION_SPECS["inception3a"]

# The closed form, in JavaScript. The markers let the tests cut this exact text out of the emitted HTML and run
# it with node, so what is tested is what the page runs. ``cfg`` holds the InceptionSpec's fields under their
# Python names, plus height, width, branch3_kernel and bias.
FORMULA_BEGIN = "/* gnet-explorer-formula:begin */"
FORMULA_END = "/* gnet-explorer-formula:end */"
EXPLORER_FORMULA_JS = f"""{FORMULA_BEGIN}
function gnetInceptionCounts(cfg) {{
  // Every convolution of an Inception block keeps H x W ("same" padding, stride 1), so a k x k convolution
  // costs C_in * C_out * k * k * H * W multiply-adds and has C_in * C_out * k * k weights (+ C_out biases).
  // Max pooling and concatenation cost no multiply-adds and have no parameters.
  var hw = cfg.height * cfg.width;
  var bias = cfg.bias === undefined ? true : cfg.bias;
  var k3 = cfg.branch3_kernel === undefined ? 5 : cfg.branch3_kernel;
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
    branch1: chain([conv(cfg.in_channels, cfg.n1x1, 1)]),
    branch2: chain([conv(cfg.in_channels, cfg.n3x3_reduce, 1), conv(cfg.n3x3_reduce, cfg.n3x3, 3)]),
    branch3: chain([conv(cfg.in_channels, cfg.n5x5_reduce, 1), conv(cfg.n5x5_reduce, cfg.n5x5, k3)]),
    branch4: chain([conv(cfg.in_channels, cfg.pool_proj, 1)])
  }};
  var channels = {{ branch1: cfg.n1x1, branch2: cfg.n3x3, branch3: cfg.n5x5, branch4: cfg.pool_proj }};
  var result = {{ macs: 0, params: 0, out_channels: 0, branches: branches, channels: channels }};
  Object.keys(branches).forEach(function (name) {{
    result.macs += branches[name].macs;
    result.params += branches[name].params;
    result.out_channels += channels[name];
  }});
  return result;
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
#{id} .gnet-bar-reference {{ position: absolute; top: -0.15em; bottom: -0.15em; width: 2px; background: currentColor;
  opacity: 0.7; }}
#{id} .gnet-bar-value {{ text-align: right; font-variant-numeric: tabular-nums; }}
#{id} .gnet-note {{ margin: 0.4em 0 0 0; font-size: 0.9em; opacity: 0.85; }}
"""

# The part of the script that wires the controls to the formula; the formula, the element id and the JSON blobs
# are filled in by _script.
_SCRIPT = """
(function () {{
  "use strict";
  {formula}
  var root = document.getElementById({id_json});
  if (!root) {{ return; }}
  var defaults = {defaults_json};
  var fixed = {fixed_json};
  var colors = {colors_json};
  function formatCount(n) {{
    // Three significant digits and an SI prefix, like gnet.book.figures.format_count.
    var prefixes = [[1e12, " T"], [1e9, " G"], [1e6, " M"], [1e3, " k"]];
    for (var i = 0; i < prefixes.length; i++) {{
      if (n >= prefixes[i][0]) {{ return Number((n / prefixes[i][0]).toPrecision(3)) + prefixes[i][1]; }}
    }}
    return String(Number(n.toPrecision(3)));
  }}
  function exact(n) {{ return n.toLocaleString("en-US"); }}
  function ratio(a, b) {{ return "\\u00d7" + (a / b).toFixed(2); }}
  function config(widths) {{ return Object.assign({{}}, fixed, widths); }}
  var reference = gnetInceptionCounts(config(defaults));
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
    set("params", exact(counts.params));
    set("out-channels", exact(counts.out_channels));
    set("ratio-macs", ratio(counts.macs, reference.macs));
    set("ratio-params", ratio(counts.params, reference.params));
    set("ratio-out-channels", ratio(counts.out_channels, reference.out_channels));
    var scale = Math.max(counts.macs, reference.macs);
    Object.keys(counts.branches).forEach(function (name) {{
      var bar = root.querySelector('[data-bar="' + name + '"]');
      bar.style.width = (100 * counts.branches[name].macs / scale).toFixed(2) + "%";
      bar.style.background = colors[name];
      root.querySelector('[data-bar-reference="' + name + '"]').style.left =
        (100 * reference.branches[name].macs / scale).toFixed(2) + "%";
      root.querySelector('[data-bar-value="' + name + '"]').textContent = formatCount(counts.branches[name].macs);
    }});
    root.dataset.updates = String(parseInt(root.dataset.updates || "0", 10) + 1);
  }}
  inputs.forEach(function (input) {{ input.addEventListener("input", update); }});
  root.querySelector('button[data-action="reset"]').addEventListener("click", function () {{
    inputs.forEach(function (input) {{ input.value = defaults[input.dataset.width]; }});
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


def _controls_html(element_id: str, default_widths: dict[str, int], max_width: int) -> str:
    """A labelled range input and its shown value for each of the six widths."""
    esc = html.escape
    return "".join(
        f'<label for="{element_id}-{name}">{esc(WIDTH_LABELS[name])}</label>'
        f'<input type="range" id="{element_id}-{name}" data-width="{name}" min="1" max="{max_width}" step="1" '
        f'value="{default_widths[name]}" aria-label="{esc(WIDTH_LABELS[name])}">'
        f'<output data-width="{name}" for="{element_id}-{name}">{default_widths[name]}</output>'
        for name in WIDTH_FIELDS
    )


def _counts_table_html(counts: BlockCounts, reference_name: str, bias: bool) -> str:
    """The table of MACs, parameters and output channels, filled with ``counts`` until the script runs."""
    bias_note = "weights and biases" if bias else "weights only (no biases)"
    rows = "".join(
        f'<tr><td>{label}</td><td data-gnet="{field}">{shown}</td><td>{reference:,}</td>'
        f'<td data-gnet="ratio-{field}">×1.00</td></tr>'
        for label, field, shown, reference in (
            ("MACs", "macs", f"{counts.macs:,} ({format_count(counts.macs)})", counts.macs),
            (
                f"Parameters ({bias_note})",
                "params",
                f"{counts.params:,}",  # exact: no "k", which the page's paper numbers write as K = 1024
                counts.params,
            ),
            ("Output channels", "out-channels", f"{counts.out_channels:,}", counts.out_channels),
        )
    )
    return (
        f"<table><thead><tr><th></th><th>this setting</th><th>{html.escape(reference_name)}</th><th>ratio</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
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
            f'<span class="gnet-bar-value" data-bar-value="{name}">{format_count(counts.branch_macs[name])}</span>'
            "</div>"
        )
    return f'<div class="gnet-bars">{"".join(rows)}</div>'


def _script(element_id: str, defaults: InceptionSpec, height: int, width: int, branch3_kernel: int, bias: bool) -> str:
    """The explorer's JavaScript: the formula, and the wiring of the controls to it."""
    # What the sliders do not change; the formula's cfg is this plus the six widths.
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
    )


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
    runs come from :func:`gnet.analysis.spec_counts`, so the page is right even with JavaScript off.
    Needs no kernel and no network; ``element_id`` (default: a fresh ``gnet-explorer-N``) must be unique on the
    page. ``title`` and ``reference_name`` default to the paper's block name when ``defaults`` is one of
    :data:`~gnet.table1.INCEPTION_SPECS` (e.g. "the paper's 3a").
    """
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
    element_id = _check_element_id(element_id)

    block_name = _paper_block_name(defaults)
    if title is None:
        title = f"Inception {block_name or 'block'} explorer (computed in your browser)"
    if reference_name is None:
        reference_name = f"the paper's {block_name}" if block_name else "the default setting"

    counts = spec_counts(defaults, height, width, branch3_kernel=branch3_kernel, bias=bias)
    kernel_note = "" if branch3_kernel == 5 else f" Branch 3 uses a {branch3_kernel}×{branch3_kernel} kernel."
    esc = html.escape
    return (
        f'<div id="{element_id}" class="gnet-explorer" data-ready="false">'
        f"<style>{_CSS.format(id=element_id)}</style>"
        f'<p class="gnet-title">{esc(title)}</p>'
        f'<p class="gnet-sub">Input: {height}×{width}×{defaults.in_channels}. Move a slider: the counts use the '
        f"closed form C<sub>in</sub>·C<sub>out</sub>·k²·H·W per convolution, computed by this page itself "
        f"(no kernel, no network).{kernel_note}</p>"
        f'<div class="gnet-controls">{_controls_html(element_id, default_widths, max_width)}</div>'
        f'<button type="button" data-action="reset">Reset to {esc(reference_name)}</button>'
        f"{_counts_table_html(counts, reference_name, bias)}"
        f"{_branch_bars_html(counts)}"
        f'<p class="gnet-note">Bars: MACs per branch (1×1, 3×3, 5×5, pool); the thin line marks '
        f"{esc(reference_name)}. Pooling and concatenation cost no multiply-adds.</p>"
        f'<noscript><p class="gnet-note">This explorer needs JavaScript; the numbers above are '
        f"{esc(reference_name)}'s.</p></noscript>"
        f"<script>{_script(element_id, defaults, height, width, branch3_kernel, bias)}</script></div>"
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
    _check_spec("spec", spec)
    for name, value in (("height", height), ("width", width), ("threads", threads)):
        positive_int(name, value)
    start = time.perf_counter()
    with _torch_threads(threads), torch.no_grad():
        block = Inception.from_spec(spec, branch3_kernel=branch3_kernel)
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

        self.defaults = _check_spec("defaults", defaults)
        self.height, self.width, self.branch3_kernel = height, width, branch3_kernel
        default_widths = _widths(defaults)
        max_width = _default_max_width(default_widths) if max_width is None else positive_int("max_width", max_width)
        self._reference_label = "paper's" if _paper_block_name(defaults) else "default"
        self.reference = measure_inception(defaults, height, width, branch3_kernel=branch3_kernel)
        self.latencies_ms: list[float] = []
        self.last: LiveCounts = self.reference
        self.sliders = {
            name: widgets.IntSlider(
                value=default_widths[name],
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
        reset = widgets.Button(description=f"Reset to the {self._reference_label} widths")
        reset.on_click(lambda _button: self.set_widths(**default_widths))
        for slider in self.sliders.values():
            slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([*self.sliders.values(), reset, self.output])
        self._show(self.reference)

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

    def _on_change(self, _change: object) -> None:
        start = time.perf_counter()
        spec = self.defaults._replace(**self.widths())
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
            f"<table><tr><th></th><th>this setting</th><th>{self._reference_label} setting</th><th>ratio</th></tr>"
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
