"""Rivals at equal cost: networks that spend the budget of the book's recorded GoogLeNet another way.

The budget is the recorded recipe's network (:data:`RECORDED_NETWORK`: width 0.25, BatchNorm, no LRN, 10 classes)
at 128 px, measured with :func:`gnet.analysis.count_macs` (conv + linear multiply-adds of one image in eval mode,
what fvcore counts). Each rival is that network with :class:`gnet.GoogLeNetConfig`'s rival switches set
(``block``, ``block_width``, ``head``); the same stem, pools, auxiliary heads and recipe otherwise:

* ``googlenet``: the reference, as recorded.
* ``no-reductions``: the naive module of Figure 2a in all nine blocks, narrowed (``block_width``) to the budget.
  Without its 1×1 layers each block is one layer deep, so the network is 13 layers deep, not 22.
* ``one-scale``: each block its 1×1 + 3×3 branch alone, carrying the block's output, narrowed to the budget.
* ``plain-deep``: each block two 3×3 convolutions (VGG's unit), 22 layers deep as the reference, narrowed.
* ``dense-tail``: the reference with flatten + a hidden FC layer + the classifier instead of global average pooling.

The ``block_width`` of each narrowed rival was found by :func:`match_block_width` (bisection to 0.001) and is
kept here as a constant, so a network never depends on a search at build time; the tests measure each rival's
MACs against the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gnet.model import GoogLeNet, googlenet

__all__ = ["BUDGET_INPUT", "MAC_TOLERANCE", "RECORDED_NETWORK", "RIVALS", "match_block_width", "rival", "switches"]

#: The recorded recipe's network (book/recorded_runs/imagenette-cpu: ``--width 0.25 --batch-norm --no-lrn``).
RECORDED_NETWORK: dict[str, object] = {"num_classes": 10, "batch_norm": True, "lrn": False, "width": 0.25}

#: One image at the recipe's training size: the input the budget is measured on.
BUDGET_INPUT = (1, 3, 128, 128)

#: How far a rival's MACs may be from the reference's (relative): the issue's "same budget".
MAC_TOLERANCE = 0.03

#: Each shape's switches on top of the trainer's (or :data:`RECORDED_NETWORK`'s). The block widths are
#: :func:`match_block_width`'s answers at the recorded budget; at another width or image size they spend a
#: different budget from the reference's.
RIVALS: dict[str, dict[str, object]] = {
    "googlenet": {},
    "no-reductions": {"block": "naive", "block_width": 0.244},
    "one-scale": {"block": "one_scale", "block_width": 0.844},
    "plain-deep": {"block": "plain", "block_width": 0.313},
    "dense-tail": {"head": "dense"},
}


def switches(shape: str) -> dict[str, object]:
    """The :class:`gnet.GoogLeNetConfig` switches that make ``shape`` (a key of :data:`RIVALS`)."""
    if shape not in RIVALS:
        raise ValueError(f"shape must be one of {', '.join(RIVALS)}, got {shape!r}")
    return dict(RIVALS[shape])


def rival(shape: str, **overrides: object) -> GoogLeNet:
    """The network ``shape`` at the recorded budget; ``overrides`` are further switches (e.g. ``init="torch"``)."""
    return googlenet(**(RECORDED_NETWORK | switches(shape) | overrides))


def match_block_width(
    block: str,
    target_macs: int,
    *,
    low: float = 0.05,
    high: float = 2.0,
    step: float = 0.001,
    input_size: Sequence[int] = BUDGET_INPUT,
    build: Callable[..., GoogLeNet] | None = None,
) -> float:
    """The ``block_width`` (a multiple of ``step``) whose network's MACs are closest to ``target_macs``.

    Bisection on the measured MACs, which grow with ``block_width`` (in steps, as channel counts are rounded),
    then the better of the two neighbours. ``build(block=..., block_width=...)`` makes the network (default: the
    recorded network with those switches).
    """
    from gnet.analysis import count_macs  # fvcore: only when searching

    def build_default(**kwargs: object) -> GoogLeNet:
        return googlenet(**(RECORDED_NETWORK | {"init": "torch"} | kwargs))

    make = build or build_default

    def macs(width: float) -> int:
        return count_macs(make(block=block, block_width=width), input_size).total

    lo, hi = round(low / step), round(high / step)  # in units of step
    if macs(hi * step) < target_macs or macs(lo * step) > target_macs:
        raise ValueError(f"target {target_macs} MACs is outside block_width {low}..{high} for block {block!r}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if macs(mid * step) < target_macs else (lo, mid)
    best = min((lo, hi), key=lambda units: abs(macs(units * step) - target_macs))
    return round(best * step, 6)
