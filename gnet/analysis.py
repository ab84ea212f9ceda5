"""Counting what a network costs: multiply-adds (MACs) and parameters.

Two ways to count, checked against each other in the tests:

* **Measured**, by tracing the model with fvcore's ``FlopCountAnalysis``. fvcore counts **one multiply-add as
  one "flop"**, so its totals are MACs. (``torch.utils.flop_counter.FlopCounterMode`` counts a multiply-add as
  two FLOPs and reports exactly twice as much.) By default we keep convolutions and linear layers, which is what
  the paper's "ops" column counts; fvcore also sees BatchNorm and adaptive pooling, and skips max pooling, ReLU
  and concatenation.
* **Closed form**, from channel numbers alone: a convolution costs ``C_in · C_out · k² · H_out · W_out`` MACs.

fvcore is noisy under recent torch (FutureWarnings on import, a warning per unsupported op); everything here runs
inside :func:`quiet_fvcore`, so chapters and tests print only results.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from gnet._validate import positive_int
from gnet.table1 import INCEPTION_SPECS, PAPER_K, TABLE1

__all__ = [
    "MacCount",
    "BlockCounts",
    "quiet_fvcore",
    "count_macs",
    "count_params",
    "conv_counts",
    "inception_counts",
    "naive_inception_counts",
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
    linear layers, is what the paper counts. Pass ``ops=None``-like ``("conv", "linear", "batch_norm")`` to
    include more.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
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
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
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
