"""A whole-network budget explorer: given a fixed budget, how should GoogLeNet spread its widths across scales?

Chapter 4's explorer (:mod:`gnet.book.explorer`) prices one Inception block. This one prices the whole network
of chapter 5: the stem, the nine modules and the classifier. A module's input is the previous module's output, so
widening one module also makes the next one dearer (the *knock-on*), and the explorer shows both.

* :func:`network_counts` is the closed form: per stage, MACs, parameters, input and output channels and the map
  side, for a :class:`NetworkBudget` (any module's six widths, gnet's width multiplier, the input resolution, and
  three switches: the naive module of the paper's Figure 2a, torchvision's 3×3 "5×5" branch, BatchNorm).
* :func:`build_network` builds the real network for a budget (``gnet.googlenet`` with the same switches, its
  modules rebuilt with the budget's widths, since ``gnet.googlenet`` has no switch for per-module widths or naive
  modules) and :func:`measure_network` measures it with fvcore. The tests check the closed form and its
  JavaScript twin against it, stage by stage, on many random budgets.
* :func:`static_budget_explorer_html` is the **static web page** version: self-contained HTML and vanilla
  JavaScript whose formula (:data:`BUDGET_FORMULA_JS`, between :data:`BUDGET_FORMULA_BEGIN` and
  :data:`BUDGET_FORMULA_END`) mirrors :func:`network_counts`. No kernel, no network.
* :func:`budget_sliders` is the **live** version: ipywidgets whose callback builds the network and measures it with
  fvcore. It needs a kernel (in a static page callbacks never run: ipywidgets #2069, #3319).

What is counted, and the three marks. MACs are convolutions plus the linear layer, as fvcore counts them
(:func:`gnet.analysis.count_macs`'s default: one multiply-add is one fvcore "flop"; max pooling, ReLU, LRN and
concatenation cost nothing, and BatchNorm's elementwise work is left out as the paper's "ops" and torchvision's
``_ops`` leave it out). Parameters are weights and biases (BatchNorm: its scale and shift), no aux heads. The
marks (:func:`budget_marks`) are measured or summed, never typed in: gnet's ``googlenet()`` at 224 px
(fvcore), torchvision's ``googlenet`` (fvcore on ``weights=None``; its docs round the same count to 1.498 G),
and the paper's Table 1 ops column summed (1,502M, its "1.5 billion"). With the 3×3 and BatchNorm switches at
224 px the explorer reproduces torchvision's counts exactly; with no switch, gnet's.

Why hand-written JavaScript and not a plotting library. A declarative library such as Altair (Vega-Lite
parameters bound to sliders) is not installed here; using it offline means vendoring vega, vega-lite and
vega-embed (several hundred kB of minified JavaScript, with their licences and a script to refresh them). Its
parameters drive *encodings* of a fixed data table, while this explorer's data are themselves the result of a
chain (module ``i``'s output widths are module ``i+1``'s input), which would have to be written as Vega
expressions, a second copy of the formula that node cannot run on its own. The vanilla JavaScript here (a
formula of about fifty lines around chapter 4's block formula, and the wiring of the controls) follows chapter
4's pattern, needs nothing vendored, is tested with ``node`` against fvcore, and draws its bars as plain ``div``
elements whose numbers the browser tests read directly.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import nn

from gnet._validate import positive_int
from gnet.analysis import conv_counts, count_macs, count_params, inception_counts, naive_inception_counts
from gnet.book.claims import reference_counts, stage_shapes, table1_totals, zero_filled
from gnet.book.explorer import EXPLORER_FORMULA_JS, WIDTH_LABELS, short_macs, torch_threads
from gnet.model import GoogLeNet, GoogLeNetConfig, Inception, NaiveInception, googlenet
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS, InceptionSpec

__all__ = [
    "MODULES",
    "STAGES",
    "OUTPUT_WIDTHS",
    "NetworkBudget",
    "StageCounts",
    "NetworkCounts",
    "map_sizes",
    "network_counts",
    "build_network",
    "measure_network",
    "ChannelPrice",
    "channel_prices",
    "BudgetMarks",
    "budget_marks",
    "BUDGET_FORMULA_BEGIN",
    "BUDGET_FORMULA_END",
    "BUDGET_FORMULA_JS",
    "static_budget_explorer_html",
    "static_budget_explorer",
    "BudgetSliders",
    "budget_sliders",
]

#: The nine Inception modules, in network order ("inception3a" … "inception5b").
MODULES: tuple[str, ...] = tuple(INCEPTION_SPECS)
#: What the explorer prices, in network order: the stem (conv1, conv2, conv3), the nine modules, the classifier.
STAGES: tuple[str, ...] = ("stem", *MODULES, "classifier")
#: The widths whose sum is a module's output (the other two, the reductions, stay inside the module).
OUTPUT_WIDTHS: tuple[str, ...] = ("n1x1", "n3x3", "n5x5", "pool_proj")
#: Widths the naive module (the paper's Figure 2a) does not have: its pool branch passes its input through.
NAIVE_UNUSED: tuple[str, ...] = ("n3x3_reduce", "n5x5_reduce", "pool_proj")

# The static explorer's ranges: every width from 1 to twice Table 1's widest (384, in 5b); gnet's multiplier in
# hundredths; inputs from 32 px (5b's map is then 1×1) to 512.
_MAX_WIDTH = 2 * max(getattr(spec, name) for spec in INCEPTION_SPECS.values() for name in WIDTH_FIELDS)
_MULTIPLIER_RANGE = (0.25, 2.0, 0.05)
_IMAGE_SIZE_RANGE = (32, 512)


def short_stage(stage: str) -> str:
    """The name a reader knows a stage by: "inception3a" -> "3a"; "stem" and "classifier" stay."""
    return stage.removeprefix("inception")


# ------------------------------------------------------------------------------------------------------------
# The budget: one network's widths and switches
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkBudget:
    """One whole-network setting. The defaults are the paper's network (``gnet.googlenet()``) at 224 px.

    ``widths`` overrides Table 1's widths of some modules, at Table 1's scale, e.g.
    ``{"inception3a": {"n1x1": 128}}``; the width multiplier then scales every channel count, stem included, as
    ``gnet.googlenet(width=...)`` does (:meth:`gnet.GoogLeNetConfig.channels`).
    """

    widths: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # module -> width -> channels
    width: float = 1.0  # gnet's width multiplier (GoogLeNetConfig.width)
    image_size: int = 224  # square input, pixels
    naive: bool = False  # every module the naive one of Figure 2a (gnet.NaiveInception): no reductions
    branch3_kernel: int = 5  # 5 in the paper; torchvision's "5×5" branch is 3×3 (pytorch/vision#906)
    batch_norm: bool = False  # BatchNorm after every convolution (torchvision); naive modules have none
    num_classes: int = 1000  # ImageNet

    def __post_init__(self) -> None:
        # GoogLeNetConfig checks the switches it shares with us, with its own messages.
        GoogLeNetConfig(width=self.width, branch3_kernel=self.branch3_kernel, num_classes=self.num_classes)
        positive_int("image_size", self.image_size)
        for name in ("naive", "batch_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.widths, Mapping):
            raise ValueError(f"widths must map module names to widths, got {type(self.widths).__name__}")
        checked: dict[str, dict[str, int]] = {}
        for module, widths in self.widths.items():
            if module not in INCEPTION_SPECS:
                raise ValueError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")
            if not isinstance(widths, Mapping):
                raise ValueError(f"widths[{module!r}] must map width names to ints, got {widths!r}")
            unknown = sorted(set(widths) - set(WIDTH_FIELDS))
            if unknown:
                raise ValueError(f"unknown widths {unknown} for {module}; expected some of {', '.join(WIDTH_FIELDS)}")
            checked[module] = {name: positive_int(f"{module}.{name}", value) for name, value in widths.items()}
        object.__setattr__(self, "widths", checked)

    def module_widths(self, module: str) -> dict[str, int]:
        """The six widths of ``module`` at Table 1's scale: the paper's, with this budget's overrides."""
        if module not in INCEPTION_SPECS:
            raise ValueError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")
        paper = INCEPTION_SPECS[module]
        return {name: self.widths.get(module, {}).get(name, getattr(paper, name)) for name in WIDTH_FIELDS}

    def with_widths(self, module: str, **widths: int) -> NetworkBudget:
        """This budget with some of ``module``'s widths set, e.g. ``with_widths("inception3a", n1x1=128)``."""
        merged = {m: dict(w) for m, w in self.widths.items()}
        merged.setdefault(module, {}).update(widths)
        return replace(self, widths=merged)

    def without_widths(self, module: str) -> NetworkBudget:
        """This budget with ``module`` back at Table 1's widths."""
        return replace(self, widths={m: w for m, w in self.widths.items() if m != module})

    def channels(self, c: int) -> int:
        """A Table 1 channel count scaled by the multiplier, as gnet builds it (never below 1)."""
        return GoogLeNetConfig(width=self.width).channels(c)

    def to_js(self) -> dict[str, object]:
        """The JavaScript formula's input: every module's six widths, and the switches under the same names."""
        return {
            "widths": {module: self.module_widths(module) for module in MODULES},
            "width": self.width,
            "image_size": self.image_size,
            "naive": self.naive,
            "branch3_kernel": self.branch3_kernel,
            "batch_norm": self.batch_norm,
            "num_classes": self.num_classes,
        }


# ------------------------------------------------------------------------------------------------------------
# The closed form
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCounts:
    """One stage's cost: MACs (conv + linear), parameters, channels in and out, and the side of its map."""

    name: str
    macs: int
    params: int
    in_channels: int
    out_channels: int
    size: int  # the map its convolutions work on (the stem: conv2 and conv3's; the classifier: 1)


@dataclass(frozen=True)
class NetworkCounts:
    """The cost of every stage, in network order (:data:`STAGES`), and the totals."""

    stages: tuple[StageCounts, ...]

    @property
    def macs(self) -> int:
        return sum(stage.macs for stage in self.stages)

    @property
    def params(self) -> int:
        return sum(stage.params for stage in self.stages)

    def __getitem__(self, name: str) -> StageCounts:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r}; expected one of {', '.join(STAGES)}")


def _pool_out(side: int) -> int:
    # The paper's max pool, 3×3/2 with padding 1 (gnet's pool_style="paper"): 112 -> 56 -> 28 -> 14 -> 7.
    return (side - 1) // 2 + 1


def map_sizes(image_size: int) -> dict[str, int]:
    """The map side each stage works on, for a square input: ``conv1`` (7×7/2), then the ``stem``'s 1×1 and 3×3
    after the first max pool, then stages 3, 4 and 5 after one more max pool each (keys "3", "4", "5")."""
    positive_int("image_size", image_size)
    conv1 = (image_size - 1) // 2 + 1  # 7×7/2 with padding 3
    stem = _pool_out(conv1)
    stage3 = _pool_out(stem)
    stage4 = _pool_out(stage3)
    return {"conv1": conv1, "stem": stem, "3": stage3, "4": stage4, "5": _pool_out(stage4)}


def _stem_counts(budget: NetworkBudget, sizes: dict[str, int]) -> StageCounts:
    ch, bn = budget.channels, budget.batch_norm
    convs = [(3, ch(64), 7, sizes["conv1"]), (ch(64), ch(64), 1, sizes["stem"]), (ch(64), ch(192), 3, sizes["stem"])]
    macs = params = 0
    for cin, cout, k, side in convs:
        m, p = conv_counts(cin, cout, k, side, side, bias=not bn)
        macs, params = macs + m, params + p + (2 * cout if bn else 0)
    return StageCounts("stem", macs, params, 3, ch(192), sizes["stem"])


def network_counts(budget: NetworkBudget | None = None) -> NetworkCounts:
    """The closed form of the whole network: each convolution costs ``C_in · C_out · k² · H · W`` MACs, the
    classifier ``C_in · classes``, and module ``i`` reads what module ``i-1`` writes. Mirrored exactly by the
    static page's :data:`BUDGET_FORMULA_JS` and checked against :func:`measure_network` by the tests."""
    budget = NetworkBudget() if budget is None else budget
    if not isinstance(budget, NetworkBudget):
        raise ValueError(f"budget must be a NetworkBudget, got {type(budget).__name__}")
    sizes = map_sizes(budget.image_size)
    stages = [_stem_counts(budget, sizes)]
    in_channels = stages[0].out_channels
    for module in MODULES:
        side = sizes[module[-2]]  # "inception4c" -> stage "4"
        w = {name: budget.channels(value) for name, value in budget.module_widths(module).items()}
        k = budget.branch3_kernel
        if budget.naive:
            block = naive_inception_counts(in_channels, w["n1x1"], w["n3x3"], w["n5x5"], side, side, branch3_kernel=k)
        else:
            spec = InceptionSpec(in_channels, **w)
            block = inception_counts(*spec.source_args(), side, side, branch3_kernel=k, batch_norm=budget.batch_norm)
        stages.append(StageCounts(module, block.macs, block.params, in_channels, block.out_channels, side))
        in_channels = block.out_channels
    classes = budget.num_classes
    stages.append(StageCounts("classifier", in_channels * classes, in_channels * classes + classes, in_channels,
                              classes, 1))  # fmt: skip
    return NetworkCounts(tuple(stages))


# ------------------------------------------------------------------------------------------------------------
# The real network, measured with fvcore
# ------------------------------------------------------------------------------------------------------------

_STAGE_MODULES = {"stem": ("conv1", "conv2", "conv3"), **{m: (m,) for m in MODULES}, "classifier": ("fc",)}


def build_network(budget: NetworkBudget | None = None) -> GoogLeNet:
    """The network a budget describes, without aux heads, with zero weights (no count depends on them).

    ``gnet.googlenet`` builds the stem, the pools and the head with the budget's multiplier, branch-3 kernel and
    BatchNorm switch; it has no switch for per-module widths or naive modules, so each module is then rebuilt
    with :class:`gnet.Inception` (or :class:`gnet.NaiveInception`) on the previous module's output, and the
    classifier on 5b's. With the paper's widths the result is ``gnet.googlenet(aux_logits=False, ...)`` exactly
    (the tests compare the two). Built on the ``meta`` device, then given zero-filled memory: random
    initialisation would dominate the time, for nothing.
    """
    budget = NetworkBudget() if budget is None else budget
    with torch.device("meta"):
        model = googlenet(
            aux_logits=False, width=budget.width, branch3_kernel=budget.branch3_kernel,
            batch_norm=budget.batch_norm, num_classes=budget.num_classes, init="torch",
        )  # fmt: skip
        in_channels = model.inception3a.in_channels
        for module in MODULES:
            w = {name: budget.channels(value) for name, value in budget.module_widths(module).items()}
            if budget.naive:
                block: nn.Module = NaiveInception(
                    in_channels, w["n1x1"], w["n3x3"], w["n5x5"], branch3_kernel=budget.branch3_kernel
                )
            else:
                block = Inception.from_spec(
                    InceptionSpec(in_channels, **w), branch3_kernel=budget.branch3_kernel,
                    batch_norm=budget.batch_norm,
                )  # fmt: skip
            setattr(model, module, block)
            in_channels = block.out_channels
        model.num_features = in_channels
        model.fc = nn.Linear(in_channels, budget.num_classes)
    return zero_filled(model)


def measure_network(budget: NetworkBudget | None = None) -> NetworkCounts:
    """:func:`build_network` measured: MACs by fvcore (conv + linear), parameters counted, channels read off the
    modules and map sides off a forward pass (on the ``meta`` device)."""
    budget = NetworkBudget() if budget is None else budget
    model = build_network(budget)
    input_size = (1, 3, budget.image_size, budget.image_size)
    by_module = count_macs(model, input_size).by_module
    shapes = stage_shapes(model, ["conv3", *MODULES], input_size)
    stages = []
    for stage, names in _STAGE_MODULES.items():
        modules = [model.get_submodule(name) for name in names]
        if stage == "classifier":
            channels, size = (model.fc.in_features, model.fc.out_features), 1
        elif stage == "stem":
            channels, size = (3, model.conv3.conv.out_channels), shapes["conv3"][-1]
        else:
            channels, size = (modules[0].in_channels, modules[0].out_channels), shapes[stage][-1]
        stages.append(
            StageCounts(stage, sum(by_module.get(n, 0) for n in names), sum(count_params(m) for m in modules),
                        *channels, size)
        )  # fmt: skip
    return NetworkCounts(tuple(stages))


# ------------------------------------------------------------------------------------------------------------
# What one more channel costs: the seed question in numbers
# ------------------------------------------------------------------------------------------------------------


class ChannelPrice(NamedTuple):
    """What one more output channel of a branch costs: in its own module, and downstream (the knock-on)."""

    own_macs: int
    knock_on_macs: int
    own_params: int
    knock_on_params: int


def channel_prices(module: str, budget: NetworkBudget | None = None) -> dict[str, ChannelPrice]:
    """For each output width of ``module`` (:data:`OUTPUT_WIDTHS`), the MACs and parameters one more channel
    (at Table 1's scale) adds to ``module`` itself and to the stages after it, which read one more channel."""
    budget = NetworkBudget() if budget is None else budget
    base = network_counts(budget)
    current = budget.module_widths(module)
    index = STAGES.index(module)
    prices = {}
    for name in OUTPUT_WIDTHS:
        wider = network_counts(budget.with_widths(module, **{name: current[name] + 1}))
        deltas = [(w.macs - b.macs, w.params - b.params) for w, b in zip(wider.stages, base.stages, strict=True)]
        downstream = deltas[index + 1 :]
        prices[name] = ChannelPrice(
            deltas[index][0], sum(d[0] for d in downstream), deltas[index][1], sum(d[1] for d in downstream)
        )
    return prices


# ------------------------------------------------------------------------------------------------------------
# The marks: what the totals are compared with
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetMarks:
    """The totals the explorer marks, each measured (fvcore, conv + linear, at 224 px) or summed."""

    gnet_macs: int  # gnet.googlenet(aux_logits=False), the paper's network
    gnet_params: int
    torchvision_macs: int  # torchvision.models.googlenet(weights=None, aux_logits=False)
    torchvision_params: int
    torchvision_documented_gmacs: float  # torchvision's GoogLeNet_Weights meta "_ops" ("GFLOPS", really GMACs)
    table1_macs: int  # the paper's Table 1 ops column, summed


@functools.cache
def budget_marks() -> BudgetMarks:
    """Measure the marks (about two seconds, once per process): gnet's network and torchvision's with fvcore,
    torchvision's documented ``_ops`` read from its weights' metadata (nothing is downloaded), Table 1 summed."""
    import torchvision

    with torch.device("meta"):
        paper = googlenet(aux_logits=False, init="torch")
    gnet_params = count_params(paper)
    gnet_macs = count_macs(zero_filled(paper), (1, 3, 224, 224)).total
    tv = reference_counts("googlenet")
    documented = float(torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["_ops"])
    return BudgetMarks(gnet_macs, gnet_params, tv.macs, tv.params, documented, round(table1_totals().macs))


def _mark_rows(marks: BudgetMarks) -> dict[str, list[tuple[str, str, int]]]:
    """Each total's marks: (key, label, value), in the order the legend lists them."""
    documented = f"{marks.torchvision_documented_gmacs:g} G"
    return {
        "macs": [
            ("gnet", "gnet.googlenet(), measured", marks.gnet_macs),
            ("torchvision", f"torchvision googlenet, measured (its docs: {documented})", marks.torchvision_macs),
            ("table1", "Table 1's ops column, summed", marks.table1_macs),
        ],
        "params": [
            ("gnet", "gnet.googlenet(), counted", marks.gnet_params),
            ("torchvision", "torchvision googlenet, counted", marks.torchvision_params),
        ],
    }


# ------------------------------------------------------------------------------------------------------------
# The static explorer: HTML + vanilla JavaScript, no kernel, no network
# ------------------------------------------------------------------------------------------------------------

# The whole-network closed form in JavaScript, around chapter 4's block formula (one home for a block's counts).
# The tests cut this text out of the emitted HTML and run it with node against fvcore.
BUDGET_FORMULA_BEGIN = "/* gnet-budget-formula:begin */"
BUDGET_FORMULA_END = "/* gnet-budget-formula:end */"
BUDGET_FORMULA_JS = (
    BUDGET_FORMULA_BEGIN
    + "\n"
    + EXPLORER_FORMULA_JS
    + "\nvar GNET_MODULES = "
    + json.dumps(list(MODULES))
    + ";\n"
    + """function gnetChannels(c, multiplier) {
  // GoogLeNetConfig.channels: max(1, round(c * width)), with Python's round (a half goes to the even side).
  var x = c * multiplier, low = Math.floor(x), rest = x - low;
  var rounded = rest > 0.5 ? low + 1 : rest < 0.5 ? low : low % 2 === 0 ? low : low + 1;
  return Math.max(1, rounded);
}
function gnetPoolOut(side) { return Math.floor((side - 1) / 2) + 1; }  // the paper's 3x3/2 max pool, padding 1
function gnetMapSizes(imageSize) {
  var conv1 = Math.floor((imageSize - 1) / 2) + 1;  // 7x7/2, padding 3
  var stem = gnetPoolOut(conv1), s3 = gnetPoolOut(stem), s4 = gnetPoolOut(s3);
  return { conv1: conv1, stem: stem, "3": s3, "4": s4, "5": gnetPoolOut(s4) };
}
function gnetNetworkCounts(net) {
  // net: NetworkBudget.to_js(). Returns the stages in network order and the totals, like network_counts.
  var ch = function (c) { return gnetChannels(c, net.width); };
  var sizes = gnetMapSizes(net.image_size), bn = net.batch_norm === true;
  function at(side, extra) {
    return Object.assign({ height: side, width: side, bias: true, batch_norm: bn,
      branch3_kernel: net.branch3_kernel }, extra || {});
  }
  var stemParts = [gnetConvCounts(at(sizes.conv1), 3, ch(64), 7), gnetConvCounts(at(sizes.stem), ch(64), ch(64), 1),
    gnetConvCounts(at(sizes.stem), ch(64), ch(192), 3)];
  var stem = { name: "stem", macs: 0, params: 0, in_channels: 3, out_channels: ch(192), size: sizes.stem };
  stemParts.forEach(function (c) { stem.macs += c.macs; stem.params += c.params; });
  var stages = [stem], cin = stem.out_channels;
  GNET_MODULES.forEach(function (name) {
    var side = sizes[name.charAt(name.length - 2)], w = net.widths[name];
    var cfg = at(side, { in_channels: cin, n1x1: ch(w.n1x1), n3x3_reduce: ch(w.n3x3_reduce), n3x3: ch(w.n3x3),
      n5x5_reduce: ch(w.n5x5_reduce), n5x5: ch(w.n5x5), pool_proj: ch(w.pool_proj) });
    // gnet.NaiveInception has no BatchNorm: its convolutions keep their biases.
    var block = net.naive ? gnetNaiveInceptionCounts(Object.assign(cfg, { batch_norm: false }))
      : gnetInceptionCounts(cfg);
    stages.push({ name: name, macs: block.macs, params: block.params, in_channels: cin,
      out_channels: block.out_channels, size: side });
    cin = block.out_channels;
  });
  var classes = net.num_classes;
  stages.push({ name: "classifier", macs: cin * classes, params: cin * classes + classes, in_channels: cin,
    out_channels: classes, size: 1 });
  var total = { stages: stages, macs: 0, params: 0 };
  stages.forEach(function (s) { total.macs += s.macs; total.params += s.params; });
  return total;
}
"""
    + BUDGET_FORMULA_END
)

_element_ids = itertools.count(1)

# Colours come from pydata-sphinx-theme's variables (they follow its light and dark modes), with fallbacks that
# read on white and on black; "__ID__" is the explorer's element id.
_CSS = """
#__ID__ { --gnet-border: var(--pst-color-border, rgba(127, 127, 127, 0.45));
  --gnet-macs: var(--pst-color-primary, #1f77b4); --gnet-params: var(--pst-color-secondary, #8c6bb1);
  --gnet-knock: var(--pst-color-accent, #d62728); box-sizing: border-box; border: 1px solid var(--gnet-border);
  border-radius: 6px; padding: 0.8em 1em; margin: 0.8em 0; max-width: 50em; font-size: 0.92em; line-height: 1.35;
  color: var(--pst-color-text-base, currentColor); background: var(--pst-color-on-background, transparent); }
html[data-theme="dark"] .cell_output .text_html:has(> #__ID__) { background: transparent; padding: 0;
  color: inherit; }
#__ID__ * { box-sizing: border-box; }
#__ID__ p { margin: 0 0 0.5em 0; }
#__ID__ .gnet-title { font-weight: bold; margin-bottom: 0.2em; }
#__ID__ .gnet-sub, #__ID__ .gnet-note { opacity: 0.85; }
#__ID__ .gnet-note { font-size: 0.9em; margin: 0.4em 0 0 0; }
#__ID__ .gnet-section { border-top: 1px solid var(--gnet-border); margin-top: 0.6em; padding-top: 0.6em; }
#__ID__ .gnet-head { font-weight: bold; margin-bottom: 0.3em; }
#__ID__ .gnet-controls { display: grid; grid-template-columns: 10em minmax(0, 1fr) 5em; gap: 0.2em 0.6em;
  align-items: center; }
#__ID__ .gnet-controls input[type=range] { display: block; width: 100%; margin: 0.4em 0;
  accent-color: var(--pst-color-primary, auto); }
#__ID__ input[type=number], #__ID__ select { width: 100%; min-width: 0; padding: 0.15em 0.3em; font: inherit;
  color: inherit; background: var(--pst-color-background, transparent); border: 1px solid var(--gnet-border);
  border-radius: 4px; }
#__ID__ input[type=number] { text-align: right; font-variant-numeric: tabular-nums; }
#__ID__ select { width: auto; }
#__ID__ input:disabled { opacity: 0.45; }
#__ID__ .gnet-toggles { display: flex; flex-wrap: wrap; gap: 0.2em 1.2em; margin: 0.4em 0; }
#__ID__ .gnet-toggles input { accent-color: var(--pst-color-primary, auto); }
#__ID__ button { margin: 0.5em 0.5em 0.3em 0; padding: 0.2em 0.7em; border: 1px solid var(--gnet-border);
  border-radius: 4px; background: var(--pst-color-surface, rgba(127, 127, 127, 0.12)); color: inherit;
  cursor: pointer; font: inherit; }
#__ID__ .gnet-knock-on { padding: 0.4em 0.6em; border-left: 3px solid var(--gnet-knock);
  background: rgba(127, 127, 127, 0.1); }
#__ID__ .gnet-num { font-variant-numeric: tabular-nums; white-space: nowrap; }
#__ID__ .gnet-total { margin: 0.3em 0 0.1em 0; }
#__ID__ .gnet-track { position: relative; height: 1em; background: rgba(127, 127, 127, 0.15); border-radius: 2px; }
#__ID__ .gnet-total .gnet-track { height: 1.2em; margin: 0.5em 0 0.3em 0; }
#__ID__ .gnet-bar { height: 100%; border-radius: 2px; background: var(--gnet-macs); }
#__ID__ .gnet-params-chart .gnet-bar, #__ID__ .gnet-total-params .gnet-bar { background: var(--gnet-params); }
#__ID__ .gnet-mark, #__ID__ .gnet-swatch { border-left: 2px solid currentColor; }
#__ID__ .gnet-mark { position: absolute; top: -0.35em; bottom: -0.35em; width: 0; margin-left: -1px; }
#__ID__ .gnet-swatch { display: inline-block; width: 0.6em; height: 1em; vertical-align: -0.15em; }
#__ID__ [data-mark="torchvision"] { border-left-style: dashed; }
#__ID__ [data-mark="table1"] { border-left-style: dotted; border-left-width: 3px; }
#__ID__ table { display: table; border-collapse: collapse; width: 100%; margin: 0.2em 0 0.4em 0; }
#__ID__ th, #__ID__ td { padding: 0.15em 0.4em; text-align: right; vertical-align: top;
  border-bottom: 1px solid var(--gnet-border); font-variant-numeric: tabular-nums; }
#__ID__ th:first-child, #__ID__ td:first-child { text-align: left; padding-left: 0; }
#__ID__ tbody th { font-weight: normal; }
#__ID__ .gnet-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(19em, 1fr)); gap: 0.3em 1.5em; }
#__ID__ .gnet-row { display: grid; grid-template-columns: 5.5em 6.2em minmax(0, 1fr) 4.3em; gap: 0.4em;
  align-items: center; margin: 0.1em 0; padding: 0 0.15em; border-radius: 3px; }
#__ID__ .gnet-params-chart .gnet-row { grid-template-columns: 5.5em minmax(0, 1fr) 4.3em; }
#__ID__ .gnet-io { font-size: 0.85em; opacity: 0.85; text-align: right; white-space: nowrap; }
#__ID__ .gnet-value { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#__ID__ .gnet-reference { position: absolute; top: -0.15em; bottom: -0.15em; width: 2px; margin-left: -1px;
  background: currentColor; opacity: 0.6; }
#__ID__ .gnet-row.gnet-picked { background: rgba(127, 127, 127, 0.18); font-weight: bold; }
#__ID__ .gnet-row.gnet-knock .gnet-bar, #__ID__ .gnet-key-knock { background: var(--gnet-knock); }
#__ID__ .gnet-edited .gnet-name::after { content: " \\2022"; }
#__ID__ .gnet-key { display: inline-block; width: 0.9em; height: 0.7em; margin-right: 0.3em; border-radius: 2px; }
#__ID__ .gnet-key-picked { background: rgba(127, 127, 127, 0.35); }
@media (max-width: 40em) {
  #__ID__ { padding: 0.7em 0.6em; }
  #__ID__ .gnet-controls { grid-template-columns: minmax(0, 1fr) 5.5em; grid-auto-flow: row dense; }
  #__ID__ .gnet-controls input[type=range] { grid-column: 1 / -1; }
  #__ID__ .gnet-charts { grid-template-columns: minmax(0, 1fr); }
  #__ID__ .gnet-row { grid-template-columns: 5.2em 5.8em minmax(0, 1fr) 4em; gap: 0.3em; font-size: 0.9em; }
  #__ID__ .gnet-params-chart .gnet-row { grid-template-columns: 5.2em minmax(0, 1fr) 4em; }
  #__ID__ table { font-size: 0.88em; }
  #__ID__ th, #__ID__ td { padding: 0.15em 0.2em; }
}
"""
# Why the rule on .cell_output, "display: table" and "dense": as in gnet.book.explorer (the dark theme's light
# panel comes off this output only; the book's layout.css would turn the tables into scroll boxes; each slider
# takes its own row on a phone, its number box beside its label). Why 5.5em for a stage's name: "classifier".

# The wiring of the controls to the formula. "__GNET_*__" markers are filled in by _script.
_SCRIPT = """
(function () {
  "use strict";
  __GNET_FORMULA__
  var root = document.getElementById(__GNET_ID__);
  if (!root) { return; }
  var initial = __GNET_BUDGET__;
  var marks = __GNET_MARKS__;
  var PAPER = JSON.parse(JSON.stringify(initial.widths));
  var net = JSON.parse(JSON.stringify(initial));
  var picked = __GNET_PICKED__;
  var MINUS = "\\u2212", TIMES = "\\u00d7";
  function q(selector) { return root.querySelector(selector); }
  function qa(selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }
  function el(name) { return q('[data-gnet="' + name + '"]'); }
  function set(name, text) { el(name).textContent = text; }
  function exact(n) { return n.toLocaleString("en-US"); }
  function signed(n) { return (n < 0 ? MINUS : "+") + exact(Math.abs(n)); }
  function shortCount(n) {
    // Like gnet.book.explorer.short_macs: M or G, exact below a million, never "k" (the prose's K is 1024).
    var scales = [[1e9, " G"], [1e6, " M"]];
    for (var i = 0; i < scales.length; i++) {
      if (n >= scales[i][0]) { return Number((n / scales[i][0]).toPrecision(3)) + scales[i][1]; }
    }
    return exact(n);
  }
  function withShort(n) { return exact(n) + (n >= 1e6 ? " (" + shortCount(n) + ")" : ""); }
  function ratio(a, b) { return TIMES + (a / b).toFixed(2); }
  function short(stage) { return stage.replace("inception", ""); }
  function copy(o) { return JSON.parse(JSON.stringify(o)); }
  function netControl(name, kind) { return q('input[type="' + kind + '"][data-net="' + name + '"]'); }
  function widthControl(field, kind) { return q('input[type="' + kind + '"][data-width="' + field + '"]'); }
  // How a network control's value is read: the multiplier in hundredths (as NetworkBudget takes it), pixels whole.
  var READ = { width: function (v) { return Math.round(v * 100) / 100; }, image_size: Math.round };
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function edited(module) {
    return __GNET_FIELDS__.some(function (f) { return net.widths[module][f] !== PAPER[module][f]; });
  }

  function showModule() {
    // The picked module's widths in the six controls; in naive mode the three it does not have are off.
    __GNET_FIELDS__.forEach(function (f) {
      ["range", "number"].forEach(function (kind) {
        var input = widthControl(f, kind);
        input.value = String(net.widths[picked][f]);
        input.disabled = net.naive && __GNET_NAIVE_UNUSED__.indexOf(f) >= 0;
      });
    });
    el("naive-note").hidden = !net.naive;
    set("reset-module-name", short(picked));
  }
  function showIo(counts) {
    var i = __GNET_STAGES__.indexOf(picked), s = counts.stages[i], next = counts.stages[i + 1];
    var source = i === 1 ? "the stem" : short(__GNET_STAGES__[i - 1]);
    var target = next.name === "classifier" ? "the classifier" : short(next.name);
    set("module-io", short(picked) + " reads a " + s.size + TIMES + s.size + TIMES + exact(s.in_channels) +
      " map (" + source + "'s output) and writes " + exact(s.out_channels) + " channels, which " + target +
      " reads.");
  }
  function showKnockOn(counts, base) {
    // What the picked module's own widths do, against the same network with that module at Table 1's widths.
    var i = __GNET_STAGES__.indexOf(picked), name = short(picked);
    var own = counts.stages[i], ownBase = base.stages[i], next = counts.stages[i + 1], nextBase = base.stages[i + 1];
    var target = next.name === "classifier" ? "the classifier" : short(next.name);
    var dMacs = own.macs - ownBase.macs, dParams = own.params - ownBase.params;
    var kMacs = next.macs - nextBase.macs, kParams = next.params - nextBase.params;
    var restMacs = counts.macs - base.macs - dMacs - kMacs;
    var node = el("knock-on");
    node.dataset.ownMacs = String(dMacs);
    node.dataset.knockOnMacs = String(kMacs);
    node.dataset.downstreamMacs = String(kMacs + restMacs);
    if (!edited(picked)) {
      node.textContent = name + " has Table 1's widths. Change one: you see what " + name + " then costs, and " +
        "the knock-on on " + target + ", which reads " + name + "'s output.";
      return;
    }
    var text = name + " itself: " + signed(dMacs) + " MACs, " + signed(dParams) + " parameters. ";
    if (own.out_channels === ownBase.out_channels) {
      text += "Its output stays " + exact(own.out_channels) + " channels: no knock-on.";
    } else {
      text += "Knock-on: " + target + " reads " + exact(own.out_channels) + " channels instead of " +
        exact(ownBase.out_channels) + ", " + signed(kMacs) + " MACs, " + signed(kParams) + " parameters.";
      if (restMacs !== 0) {
        text += " Naive modules pass their input through, so every stage after " + target + " changes too: " +
          signed(restMacs) + " MACs more.";
      }
    }
    node.textContent = text + " Whole network: " + signed(counts.macs - base.macs) + " MACs.";
  }
  function showBar(bar, value, scale) { bar.style.width = (100 * value / scale).toFixed(2) + "%"; }
  function showTotals(counts) {
    ["macs", "params"].forEach(function (key) {
      var total = counts[key], values = marks[key].map(function (m) { return m[2]; });
      var scale = 1.08 * Math.max.apply(null, values.concat([total]));
      set("total-" + key, withShort(total));
      el("total-" + key).dataset.value = String(total);
      showBar(el("total-" + key + "-bar"), total, scale);
      marks[key].forEach(function (m) {
        q('.gnet-total-' + key + ' .gnet-mark[data-mark="' + m[0] + '"]').style.left =
          (100 * m[2] / scale).toFixed(2) + "%";
        set(key + "-ratio-" + m[0], ratio(total, m[2]));
      });
    });
  }
  function showStages(counts, reference, base) {
    var i = __GNET_STAGES__.indexOf(picked);
    ["macs", "params"].forEach(function (key) {
      var scale = 0;
      counts.stages.forEach(function (s, j) { scale = Math.max(scale, s[key], reference.stages[j][key]); });
      counts.stages.forEach(function (s, j) {
        var row = q('.gnet-' + key + '-chart .gnet-row[data-stage="' + s.name + '"]');
        row.dataset.value = String(s[key]);
        row.dataset.inChannels = String(s.in_channels);
        row.dataset.outChannels = String(s.out_channels);
        row.classList.toggle("gnet-picked", s.name === picked);
        var knock = j > i && (s.macs !== base.stages[j].macs || s.params !== base.stages[j].params);
        row.classList.toggle("gnet-knock", knock);
        row.classList.toggle("gnet-edited", PAPER[s.name] !== undefined && edited(s.name));
        showBar(row.querySelector(".gnet-bar"), s[key], scale);
        row.querySelector(".gnet-reference").style.left = (100 * reference.stages[j][key] / scale).toFixed(2) + "%";
        row.querySelector(".gnet-value").textContent = shortCount(s[key]);
        row.querySelector(".gnet-value").title = exact(s[key]);
        var io = row.querySelector(".gnet-io");
        if (io) { io.textContent = exact(s.in_channels) + "\\u2192" + exact(s.out_channels); }
      });
    });
  }
  function showMaps() {
    var m = gnetMapSizes(net.image_size);
    set("maps", "Maps: " + net.image_size + " px input \\u2192 " + m.conv1 + " (conv1) \\u2192 " + m.stem +
      " (stem) \\u2192 " + m["3"] + " (3a\\u20133b) \\u2192 " + m["4"] + " (4a\\u20134e) \\u2192 " + m["5"] +
      " (5a\\u20135b).");
  }
  function update() {
    var counts = gnetNetworkCounts(net);
    var reference = gnetNetworkCounts(Object.assign(copy(net), { widths: PAPER }));
    var base = copy(net);
    base.widths[picked] = copy(PAPER[picked]);
    base = gnetNetworkCounts(base);
    showIo(counts);
    showKnockOn(counts, base);
    showTotals(counts);
    showStages(counts, reference, base);
    showMaps();
    root.dataset.updates = String(parseInt(root.dataset.updates || "0", 10) + 1);
  }

  // A number box follows its slider at once; a slider follows its box whenever the box holds a number (clamped
  // and rounded); an empty or half-typed box changes nothing, and on leaving shows its slider's value again.
  function wire(slider, box, read, write) {
    slider.addEventListener("input", function () { write(read(parseFloat(slider.value))); box.value = slider.value;
      update(); });
    function fromBox(leaving) {
      var typed = box.valueAsNumber;
      if (isFinite(typed)) {
        var value = read(clamp(typed, parseFloat(slider.min), parseFloat(slider.max)));
        slider.value = String(value);
        write(read(parseFloat(slider.value)));
        update();
      }
      if (leaving) { box.value = slider.value; }
    }
    box.addEventListener("input", function () { fromBox(false); });
    box.addEventListener("change", function () { fromBox(true); });
  }
  __GNET_FIELDS__.forEach(function (f) {
    wire(widthControl(f, "range"), widthControl(f, "number"), Math.round,
      function (v) { net.widths[picked][f] = v; });
  });
  Object.keys(READ).forEach(function (name) {
    wire(netControl(name, "range"), netControl(name, "number"), READ[name],
      function (v) { net[name] = v; });
  });
  netControl("naive", "checkbox").addEventListener("change", function (e) {
    net.naive = e.target.checked; showModule(); update(); });
  netControl("batch_norm", "checkbox").addEventListener("change", function (e) {
    net.batch_norm = e.target.checked; update(); });
  netControl("branch3_kernel", "checkbox").addEventListener("change", function (e) {
    net.branch3_kernel = e.target.checked ? 3 : 5; update(); });
  el("module").addEventListener("change", function (e) { picked = e.target.value; showModule(); update(); });
  q('button[data-action="reset-module"]').addEventListener("click", function () {
    net.widths[picked] = copy(PAPER[picked]); showModule(); update(); });
  q('button[data-action="reset-all"]').addEventListener("click", function () {
    net = copy(initial);
    Object.keys(READ).forEach(function (name) {
      netControl(name, "range").value = String(net[name]); netControl(name, "number").value = String(net[name]); });
    netControl("naive", "checkbox").checked = net.naive;
    netControl("batch_norm", "checkbox").checked = net.batch_norm;
    netControl("branch3_kernel", "checkbox").checked = net.branch3_kernel === 3;
    showModule(); update(); });
  showModule();
  update();
  root.dataset.ready = "true";
})();
"""


def _check_element_id(element_id: str | None) -> str:
    if element_id is None:
        return f"gnet-budget-{next(_element_ids)}"
    if not isinstance(element_id, str) or not element_id or not element_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"element_id must be letters, digits, '-' or '_', got {element_id!r}")
    return element_id


def _number_row(element_id: str, name: str, label: str, value: object, lo: object, hi: object, step: object,
                attribute: str) -> str:  # fmt: skip
    """A label, a range input and a number box for one setting (``data-<attribute>="<name>"``)."""
    input_id, esc = f"{element_id}-{name}", html.escape
    common = f'data-{attribute}="{name}" min="{lo}" max="{hi}" step="{step}" value="{value}"'
    return (
        f'<label for="{input_id}">{esc(label)}</label>'
        f'<input type="range" id="{input_id}" {common} aria-label="{esc(label)}">'
        f'<input type="number" id="{input_id}-box" {common} inputmode="decimal" aria-label="{esc(label)} (number)">'
    )


def _network_controls(element_id: str, budget: NetworkBudget) -> str:
    lo, hi, step = _MULTIPLIER_RANGE
    rows = _number_row(element_id, "width", "Width multiplier", f"{budget.width:g}", lo, hi, step, "net")
    rows += _number_row(element_id, "image_size", "Input (pixels)", budget.image_size, *_IMAGE_SIZE_RANGE, 1, "net")

    def toggle(name: str, label: str, checked: bool) -> str:
        return (
            f'<label><input type="checkbox" data-net="{name}"{" checked" if checked else ""}> {html.escape(label)}'
            "</label>"
        )

    toggles = (
        toggle("naive", "Naive modules (Figure 2a)", budget.naive)
        + toggle("branch3_kernel", "3×3 in the “5×5” branch (torchvision)", budget.branch3_kernel == 3)
        + toggle("batch_norm", "BatchNorm", budget.batch_norm)
    )
    return (
        '<div class="gnet-section"><p class="gnet-head">The network</p>'
        f'<div class="gnet-controls">{rows}</div><div class="gnet-toggles">{toggles}</div>'
        f'<p class="gnet-note" data-gnet="maps">{html.escape(_maps_text(budget.image_size))}</p></div>'
    )


def _maps_text(image_size: int) -> str:
    m = map_sizes(image_size)
    return (
        f"Maps: {image_size} px input → {m['conv1']} (conv1) → {m['stem']} (stem) → {m['3']} (3a–3b) → "
        f"{m['4']} (4a–4e) → {m['5']} (5a–5b)."
    )


def _module_controls(element_id: str, budget: NetworkBudget, picked: str, counts: NetworkCounts) -> str:
    options = "".join(
        f'<option value="{m}"{" selected" if m == picked else ""}>{short_stage(m)}</option>' for m in MODULES
    )
    widths = budget.module_widths(picked)
    rows = "".join(
        _number_row(element_id, name, WIDTH_LABELS[name], widths[name], 1, _MAX_WIDTH, 1, "width")
        for name in WIDTH_FIELDS
    )
    stage = counts[picked]
    index = STAGES.index(picked)
    source = "the stem" if index == 1 else short_stage(STAGES[index - 1])
    target = "the classifier" if STAGES[index + 1] == "classifier" else short_stage(STAGES[index + 1])
    io = (
        f"{short_stage(picked)} reads a {stage.size}×{stage.size}×{stage.in_channels:,} map ({source}'s output) and "
        f"writes {stage.out_channels:,} channels, which {target} reads."
    )
    name = short_stage(picked)
    return (
        '<div class="gnet-section"><p class="gnet-head">'
        f'<label for="{element_id}-module">Module</label> <select id="{element_id}-module" data-gnet="module">'
        f"{options}</select></p>"
        f'<p data-gnet="module-io">{html.escape(io, quote=False)}</p>'
        f'<div class="gnet-controls">{rows}</div>'
        f'<p class="gnet-note" data-gnet="naive-note"{"" if budget.naive else " hidden"}>A naive module has no '
        "#3×3 reduce, #5×5 reduce or pool proj: its pool branch passes its whole input through, so its output is "
        "its input plus #1×1, #3×3 and #5×5. (Naive modules have no BatchNorm, as gnet.NaiveInception.)</p>"
        f'<button type="button" data-action="reset-module">Reset <span data-gnet="reset-module-name">{name}</span> '
        'to Table 1</button><button type="button" data-action="reset-all">Reset everything</button>'
        f'<p class="gnet-knock-on" data-gnet="knock-on">{name} has Table 1\'s widths. Change one: you see what '
        f"{name} then costs, and the knock-on on {target}, which reads {name}'s output.</p></div>"
    )


def _total_html(key: str, title: str, total: int, marks: list[tuple[str, str, int]]) -> str:
    scale = 1.08 * max([total, *(m[2] for m in marks)])
    lines = "".join(
        f'<span class="gnet-mark" data-mark="{k}" style="left: {100 * v / scale:.2f}%;" title="{html.escape(label)}">'
        "</span>"
        for k, label, v in marks
    )
    rows = "".join(
        f'<tr><th scope="row"><span class="gnet-swatch" data-mark="{k}"></span> {html.escape(label)}</th>'
        f'<td class="gnet-num">{v:,}</td><td class="gnet-num" data-gnet="{key}-ratio-{k}">×{total / v:.2f}</td></tr>'
        for k, label, v in marks
    )
    exact = f"{total:,}" + (f" ({short_macs(total)})" if total >= 10**6 else "")
    return (
        f'<div class="gnet-total gnet-total-{key}"><p class="gnet-head">{title}: '
        f'<span class="gnet-num" data-gnet="total-{key}" data-value="{total}">{exact}</span></p>'
        f'<div class="gnet-track"><div class="gnet-bar" data-gnet="total-{key}-bar" '
        f'style="width: {100 * total / scale:.2f}%;"></div>{lines}</div>'
        f"<table><thead><tr><th>Mark (224 px)</th><th>{title}</th><th>this ÷ mark</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _stage_chart(key: str, title: str, counts: NetworkCounts, picked: str) -> str:
    scale = max(getattr(s, key) for s in counts.stages)
    rows = []
    for s in counts.stages:
        value = getattr(s, key)
        io = f'<span class="gnet-io">{s.in_channels:,}→{s.out_channels:,}</span>' if key == "macs" else ""
        share = f"{100 * value / scale:.2f}%"
        rows.append(
            f'<div class="gnet-row{" gnet-picked" if s.name == picked else ""}" data-stage="{s.name}" '
            f'data-value="{value}" data-in-channels="{s.in_channels}" data-out-channels="{s.out_channels}">'
            f'<span class="gnet-name">{short_stage(s.name)}</span>{io}<div class="gnet-track">'
            f'<div class="gnet-bar" style="width: {share};"></div><div class="gnet-reference" style="left: {share};">'
            f'</div></div><span class="gnet-value" title="{value:,}">{short_macs(value)}</span></div>'
        )
    return f'<div class="gnet-{key}-chart"><p class="gnet-head">{title}</p>{"".join(rows)}</div>'


def static_budget_explorer_html(
    budget: NetworkBudget | None = None,
    *,
    picked: str = "inception3a",
    marks: BudgetMarks | None = None,
    title: str = "GoogLeNet budget explorer (computed in your browser)",
    element_id: str | None = None,
) -> str:
    """Self-contained HTML and JavaScript: the whole network's MACs and parameters, stage by stage and in total,
    recomputed in the browser as a reader picks a module, sets its six widths and flips the network's switches.

    ``budget`` (default: the paper's network at 224 px) is where the page starts and what "Reset everything"
    returns to; Table 1's widths are what "Reset <module>" returns to, and the bars' thin lines mark them.
    ``picked`` is the module whose widths the sliders show first. ``marks`` default to :func:`budget_marks`
    (measured once). The numbers shown before the script runs come from :func:`network_counts`, so the page is
    right even with JavaScript off. Needs no kernel and no network; ``element_id`` (default: a fresh
    ``gnet-budget-N``) must be unique on the page.
    """
    budget = NetworkBudget() if budget is None else budget
    if not isinstance(budget, NetworkBudget):
        raise ValueError(f"budget must be a NetworkBudget, got {type(budget).__name__}")
    if picked not in INCEPTION_SPECS:
        raise ValueError(f"picked must be one of {', '.join(MODULES)}, got {picked!r}")
    lo, hi, _ = _MULTIPLIER_RANGE
    if not lo <= budget.width <= hi or round(budget.width * 100) != budget.width * 100:
        raise ValueError(f"the page's width multiplier runs from {lo} to {hi} in hundredths, got {budget.width!r}")
    if not _IMAGE_SIZE_RANGE[0] <= budget.image_size <= _IMAGE_SIZE_RANGE[1]:
        raise ValueError(f"the page's input runs from {_IMAGE_SIZE_RANGE[0]} to {_IMAGE_SIZE_RANGE[1]} px, "
                         f"got {budget.image_size}")  # fmt: skip
    widest = max(max(budget.module_widths(m).values()) for m in MODULES)
    if widest > _MAX_WIDTH:
        raise ValueError(f"the page's widths run from 1 to {_MAX_WIDTH}, got {widest}")
    if budget.branch3_kernel not in (3, 5):
        raise ValueError(f"the page's branch 3 is 5×5 or torchvision's 3×3, got {budget.branch3_kernel}")
    marks = budget_marks() if marks is None else marks
    if not isinstance(marks, BudgetMarks):
        raise ValueError(f"marks must be BudgetMarks, got {type(marks).__name__}")
    element_id = _check_element_id(element_id)
    counts = network_counts(budget)
    mark_rows = _mark_rows(marks)
    script = (
        _SCRIPT.replace("__GNET_FORMULA__", BUDGET_FORMULA_JS)
        .replace("__GNET_ID__", json.dumps(element_id))
        .replace("__GNET_BUDGET__", json.dumps(budget.to_js()))
        .replace("__GNET_MARKS__", json.dumps(mark_rows))
        .replace("__GNET_PICKED__", json.dumps(picked))
        .replace("__GNET_FIELDS__", json.dumps(list(WIDTH_FIELDS)))
        .replace("__GNET_NAIVE_UNUSED__", json.dumps(list(NAIVE_UNUSED)))
        .replace("__GNET_STAGES__", json.dumps(list(STAGES)))
    )
    bn = "BatchNorm's scale and shift instead of biases" if budget.batch_norm else "weights and biases"
    return (
        f'<div id="{element_id}" class="gnet-budget" data-ready="false">'
        f"<style>{_CSS.replace('__ID__', element_id)}</style>"
        f'<p class="gnet-title">{html.escape(title)}</p>'
        '<p class="gnet-sub">The whole network: the stem, the nine Inception modules, each reading the previous '
        "one's output, and the classifier. MACs are the convolutions' and the linear layer's multiply-adds, as "
        "fvcore counts them (max pooling costs none); this page computes them itself, with no kernel and no "
        "network.</p>"
        f"{_network_controls(element_id, budget)}"
        f"{_module_controls(element_id, budget, picked, counts)}"
        '<div class="gnet-section">'
        f"{_total_html('macs', 'MACs', counts.macs, mark_rows['macs'])}"
        f"{_total_html('params', 'Parameters', counts.params, mark_rows['params'])}</div>"
        '<div class="gnet-section"><div class="gnet-charts">'
        f"{_stage_chart('macs', 'MACs per stage (in→out channels)', counts, picked)}"
        f"{_stage_chart('params', 'Parameters per stage', counts, picked)}</div>"
        '<p class="gnet-note"><span class="gnet-key gnet-key-picked"></span>the module you picked '
        '<span class="gnet-key gnet-key-knock"></span>knock-on: stages after it whose cost its widths changed; '
        "• a module off Table 1's widths. Thin lines: Table 1's widths with these switches. "
        f"Parameters: {bn}, no aux heads, exact in the tables; the bars round to M (10⁶).</p></div>"
        '<noscript><p class="gnet-note">This explorer needs JavaScript; the numbers above are those of the '
        "starting network.</p></noscript>"
        f"<script>{script}</script></div>"
    )


def static_budget_explorer(budget: NetworkBudget | None = None, **kwargs):
    """:func:`static_budget_explorer_html` wrapped in ``IPython.display.HTML``, ready to be a cell's last
    expression."""
    from IPython.display import HTML

    return HTML(static_budget_explorer_html(budget, **kwargs))


# ------------------------------------------------------------------------------------------------------------
# The kernel-backed explorer: ipywidgets, the real network measured with fvcore
# ------------------------------------------------------------------------------------------------------------


class BudgetSliders:
    """The budget explorer as ipywidgets: a module picker, its six widths (slider + number box), the multiplier,
    the input size and the three switches. Every change builds the network (:func:`build_network`) and measures
    it with fvcore (:func:`measure_network`), then shows each stage and the totals against :func:`budget_marks`.

    Controls update on release (``continuous_update=False``). ``latencies_ms`` records each update, callback
    start to shown result. Needs a live kernel: in the static book the callback never runs (ipywidgets #2069).
    """

    def __init__(self, budget: NetworkBudget | None = None, *, picked: str = "inception3a") -> None:
        import ipywidgets as widgets

        self.budget = NetworkBudget() if budget is None else budget
        if picked not in INCEPTION_SPECS:
            raise ValueError(f"picked must be one of {', '.join(MODULES)}, got {picked!r}")
        self.picked = picked
        self.marks = budget_marks()
        self.latencies_ms: list[float] = []
        self._loading = False
        style = {"description_width": "9em"}
        layout = widgets.Layout(width="100%", max_width="32em")
        self.module = widgets.Dropdown(
            options=[(short_stage(m), m) for m in MODULES], value=picked, description="Module", style=style
        )
        self.sliders, self.boxes = {}, {}
        for name in WIDTH_FIELDS:
            self.sliders[name] = widgets.IntSlider(
                min=1, max=_MAX_WIDTH, description=WIDTH_LABELS[name], continuous_update=False, readout=False,
                style=style, layout=layout,
            )  # fmt: skip
            self.boxes[name] = widgets.BoundedIntText(min=1, max=_MAX_WIDTH, layout=widgets.Layout(width="6em"))
            widgets.link((self.boxes[name], "value"), (self.sliders[name], "value"))
        lo, hi, step = _MULTIPLIER_RANGE
        self.width = widgets.FloatSlider(value=self.budget.width, min=lo, max=hi, step=step, description="Width ×",
                                         continuous_update=False, style=style, layout=layout)  # fmt: skip
        self.image_size = widgets.IntSlider(value=self.budget.image_size, min=_IMAGE_SIZE_RANGE[0],
                                            max=_IMAGE_SIZE_RANGE[1], description="Input (px)",
                                            continuous_update=False, style=style, layout=layout)  # fmt: skip
        self.naive = widgets.Checkbox(value=self.budget.naive, description="Naive modules (Figure 2a)")
        self.kernel3 = widgets.Checkbox(value=self.budget.branch3_kernel == 3, description="3×3 in branch 3")
        self.batch_norm = widgets.Checkbox(value=self.budget.batch_norm, description="BatchNorm")
        self.output = widgets.HTML()
        self._load_module()
        for control in (*self.sliders.values(), self.width, self.image_size, self.naive, self.kernel3,
                        self.batch_norm):  # fmt: skip
            control.observe(self._on_change, names="value")
        self.module.observe(self._on_pick, names="value")
        rows = [widgets.HBox([self.sliders[n], self.boxes[n]]) for n in WIDTH_FIELDS]
        switches = widgets.HBox([self.naive, self.kernel3, self.batch_norm], layout=widgets.Layout(flex_flow="wrap"))
        self.widget = widgets.VBox([self.width, self.image_size, switches, self.module, *rows, self.output])
        self.last = self._measure()
        self._show()

    def _load_module(self) -> None:
        # Show the picked module's widths without measuring once per slider.
        self._loading = True
        try:
            for name, value in self.budget.module_widths(self.picked).items():
                self.sliders[name].value = value
        finally:
            self._loading = False

    def _on_pick(self, change: dict) -> None:
        self.picked = change["new"]
        self._load_module()
        self._show()

    def _current_budget(self) -> NetworkBudget:
        widths = {name: slider.value for name, slider in self.sliders.items()}
        budget = self.budget.without_widths(self.picked)
        paper = INCEPTION_SPECS[self.picked]
        changed = {name: v for name, v in widths.items() if v != getattr(paper, name)}
        if changed:
            budget = budget.with_widths(self.picked, **changed)
        return replace(
            budget, width=round(self.width.value, 2), image_size=self.image_size.value, naive=self.naive.value,
            branch3_kernel=3 if self.kernel3.value else 5, batch_norm=self.batch_norm.value,
        )  # fmt: skip

    def _measure(self) -> NetworkCounts:
        with torch_threads(1), torch.no_grad():
            return measure_network(self.budget)

    def _on_change(self, _change: object) -> None:
        if self._loading:
            return
        start = time.perf_counter()
        self.budget = self._current_budget()
        self.last = self._measure()
        self._show()
        self.latencies_ms.append(1000 * (time.perf_counter() - start))

    def set_widths(self, module: str | None = None, **widths: int) -> None:
        """Pick ``module`` (if given) and move its sliders as a reader would, e.g. ``set_widths("inception3a",
        n1x1=128)``; each move measures."""
        unknown = sorted(set(widths) - set(WIDTH_FIELDS))
        if unknown:
            raise ValueError(f"unknown widths {unknown}; expected some of {', '.join(WIDTH_FIELDS)}")
        if module is not None:
            if module not in INCEPTION_SPECS:
                raise ValueError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")
            self.module.value = module
        for name, value in widths.items():
            self.sliders[name].value = value

    def median_latency_ms(self) -> float:
        if not self.latencies_ms:
            raise ValueError("no update has been timed yet: move a control (or call set_widths) first")
        return statistics.median(self.latencies_ms)

    def _show(self) -> None:
        counts, marks = self.last, _mark_rows(self.marks)
        bold = ' style="font-weight: bold"'
        rows = "".join(
            f"<tr{bold if s.name == self.picked else ''}><th style='text-align:left'>"
            f"{short_stage(s.name)}</th><td>{s.in_channels:,}→{s.out_channels:,}</td><td>{s.macs:,}</td>"
            f"<td>{s.params:,}</td></tr>"
            for s in counts.stages
        )
        totals = "".join(
            f"<li>{html.escape(label)}: {value:,}; this ÷ it ×{getattr(counts, key) / value:.2f}</li>"
            for key in ("macs", "params")
            for _, label, value in marks[key]
        )
        self.output.value = (
            "<table><tr><th></th><th>in→out</th><th>MACs (fvcore)</th><th>Parameters</th></tr>"
            f"{rows}<tr><th style='text-align:left'>total</th><td></td><td><b>{counts.macs:,}</b></td>"
            f"<td><b>{counts.params:,}</b></td></tr></table><ul>{totals}</ul>"
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def budget_sliders(budget: NetworkBudget | None = None, **kwargs) -> BudgetSliders:
    """Kernel-backed controls for the whole network (see :class:`BudgetSliders`)."""
    return BudgetSliders(budget, **kwargs)
