"""Counting what a network costs: multiply-adds (MACs), parameters and depth.

Two ways to count, checked against each other in the tests:

* **Measured**, by tracing the model with fvcore's ``FlopCountAnalysis``. fvcore counts **one multiply-add as
  one "flop"**, so its totals are MACs. (``torch.utils.flop_counter.FlopCounterMode`` counts a multiply-add as
  two FLOPs and reports exactly twice as much.) By default we keep convolutions and linear layers, which is what
  the paper's "ops" column counts; fvcore also sees BatchNorm and adaptive pooling, and skips max pooling, ReLU
  and concatenation.
* **Closed form**, from channel numbers alone: a convolution costs ``C_in · C_out · k² · H_out · W_out`` MACs.

Depth is measured too (:func:`count_layers`): the layers with parameters along the deepest path of one forward
pass, as the paper counts its 22 layers, beside what Table 1's own depth column adds up to
(:func:`table1_layer_count`).

fvcore is noisy under recent torch (FutureWarnings on import, a warning per unsupported op); everything here runs
inside :func:`quiet_fvcore`, so chapters and tests print only results.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from gnet._validate import positive_int
from gnet.table1 import INCEPTION_SPECS, PAPER_DEPTH, PAPER_K, TABLE1, InceptionSpec

__all__ = [
    "MacCount",
    "BlockCounts",
    "LayerCount",
    "quiet_fvcore",
    "count_macs",
    "count_params",
    "conv_counts",
    "inception_counts",
    "spec_counts",
    "naive_inception_counts",
    "count_layers",
    "table1_layer_count",
    "meta_forward",
    "table1_comparison",
    "model_summary",
]

#: fvcore's operator names for what the paper's "ops" column counts.
PAPER_OPS = ("conv", "linear")


@contextlib.contextmanager
def quiet_fvcore() -> Iterator[None]:
    """Silence fvcore's import-time FutureWarnings (``torch.jit.script`` is deprecated) and its tracer chatter."""
    loggers = [logging.getLogger(name) for name in ("fvcore", "fvcore.nn.jit_analysis", "iopath")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


@dataclass(frozen=True)
class MacCount:
    """Multiply-adds of one forward pass, as fvcore measured them.

    ``total`` and ``by_module`` include only the operators in ``ops``; ``by_operator`` lists every operator
    fvcore counted, so you can see what was left out.
    """

    total: int
    by_module: dict[str, int]
    by_operator: dict[str, int]
    ops: tuple[str, ...]
    input_size: tuple[int, ...]

    def __int__(self) -> int:
        return self.total


def _check_module(name: str, value: object) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise ValueError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def _check_nchw(input_size: object) -> tuple[int, ...]:
    if not isinstance(input_size, (tuple, list)) or len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W) such as (1, 3, 224, 224), got {input_size!r}")
    return tuple(positive_int(f"input_size[{i}]", s) for i, s in enumerate(input_size))


def _input_tensor(model: nn.Module, input_size: Sequence[int]) -> torch.Tensor:
    if not isinstance(input_size, (tuple, list)) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_size
    ):
        raise ValueError(f"input_size must be a sequence of positive ints such as (1, 3, 224, 224), got {input_size!r}")
    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    return torch.zeros(tuple(input_size), device=device, dtype=dtype)


def count_macs(
    model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), *, ops: Sequence[str] = PAPER_OPS
) -> MacCount:
    """Measure multiply-adds of one forward pass with fvcore (one multiply-add = one fvcore "flop").

    The model is traced in eval mode (so GoogLeNet's auxiliary heads do not run) and put back in the mode it
    was in. ``ops`` selects fvcore operator names for ``total`` and ``by_module``: the default, convolutions and
    linear layers, is what the paper counts. Pass more names to include more, e.g.
    ``ops=("conv", "linear", "batch_norm")``.
    """
    _check_module("model", model)
    ops = tuple(ops)
    x = _input_tensor(model, input_size)
    with quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis

        was_training = model.training
        model.eval()
        try:
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            by_module_and_op = analysis.by_module_and_operator()
            by_operator = dict(analysis.by_operator())
        finally:
            model.train(was_training)
    by_module = {name: sum(counter.get(op, 0) for op in ops) for name, counter in by_module_and_op.items()}
    total = by_module.pop("", sum(by_operator.get(op, 0) for op in ops))
    return MacCount(int(total), by_module, by_operator, ops, tuple(input_size))


def count_params(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BatchNorm's running statistics are buffers, not counted)."""
    _check_module("module", module)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ------------------------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------------------------


def conv_counts(
    in_channels: int, out_channels: int, kernel: int, height_out: int, width_out: int, *, bias: bool = True
) -> tuple[int, int]:
    """``(macs, params)`` of one convolution: each output value costs ``in_channels · kernel²`` multiply-adds."""
    for name, v in (
        ("in_channels", in_channels),
        ("out_channels", out_channels),
        ("kernel", kernel),
        ("height_out", height_out),
        ("width_out", width_out),
    ):
        positive_int(name, v)
    weights = in_channels * out_channels * kernel * kernel
    return weights * height_out * width_out, weights + (out_channels if bias else 0)


@dataclass(frozen=True)
class BlockCounts:
    """Closed-form cost of one Inception block at a given spatial size (conv MACs only, as fvcore counts them)."""

    macs: int
    params: int
    out_channels: int
    branch_macs: dict[str, int] = field(default_factory=dict)
    branch_params: dict[str, int] = field(default_factory=dict)
    branch_channels: dict[str, int] = field(default_factory=dict)


def _block(branches: dict[str, list[tuple[int, int, int]]], channels: dict[str, int], h: int, w: int,
           bias: bool, batch_norm: bool) -> BlockCounts:  # fmt: skip
    macs: dict[str, int] = {}
    params: dict[str, int] = {}
    for name, convs in branches.items():
        macs[name] = params[name] = 0
        for cin, cout, k in convs:
            m, p = conv_counts(cin, cout, k, h, w, bias=bias and not batch_norm)
            macs[name] += m
            params[name] += p + (2 * cout if batch_norm else 0)  # BatchNorm's scale and shift
    return BlockCounts(sum(macs.values()), sum(params.values()), sum(channels.values()), macs, params, channels)


def inception_counts(
    in_channels: int,
    c1: int,
    c2: tuple[int, int],
    c3: tuple[int, int],
    c4: int,
    height: int,
    width: int,
    *,
    branch3_kernel: int = 5,
    bias: bool = True,
    batch_norm: bool = False,
) -> BlockCounts:
    """MACs and parameters of :class:`gnet.Inception` on an ``height × width`` map, from channel numbers alone.

    Every branch keeps the spatial size, so each convolution costs ``C_in · C_out · k² · H · W``. Max pooling
    and concatenation cost no multiply-adds. With ``batch_norm=True`` convolutions lose their bias and each
    gains BatchNorm's two parameters per channel (its MACs are not included, as with ``count_macs``' default).
    """
    k = branch3_kernel
    branches = {
        "branch1": [(in_channels, c1, 1)],
        "branch2": [(in_channels, c2[0], 1), (c2[0], c2[1], 3)],
        "branch3": [(in_channels, c3[0], 1), (c3[0], c3[1], k)],
        "branch4": [(in_channels, c4, 1)],
    }
    channels = {"branch1": c1, "branch2": c2[1], "branch3": c3[1], "branch4": c4}
    return _block(branches, channels, height, width, bias, batch_norm)


def spec_counts(spec: InceptionSpec, height: int, width: int, **kwargs: bool | int) -> BlockCounts:
    """:func:`inception_counts` of the block ``spec`` describes (``gnet.Inception.from_spec(spec)``), e.g.
    ``spec_counts(INCEPTION_SPECS["inception3a"], 28, 28)``; keyword arguments as for :func:`inception_counts`."""
    if not isinstance(spec, InceptionSpec):
        raise ValueError(f"spec must be a gnet.table1.InceptionSpec, got {type(spec).__name__}")
    return inception_counts(*spec.source_args(), height, width, **kwargs)  # type: ignore[arg-type]


def naive_inception_counts(
    in_channels: int,
    c1: int,
    c2: int,
    c3: int,
    height: int,
    width: int,
    *,
    branch3_kernel: int = 5,
    bias: bool = True,
) -> BlockCounts:
    """MACs and parameters of :class:`gnet.NaiveInception`: no reductions, and the pool branch passes its
    ``in_channels`` through at no cost."""
    branches = {
        "branch1": [(in_channels, c1, 1)],
        "branch2": [(in_channels, c2, 3)],
        "branch3": [(in_channels, c3, branch3_kernel)],
        "branch4": [],
    }
    channels = {"branch1": c1, "branch2": c2, "branch3": c3, "branch4": in_channels}
    return _block(branches, channels, height, width, bias, False)


# ------------------------------------------------------------------------------------------------------------
# Depth: layers with parameters along the deepest path
# ------------------------------------------------------------------------------------------------------------

# Operators that are "layers with parameters" in the paper's sense (convolutions and fully connected layers;
# BatchNorm did not exist yet), and pooling operators. LocalResponseNorm pools internally, but it reaches the
# mode below as one `local_response_norm` call, so it is not mistaken for a pooling layer.
_PARAMETERISED_OPS = frozenset({"conv1d", "conv2d", "conv3d", "linear"})
_POOL_OPS = frozenset(
    {
        "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_avg_pool3d", "adaptive_max_pool3d",
    }
)  # fmt: skip


class LayerCount(NamedTuple):
    """Depth of a network: layers with parameters on its deepest path, and the same path's layers with pooling."""

    with_params: int
    with_pools: int


def meta_forward(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> object:
    """One eval-mode forward pass on the ``meta`` device: shapes only, no arithmetic, no memory, for any size.

    ``input_size`` is ``(N, C, H, W)``. The model's own tensors are left alone (:func:`torch.func.functional_call`
    swaps in meta copies for the pass) and it is put back in the mode it was in. Returns the model's output.
    """
    _check_module("model", model)
    x = torch.zeros(_check_nchw(input_size), device="meta")
    meta_state = {name: t.to("meta") for name, t in (*model.named_parameters(), *model.named_buffers())}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.func.functional_call(model, meta_state, (x,))
    finally:
        model.train(was_training)


def _tensors(obj: object) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


class _DepthMode(TorchFunctionMode):
    """Tags every tensor a forward pass creates with the longest chain of layers that produced it.

    A tensor's depth is the largest depth among the tensors it was computed from, plus one if the operation is a
    convolution or linear layer. Parallel branches therefore count once (their concatenation takes the deepest),
    and the auxiliary heads of GoogLeNet, which end in their own outputs, do not lengthen the main path.
    """

    def __init__(self) -> None:
        super().__init__()
        # id -> (tensor, with_params, with_pools); the tensor is kept alive so that its id is not reused.
        self.depths: dict[int, tuple[torch.Tensor, int, int]] = {}

    def depth(self, tensor: torch.Tensor) -> tuple[int, int]:
        entry = self.depths.get(id(tensor))
        return (entry[1], entry[2]) if entry is not None else (0, 0)

    def __torch_function__(self, func: Callable, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        inputs = [self.depth(t) for t in _tensors((args, kwargs))]
        with_params = max((d[0] for d in inputs), default=0)
        with_pools = max((d[1] for d in inputs), default=0)
        if name in _PARAMETERISED_OPS:
            with_params, with_pools = with_params + 1, with_pools + 1
        elif name in _POOL_OPS:
            with_pools += 1
        for tensor in _tensors(out):
            if not isinstance(tensor, nn.Parameter):
                self.depths[id(tensor)] = (tensor, with_params, with_pools)
        return out


def count_layers(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> LayerCount:
    """Count the layers of ``model`` along its deepest path by running one forward pass (in eval mode).

    Convolutions and linear layers count as layers with parameters; max, average and adaptive pooling count
    too in :attr:`LayerCount.with_pools`. The count follows the data, not the module tree, so it works for any
    model: parallel branches count once, and side outputs (GoogLeNet's auxiliary heads, which only run in
    training mode anyway) do not add to the main path. ``with_pools`` is measured on its own deepest path.
    The pass runs on the ``meta`` device (:func:`meta_forward`), so it is instant and needs no memory even for
    VGG-16.
    """
    with _DepthMode() as mode:
        out = meta_forward(model, input_size)
    outputs = list(_tensors(out))
    if not outputs:
        raise ValueError(f"the model returned no tensor, got {type(out).__name__}")
    depths = [mode.depth(t) for t in outputs]
    return LayerCount(max(d[0] for d in depths), max(d[1] for d in depths))


def table1_layer_count() -> LayerCount:
    """What Table 1 says: its depth column summed (:data:`gnet.table1.PAPER_DEPTH` of ``fc``, 22), and that
    plus its pooling rows (max and average)."""
    with_params = max(PAPER_DEPTH.values())
    pools = sum(1 for row in TABLE1 if "pool" in row.type)
    return LayerCount(with_params, with_params + pools)


# ------------------------------------------------------------------------------------------------------------
# The paper's Table 1, measured
# ------------------------------------------------------------------------------------------------------------

# Table 1 rows that carry numbers, and the modules of ours they cover.
_MEASURED_ROWS = {
    "conv1": ("conv1",),
    "conv2+conv3": ("conv2", "conv3"),
    **{name: (name,) for name in INCEPTION_SPECS},
    "fc": ("fc",),
}


def _agrees(measured: float, printed: float, unit: float, rel: float) -> bool:
    # The paper rounds to whole units (1K = 1024 weights, 1M ops, or 0.1K for "2.7K"); allow that rounding, or
    # a relative gap of `rel`, whichever is larger.
    return abs(measured - printed) <= max(0.5 * unit, rel * printed)


def table1_comparison(image_size: int = 224) -> list[dict[str, object]]:
    """Each row of Table 1 that has numbers, beside what the paper-faithful ``gnet.googlenet()`` measures.

    Weights exclude biases, as the paper's params column does (its "K" is 1024); ``measured_params`` includes
    them. MACs are fvcore's conv + linear counts at ``1 × 3 × image_size × image_size``. ``params_agree`` and
    ``macs_agree`` allow the paper's rounding (or 1% for ops, 0.5% for params), so each ``False`` is a real
    discrepancy; ``note`` explains the known errata.
    """
    from gnet.model import googlenet  # local import: gnet.model does not depend on analysis

    model = googlenet(aux_logits=False)
    macs = count_macs(model, (1, 3, image_size, image_size)).by_module
    rows = []
    for row in TABLE1:
        if row.name not in _MEASURED_ROWS:
            continue
        modules = [model.get_submodule(m) for m in _MEASURED_ROWS[row.name]]
        weights = sum(p.numel() for m in modules for n, p in m.named_parameters() if n.endswith("weight"))
        params = sum(count_params(m) for m in modules)
        measured_macs = sum(macs[m] for m in _MEASURED_ROWS[row.name])
        params_unit = 0.1 * PAPER_K if row.paper_params < 10 * PAPER_K else PAPER_K
        rows.append(
            {
                "layer": row.name,
                "type": row.type,
                "paper_output": "×".join(map(str, row.output)),
                "paper_params": row.paper_params,
                "measured_weights": weights,
                "measured_params": params,
                "params_agree": _agrees(weights, row.paper_params, params_unit, 0.005),
                "paper_macs": row.paper_macs,
                "measured_macs": measured_macs,
                "macs_agree": _agrees(measured_macs, row.paper_macs, 1e6, 0.01),
                "note": row.note,
            }
        )
    return rows


def model_summary(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), **kwargs: object):
    """A torchinfo summary (output shapes, parameters, mult-adds per layer), traced in eval mode.

    Extra keyword arguments go to ``torchinfo.summary`` (e.g. ``depth=2``). Returns torchinfo's
    ``ModelStatistics``; printing it gives the table.
    """
    from torchinfo import summary

    options = {
        "depth": 2,
        "col_names": ("output_size", "num_params", "mult_adds"),
        "row_settings": ("var_names",),
        "verbose": 0,
        "mode": "eval",
    }
    options.update(kwargs)
    x = _input_tensor(model, input_size)
    return summary(model, input_data=x, **options)
