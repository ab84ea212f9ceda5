"""gnet.book.branches: branch membership, unit positions, crops, the two indices and the concentration test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import gnet
from gnet.book import branches as B

RECORD = Path(__file__).resolve().parents[1] / "book/recorded_runs/featurevis"


@pytest.mark.parametrize(("width", "sizes"), [(1.0, [64, 128, 32, 32]), (0.25, [16, 32, 8, 8])])
def test_the_branches_of_3a_hold_the_table_1_widths_in_concatenation_order(width, sizes):
    model = gnet.googlenet(width=width, aux_logits=False)
    ranges = B.branch_channels(model, "inception3a")
    assert [len(r) for r in ranges.values()] == sizes
    assert [r.start for r in ranges.values()] == list(np.cumsum([0, *sizes[:-1]]))
    members = B.branch_of(model, "inception3a")
    assert len(members) == model.inception3a.out_channels and members[sizes[0]] == "branch2"


def test_branch_channels_rejects_a_layer_that_is_not_an_inception_module():
    with pytest.raises(ValueError, match="Inception module"):
        B.branch_channels(gnet.googlenet(aux_logits=False), "conv1")


@pytest.mark.parametrize("pool_style", ["paper", "torchvision"])
@pytest.mark.parametrize("stage", ["conv3", "inception3b", "inception4c"])
def test_unit_grid_puts_each_unit_where_its_input_gradient_is_centred(pool_style, stage):
    torch.manual_seed(0)
    model = gnet.googlenet(width=0.25, aux_logits=False, pool_style=pool_style).eval()
    jump, offset = B.unit_grid(model, stage)
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    out = {}
    hook = model.get_submodule(stage).register_forward_hook(lambda _m, _i, o: out.setdefault("y", o))
    model(x)
    hook.remove()
    row = out["y"].shape[-2] // 2
    (grad,) = torch.autograd.grad(out["y"][0, :, row, row].sum(), x)
    weight = grad.abs().sum(dim=(0, 1))
    coords = torch.arange(160, dtype=torch.float64)
    centre_y = float((weight.sum(dim=1).double() * coords).sum() / weight.sum())
    # The field is symmetric about the unit's centre in theory; a trained-or-random network's gradient is not
    # exactly symmetric, so the centre of mass is allowed half a jump of slack.
    assert abs(centre_y - (offset + row * jump)) <= jump / 2


def test_example_crops_cut_the_field_around_the_peak():
    image = torch.zeros(1, 3, 32, 32)
    image[0, :, 20, 12] = 1.0  # one white pixel at row 20, column 12
    stats = B.LayerStats(torch.zeros(1, 1), torch.ones(1, 1), torch.tensor([[5 * 8 + 3]]), width=8)  # unit (5, 3)
    crop = B.example_crops(image, stats, 0, [0], field=9, grid=(4, 0.0), out_size=9)[0]
    assert crop.shape == (9, 9, 3) and crop.dtype == np.uint8
    assert np.unravel_index(crop[..., 0].argmax(), crop.shape[:2]) == (4, 4)  # unit (5, 3) sits on pixel (20, 12)
    far = B.example_crops(image, stats._replace(where=torch.tensor([[0]])), 0, [0], field=9, grid=(4, 0.0),
                          out_size=9)[0]  # fmt: skip
    assert far[0, 0, 0] == 128  # outside the image: grey


def test_a_field_larger_than_the_image_shows_the_whole_image():
    images = torch.rand(2, 3, 16, 16)
    crops = B.example_crops(images, None, 0, [1, 0], field=300, grid=(16, 0.0), out_size=16)
    expected = (images[[1, 0]].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    assert np.abs(crops.astype(int) - expected).max() <= 1  # same size: resampling keeps every pixel


def test_greyscale_keeps_luminance_and_drops_colour():
    images = torch.rand(2, 3, 4, 4)
    grey = B.greyscale(images)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    flat = torch.full((1, 3, 2, 2), 0.3)
    assert torch.allclose(B.greyscale(flat), flat)  # 0.299 + 0.587 + 0.114 = 1


def test_the_colour_index_is_plus_one_for_colour_only_minus_one_for_grey_only_and_zero_for_silence():
    colour = torch.tensor([[2.0, 0.0, 0.0, 1.0]])
    grey = torch.tensor([[0.0, 3.0, 0.0, 1.0]])
    assert B.colour_index(colour, grey).tolist() == [1.0, -1.0, 0.0, 0.0]


def test_curves_and_lines_have_the_same_ink_and_only_the_curves_bend():
    curves, lines = B.curve_stimuli(64, radii=(8, 16), orientations=8)
    assert curves.shape == lines.shape == (2 * 2 * 8, 3, 64, 64)
    ink_curve, ink_line = ((s - 0.5).abs().sum(dim=(1, 2, 3)) for s in (curves, lines))
    assert torch.allclose(ink_curve, ink_line, rtol=0.1)  # same length and width: same ink, within anti-aliasing

    def bend(stimulus: torch.Tensor) -> float:  # smallest / largest spread of the stroke's pixels
        ys, xs = torch.nonzero((stimulus[0] - 0.5).abs() > 0.25, as_tuple=True)
        spread = torch.linalg.eigvalsh(torch.cov(torch.stack([ys, xs]).double()))
        return float(spread[0] / spread[1])

    assert max(bend(s) for s in lines) < 0.05 < min(bend(s) for s in curves)


def test_the_curve_index_compares_the_strongest_curve_with_the_strongest_line():
    curves = torch.tensor([[1.0, 0.0], [3.0, 1.0]])  # 2 stimuli × 2 units
    lines = torch.tensor([[1.0, 2.0], [0.0, 2.0]])
    assert B.curve_index(curves, lines).tolist() == [0.5, -1 / 3]


def test_select_top_picks_an_eighth_of_the_units_highest_first():
    index = np.arange(64.0)[::-1]
    mask = B.select_top(index)
    assert mask.sum() == 8 and mask[:8].all()
    with pytest.raises(ValueError, match="fraction"):
        B.select_top(index, 1.5)


@pytest.mark.parametrize(("population", "size", "k"), [(480, 96, 30), (256, 32, 9), (64, 8, 8)])
def test_all_selected_units_in_one_branch_has_the_exact_hypergeometric_probability(population, size, k):
    selected = np.zeros(population, bool)
    selected[:k] = True
    branches = ["branch3"] * size + ["branch1"] * (population - size)
    row = next(r for r in B.concentration_test(selected, branches) if r.branch == "branch3")
    exact = math.comb(size, k) / math.comb(population, k)
    assert row.selected == k and row.size == size and math.isclose(row.p_value, exact, rel_tol=1e-9)
    assert row.expected == pytest.approx(k * size / population)


def test_distills_quoted_probabilities_follow_from_their_counts():
    # Branch Specialization: 30 of 30 curve units in mixed3b's 5×5 branch (96 of 480); 9 of 9 colour units in
    # mixed3a's (32 of 256). The article's bounds are 1e-20 and 1e-8.
    assert math.comb(96, 30) / math.comb(480, 30) < 1e-20
    assert math.comb(32, 9) / math.comb(256, 9) < 1e-8


def test_tile_sheets_round_trip(tmp_path):
    from PIL import Image

    tiles = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    sheet = B.tile_sheet(tiles, columns=3)
    assert sheet.shape == (8, 12, 3) and (sheet[4:, 8:] == 255).all()
    Image.fromarray(sheet).save(tmp_path / "sheet.png")
    assert np.array_equal(B.read_tiles(tmp_path / "sheet.png", 4, 5, 3), tiles)


@pytest.mark.skipif(not (RECORD / "record.json").exists(), reason="the feature-visualisation record is not there")
def test_the_record_says_how_it_was_made_and_stays_small():
    record = json.loads((RECORD / "record.json").read_text())
    assert {"command", "device", "versions", "git_commit", "seconds", "timings"} <= set(record["made_by"])
    total = sum(p.stat().st_size for p in RECORD.iterdir())
    assert total < 10 * 2**20
    model = gnet.googlenet(weights="IMAGENETTE_CPU")
    for name in ("inception3a", "inception3b"):
        layer = record["layers"][name]
        assert layer["channels"] == list(range(model.get_submodule(name).out_channels))
        assert layer["branch"] == B.branch_of(model, name)
        for key in ("colour_index", "curve_index"):
            assert len(layer[key]) == len(layer["channels"])
    for name, layer in record["layers"].items():
        assert (RECORD / f"{name}_vis.jpg").exists() and (RECORD / f"{name}_examples.jpg").exists()
        assert len(layer["top_images"]) == len(layer["channels"])
