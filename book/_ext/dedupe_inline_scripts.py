"""Sphinx extension: drop repeated inline <script> blocks from every page.

With Sphinx 7.4, the inline scripts that sphinx-thebe and sphinx-togglebutton register
when the builder starts end up twice in each page's ``script_files``. The repeated
``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been
declared" in every reader's browser console (tests/test_browser.py catches it). Keeping
the first copy of each identical inline script removes the error, and nothing else.
"""

from __future__ import annotations


def _drop_repeated_inline_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen_bodies = set()
    kept = []
    for script in scripts:
        body = (
            getattr(script, "attributes", {}).get("body")
            if not script.filename
            else None
        )
        if body is not None:
            if body in seen_bodies:
                continue
            seen_bodies.add(body)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    # Late priority: run after every extension that adds scripts to the page context.
    app.connect("html-page-context", _drop_repeated_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
