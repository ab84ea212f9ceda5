"""How much gradient reaches each layer, and how much the auxiliary classifiers add.

The paper attached two auxiliary classifiers (after 4a and 4d) to "increase the gradient signal that gets
propagated back" to the lower layers (Szegedy et al. 2015, Section 5). This module measures that signal.

Two precise quantities, both for the batch-mean loss ``L`` of one forward pass:

* ``kind="params"``: the L2 norm of the gradient of ``L`` with respect to **all trainable parameters of the
  layer**, flattened into one vector (for an Inception block: the weights and biases of its six convolutions,
  and BatchNorm's scales and shifts if it has them). This is the step that plain SGD would take, before the
  learning rate.
* ``kind="output"``: the L2 norm of the gradient of ``L`` with respect to **the layer's output tensor**, taken
  over the whole batch (``N × C × H × W`` numbers; for ``fc``, the logits). This is the signal that arrives at
  the layer from above. When a tensor feeds two consumers (4a feeds 4b and ``aux1``), it is their sum.

Layers are the thirteen stages on the main path, stem to head: ``conv1, conv2, conv3, inception3a … inception5b,
fc``. :data:`gnet.table1.PAPER_DEPTH` places each at the paper's depth count (22 layers with parameters), and
:data:`gnet.model.AUX_TAPS` says where the two heads read the main path.

A measurement leaves the model exactly as it was: no ``.grad`` is written (gradients come from
``torch.autograd.grad``), BatchNorm running statistics are restored, and the global random state is untouched (the
forward pass runs with its own seed, so dropout masks are the same in every call with the same ``seed``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from gnet._validate import finite_number, int_at_least, one_of
from gnet.book.figures import axes_or_new, finish
from gnet.model import AUX_TAPS, GoogLeNet, googlenet_loss
from gnet.table1 import PAPER_DEPTH

__all__ = [
    "MAIN_PATH",
    "KINDS",
    "GradientNorms",
    "AuxComparison",
    "depth_order",
    "layer_gradient_norms",
    "compare_aux_gradients",
    "TrackedRun",
    "track_aux_gradients",
    "count_forward_calls",
    "plot_gradient_norms",
    "plot_aux_ratio",
    "logged_aux_share",
    "plot_logged_aux_share",
]


#: The stages on the main path that have parameters, stem to head (the keys of :data:`gnet.table1.PAPER_DEPTH`).
MAIN_PATH: tuple[str, ...] = tuple(PAPER_DEPTH)

#: What :func:`layer_gradient_norms` can measure (see the module docstring).
KINDS: tuple[str, ...] = ("params", "output")


class GradientNorms(NamedTuple):
    """Per-layer gradient norms from one backward pass, each dict ordered stem to head."""

    params: dict[str, float]  # ‖∂L/∂θ_layer‖ over all the layer's trainable parameters
    output: dict[str, float]  # ‖∂L/∂y_layer‖ over the layer's whole output tensor


class AuxComparison(NamedTuple):
    """The same weights, batch and dropout masks, differentiated twice.

    ``without_aux`` is the gradient of the main loss alone, ``with_aux`` that of :func:`gnet.googlenet_loss`
    with ``aux_weight``; ``aux_only`` is the norm of their difference, i.e. of the gradient of the weighted
    auxiliary losses alone (exactly zero above the upper tap, 4d).
    """

    without_aux: GradientNorms
    with_aux: GradientNorms
    aux_only: GradientNorms
    aux_weight: float

    def ratio(self, kind: str = "params") -> dict[str, float]:
        """``with_aux / without_aux`` per layer: how much the auxiliary losses scale the gradient norm there."""
        one_of("kind", kind, KINDS)
        with_aux, without = getattr(self.with_aux, kind), getattr(self.without_aux, kind)
        return {name: with_aux[name] / without[name] if without[name] else math.nan for name in without}


# ----------------------------------------------------------------------------------------------- validation


def _check_model(model: object) -> GoogLeNet:
    if not isinstance(model, GoogLeNet):
        raise ValueError(f"expected a gnet.GoogLeNet (build one with gnet.googlenet()), got {type(model).__name__}")
    return model


def depth_order(model: GoogLeNet) -> list[str]:
    """The names of the main-path stages of ``model``, stem to head (:data:`MAIN_PATH`).

    The auxiliary heads are not on the main path and are not listed; :data:`gnet.model.AUX_TAPS` says where they
    attach.
    """
    _check_model(model)
    return list(MAIN_PATH)


def _check_layers(model: GoogLeNet, layers: Sequence[str] | None) -> list[str]:
    order = depth_order(model)
    if layers is None:
        return order
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"layers must be a non-empty sequence of names from {order}, got {layers!r}")
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ValueError(f"unknown layer name(s) {unknown}; expected names from {order}")
    return [name for name in order if name in layers]  # stem to head, whatever order was given


def _check_aux_weight(aux_weight: object) -> float:
    return float(finite_number("aux_weight", aux_weight))


def _check_batch(model: GoogLeNet, images: object, targets: object) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor of shape N×3×H×W, got {shape}")
    if not isinstance(targets, Tensor) or targets.ndim != 1 or targets.shape[0] != images.shape[0]:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a 1-D tensor of {images.shape[0]} class indices, got {shape}")
    if targets.dtype != torch.long:
        raise ValueError(f"targets must hold class indices (dtype torch.int64), got dtype {targets.dtype}")
    num_classes = model.config.num_classes
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"targets must lie in [0, {num_classes}) for this {num_classes}-class model, "
            f"got values from {int(targets.min())} to {int(targets.max())}"
        )


def _check_aux_usable(model: GoogLeNet, aux_weight: float) -> None:
    if aux_weight == 0:
        return
    if model.aux1 is None and model.aux2 is None:
        raise ValueError(
            f"aux_weight={aux_weight} needs auxiliary heads, but this model was built with aux_logits=False"
        )
    if not model.training:
        raise ValueError(
            f"aux_weight={aux_weight} needs the model in training mode (the auxiliary heads run only there); "
            "call model.train() first"
        )


# ----------------------------------------------------------------------------------------------- measuring


def _norm(tensors: Sequence[Tensor | None]) -> float:
    # Summed in float64 so that layers with millions of parameters lose nothing to rounding.
    total = sum(float(t.detach().double().pow(2).sum()) for t in tensors if t is not None)
    return math.sqrt(total)


def _differentiate(
    model: GoogLeNet,
    images: Tensor,
    targets: Tensor,
    aux_weights: Sequence[float],
    layers: list[str],
    seed: int,
) -> list[tuple[list[Tensor | None], list[Tensor]]]:
    """One forward pass; for each aux weight, the gradients w.r.t. each layer's parameters and output."""
    modules = {name: model.get_submodule(name) for name in layers}
    params = {name: [p for p in module.parameters() if p.requires_grad] for name, module in modules.items()}
    frozen = [name for name, ps in params.items() if not ps]
    if frozen:
        raise ValueError(f"layer(s) {frozen} have no trainable parameters, so there is no gradient to measure")

    outputs: dict[str, Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, _inputs, output, name=name: outputs.__setitem__(name, output))
        for name, module in modules.items()
    ]
    saved_buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    devices = [images.device.index or 0] if images.device.type == "cuda" else []
    try:
        try:
            with torch.random.fork_rng(devices=devices), torch.enable_grad():
                torch.manual_seed(seed)  # the same dropout masks in every call with this seed
                prediction = model(images)
        finally:
            for handle in handles:
                handle.remove()

        flat_params = [p for name in layers for p in params[name]]
        activations = [outputs[name] for name in layers]
        results = []
        for index, aux_weight in enumerate(aux_weights):
            loss = googlenet_loss(prediction, targets, aux_weight=aux_weight)
            grads = torch.autograd.grad(
                loss, flat_params + activations, retain_graph=index < len(aux_weights) - 1, allow_unused=True
            )
            results.append((list(grads[: len(flat_params)]), list(grads[len(flat_params) :])))
    finally:
        # A measurement must not move BatchNorm's running statistics. Restore them only after the backward
        # passes: batch_norm saves its running-stat tensors for backward, and autograd checks their versions.
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved_buffers[name])
    return results  # type: ignore[return-value]


def _split_norms(
    model: GoogLeNet, layers: list[str], param_grads: Sequence[Tensor | None], output_grads: Sequence[Tensor | None]
) -> GradientNorms:
    per_layer_params: dict[str, float] = {}
    start = 0
    for name in layers:
        count = sum(1 for p in model.get_submodule(name).parameters() if p.requires_grad)
        per_layer_params[name] = _norm(param_grads[start : start + count])
        start += count
    per_layer_output = {name: _norm([grad]) for name, grad in zip(layers, output_grads, strict=True)}
    return GradientNorms(params=per_layer_params, output=per_layer_output)


def layer_gradient_norms(
    model: GoogLeNet,
    images: Tensor,
    targets: Tensor,
    *,
    aux_weight: float,
    layers: Sequence[str] | None = None,
    kind: str = "params",
    seed: int = 0,
) -> dict[str, float]:
    """Gradient norm per main-path layer, ordered stem to head.

    Args:
        model: a :class:`gnet.GoogLeNet`. For ``aux_weight > 0`` it must have aux heads and be in training mode.
        images: ``N × 3 × H × W`` float batch (``H, W >= model.min_input_size``).
        targets: ``N`` class indices (int64) in ``[0, num_classes)``.
        aux_weight: weight of each auxiliary loss in :func:`gnet.googlenet_loss`; 0 measures the main loss alone.
        layers: a subset of :data:`MAIN_PATH` (returned stem to head whatever the order given); default all.
        kind: ``"params"`` (gradient w.r.t. the layer's parameters) or ``"output"`` (w.r.t. its output tensor).
        seed: seeds the forward pass, so dropout masks are identical across calls with the same seed.

    Returns:
        ``{layer name: L2 norm}``, stem to head. The model is left untouched (see the module docstring).
    """
    model = _check_model(model)
    kind = one_of("kind", kind, KINDS)
    aux_weight = _check_aux_weight(aux_weight)
    names = _check_layers(model, layers)
    _check_batch(model, images, targets)
    _check_aux_usable(model, aux_weight)
    ((param_grads, output_grads),) = _differentiate(model, images, targets, [aux_weight], names, seed)
    return getattr(_split_norms(model, names, param_grads, output_grads), kind)


def compare_aux_gradients(
    model: GoogLeNet,
    images: Tensor,
    targets: Tensor,
    *,
    aux_weight: float = 0.3,
    layers: Sequence[str] | None = None,
    seed: int = 0,
) -> AuxComparison:
    """Gradient norms per layer for the main loss alone and for the paper's loss, from ONE forward pass.

    Same weights, same batch, same dropout masks: the only difference is the loss. Both kinds (``params`` and
    ``output``) are measured. Layers above the upper tap (4e, 5a, 5b, fc) get bit-identical gradients, since no
    auxiliary loss depends on them.
    """
    model = _check_model(model)
    aux_weight = _check_aux_weight(aux_weight)
    if aux_weight == 0:
        raise ValueError("aux_weight must be > 0 to compare against the main loss alone, got 0")
    names = _check_layers(model, layers)
    _check_batch(model, images, targets)
    _check_aux_usable(model, aux_weight)
    (main_p, main_o), (total_p, total_o) = _differentiate(model, images, targets, [0.0, aux_weight], names, seed)

    def difference(a: Sequence[Tensor | None], b: Sequence[Tensor | None]) -> list[Tensor | None]:
        # allow_unused gives None for a tensor the loss does not depend on: a zero gradient.
        return [x if y is None else (-y if x is None else x - y) for x, y in zip(a, b, strict=True)]

    return AuxComparison(
        without_aux=_split_norms(model, names, main_p, main_o),
        with_aux=_split_norms(model, names, total_p, total_o),
        aux_only=_split_norms(model, names, difference(total_p, main_p), difference(total_o, main_o)),
        aux_weight=aux_weight,
    )


class TrackedRun(NamedTuple):
    """What :func:`track_aux_gradients` records."""

    comparisons: dict[int, AuxComparison]  # step -> measurement on the probe batch (0: before any step)
    losses: list[float]  # the training loss (the paper's: main + aux_weight × each aux loss), one per step
    main_losses: list[float]  # its main-classifier part alone, one per step


def track_aux_gradients(
    model: GoogLeNet,
    batches: Iterable[tuple[Tensor, Tensor]],
    probe_images: Tensor,
    probe_targets: Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    steps: int,
    measure_at: Sequence[int],
    aux_weight: float = 0.3,
    seed: int = 0,
) -> TrackedRun:
    """Train ``model`` for ``steps`` steps with the paper's loss; at each step in ``measure_at`` compare the
    gradients with and without the auxiliary losses on one fixed probe batch.

    Step ``k`` means "after ``k`` optimizer steps" (0: at initialisation). Measuring the same probe batch every
    time means that the changes between measurements come from the weights alone, and since a measurement leaves
    the model and the random state untouched, the training run is the same one that would happen unmeasured.
    """
    model = _check_model(model)
    int_at_least("steps", steps, 0)
    if isinstance(measure_at, (str, bytes)) or not isinstance(measure_at, Sequence) or not measure_at:
        raise ValueError(f"measure_at must be a non-empty sequence of steps in [0, {steps}], got {measure_at!r}")
    outside = [k for k in measure_at if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= steps]
    if outside:
        raise ValueError(f"measure_at must hold steps in [0, {steps}], got {outside}")
    aux_weight = _check_aux_weight(aux_weight)
    if not model.training:
        raise ValueError("the model must be in training mode (call model.train() first)")
    _check_batch(model, probe_images, probe_targets)

    def measure() -> AuxComparison:
        return compare_aux_gradients(model, probe_images, probe_targets, aux_weight=aux_weight, seed=seed)

    comparisons = {0: measure()} if 0 in measure_at else {}
    losses: list[float] = []
    main_losses: list[float] = []
    batch_iter = iter(batches)
    for step in range(1, steps + 1):
        try:
            images, targets = next(batch_iter)
        except StopIteration:
            raise ValueError(f"batches ran out after {step - 1} of {steps} steps") from None
        output = model(images)
        loss = googlenet_loss(output, targets, aux_weight=aux_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        main_losses.append(float(googlenet_loss(output.logits.detach(), targets)))
        if step in measure_at:
            comparisons[step] = measure()
    return TrackedRun(comparisons=comparisons, losses=losses, main_losses=main_losses)


@contextlib.contextmanager
def count_forward_calls(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, int]]:
    """Count how often each named submodule's ``forward`` runs inside the ``with`` block.

    Yields a dict ``{name: calls}`` that fills in as the block runs::

        with count_forward_calls(model.eval(), ["aux1", "aux2", "fc"]) as calls:
            model(images)
        calls  # {"aux1": 0, "aux2": 0, "fc": 1}
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"names must be a non-empty sequence of submodule names, got {names!r}")
    available = dict(model.named_modules())
    missing = [name for name in names if not isinstance(available.get(name), nn.Module)]
    if missing:
        raise ValueError(
            f"model has no submodule(s) named {missing} (a GoogLeNet built with aux_logits=False has no aux1/aux2)"
        )
    calls = dict.fromkeys(names, 0)

    def hook(name: str):
        def count(_module: nn.Module, _inputs: object) -> None:
            calls[name] += 1

        return count

    handles = [available[name].register_forward_pre_hook(hook(name)) for name in names]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


# ----------------------------------------------------------------------------------------------- plotting


def _tick_label(name: str) -> str:  # "inception4a" -> "4a"
    return name.removeprefix("inception")


def _check_curves(curves: object, what: str) -> Mapping[str, Mapping[str, float]]:
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"{what} must be a non-empty mapping {{label: {{layer: value}}}}, got {curves!r}")
    for label, values in curves.items():
        if not isinstance(values, Mapping) or not values:
            raise ValueError(f"{what}[{label!r}] must be a non-empty mapping {{layer: value}}, got {values!r}")
        unknown = [name for name in values if name not in PAPER_DEPTH]
        if unknown:
            raise ValueError(f"{what}[{label!r}] has unknown layer(s) {unknown}; expected names from {MAIN_PATH}")
    return curves  # type: ignore[return-value]


def _depth_axis(ax, layers: Sequence[str], *, mark_taps: bool) -> None:
    # conv1, conv2, conv3 sit one layer apart, the blocks two: slanted labels keep them legible.
    ax.set_xticks([PAPER_DEPTH[name] for name in layers], [_tick_label(name) for name in layers])
    ax.tick_params(axis="x", labelrotation=50, labelsize="small")
    ax.set_xlabel("depth (layers with parameters)")
    if mark_taps:
        # The heads' names go on a top axis, where they cannot hide any data.
        for tap in AUX_TAPS.values():
            ax.axvline(PAPER_DEPTH[tap], color="0.6", linestyle=":", linewidth=1)
        top = ax.secondary_xaxis("top")
        top.set_xticks([PAPER_DEPTH[tap] for tap in AUX_TAPS.values()], [f"{head} ↓" for head in AUX_TAPS])
        top.tick_params(axis="x", length=0, labelsize="small", labelcolor="0.35")


def _layers_in(curves: Mapping[str, Mapping[str, float]]) -> list[str]:
    seen = {name for values in curves.values() for name in values}
    return [name for name in MAIN_PATH if name in seen]


def plot_gradient_norms(
    curves: Mapping[str, Mapping[str, float]],
    *,
    ax=None,
    styles: Mapping[str, Mapping[str, object]] | None = None,
    ylabel: str = "gradient norm ‖∂L/∂θ‖",
    title: str | None = None,
    mark_taps: bool = True,
):
    """Gradient norm against depth, log scale; one line per ``{label: {layer: norm}}`` entry.

    Zero norms (e.g. the auxiliary-only gradient above 4d) cannot sit on a log axis and are left out of the
    line. ``styles`` maps a label to extra ``ax.plot`` keyword arguments. Returns ``(fig, ax)``.
    """
    curves = _check_curves(curves, "curves")
    fig, ax = axes_or_new(ax)
    styles = styles or {}
    for label, values in curves.items():
        kept = [name for name in MAIN_PATH if values.get(name, 0) > 0]
        ax.plot(
            [PAPER_DEPTH[name] for name in kept],
            [values[name] for name in kept],
            **{"marker": "o", "label": label, **styles.get(label, {})},
        )
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    _depth_axis(ax, _layers_in(curves), mark_taps=mark_taps)
    return finish(fig, ax, title=title)


def plot_aux_ratio(
    ratios: Mapping[str, Mapping[str, float]],
    *,
    ax=None,
    styles: Mapping[str, Mapping[str, object]] | None = None,
    ylabel: str = "‖gradient with aux‖ / ‖without aux‖",
    title: str | None = None,
):
    """The with/without-aux ratio per layer, one line per ``{label: {layer: ratio}}`` entry.

    A dashed line marks 1 (no change), and the layers above the upper tap, which no auxiliary loss can reach,
    are shaded. Returns ``(fig, ax)``.
    """
    ratios = _check_curves(ratios, "ratios")
    fig, ax = axes_or_new(ax)
    styles = styles or {}
    for label, values in ratios.items():
        kept = [name for name in MAIN_PATH if name in values]
        ax.plot(
            [PAPER_DEPTH[name] for name in kept],
            [values[name] for name in kept],
            **{"marker": "o", "label": label, **styles.get(label, {})},
        )
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    last_tap = PAPER_DEPTH[AUX_TAPS["aux2"]]
    ax.axvspan(last_tap + 0.5, PAPER_DEPTH["fc"] + 0.5, color="0.92", zorder=0)
    ax.annotate(
        "no aux loss\nreaches here:\nratio exactly 1",
        ((last_tap + 0.5 + PAPER_DEPTH["fc"] + 0.5) / 2, 0.6),
        xycoords=("data", "axes fraction"),
        ha="center",
        va="center",
        fontsize="small",
        color="0.4",
    )
    ax.set_ylabel(ylabel)
    _depth_axis(ax, _layers_in(ratios), mark_taps=True)
    return finish(fig, ax, title=title)


# ----------------------------------------------------------------------------------------- over a whole run


def logged_aux_share(metrics: Sequence[Mapping[str, object]], stage: str) -> tuple[list[int], list[float]]:
    """From a run logged with ``gnet.train --grad-norms-every N``: the optimizer steps, and at each the norm of
    the weighted auxiliary losses' gradient at ``stage`` divided by the main loss's (0 above 4d)."""
    if stage not in PAPER_DEPTH:
        raise ValueError(f"unknown stage {stage!r}; expected one of {MAIN_PATH}")
    entries = [entry for record in metrics for entry in record.get("grad_norms", [])]  # type: ignore[union-attr]
    if not entries:
        raise ValueError("these metrics hold no gradient norms: the run was not started with --grad-norms-every")
    if entries[0]["aux"] is None:
        raise ValueError("this run logged no auxiliary gradient: it trained without the auxiliary heads")
    steps = [int(entry["step"]) for entry in entries]
    return steps, [entry["aux"][stage] / entry["main"][stage] for entry in entries]


def plot_logged_aux_share(
    runs: Mapping[str, Sequence[Mapping[str, object]]],
    stages: Sequence[str],
    *,
    steps_per_epoch: int,
    ax=None,
    title: str | None = None,
):
    """The auxiliary share of the gradient (:func:`logged_aux_share`) against the epoch, one colour per stage and
    one line style per run. Returns ``(fig, ax)``."""
    fig, ax = axes_or_new(ax, width=7, height=3.8)
    colours = dict(zip(stages, ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00"), strict=False))
    for style, (label, metrics) in zip(("-", "--", ":", "-."), runs.items(), strict=False):
        for stage in stages:
            steps, shares = logged_aux_share(metrics, stage)
            ax.plot([s / steps_per_epoch for s in steps], shares, linestyle=style, color=colours[stage],
                    label=f"{_tick_label(stage)}, {label}")  # fmt: skip
    ax.set(xlabel="epoch", ylabel="‖∂(aux losses)/∂θ‖ / ‖∂(main loss)/∂θ‖", ylim=(0, None))
    return finish(fig, ax, title=title, legend={"fontsize": "x-small", "ncols": 2})
