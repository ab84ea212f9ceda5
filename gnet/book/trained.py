"""What a trained GoogLeNet does with its structure: measured on real images, against the same network at random.

The book's ideas chapters argue from claims about trained networks: features that correlate in sparse blocks
(Arora et al.'s clustering step), correlations that reach further at higher stages, modules that "decide" which
scales to use. This module measures each of them on a :class:`gnet.GoogLeNet`:

* :func:`receptive_fields` and :func:`branch_receptive_fields`: the theoretical receptive field of every stage and
  branch, read off the model's own kernels and strides (nothing typed in);
* :func:`stage_outputs`, :func:`feature_correlation`, :func:`spatial_correlation`: channel-by-channel correlation
  of a stage's features, and how far along the image a feature stays correlated with itself;
* :func:`effective_receptive_field`: the input gradient of a stage's centre unit, and the radius that holds half
  of it (Luo et al. 2016);
* :func:`zero_branch`, :func:`branch_energy`, :func:`top1`: one branch of one module switched off, the share of a
  module's output each branch carries, and the top-1 of what is left;
* :func:`random_like`: the same architecture at initialisation, with BatchNorm statistics measured on the same
  images, as the control.

Everything runs in eval mode and leaves the model as it found it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from gnet.book import correlation as corr
from gnet.evaluate import topk_correct
from gnet.model import BRANCH_NAMES, GoogLeNet, Inception
from gnet.table1 import INCEPTION_SPECS

__all__ = [
    "FEATURE_STAGES",
    "ReceptiveField",
    "receptive_fields",
    "branch_receptive_fields",
    "random_like",
    "stage_outputs",
    "feature_correlation",
    "spatial_correlation",
    "effective_receptive_field",
    "half_mass_radius",
    "zero_branch",
    "branch_energy",
    "branch_means",
    "top1",
    "ablation_table",
    "summed",
    "correlation_summary",
    "mass_profile",
    "load_val",
    "load_analysis",
    "made_by",
    "plot_correlation_lengths",
    "plot_mass_profiles",
    "plot_branch_grid",
]

#: The main-path stages that produce feature maps, stem to 5b (the paper's layers with parameters, without fc).
FEATURE_STAGES: tuple[str, ...] = ("conv1", "conv2", "conv3", *INCEPTION_SPECS)


class ReceptiveField(NamedTuple):
    """Of one stage's output: ``size`` input pixels seen by one unit, ``jump`` input pixels between two units."""

    size: int
    jump: int


# ----------------------------------------------------------------------------------------- receptive fields
def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


def _grow(field: ReceptiveField, module: nn.Module) -> ReceptiveField:
    """The field after one convolution or pooling layer (any other layer leaves it as it is)."""
    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return field
    (kernel, kernel_w), (stride, _), (dilation, _) = (
        _pair(module.kernel_size), _pair(module.stride), _pair(getattr(module, "dilation", 1))
    )  # fmt: skip
    if kernel != kernel_w:
        raise ValueError(f"{type(module).__name__} has a non-square kernel {module.kernel_size}")
    return ReceptiveField(field.size + (kernel - 1) * dilation * field.jump, field.jump * stride)


def _through(field: ReceptiveField, module: nn.Module) -> ReceptiveField:
    for leaf in module.modules():
        field = _grow(field, leaf)
    return field


def _main_path(model: GoogLeNet) -> Iterator[tuple[str, nn.Module]]:
    """The main path's children in forward order: stem, pools and modules, up to 5b (no heads, no classifier)."""
    for name, child in model.named_children():
        if name in ("aux1", "aux2", "avgpool", "dropout", "fc") or child is None:
            continue
        yield name, child


def receptive_fields(model: GoogLeNet) -> dict[str, ReceptiveField]:
    """The receptive field of every main-path stage's output, in forward order, from the model's layers.

    An Inception module's field is that of its widest branch (:func:`branch_receptive_fields`).
    """
    if not isinstance(model, GoogLeNet):
        raise ValueError(f"expected a gnet.GoogLeNet, got {type(model).__name__}")
    field, fields = ReceptiveField(1, 1), {}
    for name, child in _main_path(model):
        if isinstance(child, Inception):
            field = max((_through(field, getattr(child, b)) for b in BRANCH_NAMES), key=lambda f: f.size)
        else:
            field = _through(field, child)
        fields[name] = field
    return fields


def branch_receptive_fields(model: GoogLeNet) -> dict[str, dict[str, int]]:
    """``{module: {branch: size}}``: the receptive field of each branch's output, for the nine modules."""
    fields, before, result = receptive_fields(model), ReceptiveField(1, 1), {}
    for name, child in _main_path(model):
        if isinstance(child, Inception):
            result[name] = {b: _through(before, getattr(child, b)).size for b in BRANCH_NAMES}
        before = fields[name]
    return result


# ----------------------------------------------------------------------------------------------- the control
@torch.no_grad()
def random_like(model: GoogLeNet, images: Tensor, *, seed: int = 0) -> GoogLeNet:
    """The same architecture, freshly initialised (``seed``); BatchNorm statistics are those of ``images``.

    A BatchNorm network at initialisation has running statistics of 0 and 1, which no real activation has; measured
    on the images instead, each layer is normalised as training would normalise it, and the control differs from
    the trained network only in its weights.
    """
    torch.manual_seed(seed)
    fresh = GoogLeNet(model.config).to(images.device)
    for module in fresh.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    fresh.train()
    for batch in images.split(128):
        fresh(batch)
    return fresh.eval()


# ---------------------------------------------------------------------------------------------- activations
@torch.no_grad()
def stage_outputs(model: GoogLeNet, images: Tensor, stages: Sequence[str], *, batch_size: int = 128) -> dict:
    """``{stage: N × C × H × W tensor}``: what each named stage outputs for ``images``, in eval mode."""
    outputs: dict[str, list[Tensor]] = {name: [] for name in stages}
    hooks = [
        model.get_submodule(name).register_forward_hook(lambda _m, _i, out, name=name: outputs[name].append(out))
        for name in stages
    ]
    was_training = model.training
    try:
        model.eval()
        for batch in images.split(batch_size):
            model(batch)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts) for name, parts in outputs.items()}


def _live_channels(features: Tensor) -> Tensor:
    """The features of channels that vary at all (a ReLU channel that never fires has no correlation)."""
    if features.ndim != 4:
        raise ValueError(f"expected features of shape N × C × H × W, got {tuple(features.shape)}")
    spread = features.double().transpose(0, 1).flatten(1).std(dim=1)
    return features[:, spread > 0]


def feature_correlation(features: Tensor) -> tuple[np.ndarray, int]:
    """Channel-by-channel Pearson correlation over every position of every image, and how many channels were dead.

    Channels that never vary (a ReLU that never fires on these images) are left out of the matrix.
    """
    live = _live_channels(features)
    matrix = corr.channel_correlation(list(live.double().numpy()))  # one C × H × W array per image, pooled
    return matrix, features.shape[1] - live.shape[1]


def _shift_correlation(x: Tensor, distance: int, dim: int) -> Tensor:
    """Per channel, Pearson r between the maps and themselves shifted by ``distance`` along ``dim``, over images."""
    size = x.shape[dim]
    a, b = x.narrow(dim, 0, size - distance), x.narrow(dim, distance, size - distance)
    a = a - a.mean(dim=(0, 2, 3), keepdim=True)
    b = b - b.mean(dim=(0, 2, 3), keepdim=True)
    denominator = (a.pow(2).sum(dim=(0, 2, 3)) * b.pow(2).sum(dim=(0, 2, 3))).sqrt()
    return (a * b).sum(dim=(0, 2, 3)) / denominator


def spatial_correlation(features: Tensor, max_distance: int) -> np.ndarray:
    """r(d) for d = 0..max_distance feature-map pixels: a channel against itself d pixels away, mean over channels.

    Each channel's r pools every pair of positions ``d`` apart, horizontally and vertically, over all images; dead
    channels are left out. Multiply a distance by the stage's :attr:`ReceptiveField.jump` for input pixels.
    """
    live = _live_channels(features).double()
    if not 0 < max_distance < min(live.shape[2:]):
        raise ValueError(f"max_distance must be in 1..{min(live.shape[2:]) - 1} for maps of {tuple(live.shape[2:])}")
    curve = [1.0]
    for d in range(1, max_distance + 1):
        r = (_shift_correlation(live, d, 3) + _shift_correlation(live, d, 2)) / 2
        curve.append(float(r.nanmean()))
    return np.asarray(curve)


# ------------------------------------------------------------------------------------ effective receptive field
def effective_receptive_field(model: GoogLeNet, images: Tensor, stage: str) -> np.ndarray:
    """Mean over images of |∂ y / ∂ input|, summed over colour channels, where y sums the stage's centre unit over
    its channels: an H × W map of how much each input pixel moves the centre of that stage (Luo et al. 2016)."""
    captured: list[Tensor] = []
    hook = model.get_submodule(stage).register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    try:
        model.eval()
        x = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            model(x)
            out = captured[0]
            centre = out[:, :, out.shape[2] // 2, out.shape[3] // 2].sum()
            (grad,) = torch.autograd.grad(centre, x)
    finally:
        model.train(was_training)
        hook.remove()
    return grad.abs().sum(dim=1).mean(dim=0).double().numpy()


def half_mass_radius(erf: np.ndarray) -> float:
    """The half-width, in pixels, of the smallest centred square that holds half of ``erf``'s total."""
    height, width = erf.shape
    cy, cx = height // 2, width // 2  # where the centre unit's field is centred, to within half a jump
    total = erf.sum()
    if not total > 0:
        raise ValueError("the effective receptive field is zero everywhere: nothing reaches the centre unit")
    for radius in range(max(height, width)):
        window = erf[max(0, cy - radius) : cy + radius + 1, max(0, cx - radius) : cx + radius + 1]
        if window.sum() >= total / 2:
            return float(radius)
    return math.inf


# ----------------------------------------------------------------------------------------------- ablations
@contextlib.contextmanager
def zero_branch(model: GoogLeNet, module: str, branch: str, mean: Tensor | None = None) -> Iterator[None]:
    """Inside the block, ``model.<module>.<branch>`` outputs zeros, or with ``mean`` (one value per channel, from
    :func:`branch_means`) that constant at every position: the branch is switched off.

    Zeros are what "remove the branch" means, but the next layer was trained on the branch's typical output,
    and zeros shift its input (BatchNorm's running statistics expect the old mean). The mean removes only what the
    branch says about *this* image, so the drop it causes measures how much the network relies on that.
    """
    if branch not in BRANCH_NAMES:
        raise ValueError(f"branch must be one of {BRANCH_NAMES}, got {branch!r}")
    target = getattr(model.get_submodule(module), branch)

    def replace(_m, _i, out: Tensor) -> Tensor:
        return torch.zeros_like(out) if mean is None else mean.view(1, -1, 1, 1).expand_as(out).to(out.dtype)

    hook = target.register_forward_hook(replace)
    try:
        yield
    finally:
        hook.remove()


@torch.no_grad()
def _per_branch(model: GoogLeNet, images: Tensor, reduce, batch_size: int) -> dict[str, dict[str, object]]:
    """``{module: {branch: sum over batches of reduce(branch output)}}`` from one pass over ``images``."""
    sums: dict[str, dict[str, object]] = {name: dict.fromkeys(BRANCH_NAMES, 0) for name in INCEPTION_SPECS}
    hooks = []
    for name in INCEPTION_SPECS:
        for branch in BRANCH_NAMES:

            def add(_m, _i, out, name=name, branch=branch):
                sums[name][branch] = sums[name][branch] + reduce(out.double())

            hooks.append(getattr(model.get_submodule(name), branch).register_forward_hook(add))
    try:
        stage_outputs(model, images, [], batch_size=batch_size)
    finally:
        for hook in hooks:
            hook.remove()
    return sums


def branch_means(model: GoogLeNet, images: Tensor, *, batch_size: int = 128) -> dict[str, dict[str, Tensor]]:
    """``{module: {branch: per-channel mean output}}`` over every position of ``images`` (for :func:`zero_branch`)."""
    sums = _per_branch(model, images, lambda out: out.mean(dim=(2, 3)).sum(dim=0), batch_size)
    return {name: {b: (s / len(images)).float() for b, s in row.items()} for name, row in sums.items()}


def branch_energy(model: GoogLeNet, images: Tensor, *, batch_size: int = 128) -> dict[str, dict[str, float]]:
    """``{module: {branch: share}}``: each branch's share of the sum of squares of the module's output."""
    sums = _per_branch(model, images, lambda out: float(out.pow(2).sum()), batch_size)
    return {name: {b: s / sum(parts.values()) for b, s in parts.items()} for name, parts in sums.items()}


@torch.no_grad()
def top1(model: GoogLeNet, images: Tensor, targets: Tensor, *, batch_size: int = 256) -> float:
    """The fraction of ``images`` whose highest logit is the target (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        correct = sum(
            topk_correct(model(x), t, (1,))[0]
            for x, t in zip(images.split(batch_size), targets.split(batch_size), strict=True)
        )
    finally:
        model.train(was_training)
    return correct / len(targets)


def ablation_table(
    model: GoogLeNet, images: Tensor, targets: Tensor, means: Mapping[str, Mapping[str, Tensor]] | None = None
) -> dict[str, dict[str, float]]:
    """``{module: {branch: top-1 with that branch off}}`` for all nine modules and four branches (36 runs): off
    is zeros, or with ``means`` (:func:`branch_means`) the branch's mean output (see :func:`zero_branch`)."""
    table = {}
    for name in INCEPTION_SPECS:
        table[name] = {}
        for branch in BRANCH_NAMES:
            with zero_branch(model, name, branch, None if means is None else means[name][branch]):
                table[name][branch] = top1(model, images, targets)
    return table


def summed(table: Mapping[str, Mapping[str, float]], branches: Sequence[str]) -> dict[str, float]:
    """Per module, the sum of ``table``'s entries for ``branches`` (for example the 3×3 and 5×5 paths)."""
    return {name: sum(row[b] for b in branches) for name, row in table.items()}


# ------------------------------------------------------------------------------------------------- summaries
def correlation_summary(matrix: np.ndarray, *, near_zero: float = 0.1, strong: float = 0.5) -> dict[str, float]:
    """The fractions of distinct channel pairs with |r| < ``near_zero`` and |r| >= ``strong``, and the clusters
    left when the average-linkage tree is cut at |r| = ``strong`` (as chapter 2 counts the filter bank's)."""
    pairs = np.abs(corr.pair_correlations(matrix))
    return {
        "channels": len(matrix),
        "near_zero": float(np.mean(pairs < near_zero)),
        "strong": float(np.mean(pairs >= strong)),
        "clusters": corr.count_clusters(matrix, min_abs_correlation=strong),
    }


def mass_profile(erf: np.ndarray) -> np.ndarray:
    """The share of ``erf``'s total inside the centred square of half-width r, for r = 0, 1, … (ends at 1)."""
    height, width = erf.shape
    cy, cx, total = height // 2, width // 2, erf.sum()
    radii = range(max(cy, cx, height - cy, width - cx))
    return np.asarray([erf[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].sum() / total for r in radii])


def load_val(data_dir, image_size: int, *, every: int = 1) -> tuple[Tensor, Tensor]:
    """Every ``every``-th validation image, decoded and normalised as for evaluation, and its class index."""
    from gnet import data as gdata

    dataset = gdata.ImageFolderDataset(gdata.resolve_data_dir(data_dir) / "val", gdata.eval_transform(image_size))
    subset = torch.utils.data.Subset(dataset, range(0, len(dataset), every))
    batches = list(torch.utils.data.DataLoader(subset, batch_size=256))
    return torch.cat([x for x, _ in batches]), torch.cat([t for _, t in batches])


# ---------------------------------------------------------------------------------------------- the record
def made_by(analysis: Mapping, part: str) -> dict:
    """The record (command, device, versions, commit) of the run of ``scripts/analyse_trained.py`` that measured
    ``part`` of ``analysis`` ("correlation", "mean_ablations", ...): the latest run that measured it."""
    for record in [analysis["made_by"], *reversed(analysis.get("earlier_runs", []))]:
        if part in record.get("parts", [part]):  # a record without "parts" measured everything
            return record
    raise ValueError(f"no run in this analysis measured {part!r}")


def load_analysis(weights: str = "DEFAULT") -> dict:
    """What ``scripts/analyse_trained.py`` recorded for these weights (``analysis.json`` beside their run)."""
    import json

    from gnet.weights import GoogLeNetWeights

    return json.loads(GoogLeNetWeights.resolve(weights).run_file("analysis.json").read_text())


# ------------------------------------------------------------------------------------------------- figures
def _stage_label(name: str) -> str:
    return name.replace("inception", "")


def plot_correlation_lengths(lengths: Mapping[str, Mapping[str, float]], fields: Mapping[str, int], *, ax=None,
                             title: str | None = None):  # fmt: skip
    """Correlation length per stage (input pixels, log scale), one line per network, with the receptive field.

    ``lengths`` is ``{network: {stage: pixels}}`` (``inf`` where the maps are too small to see it fall); ``fields``
    is ``{stage: theoretical receptive field}``. Returns (fig, ax).
    """
    from gnet.book.figures import axes_or_new, finish

    fig, ax = axes_or_new(ax, width=7, height=3.8)
    stages = list(fields)
    ax.plot(stages, [fields[s] for s in stages], "k:", label="receptive field (theory)")
    for label, row in lengths.items():
        values = [row[s] for s in stages]
        ax.plot(stages, [v if math.isfinite(v) else np.nan for v in values], "o-", label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(stages)), [_stage_label(s) for s in stages])
    ax.set(xlabel="stage (stem to 5b)", ylabel="input pixels")
    return finish(fig, ax, title=title)


def plot_mass_profiles(profiles: Mapping[str, Mapping[str, Sequence[float]]], fields: Mapping[str, int], *,
                       title: str | None = None):  # fmt: skip
    """One panel per stage: the share of the input gradient inside a centred square, against its half-width.

    ``profiles`` is ``{stage: {network: profile}}`` (:func:`mass_profile`); a dotted line marks the theoretical
    field's half-width. Returns (fig, axes).
    """
    from gnet.book.figures import finish, new_figure

    fig, axes = new_figure(len(profiles), width=2.6 * len(profiles) + 0.6, height=3.0, sharey=True)
    for ax, (stage, by_network) in zip(np.atleast_1d(axes), profiles.items(), strict=True):
        for label, profile in by_network.items():
            ax.plot(range(len(profile)), profile, label=label)
        half, right = fields[stage] // 2, len(profile) - 1
        if half <= right:
            ax.axvline(half, color="k", linestyle=":", label="theoretical half-width")
        else:  # the theoretical field is larger than the image: say so instead of drawing off the axis
            ax.annotate(f"theoretical half-width\n{half} px, beyond the image", (0.97, 0.06),
                        xycoords="axes fraction", ha="right", fontsize="x-small", color="0.35")  # fmt: skip
        ax.axhline(0.5, color="0.6", linewidth=0.8)
        ax.set(title=_stage_label(stage), xlabel="half-width (input px)", xlim=(0, right))
    np.atleast_1d(axes)[0].set_ylabel("share of |input gradient|")
    return finish(fig, axes, title=title)


def plot_branch_grid(values: Mapping[str, Mapping[str, float]], *, ax=None, title: str | None = None,
                     label: str = "", fmt: str = "{:.1f}", cmap: str = "viridis",
                     limits: tuple[float, float] | None = None):  # fmt: skip
    """A modules × branches heat map with each cell's value written in it. Returns (fig, ax).

    ``limits`` fixes the colour scale (give two panels the same one so that they can be compared).
    """
    from gnet.book.figures import BRANCH_LABELS, axes_or_new, finish

    fig, ax = axes_or_new(ax, width=4.2, height=4.6)
    modules = list(values)
    grid = np.array([[values[m][b] for b in BRANCH_NAMES] for m in modules])
    low, high = limits or (grid.min(), grid.max())
    image = ax.imshow(grid, cmap=cmap, aspect="auto", vmin=low, vmax=high)
    fig.colorbar(image, ax=ax, label=label, shrink=0.9)
    ax.set_xticks(range(len(BRANCH_NAMES)), [BRANCH_LABELS[b] for b in BRANCH_NAMES])
    ax.set_yticks(range(len(modules)), [_stage_label(m) for m in modules])
    ax.grid(False)
    middle = (low + high) / 2
    for (row, col), value in np.ndenumerate(grid):
        shown = fmt.format(value)
        if float(shown) == 0:  # no "-0.0": a loss that rounds to nothing is nothing
            shown = fmt.format(0.0)
        colour = "black" if value > middle else "white"
        ax.text(col, row, shown, ha="center", va="center", fontsize="small", color=colour)
    return finish(fig, ax, title=title, legend=False)
