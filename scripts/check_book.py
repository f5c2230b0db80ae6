"""Render the book (unless --html is given) and open every page in headless Chromium.

Each page must load with no console error, every image must load, no glue role may be left unresolved, no
``NaN``/``nan`` may show in a table or a cell's output, no code cell may be clipped (wider than its box), and the
book's main table (the claims, ``table.claims-table``) may not scroll sideways in a 1,400-pixel-wide window. Uses Debian's
``chromium`` and ``chromium-driver`` packages through Selenium; no browser is downloaded. Exit status: 0 when
every page passes, 1 when one fails (each problem is printed with its page), 3 when no browser is installed.

    python scripts/check_book.py --params params/smoke.yaml       # render, then check
    python scripts/check_book.py --html _build/executed/smoke/_build/html
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PAGE_JS = r"""
const broken = Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
const body = document.querySelector('article') || document.body;
const copy = body.cloneNode(true);
copy.querySelectorAll('.cell_input, .highlight, code, script, style').forEach(e => e.remove());
const text = copy.innerText || copy.textContent;
const cells = Array.from(copy.querySelectorAll('td, th')).filter(e => /^\s*(NaN|nan)\s*$/.test(e.innerText)).length;
const outputs = Array.from(copy.querySelectorAll('.cell_output')).map(e => e.innerText).join('\n');
const nan = cells + (outputs.match(/(^|[^\w.])(NaN|nan)(?![\w])/g) || []).length;
const glue = (text.match(/\{glue:|glue:text/g) || []).length;
const clipped = Array.from(document.querySelectorAll('.cell_input pre, div.highlight pre'))
  .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1).length;
const title = (document.querySelector('h1') || {}).innerText || '';
const main = Array.from(document.querySelectorAll('table.claims-table'))
  .filter(t => { let p = t.parentElement; while (p && p.scrollWidth <= p.clientWidth + 1 && p !== document.body)
                   p = p.parentElement; return t.scrollWidth > t.clientWidth + 1 || (p && p !== document.body); }).length;
return {broken, nan, glue, clipped, title, main};
"""


OFFLINE = ("ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED", "ERR_NETWORK_ACCESS_DENIED", "ERR_CONNECTION_REFUSED")


def find_browser() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def pages(html: Path) -> list[Path]:
    """Every rendered page of the book (Sphinx's own search and index pages left out)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(p for p in html.rglob("*.html") if p.name not in skip and "_static" not in p.parts
                  and "_sources" not in p.parts and "_modules" not in p.parts)


def check(html: Path, browser: str, driver_path: str) -> list[str]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
              "--allow-file-access-from-files", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    problems: list[str] = []
    offline: set[str] = set()
    try:
        # a first visit in a fresh browser profile makes the theme log "invalid theme mode" once (its stored
        # colour mode is still empty); open the index first so that no page is blamed for it
        drv.get((html / "index.html").resolve().as_uri())
        drv.get_log("browser")
        for page in pages(html):
            name = page.relative_to(html)
            drv.get(page.resolve().as_uri())
            r = drv.execute_script(PAGE_JS)
            errors = [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]
            for msg in errors:
                if "Got invalid theme mode" in msg:   # the theme's notice about the empty stored mode (see above);
                    continue                          # it can arrive late, on whichever page loads next
                if msg.startswith("http") and any(k in msg for k in OFFLINE):
                    offline.add(msg.split(" ")[0])        # a remote file (MathJax) on a machine without network
                else:
                    problems.append(f"{name}: console error: {msg[:200]}")
            for src in r["broken"]:
                problems.append(f"{name}: image does not load: {src}")
            if r["nan"]:
                problems.append(f"{name}: {r['nan']} NaN/nan shown outside code")
            if r["glue"]:
                problems.append(f"{name}: {r['glue']} unresolved glue reference(s)")
            if r["clipped"]:
                problems.append(f"{name}: {r['clipped']} code cell(s) wider than their box")
            if r["main"]:
                problems.append(f"{name}: the claims table scrolls sideways at 1,400 px")
            print(f"[check-book] {name}: {'ok' if not any(p.startswith(f'{name}:') for p in problems) else 'PROBLEMS'}",
                  flush=True)
    finally:
        drv.quit()
    for url in sorted(offline):
        print(f"[check-book] not checked, no network here: {url}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/smoke.yaml", help="profile to render (default smoke)")
    ap.add_argument("--html", help="check an already rendered book's html folder instead of rendering")
    a = ap.parse_args(argv)
    found = find_browser()
    if found is None:
        print("[check-book] no chromium/chromedriver on PATH; install Debian's `chromium chromium-driver` "
              "(apt-get install chromium chromium-driver)", file=sys.stderr)
        return 3
    if a.html:
        html = Path(a.html)
    else:
        from cmrlib.book.build import build
        html = build(a.params).parent
    problems = check(html, *found)
    for p in problems:
        print(f"[check-book] {p}", file=sys.stderr)
    n = len(pages(html))
    print(f"[check-book] {n} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
