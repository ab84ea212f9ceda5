"""MAC, parameter and depth counting: fvcore measurements, closed forms, and the paper's Table 1."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

import gnet
from gnet.analysis import (
    LayerCount,
    conv_counts,
    count_layers,
    count_macs,
    count_params,
    inception_counts,
    meta_forward,
    model_summary,
    naive_inception_counts,
    spec_counts,
    table1_comparison,
    table1_layer_count,
)
from gnet.table1 import PAPER_DEPTH, TABLE1


@pytest.fixture(scope="module")
def paper_macs():
    return count_macs(gnet.googlenet(), (1, 3, 224, 224))


def test_paper_model_costs_1582671872_conv_and_linear_macs_at_224(paper_macs):
    assert paper_macs.total == 1_582_671_872
    assert paper_macs.by_operator["conv"] + paper_macs.by_operator["linear"] == 1_582_671_872


def test_per_block_macs_match_the_exact_arithmetic(paper_macs):
    expected = {
        "conv1": 118_013_952,
        "inception3a": 128_049_152,
        "inception3b": 304_267_264,
        "inception4a": 73_608_192,
        "inception4b": 87_908_352,
        "inception4c": 99_850_240,
        "inception4d": 118_515_712,
        "inception4e": 169_996_288,
        "inception5a": 51_079_168,
        "inception5b": 70_697_984,
        "fc": 1_024_000,
    }
    assert {k: paper_macs.by_module[k] for k in expected} == expected
    assert paper_macs.by_module["conv2"] + paper_macs.by_module["conv3"] == 359_661_568


def test_counting_does_not_change_the_models_mode():
    model = gnet.googlenet(num_classes=10).train()
    count_macs(model, (1, 3, 96, 96))
    assert model.training


def test_torchvision_googlenet_totals_match_fvcores_published_breakdown():
    import torchvision

    tv = torchvision.models.googlenet(weights=None, init_weights=True, aux_logits=False)
    every_op = ("conv", "linear", "batch_norm", "adaptive_avg_pool2d")
    counted = count_macs(tv, ops=every_op)
    assert counted.total == 1_504_878_688
    assert counted.by_operator == {
        "conv": 1_497_352_192,
        "batch_norm": 6_452_320,
        "linear": 1_024_000,
        "adaptive_avg_pool2d": 50_176,
    }
    # gnet's torchvision configuration costs exactly the same.
    assert count_macs(gnet.googlenet(**gnet.TORCHVISION_CONFIG), ops=every_op).by_operator == counted.by_operator


def test_flop_counter_mode_reports_exactly_twice_fvcores_count():
    from torch.utils.flop_counter import FlopCounterMode

    block = gnet.Inception(192, 64, (96, 128), (16, 32), 32)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        block(torch.zeros(1, 192, 28, 28))
    assert counter.get_total_flops() == 2 * count_macs(block, (1, 192, 28, 28)).total


def test_conv_counts_of_the_5x5_branch_direct_and_reduced():
    direct, _ = conv_counts(192, 32, 5, 28, 28)
    reduce, _ = conv_counts(192, 16, 1, 28, 28)
    then_5x5, _ = conv_counts(16, 32, 5, 28, 28)
    assert direct == 120_422_400
    assert reduce + then_5x5 == 12_443_648


def _random_specs(n: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(n):
        yield (
            rng.randint(1, 64),
            rng.randint(1, 48),
            (rng.randint(1, 32), rng.randint(1, 48)),
            (rng.randint(1, 16), rng.randint(1, 32)),
            rng.randint(1, 32),
            rng.choice([1, 3, 5, 7]),
            rng.choice([1, 5, 8, 14]),
        )


@pytest.mark.parametrize(("cin", "c1", "c2", "c3", "c4", "k", "hw"), list(_random_specs(40)))
def test_inception_closed_form_equals_fvcore_and_parameter_count(cin, c1, c2, c3, c4, k, hw):
    block = gnet.Inception(cin, c1, c2, c3, c4, branch3_kernel=k)
    closed = inception_counts(cin, c1, c2, c3, c4, hw, hw, branch3_kernel=k)
    measured = count_macs(block, (1, cin, hw, hw))
    assert closed.macs == measured.total
    assert closed.params == count_params(block)
    assert closed.out_channels == block.out_channels
    assert closed.branch_macs == {f"branch{i}": measured.by_module[f"branch{i}"] for i in range(1, 5)}


@pytest.mark.parametrize("batch_norm", [False, True])
def test_closed_form_parameters_with_batchnorm(batch_norm):
    spec = gnet.INCEPTION_SPECS["inception4c"]
    block = gnet.Inception.from_spec(spec, batch_norm=batch_norm)
    assert spec_counts(spec, 14, 14, batch_norm=batch_norm).params == count_params(block)


def test_spec_counts_are_inception_counts_of_the_block_the_spec_describes():
    spec = gnet.INCEPTION_SPECS["inception3a"]
    assert spec_counts(spec, 28, 28) == inception_counts(192, 64, (96, 128), (16, 32), 32, 28, 28)
    assert spec_counts(spec, 28, 28).macs == count_macs(gnet.Inception.from_spec(spec), (1, 192, 28, 28)).total
    assert spec_counts(spec, 28, 28, branch3_kernel=3) == inception_counts(
        192, 64, (96, 128), (16, 32), 32, 28, 28, branch3_kernel=3
    )


@pytest.mark.parametrize(
    ("cin", "c1", "c2", "c3", "hw"), [(192, 64, 128, 32, 28), (416, 64, 128, 32, 28), (7, 3, 2, 5, 9)]
)
def test_naive_closed_form_equals_fvcore(cin, c1, c2, c3, hw):
    block = gnet.NaiveInception(cin, c1, c2, c3)
    closed = naive_inception_counts(cin, c1, c2, c3, hw, hw)
    assert closed.macs == count_macs(block, (1, cin, hw, hw)).total
    assert closed.params == count_params(block)
    assert closed.out_channels == cin + c1 + c2 + c3


def test_aux_heads_cost_what_the_closed_form_says():
    model = gnet.googlenet()
    macs = count_macs(model.aux1, (1, 512, 14, 14)).total
    # 1×1 conv on 4×4, then two FC layers.
    assert macs == 512 * 128 * 16 + 2048 * 1024 + 1024 * 1000


def test_table1_comparison_flags_exactly_the_known_errata():
    rows = {r["layer"]: r for r in table1_comparison()}
    assert len(rows) == sum(r.paper_params is not None for r in TABLE1) == 12
    macs_off = sorted(name for name, r in rows.items() if not r["macs_agree"])
    assert macs_off == ["conv1", "inception5a"]
    params_off = {name for name, r in rows.items() if not r["params_agree"]}
    assert {"conv1", "inception4c", "inception5a"} <= params_off
    assert {"conv2+conv3", "inception3a", "inception3b", "inception4b", "fc"}.isdisjoint(params_off)
    assert rows["inception4c"]["measured_weights"] == 509_440
    assert rows["conv1"]["measured_weights"] == 9_408
    # The paper's "K" is 1024: 1000K is the 1024 × 1000 classifier exactly.
    assert rows["fc"]["paper_params"] == rows["fc"]["measured_weights"] == 1_024_000
    assert sum(r["measured_macs"] for r in rows.values()) == 1_582_671_872
    assert sum(r["measured_params"] for r in rows.values()) == 6_998_552


# -- depth: layers with parameters along the deepest path ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"aux_logits": False}, gnet.TORCHVISION_CONFIG, {"num_classes": 10, "width": 0.5}]
)
def test_googlenet_is_22_layers_deep_with_parameters_and_27_with_pooling(kwargs):
    assert count_layers(gnet.googlenet(**kwargs)) == LayerCount(22, 27)


def test_table1_depth_column_adds_up_to_22_and_27_with_its_five_pooling_rows():
    assert table1_layer_count() == LayerCount(22, 27)


def test_layer_count_leaves_the_model_and_its_mode_untouched():
    model = gnet.googlenet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_layers(model)
    assert model.training
    assert all(torch.equal(before[k], v) and v.device.type == "cpu" for k, v in model.state_dict().items())


def test_parallel_branches_count_once_and_a_chain_counts_every_layer():
    block = gnet.Inception(16, 4, (4, 8), (2, 4), 4)
    chain = nn.Sequential(nn.Conv2d(3, 16, 3), nn.MaxPool2d(2), block, nn.Conv2d(20, 8, 1))
    assert count_layers(chain, (1, 3, 16, 16)) == LayerCount(1 + 2 + 1, 1 + 1 + 2 + 1)


def test_table1_layer_count_reads_the_paper_depth_of_the_classifier():
    assert table1_layer_count().with_params == PAPER_DEPTH["fc"] == sum(row.depth for row in TABLE1) == 22


def test_meta_forward_gives_shapes_without_touching_the_models_tensors():
    model = gnet.googlenet(num_classes=10).train()
    out = meta_forward(model, (2, 3, 224, 224))
    assert out.device.type == "meta" and tuple(out.shape) == (2, 10)
    assert model.training and all(p.device.type == "cpu" for p in model.parameters())


def test_paper_ops_column_sums_to_about_1_5_billion():
    assert sum(r.paper_macs or 0 for r in TABLE1) == 1_502e6


def test_model_summary_reports_total_parameters():
    stats = model_summary(gnet.googlenet(), depth=1)
    assert stats.total_params == 13_378_280


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: count_macs("resnet"), "model must be a torch.nn.Module, got str"),
        (
            lambda: count_macs(gnet.googlenet(), (1, 3, 0, 224)),
            "input_size must be a sequence of positive ints",
        ),
        (lambda: count_params(None), "module must be a torch.nn.Module, got NoneType"),
        (lambda: conv_counts(0, 1, 1, 1, 1), "in_channels must be a positive int, got 0"),
        (lambda: conv_counts(3, 1, 2.0, 1, 1), "kernel must be a positive int, got 2.0"),
        (lambda: spec_counts((192, 64, 96, 128, 16, 32, 32), 28, 28), "spec must be a gnet.table1.InceptionSpec"),
        (lambda: count_layers("googlenet"), "model must be a torch.nn.Module, got str"),
        (lambda: count_layers(gnet.googlenet(), (3, 224, 224)), r"input_size must be \(N, C, H, W\)"),
        (lambda: count_layers(gnet.googlenet(), (1, 3, 0, 224)), r"input_size\[2\] must be a positive int"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_inception_block_takes_the_previous_rows_depth():
    specs = list(gnet.INCEPTION_SPECS.values())
    assert specs[0].in_channels == 192  # the stem's output
    # Max pools between stages keep the channel count, so each block reads its predecessor's output.
    for before, after in itertools.pairwise(specs):
        assert after.in_channels == before.out_channels
