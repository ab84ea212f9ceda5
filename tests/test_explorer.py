"""The width explorers of chapter 4: the in-browser formula against fvcore, the page in Chromium, the live sliders."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import gnet
from gnet.analysis import count_macs, count_params, inception_counts, spec_counts
from gnet.book.explorer import (
    FORMULA_BEGIN,
    FORMULA_END,
    WIDTH_LABELS,
    inception_sliders,
    measure_inception,
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


def run_formula_in_node(page_html: str, configs: list[dict]) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        reason = "node is not installed (apt-get install nodejs); the JavaScript formula cannot be evaluated"
        if os.environ.get("GNET_REQUIRE_BROWSER", "") == "1":  # CI: a check that cannot run is a failure
            pytest.fail(f"GNET_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    program = (
        formula_from_page(page_html)
        + "\nconst configs = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        + "process.stdout.write(JSON.stringify(configs.map(gnetInceptionCounts)));\n"
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


def test_explorer_html_shows_the_closed_form_before_any_script_runs(page_html):
    assert 'data-gnet="macs">128,049,152 (128 M)<' in page_html
    assert 'data-gnet="params">163,696<' in page_html  # exact: the page's K is the paper's 1024
    assert 'data-gnet="out-channels">256<' in page_html


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


def shown(page, root: str, field: str) -> str:
    return page.inner_text(f'{root} [data-gnet="{field}"]')


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
    assert shown(page, root, "params").startswith(f"{expected.params:,} (")
    assert shown(page, root, "out-channels") == f"{expected.out_channels:,}"
    assert shown(page, root, "ratio-macs") == f"×{expected.macs / 128_049_152:.2f}"
    assert page.inner_text(f'{root} output[data-width="n5x5_reduce"]') == "192"
    page.locator(root).screenshot(path=str(shots / "explorer-after.png"))

    page.click(f'{root} button[data-action="reset"]')
    assert shown(page, root, "macs") == "128,049,152 (128 M)"
    assert shown(page, root, "ratio-macs") == "×1.00"
    assert errors == [] and blocked == []
    page.close()


@pytest.mark.browser
def test_built_chapter_4_page_has_a_working_explorer_and_no_frozen_sliders(browser, tmp_path):
    built = Path(os.environ.get("GNET_BOOK_HTML", ROOT / "_build" / "html")) / "book" / "04_bottleneck.html"
    if not built.exists():
        pytest.skip("the book is not built (jupyter-book build .); the explorer itself is tested above")
    blocked: list[str] = []
    page, errors = offline_page(browser, blocked)
    page.goto(built.as_uri())
    explorer = page.locator(".gnet-explorer").first
    explorer.wait_for(timeout=15_000)
    page.wait_for_selector('.gnet-explorer[data-ready="true"]', timeout=15_000)
    root = "#" + explorer.get_attribute("id")
    before = shown(page, root, "macs")
    assert before.startswith("128,049,152")
    page.locator(f'{root} input[data-width="n5x5_reduce"]').fill("64")
    assert shown(page, root, "macs") != before
    explorer.screenshot(path=str(screenshot_dir(tmp_path) / "explorer-built-page.png"))
    # The kernel-backed ipywidgets panel is removed from the static page instead of being shown frozen.
    assert page.locator(".jupyter-widgets, .widget-slider").count() == 0
    assert not any("gnet-explorer" in e for e in errors), errors
    page.close()
