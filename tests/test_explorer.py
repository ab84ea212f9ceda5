"""The width explorers of chapter 4: the in-browser formula against fvcore, the page in Chromium, the live sliders."""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

import gnet
from gnet.analysis import count_macs, count_params, inception_counts, naive_inception_counts, spec_counts
from gnet.book.explorer import (
    FORMULA_BEGIN,
    FORMULA_END,
    WIDTH_LABELS,
    break_even_n5x5_reduce,
    inception_sliders,
    measure_inception,
    short_macs,
    static_explorer_html,
)
from gnet.model import BRANCH_NAMES
from gnet.table1 import INCEPTION_SPECS, WIDTH_FIELDS, InceptionSpec

ROOT = Path(__file__).resolve().parent.parent
SPEC_3A = INCEPTION_SPECS["inception3a"]


def grid_of_configurations(n: int = 60, seed: int = 0) -> list[dict]:
    """Inception configurations for the formula checks: the paper's nine blocks plus random ones.

    Random widths span 1..256 and inputs 3..480 channels; maps are small (7 to 28) and branch 3 is 5×5 or 3×3
    (torchvision's kernel), so one fvcore trace each stays cheap.
    """
    paper_map_sizes = {"3": 28, "4": 14, "5": 7}  # the map each stage of GoogLeNet works on
    configs = [
        {"spec": spec, "height": paper_map_sizes[name[-2]], "width": paper_map_sizes[name[-2]], "branch3_kernel": 5}
        for name, spec in INCEPTION_SPECS.items()
    ]
    rng = random.Random(seed)
    while len(configs) < n:
        in_channels = rng.choice([3, 16, 64, 192, 480])
        widths = {name: rng.choice([1, 2, rng.randint(1, 64), rng.randint(1, 256)]) for name in WIDTH_FIELDS}
        configs.append(
            {
                "spec": InceptionSpec(in_channels, **widths),
                "height": rng.choice([7, 8, 14, 28]),
                "width": rng.choice([7, 9, 14]),
                "branch3_kernel": rng.choice([3, 5]),
            }
        )
    return configs


GRID = grid_of_configurations()


def js_config(config: dict, *, bias: bool = True) -> dict:
    """The formula's input: the InceptionSpec's fields under their Python names, and the map and branch 3."""
    spec: InceptionSpec = config["spec"]
    return {
        **spec._asdict(),
        "height": config["height"],
        "width": config["width"],
        "branch3_kernel": config["branch3_kernel"],
        "bias": bias,
    }


def formula_from_page(page_html: str) -> str:
    """Cut the closed-form JavaScript out of the emitted HTML: the test runs what the page runs."""
    match = re.search(re.escape(FORMULA_BEGIN) + r".*?" + re.escape(FORMULA_END), page_html, re.DOTALL)
    assert match, "the explorer HTML must carry the marked formula"
    return match.group(0)


def run_formula_in_node(page_html: str, configs: list[dict], function: str = "gnetInceptionCounts") -> list[dict]:
    """``function`` (one of the page's formulas) of each config, evaluated by node from the page's own text."""
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed (apt-get install nodejs); the JavaScript formula cannot be evaluated"
        if os.environ.get("GNET_REQUIRE_BROWSER", "") == "1":  # CI: a check that cannot run is a failure
            pytest.fail(f"GNET_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    program = (
        formula_from_page(page_html)
        + "\nconst configs = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        + f"process.stdout.write(JSON.stringify(configs.map(function (c) {{ return {function}(c); }})));\n"
    )
    done = subprocess.run(
        [node, "-e", program], input=json.dumps(configs), capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def page_html() -> str:
    return static_explorer_html(SPEC_3A, 28, 28, element_id="test-explorer")


# ------------------------------------------------------------------------------------------------------------
# The JavaScript formula against fvcore
# ------------------------------------------------------------------------------------------------------------


def test_the_grid_has_at_least_fifty_distinct_configurations():
    keys = {(c["spec"], c["height"], c["width"], c["branch3_kernel"]) for c in GRID}
    assert len(keys) >= 50


def test_js_formula_equals_fvcore_and_count_params_on_every_configuration_of_the_grid(page_html):
    results = run_formula_in_node(page_html, [js_config(c) for c in GRID])
    mismatches = []
    for config, js in zip(GRID, results, strict=True):
        spec = config["spec"]
        block = gnet.Inception.from_spec(spec, branch3_kernel=config["branch3_kernel"])
        measured = count_macs(block, (1, spec.in_channels, config["height"], config["width"]))
        expected = {
            "macs": measured.total,
            "params": count_params(block),
            "out_channels": block.out_channels,
            "branches": {name: measured.by_module[name] for name in BRANCH_NAMES},
        }
        got = {
            "macs": js["macs"],
            "params": js["params"],
            "out_channels": js["out_channels"],
            "branches": {name: b["macs"] for name, b in js["branches"].items()},
        }
        if got != expected:
            mismatches.append((config, got, expected))
    assert not mismatches, mismatches[:3]


def test_js_formula_equals_the_python_closed_form_with_and_without_biases(page_html):
    for bias in (True, False):
        results = run_formula_in_node(page_html, [js_config(c, bias=bias) for c in GRID])
        for config, js in zip(GRID, results, strict=True):
            closed = spec_counts(
                config["spec"], config["height"], config["width"], branch3_kernel=config["branch3_kernel"], bias=bias
            )
            assert (js["macs"], js["params"], js["out_channels"]) == (closed.macs, closed.params, closed.out_channels)
            assert {name: b["params"] for name, b in js["branches"].items()} == closed.branch_params


def test_js_formula_gives_the_papers_inception3a_numbers(page_html):
    (js,) = run_formula_in_node(
        page_html, [js_config({"spec": SPEC_3A, "height": 28, "width": 28, "branch3_kernel": 5})]
    )
    assert (js["macs"], js["params"], js["out_channels"]) == (128_049_152, 163_696, 256)
    assert js["branches"]["branch3"]["macs"] == 12_443_648


def naive_block(config: dict) -> gnet.NaiveInception:
    """The naive block (the paper's Figure 2a) with ``config``'s #1×1, #3×3 and #5×5: the page's baseline."""
    spec: InceptionSpec = config["spec"]
    return gnet.NaiveInception(
        spec.in_channels, spec.n1x1, spec.n3x3, spec.n5x5, branch3_kernel=config["branch3_kernel"]
    )


def test_js_naive_formula_equals_fvcore_and_count_params_on_every_configuration_of_the_grid(page_html):
    results = run_formula_in_node(page_html, [js_config(c) for c in GRID], "gnetNaiveInceptionCounts")
    mismatches = []
    for config, js in zip(GRID, results, strict=True):
        spec, block = config["spec"], naive_block(config)
        measured = count_macs(block, (1, spec.in_channels, config["height"], config["width"]))
        expected = {
            "macs": measured.total,
            "params": count_params(block),
            "out_channels": block.out_channels,
            "branches": {name: measured.by_module.get(name, 0) for name in BRANCH_NAMES},  # pool: no MACs
        }
        got = {key: js[key] for key in ("macs", "params", "out_channels")}
        got["branches"] = {name: b["macs"] for name, b in js["branches"].items()}
        if got != expected:
            mismatches.append((config, got, expected))
    assert not mismatches, mismatches[:3]


def test_js_naive_formula_equals_the_python_closed_form_with_and_without_biases(page_html):
    for bias in (True, False):
        results = run_formula_in_node(page_html, [js_config(c, bias=bias) for c in GRID], "gnetNaiveInceptionCounts")
        for config, js in zip(GRID, results, strict=True):
            spec = config["spec"]
            closed = naive_inception_counts(
                spec.in_channels, spec.n1x1, spec.n3x3, spec.n5x5, config["height"], config["width"],
                branch3_kernel=config["branch3_kernel"], bias=bias,
            )  # fmt: skip
            assert (js["macs"], js["params"], js["out_channels"]) == (closed.macs, closed.params, closed.out_channels)
            assert {name: b["params"] for name, b in js["branches"].items()} == closed.branch_params


def test_js_naive_formula_gives_the_naive_inception3a_of_chapter_4(page_html):
    (js,) = run_formula_in_node(
        page_html,
        [js_config({"spec": SPEC_3A, "height": 28, "width": 28, "branch3_kernel": 5})],
        "gnetNaiveInceptionCounts",
    )
    assert (js["macs"], js["params"], js["out_channels"]) == (303_464_448, 387_296, 416)


def branch3_macs(spec: InceptionSpec, config: dict, n5x5_reduce: int) -> int:
    """fvcore's MACs of the reduced branch 3 (1×1 reduce to ``n5x5_reduce``, then k×k) on ``config``'s map."""
    block = gnet.Inception.from_spec(spec._replace(n5x5_reduce=n5x5_reduce), branch3_kernel=config["branch3_kernel"])
    return count_macs(block.branch3, (1, spec.in_channels, config["height"], config["width"])).total


# The paper's blocks, a random part of the grid, and blocks whose break-even is a whole width (25 and 50).
BREAK_EVEN_CASES = [*GRID[:9], *GRID[9::5]] + [
    {"spec": InceptionSpec(50, 8, 8, 8, 8, 2, 8), "height": 7, "width": 7, "branch3_kernel": 5},
    {"spec": InceptionSpec(52, 8, 8, 8, 8, 52, 8), "height": 9, "width": 7, "branch3_kernel": 5},
]


@pytest.mark.parametrize(
    "config", BREAK_EVEN_CASES, ids=lambda c: f"in{c['spec'].in_channels}-n5x5_{c['spec'].n5x5}-k{c['branch3_kernel']}"
)
def test_break_even_n5x5_reduce_is_where_fvcore_counts_the_reduced_branch_as_dear_as_the_direct_one(config):
    spec, k = config["spec"], config["branch3_kernel"]
    break_even = break_even_n5x5_reduce(spec.in_channels, spec.n5x5, k)
    direct = count_macs(naive_block(config).branch3, (1, spec.in_channels, config["height"], config["width"])).total
    # The reduced branch's MACs are proportional to its width, so the break-even is exactly direct / per-channel.
    assert break_even == Fraction(direct, branch3_macs(spec, config, 1))
    widest_cheaper, narrowest_dearer = math.ceil(break_even) - 1, math.floor(break_even) + 1
    if widest_cheaper >= 1:
        assert branch3_macs(spec, config, widest_cheaper) < direct
    assert branch3_macs(spec, config, narrowest_dearer) > direct
    if break_even.denominator == 1:  # a whole break-even: there the two cost the same
        assert branch3_macs(spec, config, int(break_even)) == direct


def test_break_even_of_inception3a_is_chapter_4s_exercise_answer():
    assert break_even_n5x5_reduce(192, 32) == Fraction(192 * 32 * 25, 192 + 25 * 32) == Fraction(153_600, 992)
    assert 154 < break_even_n5x5_reduce(192, 32) < 155
    with pytest.raises(ValueError, match="n5x5 must be a positive int, got 0"):
        break_even_n5x5_reduce(192, 0)


def test_js_break_even_is_the_same_exact_fraction_on_every_configuration_of_the_grid(page_html):
    results = run_formula_in_node(page_html, [js_config(c) for c in GRID], "gnetBreakEvenReduce")
    for config, js in zip(GRID, results, strict=True):
        spec = config["spec"]
        exact = break_even_n5x5_reduce(spec.in_channels, spec.n5x5, config["branch3_kernel"])
        assert Fraction(js["numerator"], js["denominator"]) == exact
        assert js["value"] == pytest.approx(float(exact), rel=1e-15)


def test_short_macs_uses_m_and_g_and_never_k():
    assert [short_macs(n) for n in (128_049_152, 1_582_671_872, 4_816_896, 150_528, 999_999, 1_000_000)] == [
        "128 M", "1.58 G", "4.82 M", "150,528", "999,999", "1 M",
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# The emitted HTML
# ------------------------------------------------------------------------------------------------------------


def test_explorer_html_is_self_contained_with_no_network_references(page_html):
    assert "<script>" in page_html and "<script src" not in page_html
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page_html, re.IGNORECASE)
    assert "@import" not in page_html and "url(" not in page_html


def test_explorer_html_has_a_range_input_per_width_starting_at_the_papers_value(page_html):
    for name in WIDTH_FIELDS:
        value = getattr(SPEC_3A, name)
        assert re.search(rf'<input type="range" id="test-explorer-{name}" data-width="{name}" min="1" max="256" '
                         rf'step="1" value="{value}"', page_html), name  # fmt: skip


TICK_3A = '<span class="gnet-tick" data-gnet="break-even-tick" style="--gnet-at: 0.6033;"></span>'


def test_explorer_html_has_a_number_box_per_width_beside_its_slider_with_the_same_range(page_html):
    for name in WIDTH_FIELDS:
        value = getattr(SPEC_3A, name)
        assert re.search(rf'max="256" step="1" value="{value}" aria-label="[^"]+"></div>'
                         rf'<input type="number" id="test-explorer-{name}-box" data-width="{name}" min="1" '
                         rf'max="256" step="1" value="{value}"', page_html.replace(TICK_3A, "")), name  # fmt: skip


def visible_text(page_html: str) -> str:
    """The page's text as a reader sees it: tags, styles and scripts removed."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)>.*?</\1>", " ", page_html, flags=re.DOTALL))


@pytest.mark.parametrize("a, b", [(1, 4), (5, 1), (3, 1000), (31, 100_000), (1, 3e6), (999, 100_000)])
def test_a_ratio_reads_the_same_in_python_and_in_the_page_script_and_never_as_0_00(page_html, a, b):
    from gnet.book.explorer import _ratio_text

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    match = re.search(r"function ratio\(a, b\) \{.*?\n  \}", page_html, re.DOTALL)
    assert match, "the explorer's script must define ratio(a, b)"
    program = match.group(0) + f"\nprocess.stdout.write(ratio({a}, {b}));\n"
    shown = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60, check=True).stdout
    assert shown == _ratio_text(a, b) and shown != "×0.00", (shown, _ratio_text(a, b))


def test_explorer_html_shows_the_closed_forms_before_any_script_runs(page_html):
    cell = r'<td data-gnet="{0}macs"><span class="gnet-whole" data-gnet="{0}macs-exact">{1}</span> ' \
           r'<span class="gnet-whole" data-gnet="{0}macs-short">\({2}\)</span></td>'  # fmt: skip
    assert re.search(cell.format("", "128,049,152", "128 M"), page_html)
    assert re.search(cell.format("naive-", "303,464,448", "303 M"), page_html)
    assert 'data-gnet="params">163,696<' in page_html  # exact: the page's K is the paper's 1024
    assert 'data-gnet="naive-params">387,296<' in page_html
    assert 'data-gnet="out-channels">256<' in page_html and 'data-gnet="naive-out-channels">416<' in page_html
    assert 'data-gnet="ratio-naive-macs">×0.42<' in page_html
    assert 'Break-even at <b data-gnet="break-even">154.8</b>' in page_html
    assert TICK_3A in page_html  # (153600/992 - 1) / 255 of the way along the track


def test_explorer_text_never_writes_k_or_K_after_a_number(page_html):
    text = visible_text(page_html)
    assert "128,049,152" in text and "387,296" in text
    assert not re.search(r"\d\s*[kK]\b", text), re.findall(r".{20}\d\s*[kK]\b.{5}", text)


def test_break_even_is_a_whole_number_when_it_is_one_and_its_mark_hides_when_off_the_track():
    whole = static_explorer_html(InceptionSpec(50, 8, 8, 8, 8, 2, 8), 7, 7)
    assert 'Break-even at <b data-gnet="break-even">25</b>' in whole
    off_track = static_explorer_html(INCEPTION_SPECS["inception4e"], 14, 14, max_width=320)
    assert f"{float(break_even_n5x5_reduce(528, 128)):.1f}" == "453.2"
    assert '<b data-gnet="break-even">453.2</b>' in off_track
    assert re.search(r'data-gnet="break-even-tick" style="[^"]*" hidden>', off_track)
    assert '<span data-gnet="break-even-mark" hidden>' in off_track


def test_each_explorer_on_a_page_gets_its_own_element_id():
    first, second = static_explorer_html(), static_explorer_html()
    ids = [re.match(r'<div id="([^"]+)"', h).group(1) for h in (first, second)]
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"defaults": (192, 64, (96, 128), (16, 32), 32)}, "InceptionSpec"),
        ({"defaults": SPEC_3A._replace(pool_proj=0)}, "defaults.pool_proj must be a positive int, got 0"),
        ({"height": 0}, "height"),
        ({"branch3_kernel": 4}, "odd"),
        ({"max_width": 100}, "widest default"),
        ({"element_id": "a b"}, "element_id"),
    ],
)
def test_static_explorer_rejects_bad_arguments_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        static_explorer_html(**kwargs)


def test_explorer_widths_are_the_inception_spec_fields_labelled_with_table1_column_headers(page_html):
    fields = ["n1x1", "n3x3_reduce", "n3x3", "n5x5_reduce", "n5x5", "pool_proj"]
    assert list(WIDTH_LABELS) == list(WIDTH_FIELDS) == list(InceptionSpec._fields[1:]) == fields
    assert list(WIDTH_LABELS.values()) == ["#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj"]
    assert re.findall(r'<input type="range" id="[^"]+" data-width="([^"]+)"', page_html) == list(WIDTH_FIELDS)
    assert f"var defaults = {json.dumps({name: getattr(SPEC_3A, name) for name in WIDTH_FIELDS})};" in page_html


# ------------------------------------------------------------------------------------------------------------
# The kernel-backed sliders (fvcore)
# ------------------------------------------------------------------------------------------------------------


def test_measure_inception_counts_with_fvcore_and_restores_the_thread_count():
    import torch

    threads = torch.get_num_threads()
    live = measure_inception(SPEC_3A, 28, 28)
    assert (live.macs, live.params, live.out_channels) == (128_049_152, 163_696, 256)
    assert live.seconds > 0
    assert torch.get_num_threads() == threads


def test_sliders_measure_every_move_with_fvcore_and_time_it():
    pytest.importorskip("ipywidgets")
    sliders = inception_sliders(SPEC_3A, 28, 28)
    assert sliders.reference.macs == 128_049_152
    sliders.set_widths(n5x5_reduce=192, pool_proj=64)
    expected = inception_counts(192, 64, (96, 128), (192, 32), 64, 28, 28)
    assert (sliders.last.macs, sliders.last.params, sliders.last.out_channels) == (
        expected.macs,
        expected.params,
        expected.out_channels,
    )
    assert len(sliders.latencies_ms) == 2 and sliders.median_latency_ms() > 0
    assert f"{expected.macs:,}" in sliders.output.value
    with pytest.raises(ValueError, match="unknown widths"):
        sliders.set_widths(c4=3)  # the Inception constructor's name, not the spec's


def test_sliders_have_number_boxes_and_measure_the_naive_block_with_fvcore_beside_them():
    pytest.importorskip("ipywidgets")
    sliders = inception_sliders(SPEC_3A, 28, 28)
    naive3a = sliders.last_naive
    assert (naive3a.macs, naive3a.params, naive3a.out_channels) == (303_464_448, 387_296, 416)
    assert "303,464,448" in sliders.output.value and "Break-even #5×5 reduce: 154.8" in sliders.output.value

    sliders.boxes["n5x5_reduce"].value = 192  # typing in a box moves its slider, which measures
    assert sliders.sliders["n5x5_reduce"].value == 192 and sliders.last.spec.n5x5_reduce == 192
    assert sliders.last_naive is naive3a  # a reduction does not change the naive block: not measured again
    sliders.set_widths(n3x3=200)  # a slider moves its box
    assert sliders.boxes["n3x3"].value == 200
    naive = naive_inception_counts(192, 64, 200, 32, 28, 28)
    assert (sliders.last_naive.macs, sliders.last_naive.params, sliders.last_naive.out_channels) == (
        naive.macs,
        naive.params,
        naive.out_channels,
    )
    sliders.boxes["n5x5"].value = 999  # clamped to the slider's range
    assert sliders.sliders["n5x5"].value == sliders.boxes["n5x5"].value == 256
    assert f"Break-even #5×5 reduce: {float(break_even_n5x5_reduce(192, 256)):.1f}" in sliders.output.value


def test_measure_inception_measures_the_naive_block_with_the_same_output_widths():
    live = measure_inception(SPEC_3A._replace(n3x3_reduce=1, n5x5_reduce=1, pool_proj=1), 28, 28, naive=True)
    assert (live.macs, live.params, live.out_channels) == (303_464_448, 387_296, 416)


# ------------------------------------------------------------------------------------------------------------
# Headless Chromium: moving a control changes the shown numbers, with no kernel and no network
# ------------------------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("GNET_CHROMIUM", "/usr/bin/chromium")


def browser_or_skip():
    """Launch headless Chromium with Playwright; skip when impossible, unless GNET_REQUIRE_BROWSER=1."""
    required = os.environ.get("GNET_REQUIRE_BROWSER", "") == "1"
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        reason = f"playwright is not installed ({exc})"
    else:
        if not Path(CHROMIUM).exists():
            reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set GNET_CHROMIUM)"
        else:
            manager = sync_playwright().start()
            try:
                browser = manager.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
                )
            except Exception as exc:  # any launch failure (missing libraries, sandboxing) means "cannot run here"
                manager.stop()
                reason = f"Chromium did not start: {exc}"
            else:
                return manager, browser
    if required:
        pytest.fail(f"GNET_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    manager, browser = browser_or_skip()
    yield browser
    browser.close()
    manager.stop()


def offline_page(browser, blocked: list[str]):
    """A page that may load only local files; every other request is aborted and recorded."""
    page = browser.new_page(viewport={"width": 900, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith(("file://", "data:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, errors


def screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("GNET_SCREENSHOT_DIR", tmp_path))
    target.mkdir(parents=True, exist_ok=True)
    return target


def open_built_explorer(browser, chapter: str, selector: str, width: int):
    """A built chapter at ``width`` px, offline, once its first ``selector`` explorer says it is ready:
    ``(page, errors, explorer, root)``, ``root`` being the explorer's ``#id``. Skips when the book is not built."""
    built = Path(os.environ.get("GNET_BOOK_HTML", ROOT / "_build" / "html")) / "book" / f"{chapter}.html"
    if not built.exists():
        pytest.skip("the book is not built (jupyter-book build .); the explorer itself is tested above")
    page, errors = offline_page(browser, [])
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(built.as_uri())
    explorer = page.locator(selector).first
    explorer.wait_for(timeout=15_000)
    page.wait_for_selector(f'{selector}[data-ready="true"]', timeout=15_000)
    return page, errors, explorer, "#" + explorer.get_attribute("id")


def shown(page, root: str, field: str) -> str:
    return page.inner_text(f'{root} [data-gnet="{field}"]')


# pydata-sphinx-theme's variables (0.15) and its dark-mode rule that puts every HTML output on a light panel: a
# stand-in for the book's page, so that these tests need no built book.
THEME_VARIABLES = {
    "light": {"text-base": "#222832", "border": "#d1d5da", "background": "#ffffff", "on-background": "#ffffff",
              "surface": "#f3f4f5", "primary": "#0a7d91", "accent": "#c132af"},
    "dark": {"text-base": "#ced6dd", "border": "#48566b", "background": "#14181e", "on-background": "#222832",
             "surface": "#29313d", "primary": "#3fb1c5", "accent": "#e47fd7"},
}  # fmt: skip
THEME_DARK_OUTPUT_RULE = (
    "html[data-theme=dark] .bd-content div.cell_output .text_html:not(:has(table.dataframe)) "
    "{ background-color: var(--pst-color-text-base); color: var(--pst-color-on-background); padding: .5rem; }"
)


def theme_page(tmp_path: Path, explorer_html: str, theme: str | None) -> Path:
    """``explorer_html`` in a cell output of a mock book page: the theme's variables for ``theme`` ("light",
    "dark") and the book's own layout.css (which makes output tables scroll boxes), or a bare page for ``None``."""
    style = ""
    if theme is not None:
        variables = ";".join(f"--pst-color-{k}: {v}" for k, v in THEME_VARIABLES[theme].items())
        style = (
            f"html[data-theme] {{ {variables}; color-scheme: {theme}; }} body {{ margin: 0; "
            "background: var(--pst-color-background); color: var(--pst-color-text-base); "
            "font-family: system-ui, sans-serif; line-height: 1.5; } "  # the theme's font: widths as in the book
            f".bd-content {{ padding: 1rem; }} {THEME_DARK_OUTPUT_RULE} "
            + (ROOT / "book" / "css" / "layout.css").read_text()
        )
    page = tmp_path / f"explorer-{theme or 'bare'}.html"
    page.write_text(
        f'<!doctype html><html data-theme="{theme or ""}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<style>{style}</style></head><body><div class="bd-content"><div class="cell_output">'
        f'<div class="output text_html">{explorer_html}</div></div></div></body></html>'
    )
    return page


def open_explorer(browser, page_file: Path, root: str, width: int = 900):
    """``page_file`` in an offline page ``width`` px wide, once the explorer's script has run."""
    blocked: list[str] = []
    page, errors = offline_page(browser, blocked)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(page_file.as_uri())
    page.wait_for_selector(f'{root}[data-ready="true"]', timeout=10_000)
    return page, errors, blocked


# What sticks out of the explorer: elements past its right edge, and any box (the explorer, its table, the
# output around it) whose content is wider than itself, which a theme's overflow: auto would clip or scroll.
OVERFLOW_REPORT_JS = """root => {
  const edge = root.getBoundingClientRect().right + 0.5;
  const past = [...root.querySelectorAll("*")]
    .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > edge)
    .map(e => `${e.tagName}.${e.className} right ${e.getBoundingClientRect().right.toFixed(1)} > ${edge.toFixed(1)}`);
  const wide = [root, root.querySelector("table"), root.parentElement]
    .filter(e => e.scrollWidth > e.clientWidth).map(e => `${e.tagName} ${e.scrollWidth} > ${e.clientWidth}`);
  return { page: document.documentElement.scrollWidth, past: past, wide: wide };
}"""


@pytest.mark.browser
def test_moving_a_slider_in_chromium_updates_macs_params_and_channels_from_the_closed_form(
    browser, page_html, tmp_path
):
    html_file = tmp_path / "explorer.html"
    html_file.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{page_html}</body></html>')
    blocked: list[str] = []
    page, errors = offline_page(browser, blocked)
    page.goto(html_file.as_uri())
    root = "#test-explorer"
    page.wait_for_selector(f'{root}[data-ready="true"]', timeout=10_000)
    assert shown(page, root, "macs") == "128,049,152 (128 M)"
    shots = screenshot_dir(tmp_path)
    page.locator(root).screenshot(path=str(shots / "explorer-before.png"))

    page.locator(f"{root}-n5x5_reduce").fill("192")  # a "reduction" that keeps all 192 channels
    page.locator(f"{root}-pool_proj").fill("64")
    expected = inception_counts(192, 64, (96, 128), (192, 32), 64, 28, 28)
    assert shown(page, root, "macs").startswith(f"{expected.macs:,} (")
    assert shown(page, root, "params") == f"{expected.params:,}"  # exact, no "k"
    assert shown(page, root, "out-channels") == f"{expected.out_channels:,}"
    assert shown(page, root, "ratio-macs") == f"×{expected.macs / 128_049_152:.2f}"
    assert page.input_value(f"{root}-n5x5_reduce-box") == "192"
    page.locator(root).screenshot(path=str(shots / "explorer-after.png"))

    page.click(f'{root} button[data-action="reset"]')
    assert shown(page, root, "macs") == "128,049,152 (128 M)"
    assert shown(page, root, "ratio-macs") == "×1.00"
    assert errors == [] and blocked == []
    page.close()


@pytest.mark.browser
def test_number_boxes_and_sliders_follow_each_other_and_bad_input_is_clamped_or_ignored(browser, page_html, tmp_path):
    root = "#test-explorer"
    page, errors, blocked = open_explorer(browser, theme_page(tmp_path, page_html, "light"), root)
    box, slider = page.locator(f"{root}-n5x5_reduce-box"), page.locator(f"{root}-n5x5_reduce")

    def macs_at(n5x5_reduce: int) -> str:
        return f"{inception_counts(192, 64, (96, 128), (n5x5_reduce, 32), 32, 28, 28).macs:,}"

    box.fill("192")  # typing a number moves the slider and the counts at once
    assert slider.input_value() == "192" and shown(page, root, "macs-exact") == macs_at(192)
    slider.fill("100")  # moving the slider rewrites the box
    assert box.input_value() == "100" and shown(page, root, "macs-exact") == macs_at(100)
    for typed, width in (("999", 256), ("0", 1), ("-7", 1), ("2.6", 3), ("1e2", 100)):
        box.fill(typed)  # out of range: clamped; not whole: rounded
        assert (slider.input_value(), shown(page, root, "macs-exact")) == (str(width), macs_at(width)), typed
        box.blur()  # on leaving, the box shows what the slider holds
        assert box.input_value() == str(width), typed
    updates = page.get_attribute(root, "data-updates")
    box.fill("")  # empty: nothing changes until the box is left, then it shows the slider's value again
    assert page.get_attribute(root, "data-updates") == updates and slider.input_value() == "100"
    box.blur()
    assert box.input_value() == "100" and shown(page, root, "macs-exact") == macs_at(100)

    page.click(f'{root} button[data-action="reset"]')
    assert [page.input_value(f"{root}-{name}-box") for name in WIDTH_FIELDS] == [
        str(getattr(SPEC_3A, name)) for name in WIDTH_FIELDS
    ]
    assert errors == [] and blocked == []
    page.close()


@pytest.mark.browser
def test_naive_row_and_ratios_follow_the_output_widths_in_chromium(browser, page_html, tmp_path):
    root = "#test-explorer"
    page, errors, _ = open_explorer(browser, theme_page(tmp_path, page_html, "light"), root)
    assert shown(page, root, "naive-macs") == "303,464,448 (303 M)" and shown(page, root, "naive-out-channels") == "416"
    page.locator(f"{root}-n3x3-box").fill("200")
    page.locator(f"{root}-n3x3_reduce-box").fill("50")  # a reduction: the naive block does not have one
    page.locator(f"{root}-pool_proj-box").fill("1")
    naive = naive_inception_counts(192, 64, 200, 32, 28, 28)
    reduced = inception_counts(192, 64, (50, 200), (16, 32), 1, 28, 28)
    assert shown(page, root, "naive-macs-exact") == f"{naive.macs:,}"
    assert shown(page, root, "naive-params") == f"{naive.params:,}"
    assert shown(page, root, "ratio-naive-macs") == f"×{reduced.macs / naive.macs:.2f}"
    assert shown(page, root, "reference-macs") == "128,049,152 (128 M)"  # the paper's 3a stays put
    # The pool branch's 150,528 MACs are written out, not as "151 k": the page's only K is the paper's 1024.
    assert reduced.branch_macs["branch4"] == 150_528
    assert page.inner_text(f'{root} [data-bar-value="branch4"]') == "150,528"
    assert errors == []
    page.close()


@pytest.mark.browser
def test_break_even_follows_the_5x5_width_is_cut_not_rounded_and_marks_the_track(browser, page_html, tmp_path):
    root = "#test-explorer"
    page, errors, _ = open_explorer(browser, theme_page(tmp_path, page_html, "light"), root)
    tick = page.locator(f'{root} [data-gnet="break-even-tick"]')
    assert shown(page, root, "break-even") == "154.8" and tick.is_visible()
    page.locator(f"{root}-n5x5-box").fill("37")
    assert 158.99 < break_even_n5x5_reduce(192, 37) < 159  # cut to 158.9: at 159 the reduced branch is dearer
    assert shown(page, root, "break-even") == "158.9"
    at = float(tick.evaluate("t => t.style.getPropertyValue('--gnet-at')"))
    assert at == pytest.approx(float((break_even_n5x5_reduce(192, 37) - 1) / 255), abs=1e-4)
    # The mark sits where the thumb's centre is at that width: 8 px in from each end of a 16 px thumb's travel.
    track = page.locator(f"{root}-n5x5_reduce").bounding_box()
    mark = tick.bounding_box()
    assert mark["x"] + mark["width"] / 2 == pytest.approx(track["x"] + 8 + at * (track["width"] - 16), abs=1)
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 400, 320])
def test_explorer_fits_the_page_width_and_stacks_its_controls_on_a_phone(browser, page_html, tmp_path, width):
    root = "#test-explorer"
    page, errors, _ = open_explorer(browser, theme_page(tmp_path, page_html, "light"), root, width)
    report = page.eval_on_selector(root, OVERFLOW_REPORT_JS)
    assert report == {"page": width, "past": [], "wide": []}
    inner = page.eval_on_selector(root, "e => e.clientWidth - parseFloat(getComputedStyle(e).paddingLeft) * 2")
    for name in WIDTH_FIELDS:
        label = page.locator(f'{root} label[for="test-explorer-{name}"]').bounding_box()
        slider = page.locator(f"{root}-{name}").bounding_box()
        box = page.locator(f"{root}-{name}-box").bounding_box()
        assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 4  # box beside label
        if width < 640:  # the slider takes the whole width, on its own row under its label
            assert slider["width"] >= inner - 1 and slider["y"] >= label["y"] + label["height"] - 1, name
        else:  # label, slider and box on one row
            assert abs((slider["y"] + slider["height"] / 2) - (box["y"] + box["height"] / 2)) < 4, name
    page.locator(root).screenshot(path=str(screenshot_dir(tmp_path) / f"explorer-{width}px.png"))
    for name in WIDTH_FIELDS:  # the widest numbers the sliders allow fit too
        page.locator(f"{root}-{name}-box").fill("256")
    assert shown(page, root, "macs") == "1,901,068,288 (1.9 G)"
    assert page.eval_on_selector(root, OVERFLOW_REPORT_JS) == {"page": width, "past": [], "wide": []}
    assert errors == []
    page.close()


def rgb(hex_color: str) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_explorer_takes_its_colours_from_the_theme_and_drops_the_dark_modes_light_panel(
    browser, page_html, tmp_path, theme
):
    root = "#test-explorer"
    page, errors, _ = open_explorer(browser, theme_page(tmp_path, page_html, theme), root)
    colours = page.eval_on_selector(
        root,
        """e => ({ panel: getComputedStyle(e.parentElement).backgroundColor, text: getComputedStyle(e).color,
                  background: getComputedStyle(e).backgroundColor, border: getComputedStyle(e).borderTopColor,
                  box: getComputedStyle(e.querySelector('input[type=number]')).backgroundColor,
                  boxText: getComputedStyle(e.querySelector('input[type=number]')).color })""",
    )
    theme_colours = THEME_VARIABLES[theme]
    assert colours == {
        "panel": "rgba(0, 0, 0, 0)",  # in dark mode the theme's light panel is taken off this output
        "text": rgb(theme_colours["text-base"]),
        "background": rgb(theme_colours["on-background"]),
        "border": rgb(theme_colours["border"]),
        "box": rgb(theme_colours["background"]),
        "boxText": rgb(theme_colours["text-base"]),
    }
    page.locator(root).screenshot(path=str(screenshot_dir(tmp_path) / f"explorer-{theme}.png"))
    assert errors == []
    page.close()


@pytest.mark.browser
def test_explorer_without_the_theme_inherits_the_pages_colours(browser, page_html, tmp_path):
    root = "#test-explorer"
    page, errors, _ = open_explorer(browser, theme_page(tmp_path, page_html, None), root)
    page.evaluate("document.body.style.color = 'rgb(10, 20, 30)'")
    assert page.eval_on_selector(root, "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]") == [
        "rgb(10, 20, 30)",
        "rgba(0, 0, 0, 0)",
    ]
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [900, 400])
def test_built_chapter_4_page_has_a_working_explorer_and_no_frozen_sliders(browser, tmp_path, width):
    page, errors, explorer, root = open_built_explorer(browser, "04_bottleneck", ".gnet-explorer", width)
    before = shown(page, root, "macs")
    assert before.startswith("128,049,152")
    page.locator(f'{root} input[type="range"][data-width="n5x5_reduce"]').fill("64")
    assert shown(page, root, "macs") != before
    # In the book's theme too, nothing sticks out of the explorer or makes the page scroll sideways.
    assert page.eval_on_selector(root, OVERFLOW_REPORT_JS) == {"page": width, "past": [], "wide": []}
    explorer.screenshot(path=str(screenshot_dir(tmp_path) / f"explorer-built-page-{width}px.png"))
    # The kernel-backed ipywidgets panel is removed from the static page instead of being shown frozen.
    assert page.locator(".jupyter-widgets, .widget-slider").count() == 0
    assert not any("gnet-explorer" in e for e in errors), errors
    page.close()
