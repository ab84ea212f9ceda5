"""Stacks of naive and of reduced Inception modules, measured with fvcore, and their figures.

The chapter on the naive module stacks naive modules and watches channels and MACs grow with depth; the same
stack built from the module with 1×1 reductions stays at a fixed width. The chapter on the bottleneck compares
the two modules branch by branch (:func:`plot_branch_macs`). :func:`measure_stack` measures a whole stack with one
fvcore trace and reads each module's share from it, so every point of the plots comes from fvcore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from gnet._validate import positive_int
from gnet.analysis import count_macs, count_params
from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS, finish, format_count, new_figure
from gnet.model import BRANCH_NAMES, Inception, NaiveInception
from gnet.table1 import INCEPTION_SPECS, InceptionSpec

__all__ = [
    "StackRow",
    "naive_stack",
    "reduced_stack",
    "measure_stack",
    "plot_stacks",
    "plot_branch_macs",
]


@dataclass(frozen=True)
class StackRow:
    """One module of a stack, as fvcore measured it. ``total_*`` are for the stack up to and including it."""

    depth: int
    in_channels: int
    out_channels: int
    module_macs: int
    total_macs: int
    module_params: int
    total_params: int


def naive_stack(
    depth: int, in_channels: int = 192, c1: int = 64, c2: int = 128, c3: int = 32, *, branch3_kernel: int = 5
) -> nn.Sequential:
    """``depth`` :class:`gnet.NaiveInception` modules in a row, each with the same ``c1, c2, c3``.

    Each module's pool branch passes all its input channels through, so module ``d`` reads
    ``in_channels + (d - 1)·(c1 + c2 + c3)`` channels.
    """
    modules = []
    for _ in range(positive_int("depth", depth)):
        module = NaiveInception(in_channels, c1, c2, c3, branch3_kernel=branch3_kernel)
        modules.append(module)
        in_channels = module.out_channels
    return nn.Sequential(*modules)


def reduced_stack(
    depth: int, spec: InceptionSpec = INCEPTION_SPECS["inception3a"], *, branch3_kernel: int = 5
) -> nn.Sequential:
    """``depth`` :class:`gnet.Inception` modules in a row, each with the six widths of ``spec`` (Table 1's).

    The first reads ``spec.in_channels``; every later one reads the ``spec.out_channels`` the one before it made.
    """
    if not isinstance(spec, InceptionSpec):
        raise ValueError(f"spec must be a gnet.table1.InceptionSpec, got {type(spec).__name__}")
    in_channels = spec.in_channels
    modules = []
    for _ in range(positive_int("depth", depth)):
        module = Inception.from_spec(spec._replace(in_channels=in_channels), branch3_kernel=branch3_kernel)
        modules.append(module)
        in_channels = module.out_channels
    return nn.Sequential(*modules)


def measure_stack(stack: nn.Sequential, height: int = 28, width: int = 28) -> list[StackRow]:
    """Measure a stack with **one** fvcore trace at ``1 × C × height × width`` and split it per module.

    A stack of depth ``d`` is the first ``d`` modules of a deeper one, so row ``d`` also answers "what does a
    stack ``d`` deep cost?" (``total_macs``). MACs are :func:`gnet.analysis.count_macs`' conv + linear count (a
    stack has only convolutions).
    """
    if not isinstance(stack, nn.Sequential) or len(stack) == 0:
        raise ValueError(f"stack must be a non-empty torch.nn.Sequential, got {stack!r}")
    first = stack[0]
    macs = count_macs(stack, (1, first.in_channels, height, width)).by_module
    rows: list[StackRow] = []
    total_macs = total_params = 0
    for index, module in enumerate(stack):
        module_macs = macs.get(str(index), 0)
        module_params = count_params(module)
        total_macs += module_macs
        total_params += module_params
        rows.append(
            StackRow(
                depth=index + 1,
                in_channels=module.in_channels,
                out_channels=module.out_channels,
                module_macs=module_macs,
                total_macs=total_macs,
                module_params=module_params,
                total_params=total_params,
            )
        )
    return rows


def plot_stacks(stacks: Mapping[str, Sequence[StackRow]], *, title: str | None = None):
    """Two panels against depth: output channels of the last module, and MACs of the whole stack.

    ``stacks`` maps a legend label to the rows :func:`measure_stack` returned. Returns ``(fig, axes)``.
    """
    if not stacks:
        raise ValueError("stacks must map at least one label to its measured rows")
    fig, (ax_channels, ax_macs) = new_figure(2, width=9.0, height=3.6)
    markers = iter("osD^v")
    for label, rows in stacks.items():
        depths = [r.depth for r in rows]
        marker = next(markers, "o")
        ax_channels.plot(depths, [r.out_channels for r in rows], marker=marker, label=label)
        ax_macs.plot(depths, [r.total_macs / 1e9 for r in rows], marker=marker, label=label)
        last = rows[-1]
        ax_channels.annotate(
            f"{last.out_channels:,}", (last.depth, last.out_channels), textcoords="offset points", xytext=(4, 4)
        )
        ax_macs.annotate(
            format_count(last.total_macs), (last.depth, last.total_macs / 1e9), textcoords="offset points",
            xytext=(4, 4),
        )  # fmt: skip
    for ax in (ax_channels, ax_macs):
        ax.set_xlabel("modules stacked (depth)")
        ax.set_xticks(sorted({r.depth for rows in stacks.values() for r in rows}))
        ax.set_ylim(bottom=0)
    ax_channels.set_ylabel("output channels of the last module")
    ax_channels.set_title("Channels")
    ax_macs.set_ylabel("MACs of the whole stack (billions)")
    ax_macs.set_title("Multiply-adds (fvcore)")
    return finish(fig, (ax_channels, ax_macs), title=title, legend={"loc": "upper left"})


def plot_branch_macs(branch_macs: Mapping[str, Mapping[str, int]], *, title: str | None = None):
    """Grouped bars: MACs of each branch (1×1, 3×3, 5×5, pool) for each module in ``branch_macs``.

    ``branch_macs`` maps a legend label (e.g. "naive") to ``{"branch1": macs, ..., "branch4": macs}``; a missing
    branch counts as 0. Bars are in millions, coloured by module; returns ``(fig, ax)``.
    """
    if not branch_macs:
        raise ValueError("branch_macs must map at least one label to per-branch MACs")
    from matplotlib.patches import Patch

    branches = list(BRANCH_NAMES)
    fig, ax = new_figure(width=7.0, height=3.6)
    n = len(branch_macs)
    bar_width = 0.8 / n
    handles = []
    for i, (label, macs) in enumerate(branch_macs.items()):
        hatch = ("", "//", "..", "xx")[i % 4]
        xs = [b + (i - (n - 1) / 2) * bar_width for b in range(len(branches))]
        values = [macs.get(name, 0) / 1e6 for name in branches]
        bars = ax.bar(
            xs,
            values,
            bar_width,
            label=label,
            color=[BRANCH_COLORS[name] for name in branches],
            hatch=hatch,
            edgecolor="black",
            linewidth=0.5,
        )
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8, padding=2)
        # Bars are coloured by branch, so the legend tells modules apart by hatch alone.
        handles.append(Patch(facecolor="lightgray", edgecolor="black", hatch=hatch, label=label))
    ax.set_xticks(range(len(branches)), [BRANCH_LABELS[name] + " branch" for name in branches])
    ax.set_ylabel("MACs (millions)")
    return finish(fig, ax, title=title, legend={"handles": handles})
