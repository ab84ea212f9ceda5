"""The numbers chapters 3 and 4 print, pinned: if gnet changes, these fail before the prose goes wrong."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import gnet
from gnet.analysis import conv_counts, count_macs, count_params, inception_counts, naive_inception_counts, spec_counts
from gnet.book.stacks import measure_stack, naive_stack, plot_branch_macs, plot_stacks, reduced_stack
from gnet.table1 import INCEPTION_SPECS

SPEC_3A = INCEPTION_SPECS["inception3a"]
INPUT_3A = (1, 192, 28, 28)


def flop_counter_total(module: torch.nn.Module, input_size: tuple[int, ...]) -> int:
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.zeros(input_size))
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def naive_rows():
    return measure_stack(naive_stack(6, 192, 64, 128, 32), 28, 28)


@pytest.fixture(scope="module")
def reduced_rows():
    return measure_stack(reduced_stack(6, SPEC_3A), 28, 28)


# ------------------------------------------------------------------------------------------------------------
# Chapter 3: the naive module and its stack
# ------------------------------------------------------------------------------------------------------------


def test_naive_module_on_28x28x192_concatenates_to_416_channels():
    naive = gnet.NaiveInception(192, 64, 128, 32)
    with torch.no_grad():
        out = naive(torch.randn(INPUT_3A))
    assert out.shape == (1, 416, 28, 28) and naive.out_channels == 416


def test_module_with_reductions_outputs_256_channels():
    block = gnet.Inception.from_spec(SPEC_3A)
    with torch.no_grad():
        out = block(torch.randn(INPUT_3A))
    assert out.shape == (1, 256, 28, 28) and block.out_channels == 256


def test_naive_module_costs_303464448_macs_and_387296_parameters_by_fvcore_and_closed_form():
    naive = gnet.NaiveInception(192, 64, 128, 32)
    closed = naive_inception_counts(192, 64, 128, 32, 28, 28)
    assert count_macs(naive, INPUT_3A).total == closed.macs == 303_464_448
    assert count_params(naive) == closed.params == 387_296
    assert closed.branch_macs == {"branch1": 9_633_792, "branch2": 173_408_256, "branch3": 120_422_400, "branch4": 0}


def test_stacked_naive_modules_widen_by_224_channels_each(naive_rows):
    assert [r.in_channels for r in naive_rows] == [192, 416, 640, 864, 1088, 1312]
    assert [r.out_channels for r in naive_rows] == [416, 640, 864, 1088, 1312, 1536]


def test_stacked_naive_macs_are_exact_and_quadratic_in_depth(naive_rows):
    assert [r.module_macs for r in naive_rows] == [
        303_464_448,
        657_506_304,
        1_011_548_160,
        1_365_590_016,
        1_719_631_872,
        2_073_673_728,
    ]
    assert naive_rows[-1].total_macs == 7_131_414_528
    per_channel = (64 + 128 * 9 + 32 * 25) * 28 * 28
    for d, r in enumerate(naive_rows, start=1):
        assert r.total_macs == per_channel * (192 * d + 224 * d * (d - 1) // 2)


def test_stacked_reduced_modules_stay_at_256_channels_with_constant_cost(reduced_rows):
    assert [r.out_channels for r in reduced_rows] == [256] * 6
    assert [r.module_macs for r in reduced_rows] == [128_049_152] + [138_485_760] * 5
    assert reduced_rows[-1].total_macs == 820_477_952
    assert reduced_rows[1].module_macs == inception_counts(256, 64, (96, 128), (16, 32), 32, 28, 28).macs


def test_measure_stack_totals_params_and_rejects_an_empty_stack(naive_rows):
    assert naive_rows[0].module_params == 387_296
    assert naive_rows[-1].total_params == sum(r.module_params for r in naive_rows)
    with pytest.raises(ValueError, match="non-empty"):
        measure_stack(torch.nn.Sequential())
    with pytest.raises(ValueError, match="depth"):
        naive_stack(0)


# ------------------------------------------------------------------------------------------------------------
# Chapter 4: the bottleneck
# ------------------------------------------------------------------------------------------------------------


def test_direct_5x5_branch_costs_120422400_macs_by_fvcore_and_closed_form():
    branch = gnet.NaiveInception(192, 64, 128, 32).branch3
    assert count_macs(branch, INPUT_3A).total == conv_counts(192, 32, 5, 28, 28)[0] == 120_422_400


def test_reduced_5x5_branch_costs_12443648_macs_by_fvcore_and_closed_form():
    branch = gnet.Inception.from_spec(SPEC_3A).branch3
    closed = conv_counts(192, 16, 1, 28, 28)[0] + conv_counts(16, 32, 5, 28, 28)[0]
    assert count_macs(branch, INPUT_3A).total == closed == 12_443_648
    assert spec_counts(SPEC_3A, 28, 28).branch_macs["branch3"] == 12_443_648


def test_inception3a_totals_128049152_macs_163328_weights_and_163696_parameters():
    block = gnet.Inception.from_spec(SPEC_3A)
    weights = sum(p.numel() for name, p in block.named_parameters() if name.endswith("weight"))
    assert count_macs(block, INPUT_3A).total == spec_counts(SPEC_3A, 28, 28).macs == 128_049_152
    assert weights == 163_328
    assert count_params(block) == spec_counts(SPEC_3A, 28, 28).params == 163_696


@pytest.mark.parametrize(
    "module",
    [
        gnet.NaiveInception(192, 64, 128, 32).branch3,
        gnet.Inception.from_spec(SPEC_3A),
        gnet.NaiveInception(192, 64, 128, 32),
    ],
    ids=["direct 5x5 branch", "inception3a", "naive module"],
)
def test_flop_counter_mode_reports_exactly_twice_fvcore(module):
    assert flop_counter_total(module, INPUT_3A) == 2 * count_macs(module, INPUT_3A).total


def test_fvcore_counts_batch_norm_at_two_per_value_and_count_macs_keeps_it_out_of_the_total():
    measured = count_macs(gnet.Inception.from_spec(SPEC_3A, batch_norm=True), INPUT_3A)
    assert measured.by_operator["batch_norm"] == 2 * (64 + 96 + 128 + 16 + 32 + 32) * 28 * 28 == 577_024
    assert measured.total == 128_049_152


# ------------------------------------------------------------------------------------------------------------
# The chapters' figures
# ------------------------------------------------------------------------------------------------------------


def test_stack_and_branch_plots_have_labelled_axes(naive_rows, reduced_rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plot_stacks({"naive": naive_rows, "reduced": reduced_rows})
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    assert [line.get_ydata()[-1] for line in axes[0].get_lines()] == [1536, 256]
    plt.close(fig)
    fig, ax = plot_branch_macs({"naive": {"branch2": 173_408_256}, "reduced": {"branch2": 101_154_816}})
    assert "millions" in ax.get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_stacks({})
