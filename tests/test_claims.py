"""gnet.book.claims, the whole network against its claims: totals, shapes, branch shares, heads, reference models
and variants. (Its depth, measured and from Table 1, is gnet.analysis's: see test_analysis.py.)"""

from __future__ import annotations

import pytest
from torch import nn

import gnet
from gnet.analysis import LayerCount, count_macs, count_params, spec_counts
from gnet.book.claims import (
    D2L_CONFIG,
    UVA_PARAMS,
    BranchShares,
    branch_shares,
    build_head,
    head_counts,
    reference_counts,
    stage_shapes,
    table1_entry_state,
    table1_states,
    table1_totals,
    variants,
)
from gnet.table1 import INCEPTION_SPECS, PAPER_K


@pytest.fixture(scope="module")
def rows():
    return {v.name: v for v in variants()}


@pytest.fixture(scope="module")
def paper_shares():
    return branch_shares()


# -- variants ----------------------------------------------------------------------------------------------------


def test_paper_variant_costs_1582671872_macs_and_6998552_params_without_aux_13378280_with(rows):
    paper = rows["Paper"]
    assert paper.macs == 1_582_671_872
    assert (paper.params, paper.params_with_aux) == (6_998_552, 13_378_280)
    assert (paper.branch3_kernel, paper.batch_norm, paper.lrn, paper.dropout) == (5, False, True, 0.4)


@pytest.mark.parametrize("name", ["torchvision (gnet switches)", "torchvision googlenet"])
def test_torchvision_variants_have_6624904_params_without_aux_and_13004888_with(rows, name):
    row = rows[name]
    assert (row.params, row.params_with_aux) == (6_624_904, 13_004_888)
    assert (row.branch3_kernel, row.batch_norm, row.lrn, row.dropout) == (3, True, False, 0.2)


def test_gnet_torchvision_switches_cost_exactly_what_torchvision_measures(rows):
    # conv 1,497,352,192 + linear 1,024,000 (FACTS: fvcore's breakdown of torchvision's googlenet)
    assert rows["torchvision (gnet switches)"].macs == rows["torchvision googlenet"].macs == 1_498_376_192


def test_d2l_row_is_gnet_with_d2l_switches_minus_two_stem_input_channels(rows):
    d2l = rows["d2l"]
    rgb = gnet.googlenet(**D2L_CONFIG)
    stem_weights = 7 * 7 * 2 * 64
    assert d2l.params == count_params(rgb) - stem_weights == 5_977_530
    assert d2l.macs == count_macs(rgb, (1, 3, 96, 96)).total - stem_weights * 48 * 48 == 276_066_304
    assert (d2l.num_classes, d2l.aux_heads, d2l.lrn, d2l.batch_norm, d2l.branch3_kernel) == (10, False, False, False, 5)


def test_uva_row_is_cited_not_measured(rows):
    uva = rows["UvA tutorial 5"]
    assert uva.source.startswith("cited")
    assert uva.params == UVA_PARAMS == 260_650
    assert uva.macs is None


def test_every_variant_says_where_its_numbers_come_from(rows):
    assert all(v.source.split(":")[0] in ("measured", "cited") for v in rows.values())


# -- reference models --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "macs", "layers"),
    [
        ("alexnet", 61_100_840, 714_188_480, LayerCount(8, 12)),
        ("vgg16", 138_357_544, 15_470_264_320, LayerCount(16, 22)),
        ("googlenet", 6_624_904, 1_498_376_192, LayerCount(22, 27)),
    ],
)
def test_reference_models_match_torchvisions_documented_counts(name, params, macs, layers):
    counts = reference_counts(name)
    assert (counts.params, counts.macs, counts.layers) == (params, macs, layers)


# -- totals of the paper's own table -----------------------------------------------------------------------------


def test_table1_ops_column_sums_to_1502_million_and_params_to_6797_point_7_k():
    totals = table1_totals()
    assert totals.macs == pytest.approx(1_502e6)
    assert totals.params == pytest.approx(6797.7 * PAPER_K)
    assert table1_totals(exclude=["fc"]).params == pytest.approx(5797.7 * PAPER_K)


def test_table1_has_five_misprinted_entries_in_three_rows_and_four_close_ones():
    from gnet.analysis import table1_comparison

    states = table1_states(table1_comparison())
    entries = {(s["layer"], kind): s[kind] for s in states for kind in ("params", "ops")}
    misprints = {entry for entry, state in entries.items() if state == "misprint"}
    close = {entry for entry, state in entries.items() if state == "close"}
    assert misprints == {("conv1", "params"), ("conv1", "ops"), ("inception4c", "params"),
                         ("inception5a", "params"), ("inception5a", "ops")}  # fmt: skip
    assert close == {(f"inception{block}", "params") for block in ("4a", "4d", "4e", "5b")}
    assert all(state == "matches" for entry, state in entries.items() if entry not in misprints | close)


def test_a_table1_entry_within_rounding_matches_and_a_large_gap_is_a_misprint():
    assert table1_entry_state(101, 100, agrees=True) == "matches"
    assert table1_entry_state(102, 100, agrees=False) == "close"
    assert table1_entry_state(95, 100, agrees=False) == "misprint"
    with pytest.raises(ValueError, match="printed Table 1 entry > 0"):
        table1_entry_state(1, 0, agrees=False)


# -- shapes ------------------------------------------------------------------------------------------------------


def test_the_three_stages_have_the_shapes_of_table1():
    shapes = stage_shapes(gnet.googlenet(), ["conv1", "maxpool2", "inception3b", "inception4e", "inception5b", "fc"])
    assert shapes == {
        "conv1": (64, 112, 112),
        "maxpool2": (192, 28, 28),
        "inception3b": (480, 28, 28),
        "inception4e": (832, 14, 14),
        "inception5b": (1024, 7, 7),
        "fc": (1000,),
    }


# -- branch shares -----------------------------------------------------------------------------------------------


def test_branch_shares_cover_the_nine_blocks_in_network_order(paper_shares):
    assert [s.block for s in paper_shares] == list(INCEPTION_SPECS)


@pytest.mark.parametrize("kind", ["channel_share", "mac_share"])
def test_branch_shares_of_every_block_sum_to_one(paper_shares, kind):
    for shares in paper_shares:
        assert sum(getattr(shares, kind).values()) == pytest.approx(1.0)


def test_branch_channels_and_macs_match_table1_and_the_closed_form(paper_shares):
    sizes = {"3": 28, "4": 14, "5": 7}
    for shares in paper_shares:
        spec = INCEPTION_SPECS[shares.block]
        hw = sizes[shares.block[-2]]
        closed = spec_counts(spec, hw, hw)
        assert shares.channels == closed.branch_channels
        assert shares.macs == closed.branch_macs


def test_3x3_plus_5x5_channel_share_does_not_grow_steadily_from_3a_to_5b(paper_shares):
    share = [s.channel_share["branch2"] + s.channel_share["branch3"] for s in paper_shares]
    assert share[0] == 0.625 and share[-1] == 0.5
    assert any(b < a for a, b in zip(share, share[1:], strict=False))


def test_branch_shares_can_reuse_a_mac_count_of_the_same_model(paper_shares):
    model = gnet.googlenet(aux_logits=False)
    assert branch_shares(model, macs=count_macs(model)) == paper_shares


def test_branch_share_properties_are_fractions_of_the_totals():
    shares = BranchShares("x", {"branch1": 1, "branch2": 3}, {"branch1": 10, "branch2": 30})
    assert shares.channel_share == {"branch1": 0.25, "branch2": 0.75}
    assert shares.mac_share == {"branch1": 0.25, "branch2": 0.75}


# -- classifier heads --------------------------------------------------------------------------------------------


def test_gap_head_and_vgg_style_tail_on_7x7x1024():
    assert head_counts() == (1_025_000, 1_024_000)
    assert head_counts(hidden=(4096, 4096), global_pool=False) == (226_403_304, 226_394_112)
    assert head_counts(global_pool=False) == (50_177_000, 50_176_000)


@pytest.mark.parametrize("hidden", [(), (64,), (32, 16)])
@pytest.mark.parametrize("global_pool", [True, False])
def test_head_closed_form_equals_built_module_parameters_and_fvcore_macs(hidden, global_pool):
    args = (24, 3, 3, 10)
    head = build_head(*args, hidden=hidden, global_pool=global_pool, device="cpu")
    expected = head_counts(*args, hidden=hidden, global_pool=global_pool)
    assert count_params(head) == expected.params
    assert count_macs(head, (1, 24, 3, 3), ops=("linear",)).total == expected.macs


def test_full_size_vgg_tail_builds_on_meta_without_memory():
    head = build_head(hidden=(4096, 4096), global_pool=False)
    assert all(p.device.type == "meta" for p in head.parameters())
    assert count_params(head) == 226_403_304


# -- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: branch_shares(nn.Linear(2, 2)), "no gnet.Inception blocks"),
        (lambda: branch_shares(gnet.googlenet(), macs=123), "macs must be a gnet.analysis.MacCount"),
        (
            lambda: branch_shares(gnet.googlenet(), macs=count_macs(nn.Conv2d(3, 3, 1), (1, 3, 8, 8))),
            r"macs was not measured on this model: it has no counts for \['inception3a'",
        ),
        (lambda: stage_shapes(gnet.googlenet(), ["inception6a"]), "no submodule 'inception6a'"),
        (lambda: stage_shapes(gnet.googlenet(), ["aux1"]), r"did not run in eval mode: \['aux1'\]"),
        (lambda: head_counts(channels=0), "channels must be a positive int"),
        (lambda: head_counts(hidden=4096), "hidden must be a sequence"),
        (lambda: head_counts(hidden=(4096, -1)), "hidden size must be a positive int"),
        (lambda: reference_counts("resnet50"), "unknown reference model 'resnet50'"),
        (lambda: table1_totals(exclude=["conv9"]), r"unknown Table 1 row\(s\) \['conv9'\]"),
        (lambda: variants(image_size=0), "image_size must be a positive int"),
    ],
)
def test_bad_input_raises_value_error_that_says_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
