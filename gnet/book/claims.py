"""GoogLeNet against its claims and its neighbours: totals, shapes, branch shares, heads, other models, variants.

The chapter "GoogLeNet end to end" checks what the paper and the source text say about the whole network. The
logic lives here so that the tests can pin every number the chapter prints:

* :func:`table1_totals`: what the paper's own Table 1 adds up to (its depth column:
  :func:`gnet.analysis.table1_layer_count`, beside the measured :func:`gnet.analysis.count_layers`);
* :func:`stage_shapes`: the output shape of each named stage;
* :func:`branch_shares`: how each Inception block divides its output channels and its MACs among its branches;
* :func:`head_counts`: the cost of a classifier head, global average pooling against a VGG-style FC tail;
* :func:`reference_counts`: parameters, MACs and depth of torchvision's AlexNet, VGG-16 and GoogLeNet;
* :func:`variants`: the paper, torchvision, d2l and the UvA tutorial side by side, each value labelled as
  measured or cited.

One MAC is one multiply-add, as in :mod:`gnet.analysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import NamedTuple

import torch
from torch import nn

from gnet._validate import positive_int
from gnet.analysis import (
    LayerCount,
    MacCount,
    _check_module,
    _check_nchw,
    conv_counts,
    count_layers,
    count_macs,
    count_params,
    meta_forward,
)
from gnet.model import BRANCH_NAMES, TORCHVISION_CONFIG, Inception, googlenet
from gnet.table1 import TABLE1

__all__ = [
    "Table1Totals",
    "TABLE1_STATES",
    "MISPRINT_GAP",
    "table1_entry_state",
    "table1_states",
    "zero_filled",
    "table1_totals",
    "stage_shapes",
    "BranchShares",
    "branch_shares",
    "HeadCounts",
    "head_counts",
    "build_head",
    "ModelCounts",
    "REFERENCE_MODELS",
    "reference_counts",
    "Variant",
    "D2L_CONFIG",
    "D2L_IMAGE_SIZE",
    "D2L_IN_CHANNELS",
    "UVA_PARAMS",
    "variants",
]

# --------------------------------------------------------------------------------------------------------------
# Totals of the paper's own table
# --------------------------------------------------------------------------------------------------------------


# One vocabulary for the paper's printed Table 1 entries, shared by the intro, chapter 1 and chapter 5.
TABLE1_STATES = ("matches", "close", "misprint")
# A gap beyond which a printed entry cannot come from its row's channel numbers. Table 1 leaves a wide margin on
# both sides of it: its "close" entries are at most 1.8 % off, its smallest misprint 5.0 % (5a's params).
MISPRINT_GAP = 0.03


def table1_entry_state(measured: float, printed: float, agrees: bool) -> str:
    """``"matches"`` (equal up to the paper's rounding: ``agrees`` from :func:`gnet.analysis.table1_comparison`),
    ``"misprint"`` (more than ``MISPRINT_GAP`` off: the entry does not follow from the row's channel numbers) or
    ``"close"`` (in between: more than rounding, too little to point at a particular mistake)."""
    if printed <= 0:
        raise ValueError(f"expected a printed Table 1 entry > 0, got {printed}")
    if agrees:
        return "matches"
    return "misprint" if abs(measured / printed - 1) > MISPRINT_GAP else "close"


def table1_states(rows: Sequence[dict]) -> list[dict[str, str]]:
    """For each row of :func:`gnet.analysis.table1_comparison`: its layer and the state of its params and ops."""
    return [
        {
            "layer": r["layer"],
            "params": table1_entry_state(r["measured_weights"], r["paper_params"], r["params_agree"]),
            "ops": table1_entry_state(r["measured_macs"], r["paper_macs"], r["macs_agree"]),
        }
        for r in rows
    ]


class Table1Totals(NamedTuple):
    """Sums of Table 1's printed "params" (in weights, K = 1024) and "ops" (in MACs) columns."""

    params: float
    macs: float


def table1_totals(*, exclude: Sequence[str] = ()) -> Table1Totals:
    """Add up Table 1's printed params and ops columns, optionally leaving out rows by name (e.g. ``"fc"``)."""
    names = {row.name for row in TABLE1}
    unknown = sorted(set(exclude) - names)
    if unknown:
        raise ValueError(f"unknown Table 1 row(s) {unknown}; expected some of {sorted(names)}")
    rows = [row for row in TABLE1 if row.name not in exclude]
    return Table1Totals(
        sum(row.paper_params or 0 for row in rows),
        sum(row.paper_macs or 0 for row in rows),
    )


# --------------------------------------------------------------------------------------------------------------
# Shapes of the three stages
# --------------------------------------------------------------------------------------------------------------


def stage_shapes(
    model: nn.Module, names: Sequence[str], input_size: Sequence[int] = (1, 3, 224, 224)
) -> dict[str, tuple[int, ...]]:
    """Output shape (without the batch dimension) of each named submodule, from one eval-mode pass on ``meta``."""
    model = _check_module("model", model)
    submodules = {}
    for name in names:
        try:
            submodules[name] = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"model has no submodule {name!r}") from None
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape[1:]))

        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in submodules.items()]
    try:
        meta_forward(model, input_size)
    finally:
        for hook in hooks:
            hook.remove()
    missing = [name for name in names if name not in shapes]
    if missing:
        raise ValueError(f"these submodules did not run in eval mode: {missing}")
    return {name: shapes[name] for name in names}


# --------------------------------------------------------------------------------------------------------------
# Branch shares: does the network give more weight to the 3×3 and 5×5 paths as it goes up?
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchShares:
    """How one Inception block divides its output channels and its MACs among its four branches."""

    block: str
    channels: dict[str, int]
    macs: dict[str, int]

    @property
    def channel_share(self) -> dict[str, float]:
        total = sum(self.channels.values())
        return {b: c / total for b, c in self.channels.items()}

    @property
    def mac_share(self) -> dict[str, float]:
        total = sum(self.macs.values())
        return {b: m / total for b, m in self.macs.items()}


def _branch_out_channels(branch: nn.Module) -> int:
    # The branch's output comes from its last convolution (every gnet branch ends in one).
    convs = [m for m in branch.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def branch_shares(
    model: nn.Module | None = None, input_size: Sequence[int] = (1, 3, 224, 224), *, macs: MacCount | None = None
) -> list[BranchShares]:
    """Channels and measured MACs (fvcore) of each branch of every Inception block of ``model``.

    ``model`` defaults to the paper's network. Blocks come in network order (3a … 5b); branches are
    ``branch1`` (1×1), ``branch2`` (3×3), ``branch3`` (5×5, or 3×3 with ``branch3_kernel=3``) and ``branch4``
    (pool projection). Pass ``macs``, a :func:`gnet.analysis.count_macs` result for this model, to reuse it
    instead of tracing the model again (``input_size`` is then ignored).
    """
    model = googlenet(aux_logits=False) if model is None else _check_module("model", model)
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, Inception)]
    if not blocks:
        raise ValueError(f"model has no gnet.Inception blocks: got a {type(model).__name__}")
    if macs is None:
        macs = count_macs(model, _check_nchw(input_size), ops=("conv",))
    elif not isinstance(macs, MacCount):
        raise ValueError(f"macs must be a gnet.analysis.MacCount, got {type(macs).__name__}")
    by_module = macs.by_module
    missing = [name for name, _ in blocks if f"{name}.branch1" not in by_module]
    if missing:
        raise ValueError(f"macs was not measured on this model: it has no counts for {missing}")
    return [
        BranchShares(
            block=name,
            channels={b: _branch_out_channels(getattr(block, b)) for b in BRANCH_NAMES},
            macs={b: by_module.get(f"{name}.{b}", 0) for b in BRANCH_NAMES},
        )
        for name, block in blocks
    ]


# --------------------------------------------------------------------------------------------------------------
# Classifier heads: what global average pooling saves
# --------------------------------------------------------------------------------------------------------------


class HeadCounts(NamedTuple):
    """Parameters (weights and biases) and MACs of a classifier head on a ``channels × height × width`` map."""

    params: int
    macs: int


def head_counts(
    channels: int = 1024,
    height: int = 7,
    width: int = 7,
    num_classes: int = 1000,
    *,
    hidden: Sequence[int] = (),
    global_pool: bool = True,
) -> HeadCounts:
    """Closed-form cost of a classifier head.

    With ``global_pool=True`` (GoogLeNet) the map is averaged to ``channels`` numbers first; otherwise it is
    flattened to ``channels · height · width`` (VGG, AlexNet). Then come fully connected layers of the sizes in
    ``hidden`` and one to ``num_classes``. A linear layer costs ``in · out`` MACs and has ``in · out + out``
    parameters. Averaging costs additions, not multiply-adds, so it adds nothing here (fvcore reports it
    separately as ``adaptive_avg_pool2d``).
    """
    for name, value in (("channels", channels), ("height", height), ("width", width), ("num_classes", num_classes)):
        positive_int(name, value)
    if not isinstance(hidden, (tuple, list)):
        raise ValueError(f"hidden must be a sequence of positive ints such as (4096, 4096), got {hidden!r}")
    sizes = [channels if global_pool else channels * height * width]
    sizes += [positive_int("hidden size", h) for h in hidden] + [num_classes]
    macs = sum(a * b for a, b in pairwise(sizes))
    return HeadCounts(macs + sum(sizes[1:]), macs)


def build_head(
    channels: int = 1024,
    height: int = 7,
    width: int = 7,
    num_classes: int = 1000,
    *,
    hidden: Sequence[int] = (),
    global_pool: bool = True,
    dropout: float = 0.5,
    device: str | torch.device = "meta",
) -> nn.Sequential:
    """The head :func:`head_counts` describes, as modules (ReLU and dropout between FC layers, as in VGG).

    Built on the ``meta`` device by default: a VGG-style tail on 7×7×1024 has over 200 million parameters, and
    counting them needs no memory. Pass ``device="cpu"`` to run it.
    """
    head_counts(channels, height, width, num_classes, hidden=hidden, global_pool=global_pool)  # validates
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1)] if global_pool else []
    layers.append(nn.Flatten())
    sizes = [channels if global_pool else channels * height * width, *hidden, num_classes]
    with torch.device(device):
        for i, (a, b) in enumerate(pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------------------------
# Reference models from torchvision
# --------------------------------------------------------------------------------------------------------------


class ModelCounts(NamedTuple):
    """Parameters, MACs (fvcore, conv + linear) and depth of one model at one input size."""

    name: str
    params: int
    macs: int
    layers: LayerCount


def _torchvision_builders() -> dict[str, Callable[[], nn.Module]]:
    import torchvision

    return {
        "alexnet": lambda: torchvision.models.alexnet(weights=None),
        "vgg16": lambda: torchvision.models.vgg16(weights=None),
        "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True),
        "googlenet_with_aux": lambda: torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True),
    }


#: Models :func:`reference_counts` knows, by torchvision name.
REFERENCE_MODELS = ("alexnet", "vgg16", "googlenet")


def zero_filled(model: nn.Module) -> nn.Module:
    """Give a model built on the ``meta`` device zero-filled CPU memory, so that fvcore can trace it.

    Building on ``meta`` skips the random initialisation, which is most of the cost of constructing a large model;
    the values of the weights change no count.
    """
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
        for module in model.modules():  # BatchNorm divides by its running variance: make it 1, not 0
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None:
                module.running_var.fill_(1.0)
    return model


def reference_counts(name: str, input_size: Sequence[int] = (1, 3, 224, 224)) -> ModelCounts:
    """Count a torchvision model built with ``weights=None`` (nothing is downloaded).

    The model is built on the ``meta`` device, which skips the random initialisation of VGG-16's 138 million
    weights (seconds on a laptop CPU), counted there, and then given zero-filled CPU memory for fvcore, which
    needs real tensors to trace. The values of the weights do not change any count.
    """
    if name not in REFERENCE_MODELS:
        raise ValueError(f"unknown reference model {name!r}; expected one of {list(REFERENCE_MODELS)}")
    input_size = _check_nchw(input_size)
    with torch.device("meta"):
        model = _torchvision_builders()[name]()
    params = count_params(model)
    layers = count_layers(model, input_size)
    model = zero_filled(model)
    return ModelCounts(name, params, count_macs(model, input_size).total, layers)


# --------------------------------------------------------------------------------------------------------------
# Variants side by side: the paper, torchvision, d2l, UvA
# --------------------------------------------------------------------------------------------------------------

#: d2l-en, "Networks with Parallel Concatenations (GoogLeNet)": no auxiliary heads, no LRN, no BatchNorm, a 5×5
#: third branch, no dropout, 10 classes (Fashion-MNIST). What gnet cannot switch: d2l's first convolution takes
#: one (grey) input channel; gnet's always takes RGB.
D2L_CONFIG: dict[str, object] = {
    "num_classes": 10,
    "aux_logits": False,
    "lrn": False,
    "batch_norm": False,
    "branch3_kernel": 5,
    "dropout": 0.0,
}
D2L_IMAGE_SIZE = 96  # Fashion-MNIST resized from 28 to 96 pixels
D2L_IN_CHANNELS = 1

#: UvA Deep Learning Tutorial 5 (Lippe), "Inception, ResNet and DenseNet": a CIFAR-10 mini-GoogLeNet with its
#: own channel numbers (a 3×3 stem, 8 Inception blocks), BatchNorm, no aux heads, no LRN, no dropout.
#: Cited, not rebuilt: gnet's channel table is the paper's and cannot express it.
UVA_PARAMS = 260_650
UVA_IMAGE_SIZE = 32
UVA_NUM_CLASSES = 10


@dataclass(frozen=True)
class Variant:
    """One GoogLeNet variant. ``source`` says how its numbers were obtained; ``None`` means "not known here"."""

    name: str
    source: str
    input: str
    num_classes: int
    branch3_kernel: int | None
    batch_norm: bool | None
    lrn: bool | None
    dropout: float | None
    aux_heads: bool | None
    params: int | None
    params_with_aux: int | None
    macs: int | None
    note: str = ""


def _gnet_variant(name: str, source: str, config: dict[str, object], image_size: int, note: str = "") -> Variant:
    with torch.device("meta"):  # counts need shapes, not values: skip the initialisation
        without_aux = googlenet(**{**config, "aux_logits": False})
        with_aux = googlenet(**{**config, "aux_logits": True}) if config.get("aux_logits", True) else None
    cfg = without_aux.config
    params = count_params(without_aux)
    return Variant(
        name=name,
        source=source,
        input=f"3×{image_size}×{image_size}",
        num_classes=cfg.num_classes,
        branch3_kernel=cfg.branch3_kernel,
        batch_norm=cfg.batch_norm,
        lrn=cfg.lrn,
        dropout=cfg.dropout,
        aux_heads=with_aux is not None,
        params=params,
        params_with_aux=count_params(with_aux) if with_aux is not None else None,
        macs=count_macs(zero_filled(without_aux), (1, 3, image_size, image_size)).total,
        note=note,
    )


def variants(image_size: int = 224) -> list[Variant]:
    """The paper, torchvision (as gnet switches and as torchvision itself), d2l and UvA, side by side.

    Parameters exclude the auxiliary heads (``params_with_aux`` includes them). MACs are conv + linear at one
    image of the variant's own input size: ``image_size`` for the ImageNet variants, 96 px for d2l. The d2l row
    is gnet with :data:`D2L_CONFIG`, measured, then corrected in closed form for d2l's one-channel first
    convolution. The UvA row is cited.
    """
    positive_int("image_size", image_size)
    paper = _gnet_variant("Paper", "measured: gnet.googlenet()", {}, image_size)
    tv_like = _gnet_variant(
        "torchvision (gnet switches)", "measured: gnet.googlenet(**TORCHVISION_CONFIG)", TORCHVISION_CONFIG, image_size
    )
    tv = reference_counts("googlenet", (1, 3, image_size, image_size))
    with torch.device("meta"):
        tv_model = _torchvision_builders()["googlenet_with_aux"]()
    torchvision_row = Variant(
        name="torchvision googlenet",
        source="measured: torchvision.models.googlenet(weights=None)",
        input=f"3×{image_size}×{image_size}",
        num_classes=tv_model.fc.out_features,
        branch3_kernel=tv_model.inception3a.branch3[1].conv.kernel_size[0],
        batch_norm=isinstance(tv_model.conv1.bn, nn.BatchNorm2d),
        lrn=any(isinstance(m, nn.LocalResponseNorm) for m in tv_model.modules()),
        dropout=tv_model.dropout.p,
        aux_heads=True,
        params=tv.params,
        params_with_aux=count_params(tv_model),
        macs=tv.macs,
        note="also transform_input, a 2×2 fourth pool, ceil_mode pools, an adaptive aux pool",
    )
    d2l_rgb = _gnet_variant("d2l", "", D2L_CONFIG, D2L_IMAGE_SIZE)
    half = D2L_IMAGE_SIZE // 2  # the 7×7/2 stem convolution halves the input
    stem_macs, stem_weights = conv_counts(3 - D2L_IN_CHANNELS, 64, 7, half, half, bias=False)
    d2l = replace(
        d2l_rgb,
        source="measured: gnet.googlenet(**D2L_CONFIG), minus the 2 input channels d2l does not have",
        input=f"{D2L_IN_CHANNELS}×{D2L_IMAGE_SIZE}×{D2L_IMAGE_SIZE}",
        params=d2l_rgb.params - stem_weights,
        macs=d2l_rgb.macs - stem_macs,
        note="Fashion-MNIST (grey); gnet cannot take 1 input channel, so its stem is corrected in closed form",
    )
    uva = Variant(
        name="UvA tutorial 5",
        source="cited: UvA DL tutorial 5",
        input=f"3×{UVA_IMAGE_SIZE}×{UVA_IMAGE_SIZE}",
        num_classes=UVA_NUM_CLASSES,
        branch3_kernel=5,
        batch_norm=True,
        lrn=False,
        dropout=0.0,
        aux_heads=False,
        params=UVA_PARAMS,
        params_with_aux=None,
        macs=None,
        note="CIFAR-10 mini-net with its own channel numbers; not rebuilt here",
    )
    return [paper, tv_like, torchvision_row, d2l, uva]
