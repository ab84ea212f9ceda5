"""GoogLeNet (Inception v1) as in Szegedy et al. (2015), auxiliary classifiers included.

Read top to bottom: a convolution unit, the Inception block (and its naive form), the auxiliary head, the
configuration with one named switch per deviation from the paper, the network, the loss, and the converter that
loads torchvision's weights.

Every default is the paper's (Table 1 and Figure 3 of arXiv:1409.4842). Each switch that departs from it says
where the departure comes from.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnet._validate import positive_int
from gnet.table1 import INCEPTION_SPECS, InceptionSpec

__all__ = [
    "AUX_TAPS",
    "BRANCH_NAMES",
    "INIT_SCHEMES",
    "ConvUnit",
    "Inception",
    "NaiveInception",
    "OneScaleBlock",
    "PlainBlock",
    "BLOCKS",
    "HEADS",
    "AuxHead",
    "GoogLeNetConfig",
    "GoogLeNetOutput",
    "GoogLeNet",
    "googlenet",
    "googlenet_loss",
    "from_torchvision",
    "TORCHVISION_CONFIG",
    "init_weights_",
]

#: The four branches of an Inception block, as its submodules are named (torchvision's names too).
BRANCH_NAMES = ("branch1", "branch2", "branch3", "branch4")

#: Weight initialisations :class:`GoogLeNetConfig` can ask for (see :func:`init_weights_`).
INIT_SCHEMES = ("he", "xavier", "torch")

#: What each of the nine blocks of stage 2 is (:attr:`GoogLeNetConfig.block`): the paper's Inception block, or one
#: of the rivals that spend the same budget another way (:mod:`gnet.rivals`).
BLOCKS = ("inception", "naive", "one_scale", "plain")

#: What reads the 5b map (:attr:`GoogLeNetConfig.head`): the paper's global average pooling, or a dense tail.
HEADS = ("gap", "dense")

#: The dense tail flattens a map of this side (adaptively average-pooled to it, as the auxiliary heads do): at the
#: book's 128 px the 5b map is 4×4 already, so there it is a plain flatten of the whole map.
DENSE_HEAD_GRID = 4

# torchvision's BasicConv2d uses eps=0.001 (the value of the TensorFlow port of the weights).
BATCH_NORM_EPS = 1e-3


# ------------------------------------------------------------------------------------------------------------
# Input validation: anything a user can pass gets a ValueError that says what was expected and what was given.
# ------------------------------------------------------------------------------------------------------------


def _reduce_out_pair(name: str, value: object) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (reduce, out) pair of positive ints, got {value!r}")
    return positive_int(f"{name}[0] (reduce)", value[0]), positive_int(f"{name}[1] (out)", value[1])


def _odd_kernel(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int (so 'same' padding exists), got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------------------


class ConvUnit(nn.Module):
    """Convolution, optional BatchNorm, ReLU.

    The paper's convolutions have biases and no normalisation. With ``batch_norm=True`` the unit becomes
    torchvision's ``BasicConv2d`` (bias-free conv, BatchNorm with eps 0.001, ReLU), and its state-dict keys
    (``conv.weight``, ``bn.running_mean`` …) match torchvision's, which is what :func:`from_torchvision` relies on.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=not batch_norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.conv(x))

    def activate(self, x: Tensor) -> Tensor:
        """What follows the convolution: BatchNorm (if any), then ReLU."""
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)


class Inception(nn.Module):
    """The Inception block with dimension reductions (the paper's Figure 2b).

    Four parallel branches see the same input and are concatenated along channels::

        branch1: 1×1 conv (c1)
        branch2: 1×1 conv (c2[0])  -> 3×3 conv (c2[1])
        branch3: 1×1 conv (c3[0])  -> 5×5 conv (c3[1])
        branch4: 3×3/1 max pool    -> 1×1 conv (c4)

    Args:
        in_channels: input channels.
        c1: output channels of the 1×1 branch.
        c2: ``(reduce, out)`` for the 3×3 branch.
        c3: ``(reduce, out)`` for the "5×5" branch.
        c4: output channels of the pool projection.
        branch3_kernel: kernel of branch 3. The paper's is 5. torchvision's is 3, a known bug kept for
            compatibility with its weights (pytorch/vision#906).
        batch_norm: BatchNorm after every convolution (Ioffe & Szegedy 2015; torchvision), not in the paper.
        pool_ceil_mode: torchvision builds every max pool with ``ceil_mode=True``. At stride 1 it changes nothing.
        fuse_1x1: compute the three 1×1 convolutions that read the block's input (branch 1, and the reductions of
            branches 2 and 3) as one convolution with their filters stacked, then split its output. The same
            arithmetic in one larger kernel call; the parameters stay where they are (same ``state_dict``), so any
            weights load either way, and outputs and gradients agree to float rounding.
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c2: tuple[int, int],
        c3: tuple[int, int],
        c4: int,
        *,
        branch3_kernel: int = 5,
        batch_norm: bool = False,
        pool_ceil_mode: bool = False,
        fuse_1x1: bool = False,
    ) -> None:
        super().__init__()
        self.fuse_1x1 = bool(fuse_1x1)
        in_channels = positive_int("in_channels", in_channels)
        c1 = positive_int("c1", c1)
        c2 = _reduce_out_pair("c2", c2)
        c3 = _reduce_out_pair("c3", c3)
        c4 = positive_int("c4", c4)
        k = _odd_kernel("branch3_kernel", branch3_kernel)

        self.in_channels = in_channels
        self.out_channels = c1 + c2[1] + c3[1] + c4
        bn = batch_norm
        self.branch1 = ConvUnit(in_channels, c1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(
            ConvUnit(in_channels, c2[0], 1, batch_norm=bn),
            ConvUnit(c2[0], c2[1], 3, padding=1, batch_norm=bn),
        )
        self.branch3 = nn.Sequential(
            ConvUnit(in_channels, c3[0], 1, batch_norm=bn),
            ConvUnit(c3[0], c3[1], k, padding=k // 2, batch_norm=bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=pool_ceil_mode),
            ConvUnit(in_channels, c4, 1, batch_norm=bn),
        )

    @classmethod
    def from_spec(cls, spec: InceptionSpec, **kwargs: object) -> Inception:
        """The block with the six widths of a Table 1 row (:data:`gnet.table1.INCEPTION_SPECS`)."""
        return cls(*spec.source_args(), **kwargs)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        # N x in_channels x H x W  ->  N x out_channels x H x W
        if self.fuse_1x1:
            return self._fused_forward(x)
        return torch.cat([getattr(self, name)(x) for name in BRANCH_NAMES], dim=1)

    def _fused_forward(self, x: Tensor) -> Tensor:
        units = (self.branch1, self.branch2[0], self.branch3[0])  # the three 1×1 convs that read x
        weight = torch.cat([unit.conv.weight for unit in units])  # stacked per call: gradients flow to each
        bias = None if units[0].conv.bias is None else torch.cat([unit.conv.bias for unit in units])
        fused = F.conv2d(x, weight, bias)
        sizes = [unit.conv.out_channels for unit in units]
        if units[0].bn is None:  # ReLU is elementwise: one in-place call on the whole output, then split
            b1, r2, r3 = F.relu(fused, inplace=True).split(sizes, dim=1)
        else:  # each BatchNorm normalises its own channels and returns a new tensor for its ReLU
            b1, r2, r3 = (unit.activate(part) for unit, part in zip(units, fused.split(sizes, dim=1), strict=True))
        return torch.cat([b1, self.branch2[1](r2), self.branch3[1](r3), self.branch4(x)], dim=1)


class NaiveInception(nn.Module):
    """The naive Inception block (the paper's Figure 2a): no 1×1 reductions, and the pool branch passes its
    input straight through, so the output always has more channels than the input.

    On 28×28×192 with ``c1, c2, c3 = 64, 128, 32`` the output has 64 + 128 + 32 + 192 = 416 channels.

    Args:
        in_channels: input channels (also the pool branch's output channels).
        c1, c2, c3: output channels of the 1×1, 3×3 and 5×5 convolutions (plain ints here).
        branch3_kernel: kernel of branch 3 (the paper: 5).
        batch_norm: BatchNorm after every convolution, as in :class:`Inception` (not in the paper's figure).
    """

    def __init__(
        self, in_channels: int, c1: int, c2: int, c3: int, *, branch3_kernel: int = 5, batch_norm: bool = False
    ) -> None:
        super().__init__()
        in_channels = positive_int("in_channels", in_channels)
        c1, c2, c3 = (positive_int(n, v) for n, v in (("c1", c1), ("c2", c2), ("c3", c3)))
        k = _odd_kernel("branch3_kernel", branch3_kernel)
        self.in_channels = in_channels
        self.out_channels = c1 + c2 + c3 + in_channels
        self.branch1 = ConvUnit(in_channels, c1, 1, batch_norm=batch_norm)
        self.branch2 = ConvUnit(in_channels, c2, 3, padding=1, batch_norm=batch_norm)
        self.branch3 = ConvUnit(in_channels, c3, k, padding=k // 2, batch_norm=batch_norm)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([getattr(self, name)(x) for name in BRANCH_NAMES], dim=1)


class OneScaleBlock(nn.Sequential):
    """A rival of the Inception block with one scale only: its 1×1-reduction + 3×3 branch alone, widened to carry
    the block's whole output (``reduce`` -> ``out_channels``). Same depth (2) and the same bottleneck as the
    Inception block; no 1×1, 5×5 or pool branch beside it. (Four parallel 1×1 + 3×3 branches reading the same
    input would be this block with its 3×3 split into four groups: a grouped convolution, not another scale.)
    """

    def __init__(self, in_channels: int, reduce: int, out_channels: int, *, batch_norm: bool = False) -> None:
        in_channels, reduce, out_channels = (
            positive_int(n, v) for n, v in (("in_channels", in_channels), ("reduce", reduce), ("out", out_channels))
        )
        super().__init__(
            ConvUnit(in_channels, reduce, 1, batch_norm=batch_norm),
            ConvUnit(reduce, out_channels, 3, padding=1, batch_norm=batch_norm),
        )
        self.in_channels, self.out_channels = in_channels, out_channels


class PlainBlock(nn.Sequential):
    """A rival of the Inception block with no branches: two 3×3 convolutions in a row (VGG's unit), the same
    depth (2) as the Inception block's longest path, ``in_channels`` -> ``out_channels`` -> ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = False) -> None:
        in_channels, out_channels = positive_int("in_channels", in_channels), positive_int("out", out_channels)
        super().__init__(
            ConvUnit(in_channels, out_channels, 3, padding=1, batch_norm=batch_norm),
            ConvUnit(out_channels, out_channels, 3, padding=1, batch_norm=batch_norm),
        )
        self.in_channels, self.out_channels = in_channels, out_channels


class _LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm``, 3-5× faster: the sum of squares over neighbouring channels as one convolution.

    PyTorch computes the window sum with ``avg_pool3d`` over a padded copy, and its backward, which made the two
    LRN layers a quarter of a CPU training step. Here the sum is a 1×1 convolution of ``x²`` with a fixed banded
    0/1 matrix (channel ``c`` sums channels ``c - size//2`` to ``c + (size-1)//2``, PyTorch's padding), which
    autograd differentiates with two more GEMMs. Outputs agree with ``nn.LocalResponseNorm`` to float rounding.
    Under tracing (fvcore, TorchScript) and on the ``meta`` device (:func:`gnet.analysis.count_layers`) the module
    takes PyTorch's own path, so counted multiply-adds and layers stay the paper's: LRN is a normalisation, not a
    layer of weights. Half and bfloat16 CPU tensors are computed in
    float32, where PyTorch's pooling kernel has no half implementation.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
            return self.forward(x.float()).to(x.dtype)
        if torch.jit.is_tracing() or x.device.type == "meta" or x.dim() != 4:  # counting passes: PyTorch's path
            return super().forward(x)
        channels = torch.arange(x.shape[1], device=x.device)
        offset = channels[None, :] - channels[:, None]  # [c, c']: c' - c
        band = (offset >= -(self.size // 2)) & (offset <= (self.size - 1) // 2)
        window_sum = F.conv2d(x * x, band.to(x.dtype)[:, :, None, None])
        return x * (window_sum * (self.alpha / self.size) + self.k).pow(-self.beta)


class AuxHead(nn.Module):
    """An auxiliary classifier, as in the paper: 5×5/3 average pool, 1×1 conv (128) + ReLU,
    FC (1024) + ReLU, dropout 0.7, FC (``num_classes``).

    What happens at other input sizes: at 224 px the 4a and 4d maps are 14×14 and the 5×5/3 pool gives exactly
    4×4, which the first FC layer (128·4·4 = 2048 inputs) expects. At other sizes the pooled map is not 4×4, so
    with ``pool="paper"`` it is followed by an adaptive average pool to 4×4 (at 224 px a no-op). The 5×5 window
    must fit, so the feed map must be at least 5×5: :attr:`GoogLeNet.min_input_size` accounts for it.
    ``pool="adaptive"`` is torchvision's head, which pools straight to 4×4 at any size.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        dropout: float = 0.7,
        pool: str = "paper",
        batch_norm: bool = False,
        conv_channels: int = 128,
        fc_features: int = 1024,
    ) -> None:
        super().__init__()
        if pool not in ("paper", "adaptive"):
            raise ValueError(f"pool must be 'paper' or 'adaptive', got {pool!r}")
        self.pool = pool
        self.conv = ConvUnit(in_channels, conv_channels, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, fc_features)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.pool == "paper":
            x = F.avg_pool2d(x, kernel_size=5, stride=3)  # 14x14 -> 4x4 at 224 px
        if x.shape[-2:] != (4, 4):
            x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x)  # N x 128 x 4 x 4
        x = torch.flatten(x, 1)  # N x 2048
        x = F.relu(self.fc1(x), inplace=True)  # N x 1024
        x = self.dropout(x)
        return self.fc2(x)  # N x num_classes


# ------------------------------------------------------------------------------------------------------------
# Configuration: one switch per deviation, the paper by default
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogLeNetConfig:
    """Every way a GoogLeNet here may differ from the paper. The defaults are the paper."""

    num_classes: int = 1000  # ImageNet; Imagenette has 10
    aux_logits: bool = True  # the two auxiliary heads after 4a and 4d (run in training mode only)
    batch_norm: bool = False  # BatchNorm after each conv: Ioffe & Szegedy 2015, torchvision; not in the paper
    lrn: bool = True  # LocalResponseNorm in the stem (paper Fig. 3); torchvision drops it
    branch3_kernel: int = 5  # 5 in the paper; torchvision uses 3 (pytorch/vision#906)
    dropout: float = 0.4  # before the classifier; torchvision uses 0.2
    aux_dropout: float = 0.7  # inside each auxiliary head
    width: float = 1.0  # multiplies every channel count: how one scales GoogLeNet up or down
    pool_style: str = "paper"  # "torchvision": ceil_mode max pools without padding, and a 2×2/2 fourth pool
    aux_pool: str = "paper"  # "adaptive": torchvision's adaptive 4×4 pool instead of 5×5/3
    transform_input: bool = False  # torchvision: map ImageNet normalisation onto its TF-ported weights
    init: str = "he"  # the paper does not say; see init_weights_ for "he", "xavier" (Caffe's) and "torch"
    fuse_1x1: bool = False  # speed only: each block's three input 1×1 convs as one (Inception's fuse_1x1)
    # The rivals of gnet.rivals, which spend the same budget another way; the defaults are the paper's network.
    block: str = "inception"  # stage 2's nine blocks: "inception", "naive" (Fig. 2a), "one_scale" or "plain"
    block_width: float = 1.0  # multiplies stage 2's channel counts only (on top of width): the stem stays as is
    head: str = "gap"  # "gap": global average pooling + one linear layer; "dense": flatten + a hidden FC layer

    def __post_init__(self) -> None:
        positive_int("num_classes", self.num_classes)
        _odd_kernel("branch3_kernel", self.branch3_kernel)
        for name in ("dropout", "aux_dropout"):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")
        w = self.width
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ValueError(f"width must be a positive finite number, got {w!r}")
        if self.pool_style not in ("paper", "torchvision"):
            raise ValueError(f"pool_style must be 'paper' or 'torchvision', got {self.pool_style!r}")
        if self.aux_pool not in ("paper", "adaptive"):
            raise ValueError(f"aux_pool must be 'paper' or 'adaptive', got {self.aux_pool!r}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        bw = self.block_width
        if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not math.isfinite(bw) or bw <= 0:
            raise ValueError(f"block_width must be a positive finite number, got {bw!r}")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {self.block!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.fuse_1x1 and self.block != "inception":
            raise ValueError(f"fuse_1x1 fuses an Inception block's 1×1 convolutions; block {self.block!r} has none")

    def channels(self, c: int) -> int:
        """A paper channel count scaled by :attr:`width` (never below 1)."""
        return max(1, round(c * self.width))

    def block_channels(self, c: int) -> int:
        """A paper channel count of stage 2 scaled by :attr:`width` and :attr:`block_width` (never below 1)."""
        return max(1, round(c * self.width * self.block_width))


#: The switches that turn the paper's network into torchvision's ``googlenet`` (the book's chapter 5 derives
#: each one from torchvision's source).
TORCHVISION_CONFIG: dict[str, object] = {
    "batch_norm": True,
    "lrn": False,
    "branch3_kernel": 3,
    "dropout": 0.2,
    "aux_dropout": 0.7,
    "pool_style": "torchvision",
    "aux_pool": "adaptive",
}


#: Where each auxiliary head reads the main path (the paper, Section 5: "on top of the output of the
#: Inception (4a) and (4d) modules").
AUX_TAPS: dict[str, str] = {"aux1": "inception4a", "aux2": "inception4d"}


class GoogLeNetOutput(NamedTuple):
    """What :class:`GoogLeNet` returns in training mode, in network order.

    ``aux1`` comes from the head after 4a, ``aux2`` from the head after 4d; both are ``None`` without aux heads.
    Fields are read by name everywhere in gnet: never unpack this positionally in an order of your own
    (torchvision's aux outputs were swapped for years that way, pytorch/vision#8736).
    """

    logits: Tensor
    aux1: Tensor | None
    aux2: Tensor | None


# ------------------------------------------------------------------------------------------------------------
# Spatial arithmetic: the smallest input each configuration accepts
# ------------------------------------------------------------------------------------------------------------


def _window_out(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output length of a conv or pool window along one axis, as PyTorch computes it (0 if it does not fit)."""
    if n + 2 * padding < kernel:
        return 0
    span = n + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1  # PyTorch drops a last window that would start inside the right padding
    return out


# ------------------------------------------------------------------------------------------------------------
# The network
# ------------------------------------------------------------------------------------------------------------


class GoogLeNet(nn.Module):
    """GoogLeNet, as in Table 1 of the paper, with its auxiliary classifiers.

    Build it with :func:`googlenet` or ``GoogLeNet(GoogLeNetConfig(...))``.

    Output: in training mode a :class:`GoogLeNetOutput` ``(logits, aux1, aux2)``; in eval mode the plain
    ``logits`` tensor, since the auxiliary heads are discarded at inference (the paper, Section 5). This matches
    torchvision's eager behaviour, and :func:`googlenet_loss` accepts either form.

    Input: a float tensor ``N × 3 × H × W`` with ``H, W >= min_input_size``. Anything else raises ``ValueError``.
    """

    def __init__(self, config: GoogLeNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or GoogLeNetConfig()
        self._build_stem()
        self._build_inceptions()
        self._build_heads()
        self.min_input_size = self._min_input_size()
        init_weights_(self, self.config.init)

    def _max_pool(self, kernel: int = 3) -> nn.MaxPool2d:
        # Paper: 3×3/2 with padding 1 halves 112 -> 56 -> 28 -> 14 -> 7 (Table 1). torchvision: no padding,
        # ceil_mode=True, which reaches the same sizes at 224 px but not at every size.
        if self.config.pool_style == "torchvision":
            return nn.MaxPool2d(kernel, stride=2, ceil_mode=True)
        return nn.MaxPool2d(kernel, stride=2, padding=1)

    def _build_stem(self) -> None:
        """Stage 1: plain convolutions, with LRN where the paper's Figure 3 has it."""
        cfg, ch = self.config, self.config.channels

        def lrn() -> nn.Module:
            # Caffe's reference GoogLeNet: local_size 5, alpha 1e-4, beta 0.75.
            return _LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if cfg.lrn else nn.Identity()

        self.conv1 = ConvUnit(3, ch(64), 7, stride=2, padding=3, batch_norm=cfg.batch_norm)
        self.maxpool1 = self._max_pool()
        self.lrn1 = lrn()
        self.conv2 = ConvUnit(ch(64), ch(64), 1, batch_norm=cfg.batch_norm)
        self.conv3 = ConvUnit(ch(64), ch(192), 3, padding=1, batch_norm=cfg.batch_norm)
        self.lrn2 = lrn()
        self.maxpool2 = self._max_pool()

    def _build_inceptions(self) -> None:
        """Stage 2: nine Inception blocks at three resolutions, widths from Table 1 (scaled by ``width``)."""
        cfg = self.config
        in_channels = cfg.channels(192)
        for name, spec in INCEPTION_SPECS.items():
            if name == "inception4a":
                self.maxpool3 = self._max_pool()
            if name == "inception5a":
                self.maxpool4 = self._max_pool(2 if cfg.pool_style == "torchvision" else 3)  # tv: 2×2/2
            scaled = InceptionSpec(in_channels, *(cfg.block_channels(c) for c in spec[1:]))
            block = self._block(scaled)
            setattr(self, name, block)  # a rival block keeps the Inception block's name: taps and stages stay
            in_channels = block.out_channels

    def _block(self, spec: InceptionSpec) -> nn.Module:
        """One block of stage 2 as :attr:`GoogLeNetConfig.block` asks, from a Table 1 row's (scaled) widths."""
        cfg = self.config
        if cfg.block == "naive":
            return NaiveInception(
                spec.in_channels, spec.n1x1, spec.n3x3, spec.n5x5,
                branch3_kernel=cfg.branch3_kernel, batch_norm=cfg.batch_norm,
            )  # fmt: skip
        if cfg.block == "one_scale":
            return OneScaleBlock(spec.in_channels, spec.n3x3_reduce, spec.out_channels, batch_norm=cfg.batch_norm)
        if cfg.block == "plain":
            return PlainBlock(spec.in_channels, spec.out_channels, batch_norm=cfg.batch_norm)
        return Inception.from_spec(
            spec,
            branch3_kernel=cfg.branch3_kernel,
            batch_norm=cfg.batch_norm,
            pool_ceil_mode=cfg.pool_style == "torchvision",
            fuse_1x1=cfg.fuse_1x1,
        )

    def _build_heads(self) -> None:
        """Stage 3 (global average pooling, dropout, one linear layer) and the two auxiliary heads."""
        cfg = self.config
        self.num_features = self.inception5b.out_channels
        self.dense: nn.Sequential | None = None
        if cfg.head == "dense":  # the tail GAP replaced (AlexNet's, NIN): flatten, a hidden FC layer, the classifier
            self.avgpool = nn.AdaptiveAvgPool2d(DENSE_HEAD_GRID)  # at 128 px a no-op: the 5b map is 4×4
            hidden = cfg.channels(1024)  # the aux heads' hidden FC width
            self.dense = nn.Sequential(nn.Linear(self.num_features * DENSE_HEAD_GRID**2, hidden), nn.ReLU(inplace=True))
        else:
            self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7×7/1 average pool, at any input size
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.num_features if self.dense is None else self.dense[0].out_features, cfg.num_classes)
        self.aux1: AuxHead | None = None
        self.aux2: AuxHead | None = None
        if cfg.aux_logits:
            aux = {
                "dropout": cfg.aux_dropout,
                "pool": cfg.aux_pool,
                "batch_norm": cfg.batch_norm,
                "conv_channels": cfg.channels(128),
                "fc_features": cfg.channels(1024),
            }
            self.aux1 = AuxHead(self.inception4a.out_channels, cfg.num_classes, **aux)
            self.aux2 = AuxHead(self.inception4d.out_channels, cfg.num_classes, **aux)

    # -- shapes ---------------------------------------------------------------------------------------------

    def feature_map_sizes(self, size: int) -> dict[str, int]:
        """Side length of the feature map after each stage for a square ``size × size`` input (0: too small)."""
        pools = (self.maxpool1, self.maxpool2, self.maxpool3, self.maxpool4)

        def pool(n: int, m: nn.MaxPool2d) -> int:
            return _window_out(n, m.kernel_size, m.stride, m.padding, m.ceil_mode)

        sizes = {"conv1": _window_out(size, 7, 2, 3)}
        sizes["maxpool1"] = pool(sizes["conv1"], pools[0])
        sizes["inception3a"] = pool(sizes["maxpool1"], pools[1])  # 1×1 and 3×3 convs keep the size
        sizes["inception4a"] = pool(sizes["inception3a"], pools[2])
        sizes["inception5a"] = pool(sizes["inception4a"], pools[3])
        return sizes

    def _min_input_size(self) -> int:
        # Every map must be at least 1×1; the paper's aux heads also need a 5×5 window on the 4a/4d map.
        need_4a = 5 if (self.config.aux_logits and self.config.aux_pool == "paper") else 1
        for size in range(1, 1024):
            sizes = self.feature_map_sizes(size)
            if min(sizes.values()) >= 1 and sizes["inception4a"] >= need_4a:
                return size
        raise AssertionError("no input size up to 1024 fits this configuration")  # pragma: no cover

    def _check_input(self, x: object) -> None:
        if not isinstance(x, Tensor):
            raise ValueError(f"expected a torch.Tensor of shape N×3×H×W, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a tensor of shape N×3×H×W (a batch of RGB images), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected a floating-point tensor, got dtype {x.dtype}")
        weights = self.conv1.conv.weight.dtype
        if x.dtype != weights and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                f"expected {weights} input like the model's weights, got {x.dtype} "
                f"(convert one of them: x.to({weights}) or model.to({x.dtype}))"
            )
        h, w = x.shape[-2:]
        if h < self.min_input_size or w < self.min_input_size:
            why = (
                " (the auxiliary heads' 5×5/3 pool must fit the 4a map, which is H/16)"
                if self.config.aux_logits and self.config.aux_pool == "paper"
                else ""
            )
            raise ValueError(
                f"this GoogLeNet needs images of at least {self.min_input_size}×{self.min_input_size} "
                f"pixels{why}, got {h}×{w}"
            )

    # -- forward --------------------------------------------------------------------------------------------

    def _transform_input(self, x: Tensor) -> Tensor:
        # torchvision's TF-ported weights expect (x - 0.5) / 0.5; this maps ImageNet-normalised input onto it.
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def forward_features(self, x: Tensor, taps: dict[str, Tensor] | None = None) -> Tensor:
        """The 5b feature map, ``N × num_features × H/32 × W/32``.

        If ``taps`` is a dict, the outputs of inception (4a) and (4d), where the auxiliary heads read the main
        path (:data:`AUX_TAPS`), are stored in it under their module names.
        """
        self._check_input(x)
        if self.config.transform_input:
            x = self._transform_input(x)
        # N x 3 x 224 x 224
        x = self.conv1(x)  # N x 64 x 112 x 112
        x = self.lrn1(self.maxpool1(x))  # N x 64 x 56 x 56
        x = self.conv3(self.conv2(x))  # N x 192 x 56 x 56
        x = self.maxpool2(self.lrn2(x))  # N x 192 x 28 x 28
        x = self.inception3b(self.inception3a(x))  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            x = getattr(self, name)(x)  # N x 512 (4a-4c), 528 (4d), 832 (4e) x 14 x 14
            if taps is not None and name in AUX_TAPS.values():
                taps[name] = x
        x = self.inception5b(self.inception5a(self.maxpool4(x)))  # N x 1024 x 7 x 7
        return x

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pooling, dropout and the classifier; ``pre_logits=True`` stops after the pooling and
        returns the ``N × num_features`` vectors the classifier reads (with ``head="dense"``: the hidden layer's)."""
        x = torch.flatten(self.avgpool(features), 1)  # N x 1024
        if self.dense is not None:
            x = self.dense(x)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))  # N x num_classes

    def forward(self, x: Tensor) -> GoogLeNetOutput | Tensor:
        if not self.training:
            return self.forward_head(self.forward_features(x))
        taps: dict[str, Tensor] = {}
        features = self.forward_features(x, taps)
        # The heads run in network order (aux1, aux2, then the classifier), so dropout draws its masks in the
        # same order as a single pass down the network would.
        aux1 = self.aux1(taps[AUX_TAPS["aux1"]]) if self.aux1 is not None else None
        aux2 = self.aux2(taps[AUX_TAPS["aux2"]]) if self.aux2 is not None else None
        return GoogLeNetOutput(logits=self.forward_head(features), aux1=aux1, aux2=aux2)

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (timm's name for it)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and the aux heads' last layers) for ``num_classes`` classes."""
        positive_int("num_classes", num_classes)
        self.config = replace(self.config, num_classes=num_classes)
        self.fc = _classifier(self.fc.in_features, num_classes)
        for head in (self.aux1, self.aux2):
            if head is not None:
                head.fc2 = _classifier(head.fc2.in_features, num_classes)


def _classifier(in_features: int, num_classes: int) -> nn.Linear:
    """A classifier layer as gnet initialises it: ``N(0, 0.01)`` weights, zero bias, so it starts near uniform."""
    layer = nn.Linear(in_features, num_classes)
    nn.init.normal_(layer.weight, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


def init_weights_(model: GoogLeNet, scheme: str = "he") -> GoogLeNet:
    """Initialise ``model`` in place; returns it. The paper does not state its initialisation.

    * ``"he"`` (the default): every hidden convolution and linear weight ~ N(0, 2 / fan_in) (He et al. 2015),
      which makes up for ReLU zeroing half of its inputs, so activations keep their scale through 22 layers
      without BatchNorm.
    * ``"xavier"``: variance 1 / fan_in, Caffe's "xavier" filler, the common choice when GoogLeNet was trained.
    * ``"torch"``: leave PyTorch's own layer defaults (for weights that are about to be loaded anyway).

    With "he" and "xavier", biases are zero, BatchNorm scale 1 and shift 0, and the classifiers (``fc`` and each
    aux head's last layer) get N(0, 0.01).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    if scheme == "torch":
        return model
    nonlinearity = "relu" if scheme == "he" else "linear"  # gain sqrt(2) or 1 on a fan_in-scaled normal
    classifiers = {model.fc} | {head.fc2 for head in (model.aux1, model.aux2) if head is not None}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if m in classifiers:
                    nn.init.normal_(m.weight, std=0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity=nonlinearity)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return model


def googlenet(*, weights: object = None, **kwargs: object) -> GoogLeNet:
    """Build a :class:`GoogLeNet`. With no arguments it is the paper's; keyword arguments are the
    :class:`GoogLeNetConfig` switches, e.g. ``googlenet(num_classes=10, batch_norm=True, width=0.5)``.

    ``weights`` (a :class:`gnet.weights.GoogLeNetWeights` or its name, e.g. ``"IMAGENETTE_CPU"``) returns the
    trained network instead, in eval mode; its switches come from the weights file, so none may be passed.
    """
    if weights is not None:
        from gnet.weights import GoogLeNetWeights  # the registry needs the model; import it only when asked

        fuse = kwargs.pop("fuse_1x1", False)  # a speed switch, not a change of network: weights allow it
        if kwargs:
            raise ValueError(f"weights fix every switch of the network; got switches too: {sorted(kwargs)}")
        model = GoogLeNetWeights.resolve(weights).load().model  # type: ignore[arg-type]
        if not fuse:
            return model
        fused = GoogLeNet(replace(model.config, fuse_1x1=True, init="torch"))
        fused.load_state_dict(model.state_dict())
        return fused.eval()
    known = set(GoogLeNetConfig.__dataclass_fields__)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown GoogLeNet option(s) {unknown}; expected some of {sorted(known)}")
    return GoogLeNet(GoogLeNetConfig(**kwargs))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------
# The loss
# ------------------------------------------------------------------------------------------------------------


def googlenet_loss(
    output: GoogLeNetOutput | Tensor, target: Tensor, aux_weight: float = 0.3, label_smoothing: float = 0.0
) -> Tensor:
    """Cross-entropy of the main classifier plus ``aux_weight`` times each auxiliary head's cross-entropy.

    The paper weights each auxiliary loss by 0.3 (Section 5). ``output`` may be a :class:`GoogLeNetOutput`
    (training mode) or a plain logits tensor (eval mode, or a model without aux heads). ``label_smoothing``
    (not in the paper; Szegedy et al. 2016 introduced it for Inception v3) applies to every head.
    """
    if isinstance(aux_weight, bool) or not isinstance(aux_weight, (int, float)) or not 0 <= aux_weight < math.inf:
        raise ValueError(f"aux_weight must be a non-negative finite number, got {aux_weight!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    if isinstance(output, GoogLeNetOutput):
        logits, aux = output.logits, [a for a in (output.aux1, output.aux2) if a is not None]
    elif isinstance(output, Tensor):
        logits, aux = output, []
    else:
        raise ValueError(f"output must be a GoogLeNetOutput or a logits tensor, got {type(output).__name__}")
    if not isinstance(target, Tensor) or target.dtype != torch.int64:
        kind = f"a tensor of {target.dtype}" if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target must be a torch.int64 tensor of class indices, got {kind}")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must be a 1-D tensor of {logits.shape[0]} class indices, got shape {tuple(target.shape)}"
        )
    low, high = torch.aminmax(target) if target.numel() else (torch.tensor(0), torch.tensor(0))
    if low < 0 or high >= logits.shape[1]:
        raise ValueError(
            f"target holds class {int(low) if low < 0 else int(high)}, outside 0..{logits.shape[1] - 1} "
            f"(the model has {logits.shape[1]} classes)"
        )
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    for aux_logits in aux:
        loss = loss + aux_weight * F.cross_entropy(aux_logits, target, label_smoothing=label_smoothing)
    return loss


# ------------------------------------------------------------------------------------------------------------
# torchvision interoperability
# ------------------------------------------------------------------------------------------------------------


def from_torchvision(
    model_or_state_dict: nn.Module | Mapping[str, Tensor], *, transform_input: bool | None = None
) -> GoogLeNet:
    """A :class:`GoogLeNet` configured like torchvision's ``googlenet`` and loaded with its weights.

    Our module names follow torchvision's, so the state dict loads with ``strict=True`` and no renaming.

    Args:
        model_or_state_dict: a ``torchvision.models.GoogLeNet`` or its ``state_dict()``. The class count and
            the presence of aux heads are read from the weights.
        transform_input: torchvision sets it on models built with ImageNet weights. Read from the model when a
            model is given; for a bare state dict it defaults to ``True``, as the published weights need.

    Returns:
        A ``GoogLeNet`` in eval mode whose logits equal torchvision's (to float rounding).
    """
    if isinstance(model_or_state_dict, nn.Module):
        state = model_or_state_dict.state_dict()
        if transform_input is None:
            transform_input = bool(getattr(model_or_state_dict, "transform_input", False))
    elif isinstance(model_or_state_dict, Mapping):
        state = dict(model_or_state_dict)
        if transform_input is None:
            warnings.warn(
                "from_torchvision(state_dict): a state dict does not say whether its model set transform_input; "
                "assuming True, as torchvision's published ImageNet weights need. Pass transform_input= to choose.",
                stacklevel=2,
            )
            transform_input = True
    else:
        raise ValueError(
            f"expected a torchvision GoogLeNet or its state dict, got {type(model_or_state_dict).__name__}"
        )
    if "fc.weight" not in state or "inception5b.branch1.conv.weight" not in state:
        raise ValueError("this does not look like a torchvision googlenet state dict (no fc / inception5b keys)")

    config = GoogLeNetConfig(
        num_classes=state["fc.weight"].shape[0],
        aux_logits=any(k.startswith("aux1.") for k in state),
        transform_input=transform_input,
        init="torch",  # every weight is overwritten below
        **TORCHVISION_CONFIG,  # type: ignore[arg-type]
    )
    model = GoogLeNet(config)
    # BatchNorm's num_batches_tracked counters exist on both sides; everything else must match exactly.
    model.load_state_dict(state, strict=True)
    return model.eval()
