"""Open every page of the built book in headless Chromium, with the network cut off, and check what a reader sees.

Run after building the book (``jupyter-book build -W -n --keep-going .``)::

    pytest -m browser tests/test_browser.py

Each page is served from ``_build/html`` by a local HTTP server on 127.0.0.1; every other request is blocked,
so the book must render offline. For every page the test checks that

* every ``<img>`` loads and no local request fails (404s included);
* every ipywidgets output renders as a widget, and the widget JavaScript is included at most once;
* equations are typeset by the vendored MathJax;
* no JavaScript console error or uncaught exception occurs;
* every link within the book leads to a built file (download buttons included);
* every Colab link is well formed and points at a notebook that exists in the repository;

and saves a full-page screenshot to ``tests/screenshots/``.

Without ``/usr/bin/chromium`` or a built book the test is skipped, unless ``GNET_REQUIRE_BROWSER=1`` (set in CI),
which turns the skip into a failure. ``GNET_BOOK_HTML`` points the test at another build (default:
``_build/html`` in the repository); the book's sources are the folder two levels above it.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOK_HTML = Path(os.environ.get("GNET_BOOK_HTML") or REPO_ROOT / "_build" / "html").resolve()
BOOK_ROOT = BOOK_HTML.parent.parent  # <book root>/_build/html
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
REQUIRE_BROWSER = os.environ.get("GNET_REQUIRE_BROWSER", "") == "1"

# From TOOLCHAIN.md: no sandbox (containers), and no background traffic that the route blocker would see.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
COLAB_LINK = re.compile(
    r"^https://colab\.research\.google\.com/github/(?P<org>[\w.-]+)/(?P<repo>[\w.-]+)"
    r"/blob/main/(?P<path>book/[\w.-]+\.ipynb)$"
)
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
# Pages a Sphinx build writes that are not reader pages (theme templates, copied sources).
NOT_PAGES = ("_static", "_sources", "_images", "_downloads", "jupyter_execute")
SETTLE_MS = 15_000  # longest wait for widgets / MathJax to render on one page


def _built_pages() -> list[str]:
    if not BOOK_HTML.is_dir():
        return []
    pages = (p.relative_to(BOOK_HTML).as_posix() for p in BOOK_HTML.rglob("*.html"))
    return sorted(p for p in pages if not p.startswith(NOT_PAGES))


def _unavailable_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (install it with: apt-get install -y chromium)"
    if not _built_pages():
        return f"no built book at {BOOK_HTML} (build it with: jupyter-book build -W -n --keep-going .)"
    return None


def _repository_org_and_name() -> tuple[str, str]:
    import yaml  # a dependency of jupyter-book

    config = yaml.safe_load((BOOK_ROOT / "_config.yml").read_text(encoding="utf-8"))
    url = config["repository"]["url"].rstrip("/")
    org, name = url.split("/")[-2:]
    return org, name


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class names it so)
        pass


@pytest.fixture(scope="module")
def book_url():
    reason = _unavailable_reason()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"GNET_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    handler = functools.partial(_QuietHandler, directory=str(BOOK_HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(book_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Never `playwright install`: it downloads a browser. Use the system Chromium.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


SETTLED_JS = """(mime) => {
    const views = Array.from(document.querySelectorAll(`script[type="${mime}"]`));
    const widgetsDone = views.every(s => s.parentElement.querySelector('.jupyter-widgets'));
    const mathDone = document.querySelectorAll('mjx-container').length >= document.querySelectorAll('.math').length;
    return widgetsDone && mathDone;
}"""


def _visit(browser, book_url: str, page_path: str, screenshot: Path) -> dict:
    """Load one page offline; return what went wrong on it and what it contains."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    seen = {"blocked": [], "failed": [], "console": [], "pageerrors": []}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def route(route):
        url = route.request.url
        if url.startswith((book_url, "data:", "blob:", "about:")):
            route.continue_()
        else:
            seen["blocked"].append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    page = context.new_page()

    def on_console(msg):
        if msg.type == "error":
            seen["console"].append(f"{msg.text} @ {msg.location}")

    def on_request_failed(request):
        if request.url.startswith(book_url):
            seen["failed"].append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.url.startswith(book_url) and response.status >= 400:
            seen["failed"].append(f"{response.url}: HTTP {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen["pageerrors"].append(str(exc)))
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    page.goto(book_url + page_path, wait_until="load")
    page.wait_for_load_state("networkidle")
    try:
        # Let the widget manager replace its <script> tags with widgets, and MathJax typeset every equation.
        page.wait_for_function(SETTLED_JS, arg=WIDGET_VIEW_MIME, timeout=SETTLE_MS, polling=200)
    except PlaywrightTimeoutError:
        seen["pageerrors"].append(f"widgets or equations still unrendered after {SETTLE_MS} ms")
    # Scroll to the end so that lazily loaded images load too.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    found = page.evaluate(
        """(mime) => {
            const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
            const views = Array.from(document.querySelectorAll(`script[type="${mime}"]`));
            return {
                brokenImages: Array.from(document.images)
                    .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src),
                widgetViews: views.length,
                unrenderedWidgets: views.filter(s => !s.parentElement.querySelector('.jupyter-widgets')).length,
                invisibleWidgets: views.filter(s => visible(s.parentElement) &&
                    !Array.from(s.parentElement.querySelectorAll('.jupyter-widgets')).some(visible)).length,
                requireScripts: document.querySelectorAll('script[src*="require.js"]').length,
                embedScripts: document.querySelectorAll('script[src*="embed-amd.js"]').length,
                mathSpans: document.querySelectorAll('.math').length,
                mathRendered: document.querySelectorAll('mjx-container').length,
                colabLinks: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]'))
                    .map(a => a.getAttribute('href')),
                localLinks: Array.from(document.querySelectorAll('a[href]'))
                    .map(a => a.href.split('#')[0].split('?')[0])
                    .filter(href => href.startsWith(document.location.origin + '/')),
            };
        }""",
        WIDGET_VIEW_MIME,
    )
    # Back to the top, as a reader arrives, so that the sticky header and sidebar sit where they belong.
    page.evaluate("window.scrollTo(0, 0)")
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_timeout(500)  # the theme's sidebar and header transitions
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    context.close()
    return seen | found


@pytest.mark.parametrize("page_path", _built_pages() or ["<no built book>"])
def test_page_renders_offline_like_a_reader_sees_it(browser, book_url, page_path):
    html = (BOOK_HTML / page_path).read_text(encoding="utf-8")
    redirect = re.search(r'http-equiv="refresh" content="\d+;\s*url=([^"]+)"', html, flags=re.IGNORECASE)
    if redirect:  # index.html only forwards to the first page; the browser would leave before any check
        assert (BOOK_HTML / page_path).parent.joinpath(redirect.group(1)).is_file(), redirect.group(1)
        return

    shot = SCREENSHOTS / (page_path.removesuffix(".html").replace("/", "__") + ".png")
    result = _visit(browser, book_url, page_path, shot)
    problems = []
    for key, what in [
        ("blocked", "requests to the network (the book must render offline)"),
        ("failed", "failed local requests"),
        ("console", "console errors"),
        ("pageerrors", "uncaught page errors"),
        ("brokenImages", "images that did not load"),
    ]:
        if result[key]:
            problems.append(f"{what}: {result[key]}")
    if result["unrenderedWidgets"] or result["invisibleWidgets"]:
        problems.append(
            f"{result['unrenderedWidgets']} of {result['widgetViews']} widget outputs not rendered, "
            f"{result['invisibleWidgets']} rendered but invisible"
        )
    if result["requireScripts"] > 1 or result["embedScripts"] > 1:
        problems.append(
            f"widget JavaScript included more than once: require.js x{result['requireScripts']}, "
            f"embed-amd.js x{result['embedScripts']}"
        )
    if result["widgetViews"] and (result["requireScripts"], result["embedScripts"]) != (1, 1):
        problems.append("page has widget outputs but does not load require.js and embed-amd.js exactly once")
    if result["mathRendered"] < result["mathSpans"]:
        problems.append(f"only {result['mathRendered']} of {result['mathSpans']} equations typeset by MathJax")

    broken_links = sorted(
        {
            link
            for link in result["localLinks"]
            if not (BOOK_HTML / unquote(link.removeprefix(book_url))).is_file()
            and not (BOOK_HTML / unquote(link.removeprefix(book_url)) / "index.html").is_file()
        }
    )
    if broken_links:
        problems.append(f"links to pages or files that were not built: {broken_links}")

    org, name = _repository_org_and_name()
    for href in result["colabLinks"]:
        match = COLAB_LINK.match(href)
        if not match:
            problems.append(f"malformed Colab link {href!r}")
        elif (match["org"], match["repo"]) != (org, name):
            problems.append(f"Colab link {href!r} is not for the repository {org}/{name}")
        elif not (BOOK_ROOT / match["path"]).is_file():
            problems.append(f"Colab link {href!r} points at a notebook that is not in the repository")
    notebook = (BOOK_ROOT / page_path).with_suffix(".ipynb")
    if notebook.is_file():
        expected = f"https://colab.research.google.com/github/{org}/{name}/blob/main/{page_path[:-5]}.ipynb"
        if expected not in result["colabLinks"]:
            problems.append(f"no Colab launch link {expected} on a notebook page")

    assert not problems, f"{page_path} (screenshot: {shot}):\n  " + "\n  ".join(problems)
