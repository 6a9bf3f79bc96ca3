"""Small fixes to the generated HTML of the course site (a local Sphinx extension).

sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``) both in
Sphinx's registry and on the HTML builder, so every page declared the constant twice and the
browser logged ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` (found by
tests/test_browser.py). Dropping exact duplicate ``<script>`` entries before a page is rendered
fixes it without touching the installed packages.
"""

from __future__ import annotations


def _script_key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""   # the registry says None, the builder ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
