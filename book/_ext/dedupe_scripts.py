"""Sphinx extension: drop repeated script entries from each page.

sphinx-thebe and sphinx-togglebutton add their inline scripts from an event that fires after the HTML builder
is set up, so each reaches the page twice: once named ``None`` and once ``""``, which Sphinx's own check does not
take for the same script. Two ``const THEBE_JS_URL = ...`` declarations stop every page with "Identifier
'THEBE_JS_URL' has already been declared" in the browser's console. Each script is kept once, where it first
appears.
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
