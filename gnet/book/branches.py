"""What the branches see: dataset examples, unit properties and the branch-specialisation test (chapter 9).

* :func:`branch_of` and :func:`branch_channels`: which branch of an Inception module each output channel comes from;
* :func:`unit_statistics`: for every image and channel, the channel's mean and its peak over the map, and where the
  peak is, in one pass over the images;
* :func:`top_examples` and :func:`example_crops`: the images that excite a channel most, cut to the unit's
  receptive field around the peak;
* :func:`colour_index` and :func:`greyscale`: how much more a unit responds to the photographs than to their
  greyscale copies;
* :func:`curve_stimuli` and :func:`curve_index`: how much more a unit responds to curves than to straight lines of the
  same contrast, length and width;
* :func:`select_top` and :func:`concentration_test`: the units a property selects, and the hypergeometric test of
  whether they crowd into one branch (Voss et al., *Branch Specialization*, Distill 2021);
* :func:`tile_sheet`, :func:`read_tiles` and :func:`plot_gallery`: the recorded pictures, as sheets of tiles.

The definitions of both indices and the selection rule are fixed here, before any branch is looked at; the
chapter's in-depth page states them in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from gnet.book.figures import BRANCH_COLORS, BRANCH_LABELS
from gnet.featurevis import layer_output
from gnet.model import BRANCH_NAMES, GoogLeNet, Inception

__all__ = [
    "SELECTED_FRACTION",
    "branch_channels",
    "branch_of",
    "unit_grid",
    "unit_statistics",
    "top_examples",
    "example_crops",
    "greyscale",
    "colour_index",
    "curve_stimuli",
    "curve_index",
    "select_top",
    "BranchCount",
    "concentration_test",
    "tile_sheet",
    "read_tiles",
    "plot_gallery",
    "RECORD_DIR",
    "PROPERTIES",
    "load_record",
    "visualisations",
    "examples",
    "gallery_units",
    "specialisation",
    "specialisation_summary",
    "TESTS",
    "gains",
    "plot_stages",
    "plot_index_by_branch",
]

#: The share of a module's units that a property selects (its top 1/8 by the index), fixed before looking at branches.
SELECTED_FRACTION = 1 / 8


# --------------------------------------------------------------------------------------------- branch membership
def _inception(model: nn.Module, module: str) -> Inception:
    block = model.get_submodule(module) if isinstance(module, str) else None
    if not isinstance(block, Inception):
        raise ValueError(f"expected the name of an Inception module of the model, got {module!r}")
    return block


def _branch_width(block: Inception, branch: str) -> int:
    last = getattr(block, branch)
    last = last[-1] if isinstance(last, nn.Sequential) else last
    return last.conv.out_channels


def branch_channels(model: nn.Module, module: str) -> dict[str, range]:
    """``{branch: range of output channels}``: where each branch's channels sit in the module's concatenated output."""
    block, start, result = _inception(model, module), 0, {}
    for branch in BRANCH_NAMES:
        width = _branch_width(block, branch)
        result[branch] = range(start, start + width)
        start += width
    return result


def branch_of(model: nn.Module, module: str) -> list[str]:
    """The branch of every output channel of ``module``, in channel order."""
    return [branch for branch, channels in branch_channels(model, module).items() for _ in channels]


def unit_grid(model: GoogLeNet, stage: str) -> tuple[int, float]:
    """``(jump, offset)``: unit ``i`` of ``stage``'s map is centred on input pixel ``offset + i * jump``.

    Walks the stem and the pools in order; an Inception module keeps the grid, since each of its branches pads its
    kernels symmetrically ("same" padding).
    """
    jump, offset = 1, 0.0
    for name, child in model.named_children():
        if name in ("aux1", "aux2", "avgpool", "dropout", "fc") or child is None:
            continue
        if not isinstance(child, Inception):
            for leaf in child.modules():
                if isinstance(leaf, (nn.Conv2d, nn.MaxPool2d)):
                    kernel, stride, padding = (v if isinstance(v, int) else v[0]
                                               for v in (leaf.kernel_size, leaf.stride, leaf.padding))  # fmt: skip
                    offset += jump * ((kernel - 1) / 2 - padding)
                    jump *= stride
        if name == stage:
            return jump, offset
    raise ValueError(f"no main-path stage named {stage!r}")


# ------------------------------------------------------------------------------------------- one pass of images
class LayerStats(NamedTuple):
    """Of one layer over ``N`` images: ``mean`` and ``peak`` (N × C) of each channel's map, ``where`` the flat
    position of the peak (N × C), and the map's ``width``."""

    mean: Tensor
    peak: Tensor
    where: Tensor
    width: int


@torch.no_grad()
def unit_statistics(model: nn.Module, layers: Sequence[str], images: Tensor, *, batch_size: int = 128) -> dict:
    """``{layer: LayerStats}`` for RGB ``images`` in [0, 1] (normalised as gnet trains), in eval mode.

    Only the per-channel summaries are kept, so a whole validation split fits in memory.
    """
    parts: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {name: [] for name in layers}
    widths: dict[str, int] = {}
    last = max(layers, key=[name for name, _ in model.named_modules()].index)
    outputs: dict[str, Tensor] = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: outputs.__setitem__(name, out)) for name in layers]  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        for batch in images.split(batch_size):
            layer_output(model, last, batch)
            for name, out in outputs.items():
                flat = out.flatten(2)
                peak, where = flat.max(dim=2)
                parts[name].append((flat.mean(dim=2), peak, where))
                widths[name] = out.shape[-1]
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return {name: LayerStats(*(torch.cat(p) for p in zip(*parts[name], strict=True)), widths[name]) for name in layers}


def top_examples(stats: LayerStats, k: int) -> Tensor:
    """``C × k``: for each channel, the ``k`` images with the highest peak, highest first."""
    return stats.peak.topk(k, dim=0).indices.T


def example_crops(images: Tensor, stats: LayerStats, channel: int, image_indices: Sequence[int], *, field: int,
                  grid: tuple[int, float], out_size: int = 64) -> np.ndarray:  # fmt: skip
    """``k × out_size × out_size × 3`` uint8: each image cut to ``field`` pixels around ``channel``'s peak on it.

    ``grid`` is :func:`unit_grid`'s ``(jump, offset)``. Parts of the field outside the image are grey; a field as
    large as the image or larger shows the whole image.
    """
    jump, offset = grid
    height, width = images.shape[-2:]
    if field >= max(height, width):
        whole = torch.nn.functional.interpolate(images[list(image_indices)], size=(out_size, out_size),
                                                mode="bilinear", antialias=True, align_corners=False)  # fmt: skip
        return _to_uint8(whole)
    half = field / 2
    crops = []
    for index in image_indices:
        position = int(stats.where[index, channel])
        cy = offset + (position // stats.width) * jump
        cx = offset + (position % stats.width) * jump
        # An affine grid samples the square [c - half, c + half] of the image, grey outside it.
        theta = torch.tensor([[[half / (width / 2), 0.0, (cx + 0.5) / (width / 2) - 1.0],
                               [0.0, half / (height / 2), (cy + 0.5) / (height / 2) - 1.0]]])  # fmt: skip
        sample_grid = torch.nn.functional.affine_grid(theta, [1, 3, out_size, out_size], align_corners=False)
        crop = torch.nn.functional.grid_sample(images[index : index + 1] - 0.5, sample_grid, mode="bilinear",
                                               padding_mode="zeros", align_corners=False) + 0.5  # fmt: skip
        crops.append(crop[0])
    return _to_uint8(torch.stack(crops))


def _to_uint8(images: Tensor) -> np.ndarray:
    """``N × 3 × H × W`` in [0, 1] as ``N × H × W × 3`` uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------------------ colour index
def greyscale(images: Tensor) -> Tensor:
    """The same RGB images in grey: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) in all three channels."""
    luma = (images * images.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(dim=1, keepdim=True)
    return luma.expand_as(images).contiguous()


def _contrast(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` per unit, in [-1, 1] for non-negative responses; 0 for a unit silent on both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)


def colour_index(mean_colour: Tensor, mean_grey: Tensor) -> np.ndarray:
    """Per unit: (response to the photographs − response to their grey copies) / (the sum).

    A response is the unit's map mean, averaged over all images (``LayerStats.mean`` of the photographs and of
    :func:`greyscale` copies). +1: the unit fires only with colour; −1: only without it; 0: colour makes no
    difference (or the unit never fires).
    """
    return _contrast(mean_colour.mean(dim=0), mean_grey.mean(dim=0))


# ------------------------------------------------------------------------------------------------- curve index
def _stroke(distance: Tensor, width: float) -> Tensor:
    """Anti-aliased stroke of ``width`` pixels: 1 inside, a one-pixel linear edge, 0 outside."""
    return (width / 2 + 0.5 - distance).clamp(0, 1)


def _pixel_grid(size: int) -> tuple[Tensor, Tensor]:
    coords = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2  # the image centre at 0
    return torch.meshgrid(coords, coords, indexing="ij")


def _arc_distance(y: Tensor, x: Tensor, radius: float, direction: float, span: float) -> Tensor:
    """Distance to an arc of ``span`` radians whose midpoint is the origin and which bulges towards ``direction``."""
    cy, cx = -radius * np.sin(direction), -radius * np.cos(direction)  # the circle's centre, behind the midpoint
    dy, dx = y - cy, x - cx
    angle = torch.remainder(torch.atan2(dy, dx) - direction + np.pi, 2 * np.pi) - np.pi  # 0 at the midpoint
    on_arc = ((dy**2 + dx**2).sqrt() - radius).abs()
    ends = [((y - cy - radius * np.sin(direction + s)) ** 2 + (x - cx - radius * np.cos(direction + s)) ** 2).sqrt()
            for s in (-span / 2, span / 2)]  # fmt: skip
    return torch.where(angle.abs() <= span / 2, on_arc, torch.minimum(*ends))


def _segment_distance(y: Tensor, x: Tensor, length: float, direction: float) -> Tensor:
    """Distance to a straight segment of ``length`` centred on the origin, along ``direction``."""
    uy, ux = np.sin(direction), np.cos(direction)
    along = (y * uy + x * ux).clamp(-length / 2, length / 2)
    return ((y - along * uy) ** 2 + (x - along * ux) ** 2).sqrt()


def curve_stimuli(size: int = 128, *, radii: Sequence[float] = (8, 12, 18, 27), orientations: int = 16,
                  width: float = 2.0, contrast: float = 0.5) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``(curves, lines)``, each ``M × 3 × size × size`` in [0, 1]: quarter-circle arcs of every radius and
    orientation, and straight segments as long as each arc, at the same orientations, stroke width and contrast.

    Strokes are dark and light (``0.5 ∓ contrast``) on mid-grey, centred on the image. ``M = 2 × len(radii) ×
    orientations``.
    """
    y, x = _pixel_grid(size)
    curves, lines = [], []
    for radius in radii:
        for step in range(orientations):
            direction = 2 * np.pi * step / orientations
            curve = _stroke(_arc_distance(y, x, radius, direction, np.pi / 2), width)
            line = _stroke(_segment_distance(y, x, radius * np.pi / 2, direction + np.pi / 2), width)
            for sign in (-1, 1):
                curves.append(0.5 + sign * contrast * curve)
                lines.append(0.5 + sign * contrast * line)
    as_rgb = lambda maps: torch.stack(maps).float()[:, None].expand(-1, 3, -1, -1).contiguous()  # noqa: E731
    return as_rgb(curves), as_rgb(lines)


def curve_index(peak_curves: Tensor, peak_lines: Tensor) -> np.ndarray:
    """Per unit: (strongest response to any curve − strongest response to any line) / (the sum).

    ``peak_*`` are ``LayerStats.peak`` (M × C) of :func:`curve_stimuli`: a unit's response to a stimulus is its
    peak over the map, since a stroke covers a small part of the image.
    """
    return _contrast(peak_curves.max(dim=0).values, peak_lines.max(dim=0).values)


# ------------------------------------------------------------------------------------------ concentration test
def select_top(index: np.ndarray, fraction: float = SELECTED_FRACTION) -> np.ndarray:
    """Boolean mask of the ``round(fraction × C)`` units with the highest ``index`` (ties broken by channel order)."""
    index = np.asarray(index, dtype=float)
    if index.ndim != 1 or not 0 < fraction < 1:
        raise ValueError(f"expected a 1-D index and a fraction in (0, 1), got shape {index.shape} and {fraction!r}")
    k = max(1, round(fraction * len(index)))
    mask = np.zeros(len(index), dtype=bool)
    mask[np.argsort(-index, kind="stable")[:k]] = True
    return mask


class BranchCount(NamedTuple):
    """One branch in the test: its size, how many selected units it holds, how many chance predicts, and the
    hypergeometric probability of holding at least that many by chance."""

    branch: str
    size: int
    selected: int
    expected: float
    p_value: float


def concentration_test(selected: np.ndarray, branches: Sequence[str]) -> list[BranchCount]:
    """For each branch, P(at least as many selected units in it | the selection drawn at random from the module).

    ``selected`` is :func:`select_top`'s mask, ``branches`` :func:`branch_of`. The p-value is the hypergeometric
    upper tail: population ``C`` units, ``size`` of them in the branch, ``k`` selected.
    """
    from scipy.stats import hypergeom

    selected, branches = np.asarray(selected, dtype=bool), np.asarray(branches)
    if selected.shape != branches.shape:
        raise ValueError(f"expected one branch per unit, got {len(branches)} branches for {len(selected)} units")
    population, k = len(selected), int(selected.sum())
    rows = []
    for branch in dict.fromkeys(branches.tolist()):
        in_branch = branches == branch
        size, hits = int(in_branch.sum()), int((selected & in_branch).sum())
        rows.append(BranchCount(branch, size, hits, k * size / population,
                                float(hypergeom.sf(hits - 1, population, size, k))))  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------------ tile sheets
def tile_sheet(tiles: np.ndarray, columns: int) -> np.ndarray:
    """``N × h × w × 3`` uint8 tiles laid out row by row, ``columns`` wide (the last row padded with white)."""
    tiles = np.asarray(tiles)
    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    sheet = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    return sheet


def read_tiles(path: str | Path, tile: int, count: int, columns: int) -> np.ndarray:
    """The first ``count`` tiles of a sheet written by :func:`tile_sheet` (read with Pillow)."""
    from PIL import Image

    sheet = np.asarray(Image.open(path).convert("RGB"))
    return np.stack([sheet[(i // columns) * tile : (i // columns + 1) * tile, (i % columns) * tile :
                           (i % columns + 1) * tile] for i in range(count)])  # fmt: skip


def plot_gallery(units: Mapping[str, Sequence[tuple[int, np.ndarray, np.ndarray]]], *, per_row: int = 3,
                 tile: int = 64, title: str | None = None):  # fmt: skip
    """Channels grouped by branch: each as its visualisation, then its dataset examples, on a white background.

    ``units`` is ``{branch: [(channel, visualisation, examples), ...]}`` with the visualisation an ``H × W × 3`` and
    the examples a ``k × h × w × 3`` uint8 array. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    def resized(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize((tile, tile), Image.Resampling.LANCZOS))

    gap = tile // 8
    blocks = {}
    for branch, entries in units.items():
        strips = []
        for _channel, vis, examples in entries:
            strip = [resized(vis)] + [resized(e) for e in examples]
            row = np.full((tile, len(strip) * tile + (len(strip) - 1) * 2, 3), 255, np.uint8)
            for j, image in enumerate(strip):
                row[:, j * (tile + 2) : j * (tile + 2) + tile] = image
            strips.append(row)
        blocks[branch] = strips
    strip_width = max(s.shape[1] for strips in blocks.values() for s in strips)
    heights = [-(-len(strips) // per_row) for strips in blocks.values()]
    size = (per_row * strip_width / 90, sum(heights) * (tile + gap) / 90 + 0.45 * len(blocks))
    fig, axes = plt.subplots(len(blocks), 1, squeeze=False, facecolor="white", figsize=size,
                             gridspec_kw={"height_ratios": heights})  # fmt: skip
    for ax, (branch, strips) in zip(axes[:, 0], blocks.items(), strict=True):
        rows = -(-len(strips) // per_row)
        canvas = np.full((rows * (tile + gap), per_row * (strip_width + 3 * gap), 3), 255, np.uint8)
        for i, strip in enumerate(strips):
            r, c = divmod(i, per_row)
            canvas[r * (tile + gap) : r * (tile + gap) + tile, c * (strip_width + 3 * gap) :
                   c * (strip_width + 3 * gap) + strip.shape[1]] = strip  # fmt: skip
        ax.imshow(canvas, interpolation="nearest")
        for i, (channel, _vis, _ex) in enumerate(units[branch]):
            r, c = divmod(i, per_row)
            ax.text(c * (strip_width + 3 * gap) + 2, r * (tile + gap) + 2, str(channel), fontsize=7, va="top",
                    color="black", bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "linewidth": 0})  # fmt: skip
        label = f"{BRANCH_LABELS[branch]} branch" if branch in BRANCH_LABELS else branch
        ax.set_title(f"{label} ({len(strips)} channels)", loc="left",
                     color=BRANCH_COLORS.get(branch, "black"), fontsize=10)  # fmt: skip
        ax.set_axis_off()
        ax.set_facecolor("white")
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


# ------------------------------------------------------------------------------------------------- the record
#: Where ``scripts/record_featurevis.py`` writes, beside the shipped weights' other recorded runs.
RECORD_DIR = Path(__file__).resolve().parents[2] / "book" / "recorded_runs" / "featurevis"

#: The three properties the test selects on: name -> (index in the record, sign). "Grey-preferring" units are
#: the top of the colour index turned upside down.
PROPERTIES: dict[str, tuple[str, int]] = {
    "colour-preferring": ("colour_index", 1),
    "grey-preferring": ("colour_index", -1),
    "curve-preferring": ("curve_index", 1),
}


def load_record(folder: str | Path = RECORD_DIR) -> dict:
    """``record.json`` of the recorded run, with ``folder`` added under ``"folder"``."""
    import json

    folder = Path(folder)
    return json.loads((folder / "record.json").read_text()) | {"folder": str(folder)}


def visualisations(record: Mapping, module: str) -> np.ndarray:
    """``C × size × size × 3`` uint8: the recorded visualisation of each recorded channel of ``module``."""
    layer = record["layers"][module]
    return read_tiles(Path(record["folder"]) / f"{module}_vis.jpg", layer["size"], len(layer["channels"]),
                      layer["columns"])  # fmt: skip


def examples(record: Mapping, module: str) -> np.ndarray:
    """``C × k × tile × tile × 3`` uint8: the recorded dataset examples of each recorded channel of ``module``."""
    layer, k, tile = record["layers"][module], record["examples"], record["example_tile"]
    tiles = read_tiles(Path(record["folder"]) / f"{module}_examples.jpg", tile, len(layer["channels"]) * k, k)
    return tiles.reshape(len(layer["channels"]), k, tile, tile, 3)


def gallery_units(record: Mapping, module: str, *, channels: Sequence[int] | None = None, shown: int = 2,
                  by: str = "branch") -> dict[str, list[tuple[int, np.ndarray, np.ndarray]]]:  # fmt: skip
    """``{branch: [(channel, visualisation, first examples), ...]}`` for :func:`plot_gallery`, in channel order."""
    layer = record["layers"][module]
    vis, ex = visualisations(record, module), examples(record, module)
    wanted = layer["channels"] if channels is None else channels
    groups: dict[str, list] = {}
    for channel in wanted:
        i = layer["channels"].index(channel)
        groups.setdefault(layer[by][i], []).append((channel, vis[i], ex[i, :shown]))
    return dict(sorted(groups.items(), key=lambda item: BRANCH_NAMES.index(item[0])))


def specialisation(index: Sequence[float], branches: Sequence[str], sign: int = 1,
                   fraction: float = SELECTED_FRACTION) -> list[BranchCount]:  # fmt: skip
    """:func:`concentration_test` of the units :func:`select_top` picks from ``sign × index``."""
    return concentration_test(select_top(sign * np.asarray(index, dtype=float), fraction), branches)


#: How many hypergeometric tests the chapter runs: 3 properties × 2 modules × 4 branches (for Bonferroni).
TESTS = len(PROPERTIES) * 2 * len(BRANCH_NAMES)


def specialisation_summary(record: Mapping, *, twin: bool = False, fraction: float = SELECTED_FRACTION) -> list[dict]:
    """One row per module (3a, 3b) and property: the branch holding the most selected units relative to its size
    (the smallest p-value), its count, what chance predicts, the p-value and the Bonferroni-corrected p-value.

    ``twin=True`` reads the random twin's indices instead of the trained network's.
    """
    rows = []
    for module in ("inception3a", "inception3b"):
        layer = record["layers"][module]
        for prop, (key, sign) in PROPERTIES.items():
            index = record["random_twin"][module][key.removesuffix("_index")] if twin else layer[key]
            counts = specialisation(index, layer["branch"], sign, fraction)
            best = min(counts, key=lambda c: (c.p_value, -c.selected))
            rows.append({"module": module, "property": prop, "selected": sum(c.selected for c in counts),
                         "branch": best.branch, "in_branch": best.selected, "branch_size": best.size,
                         "units": len(index), "expected": best.expected, "p": best.p_value,
                         "p_bonferroni": min(1.0, best.p_value * TESTS),
                         "counts": {c.branch: c.selected for c in counts}})  # fmt: skip
    return rows


def gains(record: Mapping, modules: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per recorded channel (over ``modules``, all by default): the visualisation's activation over the mean
    activation on the validation photographs (``"photos"``), over its own start (``"start"``; infinite for a unit
    silent at the start, NaN for one silent throughout), and whether it beats the single photograph that excites
    the channel most (``"beats_best"``)."""
    names = list(record["layers"]) if modules is None else list(modules)
    column = lambda key: np.concatenate([np.asarray(record["layers"][m][key], float) for m in names])  # noqa: E731
    reached, photos, start = column("activation"), column("photo_mean"), column("start_activation")

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # NaN for a channel silent on both (dead)
        silent = np.where(a > 0, np.inf, np.nan)
        return np.divide(a, b, out=silent, where=b > 0)

    return {"photos": ratio(reached, photos), "start": ratio(reached, start),
            "beats_best": reached > column("photo_best_mean")}  # fmt: skip


def plot_stages(rows: Mapping[str, np.ndarray], *, tile: int = 80):
    """One row of visualisations per stage (``{label: k × H × W × 3 uint8}``), on a white background."""
    import matplotlib.pyplot as plt
    from PIL import Image

    columns = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), columns, squeeze=False, facecolor="white",
                             figsize=(columns * tile / 80 + 0.9, len(rows) * tile / 80))  # fmt: skip
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c < len(images):
                ax.imshow(np.asarray(Image.fromarray(images[c]).resize((tile, tile), Image.Resampling.LANCZOS)))
        axes[r, 0].text(-0.08, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
    return fig


def plot_index_by_branch(indices: Mapping[str, Mapping[str, Sequence[float]]], branches: Mapping[str, Sequence[str]],
                         *, ylabel: str, ax=None, title: str | None = None):  # fmt: skip
    """Each unit's index as a dot, one column per (module, branch), one colour per branch; ``indices`` is
    ``{network label: {module: index per unit}}`` (one marker per network). Returns ``(fig, ax)``."""
    from gnet.book.figures import axes_or_new, finish

    fig, ax = axes_or_new(ax, width=7, height=3.6)
    markers = dict(zip(indices, ("o", "x"), strict=False))
    labels, x, first = [], 0, next(iter(branches))
    for module, members in branches.items():
        members = np.asarray(members)
        for branch in BRANCH_NAMES:
            for n, (network, per_module) in enumerate(indices.items()):
                values = np.asarray(per_module[module])[members == branch]
                offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
                ax.scatter(x + (n - 0.5) * 0.35 + offsets, values, s=12, marker=markers[network], linewidths=1,
                           color=BRANCH_COLORS[branch], alpha=0.8 if n == 0 else 0.5,
                           label=network if (module, branch) == (first, "branch1") else None)  # fmt: skip
            labels.append(f"{module.replace('inception', '')}\n{BRANCH_LABELS[branch]}")
            x += 1
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel(ylabel)
    return finish(fig, ax, title=title)
