"""Sphinx extension: drop repeated script entries from each page.

Under Jupyter Book 1 the read phase runs twice, so sphinx-thebe adds its inline ``const THEBE_JS_URL = ...``
script twice and every page stops with "Identifier 'THEBE_JS_URL' has already been declared" in the browser's
console. Each script is kept once, in its first position.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "", str(attrs.get("body", "")))   # None and "" both mean inline
        if key not in seen:
            seen.add(key)
            kept.append(js)
    if "script_files" in context:
        context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
