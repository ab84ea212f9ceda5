"""gnet.book.trained: receptive fields read off the model, correlations, ablations, and the recorded analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gnet
from gnet.book import trained as T
from gnet.model import BRANCH_NAMES

REPO = Path(__file__).resolve().parents[1]
ANALYSIS = REPO / "book" / "recorded_runs" / "imagenette-cpu" / "analysis.json"


@pytest.fixture(scope="module")
def small() -> gnet.GoogLeNet:
    torch.manual_seed(0)
    return gnet.googlenet(width=0.25, batch_norm=True, lrn=False, num_classes=10).eval()


# ---------------------------------------------------------------------------------------------- receptive fields
def test_receptive_fields_of_the_papers_network():
    fields = T.receptive_fields(gnet.googlenet(width=0.25))
    expected = {"conv1": (7, 2), "maxpool1": (11, 4), "conv3": (19, 4), "maxpool2": (27, 8), "inception3a": (59, 8),
                "inception3b": (91, 8), "inception4a": (171, 16), "inception5b": (715, 32)}  # fmt: skip
    assert {name: tuple(fields[name]) for name in expected} == expected
    assert list(fields)[-1] == "inception5b" and "fc" not in fields and "aux1" not in fields


def test_branch_fields_grow_with_the_kernel_and_torchvisions_3x3_branch3_is_smaller():
    paper = T.branch_receptive_fields(gnet.googlenet(width=0.25))
    assert paper["inception3a"] == {"branch1": 27, "branch2": 43, "branch3": 59, "branch4": 43}
    assert len(paper) == 9
    tv = T.branch_receptive_fields(gnet.googlenet(width=0.25, branch3_kernel=3))
    assert tv["inception3a"]["branch3"] == 43  # a 3×3 adds 2 × 8 input pixels, a 5×5 adds 4 × 8


@pytest.mark.parametrize("stage", ["conv1", "conv3", "inception3a", "inception3b"])
def test_the_input_gradient_of_a_centre_unit_covers_exactly_the_theoretical_field(small, stage):
    # An independent check of receptive_fields: where the gradient is non-zero, on noise, averaged over images.
    erf = T.effective_receptive_field(small, torch.randn(8, 3, 160, 160), stage)
    rows, cols = np.nonzero(erf > 0)
    size = T.receptive_fields(small)[stage].size
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (size, size)


def test_half_mass_radius_of_known_maps():
    delta = np.zeros((11, 11))
    delta[5, 5] = 1
    assert T.half_mass_radius(delta) == 0
    square = np.zeros((11, 11))
    square[3:8, 3:8] = 1  # 25 pixels: the 3×3 window holds 9 (< 12.5), the 5×5 window all 25
    assert T.half_mass_radius(square) == 2
    assert T.mass_profile(square)[[0, 1, 2, -1]].tolist() == pytest.approx([1 / 25, 9 / 25, 1.0, 1.0])
    with pytest.raises(ValueError, match="zero everywhere"):
        T.half_mass_radius(np.zeros((5, 5)))


# ---------------------------------------------------------------------------------------------- correlations
def test_feature_correlation_drops_dead_channels_and_counts_them():
    torch.manual_seed(0)
    features = torch.randn(4, 5, 6, 6)
    features[:, 2] = 0.0  # a ReLU channel that never fires
    features[:, 3] = 2 * features[:, 0] + 1  # perfectly correlated with channel 0
    matrix, dead = T.feature_correlation(features)
    assert dead == 1 and matrix.shape == (4, 4)
    assert matrix[0, 2] == pytest.approx(1.0)  # channel 3 sits at index 2 once channel 2 is gone
    summary = T.correlation_summary(matrix)
    assert summary["channels"] == 4 and summary["strong"] >= 1 / 6


def test_spatial_correlation_of_blocky_noise_is_one_half_one_pixel_away():
    torch.manual_seed(0)
    blocks = torch.randn(4, 3, 48, 48).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 2×2 blocks
    curve = T.spatial_correlation(blocks, 3)
    assert curve[0] == 1.0
    assert curve[1] == pytest.approx(0.5, abs=0.03) and abs(curve[2]) < 0.03  # half the pairs share a block
    with pytest.raises(ValueError, match="max_distance must be in 1..95"):
        T.spatial_correlation(blocks, 96)


# ---------------------------------------------------------------------------------------------- ablations
def test_zero_branch_silences_only_that_branch_and_cleans_up(small):
    x = torch.randn(2, 3, 96, 96)
    module = small.inception3b
    outputs = {}
    hook = module.register_forward_hook(lambda _m, _i, out: outputs.__setitem__("y", out))
    with torch.no_grad():
        small(x)
        before = outputs["y"].clone()
        with T.zero_branch(small, "inception3b", "branch3"):
            small(x)
        zeroed = outputs["y"].clone()
        small(x)
    hook.remove()
    start = module.branch1.conv.out_channels + module.branch2[1].conv.out_channels
    stop = start + module.branch3[1].conv.out_channels
    assert torch.all(zeroed[:, start:stop] == 0) and torch.equal(zeroed[:, :start], before[:, :start])
    assert torch.equal(outputs["y"], before)  # the hook is gone
    with pytest.raises(ValueError, match="branch must be one of"), T.zero_branch(small, "inception3b", "branch5"):
        pass


def test_branch_energy_shares_sum_to_one_and_match_a_direct_count(small):
    x = torch.randn(4, 3, 96, 96)
    shares = T.branch_energy(small, x)
    assert list(shares) == list(gnet.INCEPTION_SPECS)
    assert all(sum(row.values()) == pytest.approx(1.0) for row in shares.values())
    y = T.stage_outputs(small, x, ["inception5b"])["inception5b"]
    n1 = small.inception5b.branch1.conv.out_channels
    assert shares["inception5b"]["branch1"] == pytest.approx(float(y[:, :n1].pow(2).sum() / y.pow(2).sum()))


def test_random_like_keeps_the_architecture_and_measures_batch_norm_on_the_images(small):
    images = torch.randn(8, 3, 96, 96)
    twin = T.random_like(small, images, seed=1)
    assert twin.config == small.config and not twin.training
    assert not torch.equal(twin.conv1.conv.weight, small.conv1.conv.weight)
    assert float(twin.conv1.bn.running_var.mean()) != 1.0  # measured, not the initial 1


# ---------------------------------------------------------------------------------------------- the record
def test_the_recorded_analysis_is_complete_and_names_what_made_it():
    report = json.loads(ANALYSIS.read_text())
    assert report["weights"] == "IMAGENETTE_CPU" and report["val_images"] == 3925
    assert report["baseline_top1"] == pytest.approx(gnet.GoogLeNetWeights.DEFAULT.meta["val_top1"], abs=1 / 3925)
    ablations = report["ablations"]
    assert list(ablations) == list(gnet.INCEPTION_SPECS) and all(len(row) == 4 for row in ablations.values())
    assert all(0 <= top1 <= 1 for row in ablations.values() for top1 in row.values())
    assert set(report["correlation"]) == {"inception3a", "inception4d"}
    assert set(report["correlation_length"]) == set(T.FEATURE_STAGES)
    assert {"command", "device", "versions", "git_commit", "finished_at"} <= set(report["made_by"])


def test_branch_means_are_the_per_channel_means_of_each_branch(small):
    x = torch.randn(3, 3, 96, 96)
    means = T.branch_means(small, x)
    with torch.no_grad():
        y = T.stage_outputs(small, x, ["inception4a"])["inception4a"]
    n1 = small.inception4a.branch1.conv.out_channels
    assert torch.allclose(means["inception4a"]["branch1"], y[:, :n1].mean(dim=(0, 2, 3)), atol=1e-6)
    assert means["inception4a"]["branch1"].shape == (n1,)


def test_the_branch_grid_writes_every_value_and_no_negative_zero():
    values = {m: {b: (-0.04 if b == "branch1" else 2.5) for b in BRANCH_NAMES} for m in gnet.INCEPTION_SPECS}
    fig, ax = T.plot_branch_grid(values, limits=(0, 10))
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 36 and "-0.0" not in texts and texts.count("0.0") == 9 and texts.count("2.5") == 27
    assert ax.images[0].get_clim() == (0, 10)


def test_made_by_names_the_run_that_measured_each_part():
    report = json.loads(ANALYSIS.read_text())
    assert T.made_by(report, "mean_ablations")["command"].endswith("--parts mean_ablations")
    assert "parts" not in T.made_by(report, "correlation")  # the first, complete run
    with pytest.raises(ValueError, match="no run in this analysis measured 'colour'"):
        T.made_by({"made_by": {"parts": ["erf"]}}, "colour")
