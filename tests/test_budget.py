"""Chapter 5's whole-network budget explorer: its formula (Python and the page's JavaScript) against fvcore on many
random networks, its marks, its HTML, the live ipywidgets version, and the page driven in headless Chromium."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

# The browser helpers of chapter 4's explorer tests: one offline page, one theme stand-in, one overflow check.
from test_explorer import (
    OVERFLOW_REPORT_JS,
    THEME_VARIABLES,
    browser,
    offline_page,
    open_built_explorer,
    rgb,
    screenshot_dir,
    theme_page,
)

import gnet
from gnet.book.budget import (
    BUDGET_FORMULA_BEGIN,
    BUDGET_FORMULA_END,
    MODULES,
    NAIVE_UNUSED,
    STAGES,
    BudgetMarks,
    NetworkBudget,
    budget_marks,
    budget_sliders,
    build_network,
    channel_prices,
    map_sizes,
    measure_network,
    network_counts,
    static_budget_explorer_html,
)
from gnet.model import GoogLeNetConfig
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS

__all__ = ["browser"]  # the fixture, imported from test_explorer, is used here too

ROOT = Path(__file__).resolve().parent.parent
GNET_MACS, GNET_PARAMS = 1_582_671_872, 6_998_552  # FACTS.md: the paper-faithful model at 224 px
TORCHVISION_MACS, TORCHVISION_PARAMS = 1_498_376_192, 6_624_904  # fvcore conv 1,497,352,192 + linear 1,024,000
TABLE1_MACS = 1_502_000_000  # Table 1's ops column, summed
NAIVE_MACS, NAIVE_PARAMS = 12_568_061_056, 97_526_008  # every module naive, 224 px
MARKS = BudgetMarks(GNET_MACS, GNET_PARAMS, TORCHVISION_MACS, TORCHVISION_PARAMS, 1.498, TABLE1_MACS)


def random_budgets(n: int = 60, seed: int = 0) -> list[NetworkBudget]:
    """Whole networks for the formula checks: the paper's and torchvision's, then random ones.

    Random budgets change some widths of some modules (1 up to the page's 768), the multiplier (including values
    whose products land on a half, where rounding must go to the even side as Python's round does), the input
    (small, 17 to 96 px, so one fvcore trace stays cheap; odd sizes exercise the pools' rounding) and every
    switch. Naive networks grow every module's input, so they keep to narrower widths and multipliers.
    """
    budgets = [NetworkBudget(image_size=64), NetworkBudget(image_size=64, branch3_kernel=3, batch_norm=True)]
    rng = random.Random(seed)
    while len(budgets) < n:
        naive = rng.random() < 0.3
        widest = 256 if naive else 768
        widths = {
            module: {
                name: rng.choice([1, 2, rng.randint(1, 64), rng.randint(1, widest)])
                for name in rng.sample(WIDTH_FIELDS, rng.randint(1, 6))
            }
            for module in rng.sample(MODULES, rng.randint(1, 9))
        }
        budgets.append(
            NetworkBudget(
                widths=widths,
                width=rng.choice([0.25, 0.3, 0.5, 0.75] if naive else [0.25, 0.5, 0.55, 0.75, 1.0, 1.25]),
                image_size=rng.choice([17, 32, 33, 47, 64, rng.randint(17, 96)]),
                naive=naive,
                branch3_kernel=rng.choice([3, 5]),
                batch_norm=rng.random() < 0.5,
                num_classes=rng.choice([1000, 10]),
            )
        )
    return budgets


BUDGETS = random_budgets()


def as_dicts(counts) -> list[dict]:
    return [
        {k: getattr(s, k) for k in ("name", "macs", "params", "in_channels", "out_channels", "size")}
        for s in counts.stages
    ]


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed (apt-get install nodejs); the JavaScript formula cannot be evaluated"
        if os.environ.get("GNET_REQUIRE_BROWSER", "") == "1":
            pytest.fail(f"GNET_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return node


def formula_from_page(page_html: str) -> str:
    """Cut the whole-network formula out of the emitted HTML: the test runs what the page runs."""
    match = re.search(re.escape(BUDGET_FORMULA_BEGIN) + r".*?" + re.escape(BUDGET_FORMULA_END), page_html, re.DOTALL)
    assert match, "the budget explorer's HTML must carry the marked formula"
    return match.group(0)


def run_in_node(page_html: str, inputs: list, expression: str) -> list:
    """``expression`` (JavaScript over ``x``) for each of ``inputs``, evaluated by node with the page's formula."""
    program = (
        formula_from_page(page_html)
        + "\nconst inputs = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        + f"process.stdout.write(JSON.stringify(inputs.map(function (x) {{ return {expression}; }})));\n"
    )
    done = subprocess.run(
        [node_or_skip(), "-e", program], input=json.dumps(inputs), capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def page_html() -> str:
    return static_budget_explorer_html(marks=MARKS, element_id="test-budget")


@pytest.fixture(scope="module")
def measured() -> list:
    """fvcore's counts of every random network, built for real (measured once for the module)."""
    return [measure_network(budget) for budget in BUDGETS]


# ------------------------------------------------------------------------------------------------------------
# The formulas against fvcore
# ------------------------------------------------------------------------------------------------------------


def test_random_budgets_are_at_least_fifty_distinct_networks_and_cover_every_switch():
    keys = {json.dumps(b.to_js(), sort_keys=True) for b in BUDGETS}
    assert len(keys) >= 50
    assert {b.naive for b in BUDGETS} == {b.batch_norm for b in BUDGETS} == {True, False}
    assert {b.branch3_kernel for b in BUDGETS} == {3, 5} and len({b.width for b in BUDGETS}) >= 6
    assert {m for b in BUDGETS for m in b.widths} == set(MODULES)
    assert any(b.width * w % 1 == 0.5 for b in BUDGETS for m in b.widths.values() for w in m.values())


def test_js_formula_equals_fvcore_stage_by_stage_on_every_random_network(page_html, measured):
    results = run_in_node(page_html, [b.to_js() for b in BUDGETS], "gnetNetworkCounts(x)")
    mismatches = []
    for budget, js, fv in zip(BUDGETS, results, measured, strict=True):
        if js["stages"] != as_dicts(fv) or (js["macs"], js["params"]) != (fv.macs, fv.params):
            mismatches.append((budget, js, as_dicts(fv)))
    assert not mismatches, mismatches[:2]


def test_python_closed_form_equals_fvcore_stage_by_stage_on_every_random_network(measured):
    for budget, fv in zip(BUDGETS, measured, strict=True):
        assert network_counts(budget) == fv, budget


def test_the_paper_budget_is_gnet_googlenet_and_counts_its_measured_numbers():
    built = build_network(NetworkBudget())
    with torch.device("meta"):
        paper = gnet.googlenet(aux_logits=False)
    assert repr(built) == repr(paper)
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in paper.state_dict().items()}
    counts = network_counts()
    assert (counts.macs, counts.params) == (GNET_MACS, GNET_PARAMS)
    assert [s.name for s in counts.stages] == list(STAGES)
    assert [counts[m].in_channels for m in MODULES] == [spec.in_channels for spec in INCEPTION_SPECS.values()]
    assert counts["inception3a"].macs == 128_049_152 and counts["stem"].macs == 118_013_952 + 359_661_568


def test_torchvisions_two_switches_reproduce_its_counts_exactly():
    counts = network_counts(NetworkBudget(branch3_kernel=3, batch_norm=True))
    assert (counts.macs, counts.params) == (TORCHVISION_MACS, TORCHVISION_PARAMS)
    kernel3 = network_counts(NetworkBudget(branch3_kernel=3))
    assert kernel3.macs == TORCHVISION_MACS  # BatchNorm changes parameters only (fvcore's conv + linear count)


def test_budget_marks_are_measured_and_torchvisions_docs_round_the_same_count():
    marks = budget_marks()
    assert marks == MARKS
    assert round(marks.torchvision_macs / 1e9, 3) == marks.torchvision_documented_gmacs


def test_every_module_naive_costs_eight_times_the_paper_network():
    counts = network_counts(NetworkBudget(naive=True))
    assert (counts.macs, counts.params) == (NAIVE_MACS, NAIVE_PARAMS)
    assert counts["inception5b"].in_channels == 4048 and counts["classifier"].in_channels == 4944
    # A naive module has no BatchNorm (gnet.NaiveInception): only the stem's three convolutions change.
    with_bn = network_counts(NetworkBudget(naive=True, batch_norm=True))
    assert with_bn.params - counts.params == 64 + 64 + 192 and with_bn.macs == counts.macs


def test_multiplier_rounds_every_width_as_gnet_does_halves_to_even_in_python_and_javascript(page_html):
    cases = [(c, w) for w in (0.25, 0.3, 0.5, 0.55, 0.75, 1.25, 1.5, 2.0) for c in range(1, 200)]
    js = run_in_node(page_html, cases, "gnetChannels(x[0], x[1])")
    assert js == [GoogLeNetConfig(width=w).channels(c) for c, w in cases]
    assert [NetworkBudget(width=0.5).channels(c) for c in (1, 3, 5, 7)] == [1, 2, 2, 4]  # 0.5 -> 1 (never 0)


def test_map_sizes_follow_gnets_pools_at_every_input_size(page_html):
    sizes = list(range(1, 300))
    js = run_in_node(page_html, sizes, "gnetMapSizes(x)")
    model = gnet.googlenet(aux_logits=False, width=0.25)
    for size, js_sizes in zip(sizes, js, strict=True):
        ours = map_sizes(size)
        theirs = model.feature_map_sizes(size)
        assert (ours["conv1"], ours["stem"], ours["3"], ours["4"], ours["5"]) == (
            theirs["conv1"], theirs["maxpool1"], theirs["inception3a"], theirs["inception4a"], theirs["inception5a"],
        )  # fmt: skip
        assert js_sizes == ours
    assert map_sizes(224) == {"conv1": 112, "stem": 56, "3": 28, "4": 14, "5": 7}


def test_widening_a_module_changes_it_and_the_next_module_only():
    base = network_counts()
    wider = network_counts(NetworkBudget(widths={"inception3a": {"n1x1": 128}}))
    changed = [s.name for s, b in zip(wider.stages, base.stages, strict=True) if s != b]
    assert changed == ["inception3a", "inception3b"]
    assert (wider["inception3a"].out_channels, wider["inception3b"].in_channels) == (320, 320)
    # 3b's 1×1 convolutions read 64 more channels on its 28×28 map: (128 + 128 + 32 + 64) · 64 · 784.
    assert wider["inception3b"].macs - base["inception3b"].macs == 352 * 64 * 784
    before_pool = network_counts(NetworkBudget(widths={"inception3b": {"pool_proj": 100}}))
    assert [s.name for s, b in zip(before_pool.stages, base.stages, strict=True) if s != b] == [
        "inception3b",
        "inception4a",
    ]  # fmt: skip  (the max pool between them passes the channels on)
    last = network_counts(NetworkBudget(widths={"inception5b": {"n5x5": 256}}))
    assert last["classifier"].in_channels == 1152 and last["classifier"].macs == 1152 * 1000


def test_a_reduction_changes_only_its_own_module_but_in_a_naive_network_everything_downstream_moves():
    base = network_counts()
    reduced = network_counts(NetworkBudget(widths={"inception4a": {"n5x5_reduce": 48}}))
    assert [s.name for s, b in zip(reduced.stages, base.stages, strict=True) if s != b] == ["inception4a"]
    naive = network_counts(NetworkBudget(naive=True))
    wider = network_counts(NetworkBudget(naive=True, widths={"inception4a": {"n1x1": 200}}))
    changed = [s.name for s, b in zip(wider.stages, naive.stages, strict=True) if s != b]
    assert changed == [*MODULES[2:], "classifier"]
    assert all(wider[m].out_channels - naive[m].out_channels == 8 for m in MODULES[2:])


def test_channel_prices_of_3a_one_more_channel_costs_its_branch_and_3bs_reading_of_it():
    prices = channel_prices("inception3a")
    assert {name: (p.own_macs, p.knock_on_macs) for name, p in prices.items()} == {
        "n1x1": (192 * 784, 352 * 784),
        "n3x3": (96 * 9 * 784, 352 * 784),
        "n5x5": (16 * 25 * 784, 352 * 784),
        "pool_proj": (192 * 784, 352 * 784),
    }
    assert prices["n5x5"].own_params == 16 * 25 + 1 and prices["n1x1"].knock_on_params == 352
    last = channel_prices("inception5b")
    assert last["n1x1"].knock_on_macs == 1000 and last["n1x1"].knock_on_params == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": {"inception6a": {"n1x1": 3}}}, "unknown module 'inception6a'"),
        ({"widths": {"inception3a": {"c1": 3}}}, r"unknown widths \['c1'\] for inception3a"),
        ({"widths": {"inception3a": {"n1x1": 0}}}, "inception3a.n1x1 must be a positive int, got 0"),
        ({"widths": {"inception3a": {"n1x1": True}}}, "inception3a.n1x1 must be a positive int, got True"),
        ({"widths": {"inception3a": 64}}, "must map width names to ints"),
        ({"widths": [("inception3a", {})]}, "widths must map module names"),
        ({"width": 0}, "width must be a positive finite number, got 0"),
        ({"width": float("nan")}, "width must be a positive finite number"),
        ({"image_size": 0}, "image_size must be a positive int, got 0"),
        ({"image_size": 224.0}, "image_size must be a positive int, got 224.0"),
        ({"branch3_kernel": 4}, "branch3_kernel must be a positive odd int"),
        ({"naive": "False"}, "naive must be True or False, got 'False'"),
        ({"batch_norm": 1}, "batch_norm must be True or False, got 1"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
    ],
)
def test_network_budget_rejects_bad_settings_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NetworkBudget(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((object(),), {}, "budget must be a NetworkBudget, got object"),
        ((), {"picked": "3a"}, "picked must be one of inception3a"),
        ((NetworkBudget(width=0.333),), {}, "width multiplier runs from 0.25 to 2.0 in hundredths, got 0.333"),
        ((NetworkBudget(width=4.0),), {}, "width multiplier runs from 0.25 to 2.0"),
        ((NetworkBudget(image_size=600),), {}, "input runs from 32 to 512 px, got 600"),
        ((NetworkBudget(widths={"inception5b": {"n1x1": 769}}),), {}, "widths run from 1 to 768, got 769"),
        ((NetworkBudget(branch3_kernel=7),), {}, "branch 3 is 5×5 or torchvision's 3×3, got 7"),
        ((), {"marks": (1, 2)}, "marks must be BudgetMarks"),
        ((), {"element_id": "a b"}, "element_id"),
    ],
)
def test_static_budget_explorer_rejects_bad_arguments_with_a_clear_message(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        static_budget_explorer_html(*args, **({"marks": MARKS} | kwargs))


def test_network_counts_and_module_widths_reject_what_is_not_a_budget_or_a_module():
    with pytest.raises(ValueError, match="budget must be a NetworkBudget, got dict"):
        network_counts({"width": 1.0})
    with pytest.raises(ValueError, match="unknown module 'stem'"):
        NetworkBudget().module_widths("stem")
    with pytest.raises(KeyError, match="no stage 'fc'"):
        network_counts()["fc"]


# ------------------------------------------------------------------------------------------------------------
# The emitted HTML
# ------------------------------------------------------------------------------------------------------------


def test_budget_html_is_self_contained_with_no_network_references(page_html):
    assert "<script>" in page_html and "<script src" not in page_html
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page_html, re.IGNORECASE)
    assert "@import" not in page_html and "url(" not in page_html


def test_budget_html_has_a_picker_of_the_nine_modules_six_width_controls_and_the_network_controls(page_html):
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', page_html)
    assert [(v, label) for v, _, label in options] == [(m, m.removeprefix("inception")) for m in MODULES]
    assert [v for v, selected, _ in options if selected] == ["inception3a"]
    spec = INCEPTION_SPECS["inception3a"]
    for name in WIDTH_FIELDS:
        common = f'data-width="{name}" min="1" max="768" step="1" value="{getattr(spec, name)}"'
        assert f'<input type="range" id="test-budget-{name}" {common}' in page_html
        assert f'<input type="number" id="test-budget-{name}-box" {common}' in page_html
    assert '<input type="range" id="test-budget-width" data-net="width" min="0.25" max="2.0" step="0.05" value="1"' in (
        page_html
    )
    assert 'data-net="image_size" min="32" max="512" step="1" value="224"' in page_html
    assert re.findall(r'<input type="checkbox" data-net="([^"]+)">', page_html) == [
        "naive", "branch3_kernel", "batch_norm",
    ]  # fmt: skip


def test_budget_html_shows_the_closed_form_and_the_three_marks_before_any_script_runs(page_html):
    assert f'data-gnet="total-macs" data-value="{GNET_MACS}">1,582,671,872 (1.58 G)<' in page_html
    assert f'data-gnet="total-params" data-value="{GNET_PARAMS}">6,998,552 (7 M)<' in page_html
    for value, ratio in ((GNET_MACS, "1.00"), (TORCHVISION_MACS, "1.06"), (TABLE1_MACS, "1.05")):
        assert re.search(rf'<td class="gnet-num">{value:,}</td><td class="gnet-num" data-gnet="macs-ratio-\w+">'
                         rf"×{ratio}</td>", page_html), value  # fmt: skip
    assert "torchvision googlenet, measured (its docs: 1.498 G)" in page_html
    assert len(re.findall(r'<span class="gnet-mark" data-mark="(gnet|torchvision|table1)"', page_html)) == 3 + 2
    rows = re.findall(r'<div class="gnet-row[^"]*" data-stage="([^"]+)" data-value="(\d+)"', page_html)
    counts = network_counts()
    assert rows == [(s.name, str(s.macs)) for s in counts.stages] + [(s.name, str(s.params)) for s in counts.stages]
    assert "3a reads a 28×28×192 map (the stem's output) and writes 256 channels, which 3b reads." in page_html


def test_budget_html_carries_chapter_4s_block_formula_inside_its_own(page_html):
    formula = formula_from_page(page_html)
    assert "function gnetInceptionCounts(cfg)" in formula and "function gnetNetworkCounts(net)" in formula
    assert page_html.count(BUDGET_FORMULA_BEGIN) == 1


def test_each_budget_explorer_on_a_page_gets_its_own_element_id():
    first, second = (static_budget_explorer_html(marks=MARKS) for _ in range(2))
    ids = [re.match(r'<div id="([^"]+)"', h).group(1) for h in (first, second)]
    assert ids[0] != ids[1]


def test_explorer_text_never_writes_k_after_a_number(page_html):
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)>.*?</\1>", " ", page_html, flags=re.DOTALL))
    assert "1,582,671,872" in text
    assert not re.search(r"\d\s*[kK]\b", text), re.findall(r".{20}\d\s*[kK]\b.{5}", text)


# ------------------------------------------------------------------------------------------------------------
# The live version: ipywidgets, measured with fvcore
# ------------------------------------------------------------------------------------------------------------


def test_live_sliders_measure_the_built_network_with_fvcore_on_every_change():
    pytest.importorskip("ipywidgets")
    sliders = budget_sliders(NetworkBudget(image_size=64))
    assert sliders.last == network_counts(NetworkBudget(image_size=64))
    sliders.set_widths("inception3a", n1x1=128)
    expected = NetworkBudget(image_size=64, widths={"inception3a": {"n1x1": 128}})
    assert sliders.budget == expected and sliders.last == network_counts(expected)
    assert sliders.last["inception3b"].in_channels == 320 and f"{sliders.last.macs:,}" in sliders.output.value

    sliders.set_widths("inception5b")  # picking a module loads its widths without measuring
    assert sliders.sliders["n1x1"].value == 384 and len(sliders.latencies_ms) == 1
    sliders.naive.value = True
    sliders.kernel3.value = True
    assert sliders.last == network_counts(
        NetworkBudget(image_size=64, widths={"inception3a": {"n1x1": 128}}, naive=True, branch3_kernel=3)
    )
    assert len(sliders.latencies_ms) == 3 and sliders.median_latency_ms() > 0
    with pytest.raises(ValueError, match="unknown widths"):
        sliders.set_widths(c1=3)
    with pytest.raises(ValueError, match="unknown module"):
        sliders.set_widths("inception9z")


# ------------------------------------------------------------------------------------------------------------
# Headless Chromium: the controls drive the numbers, with no kernel and no network
# ------------------------------------------------------------------------------------------------------------

ROOT_ID = "#test-budget"


def signed(n: int) -> str:
    return ("−" if n < 0 else "+") + f"{abs(n):,}"


def with_short(n: int) -> str:
    from gnet.book.explorer import short_macs

    return f"{n:,}" + (f" ({short_macs(n)})" if n >= 10**6 else "")


def open_budget(browser, page_file: Path, root: str = ROOT_ID, width: int = 900):
    blocked: list[str] = []
    page, errors = offline_page(browser, blocked)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(page_file.as_uri())
    page.wait_for_selector(f'{root}[data-ready="true"]', timeout=10_000)
    return page, errors, blocked


def stage(page, root: str, name: str, chart: str = "macs") -> dict:
    return page.eval_on_selector(
        f'{root} .gnet-{chart}-chart .gnet-row[data-stage="{name}"]',
        "r => ({ value: Number(r.dataset.value), in: Number(r.dataset.inChannels), out: Number(r.dataset.outChannels),"
        " classes: Array.from(r.classList).filter(c => c !== 'gnet-row').sort() })",
    )


def shown(page, root: str, field: str) -> str:
    return page.inner_text(f'{root} [data-gnet="{field}"]')


def knock_on_text(picked: str, budget: NetworkBudget) -> str:
    """What the page must say about ``picked``'s widths in ``budget``, computed from the closed form."""
    counts, base = network_counts(budget), network_counts(budget.without_widths(picked))
    i = STAGES.index(picked)
    name, target = picked.removeprefix("inception"), STAGES[i + 1].removeprefix("inception")
    target = "the classifier" if target == "classifier" else target
    own, own_base, nxt, nxt_base = counts.stages[i], base.stages[i], counts.stages[i + 1], base.stages[i + 1]
    text = (
        f"{name} itself: {signed(own.macs - own_base.macs)} MACs, {signed(own.params - own_base.params)} parameters. "
    )
    if own.out_channels == own_base.out_channels:
        text += f"Its output stays {own.out_channels:,} channels: no knock-on."
    else:
        text += (
            f"Knock-on: {target} reads {own.out_channels:,} channels instead of {own_base.out_channels:,}, "
            f"{signed(nxt.macs - nxt_base.macs)} MACs, {signed(nxt.params - nxt_base.params)} parameters."
        )
        rest = counts.macs - base.macs - (own.macs - own_base.macs) - (nxt.macs - nxt_base.macs)
        if rest:
            text += (
                f" Naive modules pass their input through, so every stage after {target} changes too: "
                f"{signed(rest)} MACs more."
            )
    return text + f" Whole network: {signed(counts.macs - base.macs)} MACs."


@pytest.mark.browser
def test_widening_a_module_in_chromium_changes_the_next_modules_input_and_cost_and_says_so(
    browser, page_html, tmp_path
):
    page, errors, blocked = open_budget(browser, theme_page(tmp_path, page_html, "light"))
    assert shown(page, ROOT_ID, "total-macs") == "1,582,671,872 (1.58 G)"
    assert shown(page, ROOT_ID, "knock-on").startswith("3a has Table 1's widths.")
    assert stage(page, ROOT_ID, "inception3b")["in"] == 256

    page.locator(f"{ROOT_ID}-n1x1-box").fill("128")
    budget = NetworkBudget(widths={"inception3a": {"n1x1": 128}})
    counts = network_counts(budget)
    assert page.input_value(f"{ROOT_ID}-n1x1") == "128"  # the box moved its slider
    assert stage(page, ROOT_ID, "inception3a") == {"value": counts["inception3a"].macs, "in": 192, "out": 320,
                                                   "classes": ["gnet-edited", "gnet-picked"]}  # fmt: skip
    assert stage(page, ROOT_ID, "inception3b") == {"value": counts["inception3b"].macs, "in": 320, "out": 480,
                                                   "classes": ["gnet-knock"]}  # fmt: skip
    assert stage(page, ROOT_ID, "inception4a")["classes"] == []  # beyond the neighbour, nothing changed
    assert stage(page, ROOT_ID, "inception3b", "params")["value"] == counts["inception3b"].params
    assert shown(page, ROOT_ID, "knock-on") == knock_on_text("inception3a", budget)
    assert f"Knock-on: 3b reads 320 channels instead of 256, +{352 * 64 * 784:,} MACs" in shown(
        page, ROOT_ID, "knock-on"
    )
    assert shown(page, ROOT_ID, "total-macs") == with_short(counts.macs)
    assert shown(page, ROOT_ID, "macs-ratio-gnet") == f"×{counts.macs / GNET_MACS:.2f}"
    assert shown(page, ROOT_ID, "module-io") == (
        "3a reads a 28×28×192 map (the stem's output) and writes 320 channels, which 3b reads."
    )
    page.locator(ROOT_ID).screenshot(path=str(screenshot_dir(tmp_path) / "budget-knock-on.png"))

    page.locator(f"{ROOT_ID}-n5x5_reduce").fill("48")  # a reduction stays inside its module
    budget = budget.with_widths("inception3a", n5x5_reduce=48)
    assert shown(page, ROOT_ID, "knock-on") == knock_on_text("inception3a", budget)
    page.click(f'{ROOT_ID} button[data-action="reset-module"]')
    assert shown(page, ROOT_ID, "total-macs") == "1,582,671,872 (1.58 G)"
    assert page.input_value(f"{ROOT_ID}-n1x1-box") == "64" and stage(page, ROOT_ID, "inception3b")["classes"] == []
    assert errors == [] and blocked == []
    page.close()


@pytest.mark.browser
def test_picking_5b_loads_its_widths_keeps_3as_and_knocks_on_the_classifier(browser, page_html, tmp_path):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, "light"))
    page.locator(f"{ROOT_ID}-n3x3-box").fill("64")  # 3a first
    page.select_option(f"{ROOT_ID}-module", "inception5b")
    spec = INCEPTION_SPECS["inception5b"]
    assert [page.input_value(f"{ROOT_ID}-{n}-box") for n in WIDTH_FIELDS] == [
        str(getattr(spec, n)) for n in WIDTH_FIELDS
    ]
    assert shown(page, ROOT_ID, "reset-module-name") == "5b"
    page.locator(f"{ROOT_ID}-n5x5-box").fill("256")
    budget = NetworkBudget(widths={"inception3a": {"n3x3": 64}, "inception5b": {"n5x5": 256}})
    counts = network_counts(budget)
    assert stage(page, ROOT_ID, "classifier") == {
        "value": 1_152_000,
        "in": 1152,
        "out": 1000,
        "classes": ["gnet-knock"],
    }
    assert stage(page, ROOT_ID, "inception3a")["classes"] == ["gnet-edited"]  # kept, no longer picked
    assert shown(page, ROOT_ID, "knock-on") == knock_on_text("inception5b", budget)
    assert "Knock-on: the classifier reads 1,152 channels instead of 1,024" in shown(page, ROOT_ID, "knock-on")
    assert page.get_attribute(f'{ROOT_ID} [data-gnet="total-macs"]', "data-value") == str(counts.macs)

    page.click(f'{ROOT_ID} button[data-action="reset-all"]')
    assert shown(page, ROOT_ID, "total-macs") == "1,582,671,872 (1.58 G)"
    assert stage(page, ROOT_ID, "inception3a")["classes"] == []
    assert errors == []
    page.close()


@pytest.mark.browser
def test_the_three_switches_change_the_totals_to_the_exact_counts_and_naive_turns_off_what_it_lacks(
    browser, page_html, tmp_path
):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, "light"))

    def check(name: str) -> None:
        page.locator(f'{ROOT_ID} input[type="checkbox"][data-net="{name}"]').click()

    check("branch3_kernel")
    assert shown(page, ROOT_ID, "total-macs") == "1,498,376,192 (1.5 G)"
    assert shown(page, ROOT_ID, "macs-ratio-torchvision") == "×1.00"
    check("batch_norm")
    assert shown(page, ROOT_ID, "total-params") == "6,624,904 (6.62 M)"
    assert shown(page, ROOT_ID, "params-ratio-torchvision") == "×1.00"
    assert shown(page, ROOT_ID, "total-macs") == "1,498,376,192 (1.5 G)"  # BatchNorm: parameters only
    check("branch3_kernel")
    check("batch_norm")
    assert shown(page, ROOT_ID, "total-macs") == "1,582,671,872 (1.58 G)"

    assert not page.locator(f'{ROOT_ID} [data-gnet="naive-note"]').is_visible()
    check("naive")
    assert shown(page, ROOT_ID, "total-macs") == with_short(NAIVE_MACS)
    assert shown(page, ROOT_ID, "total-params") == with_short(NAIVE_PARAMS)
    assert page.locator(f'{ROOT_ID} [data-gnet="naive-note"]').is_visible()
    for name in WIDTH_FIELDS:
        disabled = page.locator(f"{ROOT_ID}-{name}").is_disabled()
        assert disabled == (name in NAIVE_UNUSED) == page.locator(f"{ROOT_ID}-{name}-box").is_disabled(), name
    page.locator(f"{ROOT_ID}-n1x1-box").fill("100")  # in a naive network the knock-on runs to the classifier
    budget = NetworkBudget(naive=True, widths={"inception3a": {"n1x1": 100}})
    assert shown(page, ROOT_ID, "knock-on") == knock_on_text("inception3a", budget)
    assert "every stage after 3b changes too" in shown(page, ROOT_ID, "knock-on")
    assert [stage(page, ROOT_ID, s)["classes"] for s in STAGES[2:]] == [["gnet-knock"]] * 9
    page.locator(ROOT_ID).screenshot(path=str(screenshot_dir(tmp_path) / "budget-naive.png"))
    assert errors == []
    page.close()


@pytest.mark.browser
def test_multiplier_and_input_size_rescale_every_stage_and_bad_input_is_clamped(browser, page_html, tmp_path):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, "light"))
    page.locator(f"{ROOT_ID}-width-box").fill("0.55")
    page.locator(f"{ROOT_ID}-image_size-box").fill("129")
    budget = NetworkBudget(width=0.55, image_size=129)
    counts = network_counts(budget)
    assert page.get_attribute(f'{ROOT_ID} [data-gnet="total-macs"]', "data-value") == str(counts.macs)
    assert [stage(page, ROOT_ID, s)["out"] for s in STAGES] == [s.out_channels for s in counts.stages]
    assert (
        shown(page, ROOT_ID, "maps")
        == "Maps: 129 px input → 65 (conv1) → 33 (stem) → 17 (3a–3b) → 9 (4a–4e) → 5 (5a–5b)."
    )
    page.locator(f"{ROOT_ID}-width-box").fill("9")  # clamped to the slider's 2
    page.locator(f"{ROOT_ID}-width-box").blur()
    page.locator(f"{ROOT_ID}-image_size-box").fill("5")  # clamped to 32
    page.locator(f"{ROOT_ID}-image_size-box").blur()
    assert (page.input_value(f"{ROOT_ID}-width-box"), page.input_value(f"{ROOT_ID}-image_size-box")) == ("2", "32")
    clamped = network_counts(NetworkBudget(width=2.0, image_size=32))
    assert page.get_attribute(f'{ROOT_ID} [data-gnet="total-macs"]', "data-value") == str(clamped.macs)
    page.locator(f"{ROOT_ID}-n1x1-box").fill("")  # empty: nothing changes
    assert page.get_attribute(f'{ROOT_ID} [data-gnet="total-macs"]', "data-value") == str(clamped.macs)
    assert errors == []
    page.close()


@pytest.mark.browser
def test_total_bars_and_marks_sit_at_their_values_on_one_scale(browser, page_html, tmp_path):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, "light"))
    for key, marks in (("macs", {"gnet": GNET_MACS, "torchvision": TORCHVISION_MACS, "table1": TABLE1_MACS}),
                       ("params", {"gnet": GNET_PARAMS, "torchvision": TORCHVISION_PARAMS})):  # fmt: skip
        track = page.locator(f"{ROOT_ID} .gnet-total-{key} .gnet-track").bounding_box()
        bar = page.locator(f"{ROOT_ID} .gnet-total-{key} .gnet-bar").bounding_box()
        total = {"macs": GNET_MACS, "params": GNET_PARAMS}[key]
        scale = 1.08 * max(total, *marks.values())
        assert bar["width"] == pytest.approx(track["width"] * total / scale, abs=1)
        for name, value in marks.items():
            mark = page.locator(f'{ROOT_ID} .gnet-total-{key} .gnet-mark[data-mark="{name}"]').bounding_box()
            assert mark["x"] + 1 == pytest.approx(track["x"] + track["width"] * value / scale, abs=1.5), name
            assert page.locator(f'{ROOT_ID} .gnet-total-{key} .gnet-swatch[data-mark="{name}"]').is_visible()
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 400, 320])
def test_budget_explorer_fits_the_page_width_even_with_its_widest_numbers(browser, page_html, tmp_path, width):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, "light"), width=width)
    assert page.eval_on_selector(ROOT_ID, OVERFLOW_REPORT_JS) == {"page": width, "past": [], "wide": []}
    for name in ("width", "image_size"):
        label = page.locator(f'{ROOT_ID} label[for="test-budget-{name}"]').bounding_box()
        box = page.locator(f"{ROOT_ID}-{name}-box").bounding_box()
        assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 4  # box beside label
    page.locator(ROOT_ID).screenshot(path=str(screenshot_dir(tmp_path) / f"budget-{width}px.png"))
    page.locator(f'{ROOT_ID} input[type="checkbox"][data-net="naive"]').click()
    page.locator(f"{ROOT_ID}-width-box").fill("2")
    page.locator(f"{ROOT_ID}-image_size-box").fill("512")
    for name in ("n1x1", "n3x3", "n5x5"):
        page.locator(f"{ROOT_ID}-{name}-box").fill("768")
    assert page.eval_on_selector(ROOT_ID, OVERFLOW_REPORT_JS) == {"page": width, "past": [], "wide": []}
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_budget_explorer_takes_its_colours_from_the_theme(browser, page_html, tmp_path, theme):
    page, errors, _ = open_budget(browser, theme_page(tmp_path, page_html, theme))
    colours = page.eval_on_selector(
        ROOT_ID,
        """e => ({ panel: getComputedStyle(e.parentElement).backgroundColor, text: getComputedStyle(e).color,
                  background: getComputedStyle(e).backgroundColor,
                  bar: getComputedStyle(e.querySelector('.gnet-macs-chart .gnet-bar')).backgroundColor,
                  select: getComputedStyle(e.querySelector('select')).backgroundColor })""",
    )
    theme_colours = THEME_VARIABLES[theme]
    assert colours == {
        "panel": "rgba(0, 0, 0, 0)",
        "text": rgb(theme_colours["text-base"]),
        "background": rgb(theme_colours["on-background"]),
        "bar": rgb(theme_colours["primary"]),
        "select": rgb(theme_colours["background"]),
    }
    page.locator(ROOT_ID).screenshot(path=str(screenshot_dir(tmp_path) / f"budget-{theme}.png"))
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [900, 400])
def test_built_chapter_5_page_has_a_working_budget_explorer_and_no_frozen_sliders(browser, tmp_path, width):
    page, errors, explorer, root = open_built_explorer(browser, "05_googlenet_end_to_end", ".gnet-budget", width)
    assert shown(page, root, "total-macs") == "1,582,671,872 (1.58 G)"
    assert shown(page, root, "macs-ratio-torchvision") == "×1.06" and shown(page, root, "macs-ratio-table1") == "×1.05"
    page.locator(f'{root} input[type="number"][data-width="n1x1"]').fill("128")
    assert stage(page, root, "inception3b")["in"] == 320
    assert shown(page, root, "knock-on") == knock_on_text(
        "inception3a", NetworkBudget(widths={"inception3a": {"n1x1": 128}})
    )
    page.locator(f'{root} input[type="checkbox"][data-net="branch3_kernel"]').click()
    page.click(f'{root} button[data-action="reset-module"]')
    assert shown(page, root, "total-macs") == "1,498,376,192 (1.5 G)"
    assert page.eval_on_selector(root, OVERFLOW_REPORT_JS) == {"page": width, "past": [], "wide": []}
    explorer.screenshot(path=str(screenshot_dir(tmp_path) / f"budget-built-page-{width}px.png"))
    # The kernel-backed panels are removed from the static page instead of being shown frozen.
    assert page.locator(".jupyter-widgets, .widget-slider").count() == 0
    assert not any("gnet-budget" in e for e in errors), errors
    page.close()
