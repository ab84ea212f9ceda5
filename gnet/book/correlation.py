"""Measure the correlation structure that motivates the Inception module.

Section 3 of the GoogLeNet paper (Szegedy et al. 2015, arXiv:1409.4842) argues from Arora et al. (2014):

1. the statistics of real images are *sparse*: most pairs of features are nearly independent, and the
   correlated ones form clusters, mostly of units that look at nearby pixels;
2. ideally one would build a network layer by layer by clustering correlated units;
3. hardware is fast at dense arithmetic and slow at sparse arithmetic, so Inception covers the plausible
   scales (1x1, 3x3, 5x5) densely and in parallel instead.

This module holds the measurements that the chapter "Why go wide" makes for each point, on real photographs:

* :func:`load_photos`, :func:`filter_bank`, :func:`responses` - photographs and a bank of oriented
  derivative-of-Gaussian filters at several scales;
* :func:`correlation_vs_distance`, :func:`correlation_length` - how far correlation reaches in space;
* :func:`channel_correlation`, :func:`clustered_correlation`, :func:`pair_correlations`,
  :func:`count_clusters`, :func:`conv_responses` - which channels fire together;
* :func:`time_dense_vs_sparse`, :func:`crossover_sparsity` - dense against sparse matrix products;
* ``plot_*`` - the chapter's figures. They draw on a given ``ax`` or make a new figure, and never save
  (:mod:`gnet.book.figures` styles them).

The chapter names the machine its timings ran on with :func:`gnet.device.device_name`.

All analysis functions are pure: they read their inputs and return new arrays. Anything a user passes in is
checked, and bad input raises ``ValueError`` saying what was expected and what was given.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnet._validate import finite_number, int_at_least, positive_int
from gnet.book.figures import axes_or_new, finish

__all__ = [
    "PHOTO_NAMES",
    "ClusteredCorrelation",
    "FilterBank",
    "SparseTiming",
    "channel_correlation",
    "clustered_correlation",
    "cluster",
    "conv_responses",
    "correlation_length",
    "correlation_vs_distance",
    "count_clusters",
    "crossover_sparsity",
    "filter_bank",
    "load_photo",
    "load_photos",
    "pair_correlations",
    "plot_clustered_correlation",
    "plot_correlation_vs_distance",
    "plot_filter_bank",
    "plot_pair_histogram",
    "plot_photos",
    "plot_sparse_timings",
    "random_sparse_matrix",
    "responses",
    "sparse_matmul",
    "time_dense_vs_sparse",
]

#: Photographs that ship with scikit-image and matplotlib, so the chapter needs no download.
#: ``chelsea`` is the cat of the source article's example.
PHOTO_NAMES: tuple[str, ...] = ("chelsea", "astronaut", "coffee", "grace_hopper")

SPARSE_LAYOUTS: tuple[str, ...] = ("coo", "csr")


# --------------------------------------------------------------------------------------------------------
# Photographs
# --------------------------------------------------------------------------------------------------------
def load_photo(name: str) -> np.ndarray:
    """Return one bundled photograph as a float RGB array of shape (H, W, 3) with values in [0, 1].

    ``name`` is one of :data:`PHOTO_NAMES`. The scikit-image photos are bundled with scikit-image, and
    ``grace_hopper.jpg`` is bundled with matplotlib: nothing is downloaded.
    """
    if name not in PHOTO_NAMES:
        raise ValueError(f"expected a photo name in {PHOTO_NAMES}, got {name!r}")
    if name == "grace_hopper":
        import matplotlib.cbook as cbook
        import matplotlib.image as mpimg

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            pixels = mpimg.imread(handle, format="jpg")
    else:
        from skimage import data

        pixels = getattr(data, name)()
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels[..., :3].astype(np.float64) / 255.0
    return np.clip(pixels[..., :3].astype(np.float64), 0.0, 1.0)


def load_photos(
    names: Iterable[str] = PHOTO_NAMES, *, short_side: int | None = 224, grey: bool = True
) -> dict[str, np.ndarray]:
    """Return ``{name: image}`` for the bundled photographs, as floats in [0, 1].

    Parameters
    ----------
    names:
        Which photos, from :data:`PHOTO_NAMES`.
    short_side:
        Resize (with anti-aliasing, keeping the aspect ratio) so that the shorter side has this many pixels.
        The default, 224, is GoogLeNet's input size, so that a distance in pixels here means the same as at
        the network's input. ``None`` keeps the original size.
    grey:
        ``True`` gives (H, W) luminance images (ITU-R 709 weights, as ``skimage.color.rgb2gray``);
        ``False`` gives (H, W, 3) RGB.
    """
    names = tuple(names)
    if not names:
        raise ValueError(f"expected at least one photo name from {PHOTO_NAMES}, got none")
    int_at_least("short_side", short_side, 8, optional=True)
    from skimage.color import rgb2gray
    from skimage.transform import resize

    photos = {}
    for name in names:
        image = load_photo(name)
        if short_side is not None:
            height, width = image.shape[:2]
            scale = short_side / min(height, width)
            shape = (round(height * scale), round(width * scale))
            image = np.clip(resize(image, shape, anti_aliasing=True), 0.0, 1.0)
        photos[name] = rgb2gray(image) if grey else image
    return photos


# --------------------------------------------------------------------------------------------------------
# A bank of multi-scale oriented filters (a hand-made stand-in for a first convolutional layer)
# --------------------------------------------------------------------------------------------------------
class FilterBank(NamedTuple):
    """Filters stacked along axis 0, with what each one is."""

    kernels: np.ndarray  # (K, size, size); derivative filters have zero mean and unit L2 norm
    sigmas: np.ndarray  # (K,) Gaussian scale in pixels
    orders: np.ndarray  # (K,) 0 = blur, 1 = first derivative (edge), 2 = second derivative (bar)
    angles: np.ndarray  # (K,) orientation in degrees; 0 for the isotropic blur
    labels: tuple[str, ...]  # e.g. "σ=1 edge 45°"


_ORDER_NAMES = {0: "blur", 1: "edge", 2: "bar"}


def filter_bank(
    scales: Sequence[float] = (1.0, 4.0), orientations: int = 4, orders: Sequence[int] = (1, 2)
) -> FilterBank:
    """Oriented derivative-of-Gaussian filters at several scales.

    For every ``sigma`` in ``scales`` and every order in ``orders``: order 0 gives one isotropic Gaussian
    blur; orders 1 (an edge detector) and 2 (a bar detector) give ``orientations`` copies of the directional
    derivative, at angles ``0, 180/orientations, ...`` degrees. Derivatives of Gaussians are a classic model
    of the oriented, band-pass filters that first convolutional layers learn.

    All kernels share one odd size, ``2 * ceil(3 * max(scales)) + 1``, so their responses line up.
    """
    scales = tuple(float(s) for s in scales)
    orders = tuple(orders)
    if not scales or any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"expected one or more positive, finite scales (sigma in pixels), got {scales!r}")
    positive_int("orientations", orientations)
    if not orders or any(o not in _ORDER_NAMES for o in orders):
        raise ValueError(f"expected orders from {tuple(_ORDER_NAMES)}, got {orders!r}")

    radius = math.ceil(3 * max(scales))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    kernels, sigmas, kinds, angles, labels = [], [], [], [], []
    for sigma in scales:
        gaussian = np.exp(-(x**2 + y**2) / (2 * sigma**2))
        for order in orders:
            steps = [0.0] if order == 0 else [180.0 * k / orientations for k in range(orientations)]
            for angle in steps:
                theta = math.radians(angle)
                u = x * math.cos(theta) + y * math.sin(theta)  # coordinate along the filter's direction
                if order == 0:
                    kernel = gaussian / gaussian.sum()
                else:
                    kernel = (-u / sigma**2) * gaussian if order == 1 else (u**2 / sigma**4 - 1 / sigma**2) * gaussian
                    kernel = kernel - kernel.mean()  # no response to flat regions, as a derivative should
                    kernel = kernel / np.linalg.norm(kernel)
                kernels.append(kernel)
                sigmas.append(sigma)
                kinds.append(order)
                angles.append(angle)
                name = f"σ={sigma:g} {_ORDER_NAMES[order]}"
                labels.append(name if order == 0 else f"{name} {angle:g}°")
    return FilterBank(np.stack(kernels), np.array(sigmas), np.array(kinds), np.array(angles), tuple(labels))


def responses(image: np.ndarray, bank: FilterBank | np.ndarray) -> np.ndarray:
    """Filter a grey image with every kernel of ``bank``; return (K, H - size + 1, W - size + 1).

    Only "valid" positions are kept (the kernel lies wholly inside the image), so zero padding at the border
    cannot add correlation that the photograph does not have.
    """
    from scipy.signal import fftconvolve

    image = _as_float_array(image, "image")
    kernels = np.asarray(bank.kernels if isinstance(bank, FilterBank) else bank, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a grey image of shape (H, W), got shape {image.shape}")
    if kernels.ndim != 3 or kernels.shape[1] > image.shape[0] or kernels.shape[2] > image.shape[1]:
        raise ValueError(
            f"expected kernels of shape (K, h, w) no larger than the image {image.shape}, got {kernels.shape}"
        )
    return fftconvolve(image[None], kernels, mode="valid", axes=(1, 2))


def conv_responses(conv: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Responses (C, H', W') of a network's first convolution to an RGB image in [0, 1], before any ReLU.

    ``conv`` is an ``nn.Conv2d`` or a module that contains one (e.g. ``model.conv1`` of a
    :class:`gnet.GoogLeNet`, which may wrap the convolution with BatchNorm and ReLU); the first ``nn.Conv2d``
    found is applied, with its own stride and padding. The linear response is the fair comparison with
    :func:`responses`. Pixels are mapped to [-1, 1], what torchvision's GoogLeNet weights (ported from
    TensorFlow) expect after ``transform_input``.
    """
    rgb = _as_float_array(rgb, "rgb")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {rgb.shape}")
    layer = conv if isinstance(conv, nn.Conv2d) else next((m for m in conv.modules() if isinstance(m, nn.Conv2d)), None)
    if layer is None:
        raise ValueError(f"expected an nn.Conv2d or a module containing one, got {type(conv).__name__}")
    pixels = torch.as_tensor(rgb, dtype=layer.weight.dtype).permute(2, 0, 1)[None] * 2 - 1
    with torch.inference_mode():
        out = F.conv2d(pixels, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups)
    return out[0].double().numpy()  # no padding: "valid" positions only, as in responses()


# --------------------------------------------------------------------------------------------------------
# Correlation against distance
# --------------------------------------------------------------------------------------------------------
def correlation_vs_distance(responses: np.ndarray, max_distance: int) -> np.ndarray:
    """Pearson correlation between a response and itself shifted by ``d`` pixels, for d = 0..max_distance.

    ``responses`` is (H, W) or (C, H, W). For each channel and each ``d``, the correlation is computed over
    all pairs of positions ``d`` apart horizontally, and over all pairs ``d`` apart vertically; the result is
    the mean of the two. It is exactly 1 at ``d = 0``. Returns shape (max_distance + 1,) or
    (C, max_distance + 1).
    """
    values = _as_float_array(responses, "responses")
    if values.ndim not in (2, 3):
        raise ValueError(f"expected responses of shape (H, W) or (C, H, W), got shape {values.shape}")
    stack = values[None] if values.ndim == 2 else values
    positive_int("max_distance", int(max_distance) if isinstance(max_distance, np.integer) else max_distance)
    if max_distance >= min(stack.shape[1:]) - 1:
        raise ValueError(
            f"expected max_distance < {min(stack.shape[1:]) - 1} for responses of spatial size "
            f"{stack.shape[1:]} (at least two rows and columns must overlap), got {max_distance}"
        )
    _check_not_constant(stack.reshape(len(stack), -1))
    stack = stack - stack.mean(axis=(1, 2), keepdims=True)  # Pearson ignores offsets; centring keeps precision
    across = _shifted_correlation(stack, max_distance)  # shifts along W
    down = _shifted_correlation(stack.transpose(0, 2, 1), max_distance)  # shifts along H
    curves = (across + down) / 2
    curves[:, 0] = 1.0  # exact, not 1 +- rounding
    return curves[0] if values.ndim == 2 else curves


def correlation_length(curves: np.ndarray, threshold: float = 0.5) -> float | np.ndarray:
    """Distance (pixels) at which a correlation curve from :func:`correlation_vs_distance` first falls below
    ``threshold``, interpolated linearly between whole pixels.

    Returns ``inf`` where the curve never falls below the threshold within its range: the correlation
    length is then longer than the range measured. Works on one curve or on a (C, D) stack of curves.
    """
    curves = _as_float_array(curves, "curves")
    if curves.ndim not in (1, 2) or curves.shape[-1] < 2:
        raise ValueError(f"expected a curve of shape (D,) or (C, D) with D >= 2, got shape {curves.shape}")
    if not -1 < threshold < 1:
        raise ValueError(f"expected a threshold strictly between -1 and 1, got {threshold!r}")
    lengths = []
    for curve in np.atleast_2d(curves):
        below = np.flatnonzero(curve < threshold)
        if below.size == 0:
            lengths.append(math.inf)
            continue
        d = int(below[0])
        if d == 0:
            lengths.append(0.0)
            continue
        before, after = curve[d - 1], curve[d]
        lengths.append(d - 1 + (before - threshold) / (before - after))
    return lengths[0] if curves.ndim == 1 else np.array(lengths)


# --------------------------------------------------------------------------------------------------------
# Which channels fire together
# --------------------------------------------------------------------------------------------------------
def channel_correlation(responses: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Channel-by-channel Pearson correlation matrix (C, C) of (C, H, W) responses, over all positions.

    A sequence of (C, H_i, W_i) arrays (e.g. one per photograph) is pooled: every position of every image
    counts once.
    """
    if isinstance(responses, np.ndarray | torch.Tensor):
        responses = [responses]
    arrays = [_as_float_array(r, "responses") for r in responses]
    if not arrays or any(a.ndim != 3 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        shapes = [a.shape for a in arrays]
        raise ValueError(f"expected one or more (C, H, W) arrays with the same C, got shapes {shapes}")
    if arrays[0].shape[0] < 2:
        raise ValueError(f"expected at least 2 channels to correlate, got {arrays[0].shape[0]}")
    flat = np.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=1)
    _check_not_constant(flat)
    matrix = np.corrcoef(flat)
    np.fill_diagonal(matrix, 1.0)
    return matrix


class ClusteredCorrelation(NamedTuple):
    """A correlation matrix and the channel order that puts correlated channels next to each other.

    ``matrix[np.ix_(order, order)]`` is the reordered matrix.
    """

    matrix: np.ndarray
    order: np.ndarray


def _linkage(matrix: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    distance = 1.0 - np.abs(matrix)  # a filter's sign is arbitrary: r = -0.9 is as related as r = 0.9
    distance = np.clip((distance + distance.T) / 2, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    return linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)


def clustered_correlation(responses: np.ndarray | Sequence[np.ndarray]) -> ClusteredCorrelation:
    """Correlation matrix of ``responses`` (see :func:`channel_correlation`) and a clustering order.

    Channels are clustered hierarchically (``scipy.cluster.hierarchy``, average linkage) with the distance
    ``1 - |r|``; ``order`` lists the leaves of the tree left to right, so blocks of correlated channels sit
    on the diagonal.
    """
    return cluster(channel_correlation(responses))


def cluster(matrix: np.ndarray) -> ClusteredCorrelation:
    """A correlation matrix with the order of :func:`clustered_correlation`, for a matrix measured elsewhere."""
    from scipy.cluster.hierarchy import leaves_list

    matrix = _check_correlation_matrix(matrix)
    return ClusteredCorrelation(matrix, leaves_list(_linkage(matrix)))


def count_clusters(matrix: np.ndarray, min_abs_correlation: float = 0.5) -> int:
    """Number of clusters when the average-linkage tree of ``matrix`` is cut at ``|r| = min_abs_correlation``.

    Inside each cluster, channels correlate on average at ``|r| >= min_abs_correlation``.
    """
    from scipy.cluster.hierarchy import fcluster

    matrix = _check_correlation_matrix(matrix)
    if not 0 < min_abs_correlation < 1:
        raise ValueError(f"expected min_abs_correlation strictly between 0 and 1, got {min_abs_correlation!r}")
    labels = fcluster(_linkage(matrix), t=1.0 - min_abs_correlation, criterion="distance")
    return int(labels.max())


def pair_correlations(matrix: np.ndarray) -> np.ndarray:
    """The C * (C - 1) / 2 correlations between distinct channels (upper triangle, without the diagonal)."""
    matrix = _check_correlation_matrix(matrix)
    return matrix[np.triu_indices(len(matrix), k=1)]


# --------------------------------------------------------------------------------------------------------
# Dense against sparse arithmetic
# --------------------------------------------------------------------------------------------------------
class SparseTiming(NamedTuple):
    """Seconds for one ``(n, n) @ (n, columns)`` product: the median of ``samples``, one per repeat."""

    sparsity: float  # fraction of zeros in the (n, n) matrix
    layout: str  # "dense", "coo" or "csr"
    seconds: float
    nnz: int  # stored non-zeros of the (n, n) matrix
    samples: tuple[float, ...] = ()  # each repeat's median; empty for a timing made by hand

    @property
    def low(self) -> float:
        return min(self.samples or (self.seconds,))

    @property
    def high(self) -> float:
        return max(self.samples or (self.seconds,))


def random_sparse_matrix(
    n: int, sparsity: float, *, seed: int = 0, device: str | torch.device = "cpu", dtype=torch.float32
) -> torch.Tensor:
    """A dense (n, n) tensor with ``round(sparsity * n * n)`` zeros at random places, normal values elsewhere.

    The same ``seed`` gives the same matrix on every device.
    """
    positive_int("n", n)
    if not 0 <= sparsity < 1:
        raise ValueError(f"expected a sparsity (fraction of zeros) in [0, 1), got {sparsity!r}")
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(n * n, generator=generator, dtype=dtype)
    zeros = torch.randperm(n * n, generator=generator)[: round(sparsity * n * n)]
    values[zeros] = 0
    return values.reshape(n, n).to(device)


def _to_layout(dense: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "dense":
        return dense
    if layout == "coo":
        return dense.to_sparse_coo().coalesce()
    if layout == "csr":
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": known, and not news here
            warnings.simplefilter("ignore", UserWarning)
            return dense.to_sparse_csr()
    raise ValueError(f"expected a layout in {('dense',) + SPARSE_LAYOUTS}, got {layout!r}")


def sparse_matmul(matrix: torch.Tensor, other: torch.Tensor, layout: str) -> torch.Tensor:
    """``matrix @ other`` with ``matrix`` stored in ``layout`` ("dense", "coo" or "csr"); returns dense."""
    if matrix.ndim != 2 or other.ndim != 2 or matrix.shape[1] != other.shape[0]:
        raise ValueError(
            f"expected 2-D tensors with matching inner size, got {tuple(matrix.shape)} @ {tuple(other.shape)}"
        )
    return torch.sparse.mm(_to_layout(matrix, layout), other) if layout != "dense" else matrix @ other


def time_dense_vs_sparse(
    n: int = 1024,
    sparsities: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    *,
    columns: int | None = None,
    layouts: Sequence[str] = SPARSE_LAYOUTS,
    device: str | torch.device = "cpu",
    dtype=torch.float32,
    min_run_time: float = 0.1,
    repeats: int = 5,
    seed: int = 0,
) -> list[SparseTiming]:
    """Time ``A @ B`` for an (n, n) matrix ``A`` with given fractions of zeros and a dense (n, columns) ``B``.

    At every sparsity ``A`` is multiplied as a dense tensor (which gains nothing from its zeros) and in each
    sparse ``layout`` (``torch.sparse_coo`` / ``torch.sparse_csr``). Conversion to the sparse layout is not
    timed: only the product is. Timing uses ``torch.utils.benchmark.Timer.blocked_autorange``, which also
    synchronises CUDA. ``columns`` defaults to ``n``. Returns one :class:`SparseTiming` per
    (sparsity, layout), dense included.

    Every product is timed ``repeats`` times, in rounds that visit every (sparsity, layout) once, so that a
    slow spell of the machine (another program, a frequency change) spreads over all of them instead of
    landing on one. Each timing keeps its rounds in ``samples``: their spread is the noise of the measurement.
    """
    # Importing the benchmark utilities logs "No CUDA runtime is found" on CPU-only machines: not news here.
    extension_logger = logging.getLogger("torch.utils.cpp_extension")
    level = extension_logger.level
    extension_logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        extension_logger.setLevel(level)

    columns = positive_int("columns", n if columns is None else columns)
    sparsities = tuple(float(s) for s in sparsities)
    if not sparsities:
        raise ValueError("expected one or more sparsities in [0, 1), got none")
    layouts = tuple(layouts)
    if not layouts or any(layout not in SPARSE_LAYOUTS for layout in layouts):
        raise ValueError(f"expected layouts from {SPARSE_LAYOUTS}, got {layouts!r}")
    finite_number("min_run_time", min_run_time, low_open=True)  # seconds
    positive_int("repeats", repeats)

    other = torch.randn(n, columns, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype).to(device)
    timers, nnz = {}, {}
    for sparsity in sparsities:
        dense = random_sparse_matrix(n, sparsity, seed=seed, device=device, dtype=dtype)
        nnz[sparsity] = int(torch.count_nonzero(dense))
        for layout in ("dense", *layouts):
            statement = "a @ b" if layout == "dense" else "torch.sparse.mm(a, b)"
            globals_ = {"a": _to_layout(dense, layout), "b": other, "torch": torch}
            timers[sparsity, layout] = Timer(statement, globals=globals_, num_threads=torch.get_num_threads())
    samples: dict[tuple[float, str], list[float]] = {key: [] for key in timers}
    for _ in range(repeats):
        for key, timer in timers.items():
            samples[key].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return [
        SparseTiming(sparsity, layout, float(np.median(times)), nnz[sparsity], tuple(times))
        for (sparsity, layout), times in samples.items()
    ]


def crossover_sparsity(timings: Sequence[SparseTiming], layout: str | None = None) -> float | None:
    """Lowest measured sparsity from which on a sparse layout beats dense at every higher sparsity measured.

    A dense product does the same work whatever its values, so all dense timings measure one thing, and their
    spread is the noise. Sparse *beats* dense only outside it: its slowest repeat is faster than the fastest
    repeat of any dense timing. ``layout=None`` takes the faster sparse layout at each sparsity. Returns
    ``None`` if sparse does not win at the highest sparsity.
    """
    if not timings:
        raise ValueError("expected a non-empty list of SparseTiming from time_dense_vs_sparse, got none")
    if layout is not None and layout not in SPARSE_LAYOUTS:
        raise ValueError(f"expected layout None or one of {SPARSE_LAYOUTS}, got {layout!r}")
    dense = [t.low for t in timings if t.layout == "dense"]
    if not dense:
        raise ValueError(f"expected dense timings among the layouts, got {sorted({t.layout for t in timings})}")
    dense_seconds = min(dense)
    crossover = None
    for sparsity in sorted({t.sparsity for t in timings}, reverse=True):
        sparse = [
            t.high
            for t in timings
            if t.sparsity == sparsity and t.layout != "dense" and (layout is None or t.layout == layout)
        ]
        if not sparse:
            raise ValueError(f"expected sparse timings at sparsity {sparsity} for layout {layout or SPARSE_LAYOUTS}")
        if min(sparse) >= dense_seconds:
            break
        crossover = sparsity
    return crossover


# --------------------------------------------------------------------------------------------------------
# Figures (styling comes from gnet.book.figures.use_book_style; these only choose what to draw)
# --------------------------------------------------------------------------------------------------------
def plot_photos(photos: Mapping[str, np.ndarray]):
    """Show the photographs side by side, with their size in pixels. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(photos), figsize=(3 * len(photos), 3), layout="constrained", squeeze=False)
    for ax, (name, image) in zip(axes[0], photos.items(), strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}\n{image.shape[1]}×{image.shape[0]} px")
        ax.set_axis_off()
    return fig, axes[0]


def plot_filter_bank(bank: FilterBank, columns: int | None = None):
    """Show every kernel of ``bank`` at its true size in pixels, labelled. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    count = len(bank.kernels)
    columns = columns or min(count, 8)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, kernel, label in zip(axes.flat, bank.kernels, bank.labels, strict=False):
        limit = np.abs(kernel).max()
        ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(label, fontsize="small")
    title = f"Filter bank: {count} kernels of {bank.kernels.shape[2]}×{bank.kernels.shape[1]} px (red +, blue −)"
    return finish(fig, axes, title=title, legend=False)


def plot_correlation_vs_distance(
    curves: Mapping[str, np.ndarray],
    *,
    threshold: float | None = 0.5,
    ax=None,
    title: str | None = None,
    styles: Mapping[str, Mapping] | None = None,
):
    """Plot correlation against distance, one colour per entry of ``{label: curves}``. Returns (fig, ax).

    Each entry is one curve (D,) from :func:`correlation_vs_distance`, or a stack (N, D) of curves (e.g. one
    per photograph) drawn as thin lines of the same colour. ``styles`` maps a label to extra ``ax.plot``
    keyword arguments (``color``, ``linestyle`` ...). A dotted line marks ``threshold``.
    """
    fig, ax = axes_or_new(ax, width=5, height=3.5)
    for label, values in curves.items():
        stack = np.atleast_2d(values)
        style = dict((styles or {}).get(label, {}))
        style.setdefault("linewidth", 1.8 if len(stack) == 1 else 1.1)
        line = None
        for row in stack:
            kwargs = dict(style, label=label if line is None else None)
            if line is not None:
                kwargs["color"] = line.get_color()
            (line,) = ax.plot(np.arange(len(row)), row, **kwargs)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", linestyle=":", linewidth=1, label=f"r = {threshold:g}")
    ax.axhline(0, color="0.8", linewidth=0.8)
    ax.set_xlabel("distance (pixels)")
    ax.set_ylabel("correlation r")
    ax.set_ylim(-0.3, 1.02)
    return finish(fig, ax, title=title)


def plot_clustered_correlation(
    clustered: ClusteredCorrelation, labels: Sequence[str] | None = None, *, ax=None, title: str | None = None
):
    """Heat map of the correlation matrix with rows and columns in clustering order. Returns (fig, ax)."""
    matrix, order = clustered
    fig, ax = axes_or_new(ax, width=6, height=5)
    image = ax.imshow(matrix[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="correlation r", shrink=0.8)
    if labels is not None and len(labels) <= 40:
        ticks = np.arange(len(order))
        ax.set_xticks(ticks, [labels[i] for i in order], rotation=90, fontsize="x-small")
        ax.set_yticks(ticks, [labels[i] for i in order], fontsize="x-small")
    else:
        ax.set_xlabel("channel (clustered order)")
        ax.set_ylabel("channel (clustered order)")
    return finish(fig, ax, title=title, legend=False)


def plot_pair_histogram(pairs: Mapping[str, np.ndarray], *, near_zero: float = 0.1, ax=None, title: str | None = None):
    """Histogram of pair correlations, one outline per entry of ``{label: pairs}``. Returns (fig, ax).

    Each histogram is normalised to fractions of its pairs; a shaded band marks ``|r| < near_zero``.
    """
    fig, ax = axes_or_new(ax, width=5, height=3.5)
    bins = np.linspace(-1, 1, 41)
    for label, values in pairs.items():
        weights = np.full(len(values), 1 / max(len(values), 1))
        ax.hist(
            values,
            bins=bins,
            weights=weights,
            histtype="step",
            linewidth=1.5,
            label=f"{label} ({len(values)} pairs)",
        )
    ax.axvspan(-near_zero, near_zero, color="0.9", zorder=0, label=f"|r| < {near_zero:g}")
    ax.set_xlabel("correlation r between two channels")
    ax.set_ylabel("fraction of pairs")
    return finish(fig, ax, title=title)


def plot_sparse_timings(timings: Sequence[SparseTiming], *, ax=None, title: str | None = None):
    """Milliseconds per product against sparsity, one line per layout, on log axes. Returns (fig, ax).

    The x axis is the fraction of non-zeros (1 - sparsity), labelled with the sparsity, so that each step to
    the right adds a "9" (90%, 99%, 99.9% zeros). Bars span the fastest to the slowest repeat; a dashed line
    marks the fastest dense repeat, the yardstick of :func:`crossover_sparsity`.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    fig, ax = axes_or_new(ax, width=5, height=3.5)
    for layout in dict.fromkeys(t.layout for t in timings):
        rows = sorted((t for t in timings if t.layout == layout), key=lambda t: t.sparsity)
        density = [1 - t.sparsity for t in rows]
        medians = np.array([t.seconds for t in rows]) * 1e3
        spread = np.array([[t.seconds - t.low for t in rows], [t.high - t.seconds for t in rows]]) * 1e3
        line = ax.errorbar(density, medians, yerr=spread, marker="o", capsize=3, label=layout).lines[0]
        if layout == "dense":
            fastest = min(t.low for t in rows) * 1e3
            ax.axhline(fastest, color=line.get_color(), linestyle="--", linewidth=1, label="dense, fastest repeat")
    sparsities = sorted({t.sparsity for t in timings})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator([1 - s for s in sparsities]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{s:.1%}".replace(".0%", "%") for s in sparsities])

    # Plain numbers ("20", "50", "100") instead of powers of ten; over more than a decade, only 1, 2 and 5.
    def plain(value, _):
        low, high = ax.get_ylim()
        leading = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if math.log10(high / low) < 1 or leading in (1, 2, 5) else ""

    ax.yaxis.set_major_formatter(FuncFormatter(plain))
    ax.yaxis.set_minor_formatter(FuncFormatter(plain))
    ax.invert_xaxis()
    ax.set_xlabel("sparsity (fraction of zeros in the n × n matrix)")
    ax.set_ylabel("time per product (ms)")
    return finish(fig, ax, title=title)


# --------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------
def _as_float_array(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected {name} to be a numeric array, got {type(values).__name__}") from err
    if not np.all(np.isfinite(array)):
        raise ValueError(f"expected {name} to hold finite numbers, got NaN or infinity")
    return array


def _check_not_constant(flat: np.ndarray) -> None:
    constant = np.flatnonzero(flat.std(axis=1) == 0)
    if constant.size:
        raise ValueError(
            f"expected every channel to vary (correlation is undefined for a constant), "
            f"got constant channel(s) {constant.tolist()}"
        )


def _check_correlation_matrix(matrix) -> np.ndarray:
    matrix = _as_float_array(matrix, "matrix")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"expected a square (C, C) correlation matrix with C >= 2, got shape {matrix.shape}")
    if np.abs(matrix).max() > 1 + 1e-9:
        raise ValueError(f"expected correlations in [-1, 1], got values up to {np.abs(matrix).max():.3g}")
    return matrix


def _shifted_correlation(stack: np.ndarray, max_distance: int) -> np.ndarray:
    """Pearson r between ``stack[c, :, :W-d]`` and ``stack[c, :, d:]`` for d = 0..max_distance, per channel.

    Exact on the overlapping positions, for all shifts at once: the sum of products comes from one FFT
    autocorrelation per row, and the sums and sums of squares of each overlap from cumulative sums.
    """
    channels, height, width = stack.shape
    distances = np.arange(max_distance + 1)
    spectrum = np.fft.rfft(stack, n=2 * width, axis=-1)
    products = np.fft.irfft((spectrum * spectrum.conj()).real.sum(axis=1), n=2 * width, axis=-1)[:, distances]

    def prefix(values):  # prefix[c, k] = sum over the first k columns (all rows)
        return np.concatenate([np.zeros((channels, 1)), np.cumsum(values.sum(axis=1), axis=-1)], axis=-1)

    sums, squares = prefix(stack), prefix(stack * stack)
    count = height * (width - distances)
    left_sum, right_sum = sums[:, width - distances], sums[:, -1:] - sums[:, distances]
    left_sq, right_sq = squares[:, width - distances], squares[:, -1:] - squares[:, distances]
    covariance = products - left_sum * right_sum / count
    variance = (left_sq - left_sum**2 / count) * (right_sq - right_sum**2 / count)
    return covariance / np.sqrt(np.where(variance > 0, variance, np.inf))
