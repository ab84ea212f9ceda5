"""Feature visualisation: the picture that one channel of a network responds to most (Olah et al., 2017).

    from gnet.featurevis import visualise

    images = visualise(model, "inception3a", channels=[0, 1, 2])  # 3 × 3 × 128 × 128, values in [0, 1]

Any ``nn.Module`` that takes an ``N × 3 × H × W`` image works (gnet's GoogLeNet, torchvision's googlenet, ...):
``layer`` is a name from ``model.named_modules()``, and a channel's *activation* is the mean of its output map over
all positions. The optimisation starts from faint noise and climbs that activation with Adam. Left alone, gradient
ascent on the pixels finds high-frequency patterns that no photograph contains; three things make the result
readable, as in Lucid and lucent (Olah, Mordvintsev & Schubert, *Feature Visualization*, Distill 2017):

1. **A scaled Fourier basis.** The parameters are the image's 2-D spectrum, each frequency scaled by ``1/f``, so
   that a step of Adam changes every frequency by about as much as natural images vary at it.
2. **Decorrelated colour.** The three parameter channels are mixed into RGB by the square root of ImageNet's
   colour-correlation matrix, then squashed into [0, 1] by a sigmoid; the network's own normalisation (``mean``,
   ``std``) is applied after that, as for any photograph.
3. **Transformation robustness.** At each step the image is padded, shifted, rescaled and rotated at random
   before the network sees it, so a pattern must survive small moves to raise the activation.

A unit that is silent on the grey start has no gradient through its ReLU, and plain ascent would leave its picture
grey. As Lucid does, every ReLU (``F.relu``, which ``nn.ReLU``, gnet and torchvision call) passes the gradient that
would raise its input wherever an image's ordinary ReLU gradient is zero everywhere (:attr:`Recipe.redirect_relu`).

Everything random is drawn from one ``torch.Generator`` seeded by :attr:`Recipe.seed`: the same call gives the same
images on the same machine. Another CPU's kernels round differently, and 512 steps of ascent amplify that, so
compare runs by the activation they reach (:func:`channel_activations`), not pixel by pixel.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "COLOR_CORRELATION_SQRT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FourierImage",
    "Recipe",
    "channel_activations",
    "layer_output",
    "visualise",
]

#: The normalisation gnet and torchvision train with (``gnet.data.IMAGENET_MEAN`` / ``IMAGENET_STD``; the tests
#: check that they agree). Repeated here so that this module needs torch alone, not torchvision.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Square root of the colour correlation of ImageNet pixels (rows: R, G, B), the matrix Lucid and lucent use;
#: multiplying by it turns three independent parameter channels into colours with natural correlations.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


@dataclass(frozen=True)
class Recipe:
    """How a visualisation is optimised. The defaults are lucent's ``render_vis`` with its standard transforms."""

    steps: int = 512
    lr: float = 0.05  # Adam
    size: int = 128  # side of the square image, in pixels
    seed: int = 0
    decay_power: float = 1.0  # spectrum scaled by 1 / f ** decay_power
    init_std: float = 0.01  # standard deviation of the starting spectrum: faint noise
    pad: int = 12  # grey border added before the random moves, so that shifts do not wrap the pattern
    jitter: int = 8  # random shift of up to this many pixels, before and (half as much) after the moves below
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))  # 0.90 … 1.10
    angles: tuple[float, ...] = tuple(range(-10, 11)) + (0,) * 5  # degrees; no rotation drawn more often
    redirect_relu: bool = True  # Lucid's gradient override, for units silent at the start

    def __post_init__(self) -> None:
        for name, least in (("steps", 0), ("size", 1)):  # 0 steps: the starting image
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Recipe.{name} must be an int >= {least}, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"Recipe.lr must be positive, got {self.lr!r}")
        if self.pad < 0 or self.jitter < 0:
            raise ValueError(f"Recipe.pad and Recipe.jitter must be >= 0, got {self.pad!r} and {self.jitter!r}")


# ------------------------------------------------------------------------------------------ the parameterisation
def _radial_frequencies(height: int, width: int) -> Tensor:
    """|f| of every coefficient of a real 2-D FFT of an ``height × width`` image, in cycles per pixel."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return (fx * fx + fy * fy).sqrt()


class FourierImage(nn.Module):
    """A batch of RGB images in [0, 1], parameterised by a ``1/f``-scaled spectrum and decorrelated colour."""

    def __init__(self, batch: int, size: int, *, decay_power: float = 1.0, init_std: float = 0.01,
                 generator: torch.Generator | None = None) -> None:  # fmt: skip
        super().__init__()
        self.size = size
        freqs = _radial_frequencies(size, size)
        shape = (batch, 3, *freqs.shape, 2)  # real and imaginary parts
        self.spectrum = nn.Parameter(torch.randn(shape, generator=generator) * init_std)
        # 1/f, with the constant term treated like the lowest frequency instead of dividing by zero.
        self.register_buffer("scale", (1.0 / freqs.clamp(min=1.0 / size) ** decay_power)[..., None])
        colour = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
        self.register_buffer("colour", colour)

    def forward(self) -> Tensor:
        spectrum = torch.view_as_complex((self.spectrum * self.scale).contiguous())
        # lucent divides by 4 so that the sigmoid starts in its linear range
        decorrelated = torch.fft.irfftn(spectrum, s=(self.size, self.size), norm="ortho") / 4
        rgb = torch.einsum("bchw,dc->bdhw", decorrelated, self.colour)
        return torch.sigmoid(rgb)


# ------------------------------------------------------------------------------------------- random moves
def _choice(options: Sequence[float], generator: torch.Generator) -> float:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def _jitter(images: Tensor, amount: int, generator: torch.Generator) -> Tensor:
    if amount < 1:
        return images
    dy, dx = (int(v) for v in torch.randint(amount, (2,), generator=generator))
    height, width = images.shape[-2:]
    return images[..., dy : dy + height - amount, dx : dx + width - amount]


def _scale_and_rotate(images: Tensor, scale: float, degrees: float) -> Tensor:
    """Resample ``images`` to ``scale`` times their size, rotated by ``degrees`` about the centre, in one pass."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = images.new_tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(len(images), 2, 3)
    height, width = (max(1, round(n * scale)) for n in images.shape[-2:])
    grid = F.affine_grid(theta, [len(images), 3, height, width], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _random_moves(images: Tensor, recipe: Recipe, generator: torch.Generator) -> Tensor:
    """Pad, shift, rescale, rotate and shift again: one random draw per step, shared by the batch (as lucent)."""
    moved = F.pad(images, [recipe.pad] * 4, value=0.5)
    moved = _jitter(moved, recipe.jitter, generator)
    moved = _scale_and_rotate(moved, _choice(recipe.scales, generator), _choice(recipe.angles, generator))
    return _jitter(moved, recipe.jitter // 2, generator)


# ------------------------------------------------------------------------------------------- redirected ReLU
class _RedirectedReLU(torch.autograd.Function):
    """ReLU forward; backward as ReLU, except for an image whose ReLU gradient is zero everywhere: there the
    gradient passes wherever it would raise the input (Lucid's ``redirected_relu_grad``)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        ordinary = grad * (x > 0)
        redirected = grad * ((x > 0) | (grad < 0))  # a negative gradient of the loss raises x
        silent = ordinary.flatten(1).abs().amax(dim=1) == 0
        return torch.where(silent.view(-1, *[1] * (x.ndim - 1)), redirected, ordinary)


@contextlib.contextmanager
def _redirected_relu(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    original = F.relu
    F.relu = lambda x, inplace=False: _RedirectedReLU.apply(x)  # a new tensor either way; callers use the result
    try:
        yield
    finally:
        F.relu = original


# ---------------------------------------------------------------------------------------- the layer's output
class _Reached(Exception):
    """Raised by the hook once the layer has run: nothing after it is needed."""


def _find_layer(model: nn.Module, layer: str) -> nn.Module:
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_children()]
        raise ValueError(
            f"{type(model).__name__} has no layer {layer!r}; its top-level layers are {', '.join(names)}"
        ) from None


def layer_output(model: nn.Module, layer: str, images: Tensor, *, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> Tensor:  # fmt: skip
    """What ``layer`` outputs for ``images`` (RGB in [0, 1], normalised here), stopping the forward pass there.

    Runs the model as it is (call ``model.eval()`` first for BatchNorm and dropout to behave as at inference), and
    keeps the autograd graph when gradients are enabled.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape N × 3 × H × W, got {tuple(images.shape)}")
    target = _find_layer(model, layer)
    captured: list[Tensor] = []

    def keep(_module, _inputs, output):
        captured.append(output)
        raise _Reached

    hook = target.register_forward_hook(keep)
    normalised = (images - images.new_tensor(mean)[:, None, None]) / images.new_tensor(std)[:, None, None]
    try:
        model(normalised)
    except _Reached:
        pass
    finally:
        hook.remove()
    if not captured:
        raise ValueError(f"layer {layer!r} never ran in {type(model).__name__}'s forward pass")
    output = captured[0]
    if not isinstance(output, Tensor) or output.ndim != 4:
        raise ValueError(f"layer {layer!r} must output an N × C × H × W tensor, got {type(output).__name__}")
    return output


def channel_activations(model: nn.Module, layer: str, images: Tensor, *, batch_size: int = 64,
                        mean: Sequence[float] = IMAGENET_MEAN,
                        std: Sequence[float] = IMAGENET_STD) -> Tensor:  # fmt: skip
    """``N × C``: the mean over positions of each of the layer's channels, for each image (RGB in [0, 1])."""
    with torch.no_grad():
        parts = [
            layer_output(model, layer, batch, mean=mean, std=std).mean(dim=(2, 3)) for batch in images.split(batch_size)
        ]
    return torch.cat(parts)


# ------------------------------------------------------------------------------------------- the optimisation
def _channel_list(channels: int | Sequence[int]) -> list[int]:
    values = [channels] if isinstance(channels, int) else list(channels)
    if not values or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in values):
        raise ValueError(f"channels must be a non-negative int or a non-empty list of them, got {channels!r}")
    return values


def visualise(model: nn.Module, layer: str, channels: int | Sequence[int], recipe: Recipe = Recipe(), *,
              mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:  # fmt: skip
    """One image per channel (``len(channels) × 3 × size × size``, RGB in [0, 1]) that maximises the channel's
    activation at ``layer``: image ``i`` climbs the mean of channel ``channels[i]`` over its output map.

    The channels are optimised together as one batch, each image on its own objective. The model is put in eval
    mode for the call and left as it was; its parameters get no gradients.
    """
    wanted = _channel_list(channels)
    generator = torch.Generator().manual_seed(recipe.seed)
    device = next(model.parameters()).device
    image = FourierImage(len(wanted), recipe.size, decay_power=recipe.decay_power, init_std=recipe.init_std,
                         generator=generator).to(device)  # fmt: skip
    optimizer = torch.optim.Adam(image.parameters(), lr=recipe.lr)
    index = torch.tensor(wanted, device=device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(recipe.steps):
            with torch.enable_grad(), _redirected_relu(recipe.redirect_relu):
                output = layer_output(model, layer, _random_moves(image(), recipe, generator), mean=mean, std=std)
                if index.max() >= output.shape[1]:
                    raise ValueError(f"{layer!r} has {output.shape[1]} channels, asked for channel {int(index.max())}")
                chosen = output[torch.arange(len(wanted), device=device), index]  # B × H × W: each image's own
                loss = -chosen.mean(dim=(1, 2)).sum()
                (gradient,) = torch.autograd.grad(loss, [image.spectrum])  # the model's weights get nothing
            image.spectrum.grad = gradient
            optimizer.step()
    finally:
        model.train(was_training)
    with torch.no_grad():
        return image()
