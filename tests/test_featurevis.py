"""gnet.featurevis: activation maximisation that works on any network, recovers a known filter, and is seeded."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gnet
from gnet.featurevis import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FourierImage,
    Recipe,
    channel_activations,
    layer_output,
    visualise,
)

FAST = Recipe(steps=24, size=48, pad=4, jitter=4)


@pytest.fixture(autouse=True)
def one_thread():
    """These batches are tiny: on a shared 2-core machine one thread ran them 5-10× faster than two (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def edge_network(degrees: float) -> nn.Module:
    """One 9×9 filter that fires on a luminance edge whose brightness rises along ``degrees`` (0: to the right)."""
    coords = torch.arange(9, dtype=torch.float32) - 4
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    angle = math.radians(degrees)
    along = x * math.cos(angle) + y * math.sin(angle)
    edge = torch.tanh(along) * torch.exp(-(x**2 + y**2) / 18)  # an odd Gabor-like edge filter
    conv = nn.Conv2d(3, 1, 9, bias=False)
    with torch.no_grad():
        conv.weight.copy_((edge / edge.abs().sum())[None, None].expand(1, 3, 9, 9) / 3)
    colours = nn.Conv2d(3, 3, 1)  # passes colours through unchanged: a layer before the one visualised
    with torch.no_grad():
        colours.weight.copy_(torch.eye(3)[:, :, None, None])
        colours.bias.zero_()
    return nn.Sequential(colours, conv, nn.ReLU()).eval().requires_grad_(False)


def luminance_orientation(image: torch.Tensor) -> tuple[float, float]:
    """``(direction, coherence)`` of the luminance gradient: the structure tensor of the image blurred by a Gaussian
    of 1.5 px (which keeps the stripes and drops single-pixel colour noise). The direction is in degrees mod 180;
    the coherence is 1 for perfect stripes and near 0 for noise."""
    r = torch.arange(-4, 5.0)
    kernel = torch.exp(-(r**2) / 4.5)
    kernel = kernel / kernel.sum()
    luma = F.conv2d(F.conv2d(image.mean(dim=0)[None, None], kernel[None, None, None, :]), kernel[None, None, :, None])
    luma = luma[0, 0]
    gy, gx = luma[1:, :-1] - luma[:-1, :-1], luma[:-1, 1:] - luma[:-1, :-1]
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    coherence = math.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy)
    return math.degrees(0.5 * math.atan2(2 * jxy, jxx - jyy)) % 180, coherence


def test_the_normalisation_is_gnets_own():
    from gnet import data

    assert IMAGENET_MEAN == data.IMAGENET_MEAN and IMAGENET_STD == data.IMAGENET_STD


def test_the_fourier_image_is_in_the_unit_range_and_starts_as_faint_grey():
    image = FourierImage(2, 32, generator=torch.Generator().manual_seed(0))()
    assert image.shape == (2, 3, 32, 32)
    assert image.min() > 0 and image.max() < 1
    assert (image - 0.5).abs().max() < 0.05  # init_std 0.01: the sigmoid's linear range around grey


@pytest.mark.parametrize("degrees", [0, 20, 45, 90, 135])
def test_a_known_edge_filter_comes_out_as_stripes_of_its_orientation(degrees):
    model = edge_network(degrees)
    no_norm = {"mean": (0, 0, 0), "std": (1, 1, 1)}
    image = visualise(model, "2", 0, Recipe(steps=128, size=48, pad=4, jitter=4), **no_norm)[0]
    start = visualise(model, "2", 0, Recipe(steps=0, size=48), **no_norm)[0]
    found, coherence = luminance_orientation(image)
    off_by = min(abs(found - degrees % 180), 180 - abs(found - degrees % 180))
    # Measured on this recipe: within 10° and coherence 0.5-0.65 for every orientation; the noise it starts from
    # has no orientation (coherence below 0.3), so the bounds separate a found edge from none.
    assert off_by < 15, f"expected luminance changing along {degrees}°, found {found:.0f}°"
    assert coherence > 0.4 > luminance_orientation(start)[1]


def test_a_unit_silent_at_the_start_still_gets_a_picture_through_the_redirected_relu():
    red = nn.Conv2d(3, 1, 1)  # fires on red, and is silent on the grey start: 0.5 - 0.25 - 0.25 - 0.2 < 0
    with torch.no_grad():
        red.weight.copy_(torch.tensor([1.0, -0.5, -0.5])[None, :, None, None])
        red.bias.fill_(-0.2)
    model = nn.Sequential(red, nn.ReLU()).eval().requires_grad_(False)
    no_norm = {"mean": (0, 0, 0), "std": (1, 1, 1)}
    start = visualise(model, "1", 0, Recipe(steps=0, size=32), **no_norm)
    assert channel_activations(model, "1", start, **no_norm).item() == 0
    recipe = Recipe(steps=128, size=32, pad=4, jitter=4)
    plain = visualise(model, "1", 0, Recipe(steps=128, size=32, pad=4, jitter=4, redirect_relu=False), **no_norm)
    redirected = visualise(model, "1", 0, recipe, **no_norm)
    assert channel_activations(model, "1", plain, **no_norm).item() == 0  # no gradient: stuck at the start
    assert channel_activations(model, "1", redirected, **no_norm).item() > 0.05  # measured 0.098


def test_the_same_seed_gives_the_same_images_and_another_seed_does_not():
    model = edge_network(0)
    first = visualise(model, "2", [0, 0], FAST)
    again = visualise(model, "2", [0, 0], FAST)
    other = visualise(model, "2", [0, 0], Recipe(steps=24, size=48, pad=4, jitter=4, seed=7))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


@pytest.mark.slow
def test_a_visualisation_excites_its_channel_far_more_than_random_images_and_its_start():
    model = gnet.googlenet(weights="IMAGENETTE_CPU")
    channels = [0, 20, 50]  # one each from 3a's 1×1, 3×3 and 5×5 branches
    recipe = Recipe(steps=128, size=80)  # this network takes 65 px and up
    final = visualise(model, "inception3a", channels, recipe)
    start = visualise(model, "inception3a", channels, Recipe(steps=0, size=80))
    noise = torch.rand(16, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    picked = torch.arange(len(channels)), torch.tensor(channels)
    reached = channel_activations(model, "inception3a", final)[picked]
    at_start = channel_activations(model, "inception3a", start)[picked]
    on_noise = channel_activations(model, "inception3a", noise)[:, channels].mean(dim=0)
    # Uniform noise is full of edges, a strong input for edge-like units: measured 4.5× to 190× here, so 3× is the
    # floor. The grey start already excites some units well (3a's channel 0 responds to flat grey): measured 1.7×
    # to 7.2× after these 128 steps, so 1.5× is the floor.
    assert (reached > 3 * on_noise).all(), (reached, on_noise)
    assert (reached > 1.5 * at_start).all(), (reached, at_start)


def test_it_runs_on_torchvisions_googlenet_and_raises_the_activation():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=False).eval()
    recipe = Recipe(steps=8, size=64)
    final = visualise(model, "inception3a", [3, 70], recipe)
    start = visualise(model, "inception3a", [3, 70], Recipe(steps=0, size=64))
    assert final.shape == (2, 3, 64, 64) and final.min() >= 0 and final.max() <= 1
    picked = torch.arange(2), torch.tensor([3, 70])
    assert (channel_activations(model, "inception3a", final)[picked] > channel_activations(
        model, "inception3a", start)[picked]).all()  # fmt: skip
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_the_forward_pass_stops_at_the_layer():
    class Boom(nn.Module):
        def forward(self, x):
            raise AssertionError("ran past the layer")

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Boom())
    out = layer_output(model, "1", torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 4, 6, 6)


def test_bad_layers_channels_and_recipes_raise_one_clear_value_error():
    model = edge_network(0)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        visualise(model, "nope", 0, FAST)
    with pytest.raises(ValueError, match="has 1 channels, asked for channel 5"):
        visualise(model, "2", 5, FAST)
    with pytest.raises(ValueError, match="channels must be"):
        visualise(model, "2", [], FAST)
    with pytest.raises(ValueError, match="Recipe.steps"):
        Recipe(steps=-1)
    with pytest.raises(ValueError, match="N × 3 × H × W"):
        layer_output(model, "2", torch.rand(3, 8, 8))
