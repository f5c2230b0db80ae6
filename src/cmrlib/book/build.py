"""Execute the chapters with papermill and render the book with Jupyter Book 1.

The source notebooks carry no outputs. Each is executed with the chosen profile into ``_build/executed/``
beside copies of ``_config.yml``, ``_toc.yml`` and ``book/``; Jupyter Book then renders that folder with
execution off and warnings as errors (``-W``), so a missing glue key fails the build.
"""
from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

import cmrlib
from cmrlib.book.chapter import SMOKE_NOTE
from cmrlib.book.profile import load_profile
from cmrlib.errors import InputError


def toc_notebooks(root: Path) -> list[str]:
    """Notebook paths (without suffix) listed in _toc.yml, in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                files.append(f)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(toc)
    return files


def chapter_numbers(root: Path, only: str) -> str:
    """A chapter given as ``02``, ``2`` or ``02_baseline``, checked against the table of contents; returns the
    prefix that selects it."""
    names = [Path(nb).name for nb in toc_notebooks(root)]
    key = str(only).strip()
    key = key.zfill(2) if key.isdigit() else key
    if not any(n.startswith(key) for n in names):
        raise InputError(f"--only {only}: no chapter {only!r}; chapters: {', '.join(n[:2] for n in names)}")
    return key


def notebook_has_outputs(path: Path) -> bool:
    nb = json.loads(Path(path).read_text())
    return any(c.get("outputs") or c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")


def stage(root: Path, out: Path, params: dict) -> None:
    """Copy the book's sources next to the executed notebooks; in a non-meaningful profile, add a banner
    to every page."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "_toc.yml", out / "_toc.yml")
    shutil.copytree(root / "book", out / "book", dirs_exist_ok=True)
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    if not params.get("meaningful", True):
        opts = cfg.setdefault("sphinx", {}).setdefault("config", {}).setdefault("html_theme_options", {})
        opts["announcement"] = "⚠ " + SMOKE_NOTE
    (out / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def library_calls(setup_source: str) -> list[str]:
    """The ``cmrlib`` names a chapter's setup cell imports (the chapter plumbing of :mod:`cmrlib.book.chapter` left
    out), as Sphinx cross-references into the API reference: ``{py:func}`~cmrlib.x.f```."""
    import importlib
    import inspect
    import re
    joined = re.sub(r"\(([^)]*)\)", lambda m: m.group(1).replace("\n", " "), setup_source)
    roles = []
    for line in joined.splitlines():
        m = re.match(r"from (cmrlib[\w.]*) import (.*)", line)
        if not m or m.group(1) == "cmrlib.book.chapter":
            continue
        mod = importlib.import_module(m.group(1))
        for name in (n.strip() for n in m.group(2).split(",")):
            obj = getattr(mod, name) if hasattr(mod, name) else importlib.import_module(f"{m.group(1)}.{name}")
            if inspect.ismodule(obj):
                roles.append(f"{{py:mod}}`{obj.__name__}`")
            elif callable(obj):
                roles.append(f"{{py:{'class' if inspect.isclass(obj) else 'func'}}}`~{m.group(1)}.{name}`")
            else:
                roles.append(f"{{py:data}}`~{m.group(1)}.{name}`")
    return roles


def tidy_for_reading(path: Path) -> None:
    """Tags that keep the plumbing out of the rendered page (the notebook's code is unchanged): the default
    parameters cell is removed and papermill's injected one collapsed (it names the profile that ran); the setup
    cell's code is collapsed, its output (the profile and environment line) shown; cells that only glue numbers
    into the prose (their only outputs are glue's hidden ones), and show nothing, are removed."""
    nb = json.loads(Path(path).read_text())
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        tags = c.setdefault("metadata", {}).setdefault("tags", [])
        src = "".join(c["source"])
        if "injected-parameters" in tags:
            new = "hide-cell"
        elif "parameters" in tags:
            new = "remove-cell"
        elif "start(PARAMS)" in src:
            new = "hide-input"
        elif "glue(" in src and all("scrapbook" in o.get("metadata", {}) for o in c.get("outputs", [])):
            new = "remove-cell"     # only glue's hidden outputs: the numbers still reach the prose
        else:
            continue
        if new not in tags:
            tags.append(new)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False))


def execute(root: Path, params_path: str, out: Path, only: list[str] | None = None, kernel: str = "python3") -> dict:
    import papermill as pm
    times = {}
    for nb in toc_notebooks(root):
        if only and not any(Path(nb).name.startswith(o) for o in only):
            continue
        src = root / f"{nb}.ipynb"
        dst = out / f"{nb}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        print(f"[book] executing {src.name} with {params_path}", flush=True)
        pm.execute_notebook(str(src), str(dst), parameters={"PARAMS": params_path}, cwd=str(root),
                            kernel_name=kernel, progress_bar=False, log_output=False)
        times[src.stem] = time.perf_counter() - t0
        tidy_for_reading(dst)
    return times


def build(params_path: str, root: str | Path = ".", kernel: str = "python3", only=None) -> Path:
    """Execute every chapter and render the HTML book; return the path of its index.html."""
    root = Path(root).resolve()
    params = load_profile(root / params_path if not Path(params_path).is_absolute() else params_path)
    out = root / "_build" / "executed" / params["profile"]
    if out.exists() and not only:      # a partial run (--only) keeps the chapters executed before
        shutil.rmtree(out)
    stage(root, out, params)
    t0 = time.perf_counter()
    times = execute(root, str(Path(params_path)), out, only, kernel)
    missing = [nb for nb in toc_notebooks(root) if not (out / f"{nb}.ipynb").exists()]
    for nb in missing:                 # chapters never executed are rendered without outputs
        shutil.copy(root / f"{nb}.ipynb", out / f"{nb}.ipynb")
    if missing:                        # their glue keys do not exist, so warnings cannot be errors
        print(f"[book] {len(missing)} chapter(s) never executed for this profile; rendering without -W")
    t1 = time.perf_counter()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(out), *([] if missing else ["-W"]),
           "--keep-going", "--builder", "html"]
    subprocess.run(cmd, check=True)
    t2 = time.perf_counter()
    for k, v in times.items():
        print(f"[book] {k}: {v:.1f} s")
    print(f"[book] notebooks {t1 - t0:.1f} s, render {t2 - t1:.1f} s")
    index = out / "_build" / "html" / "index.html"
    print(f"[book] HTML: {index}")
    return index


# the API reference's parts, in the order a reader meets them: the base, the layers upwards, the studies in the
# book's order, the claims and the book itself
API_PARTS = [("The base", ["cmrlib", "cmrlib.errors", "cmrlib.files", "cmrlib.config", "cmrlib.cli"]),
             ("Data", ["cmrlib.data"]), ("Training", ["cmrlib.training"]), ("Evaluation", ["cmrlib.evaluation"]),
             ("The run store", ["cmrlib.runs"]), ("The studies", ["cmrlib.studies"]),
             ("The main paper (Lee et al. 2025)", ["cmrlib.studies.lee2025"]),
             ("The 2021 study (Puyol-Antón et al.)", ["cmrlib.studies.puyol2021"]),
             ("The 2022 study (Lee et al.)", ["cmrlib.studies.lee2022"]),
             ("Generative debiasing (Skorupko et al. 2024)", ["cmrlib.studies.skorupko2024"]),
             ("The claims", ["cmrlib.claims"]), ("The book", ["cmrlib.book"])]


def library_modules() -> list[str]:
    """Every module of the library (packages included), sorted by name."""
    return sorted(["cmrlib", *(m.name for m in pkgutil.walk_packages(cmrlib.__path__, "cmrlib."))])


def api_parts() -> list[tuple[str, list[str]]]:
    """The modules of each part of :data:`API_PARTS`, a package before its modules; a module no part claims
    raises an error naming it (a new package needs its part)."""
    mods = library_modules()
    owner = {m: max((p for _, ps in API_PARTS for p in ps if m == p or m.startswith(p + ".")), key=len, default=None)
             for m in mods}
    lost = [m for m, o in owner.items() if o is None or (o == "cmrlib" and m != "cmrlib")]
    if lost:
        raise ValueError(f"modules in no part of the API reference (cmrlib.book.build.API_PARTS): {', '.join(lost)}")
    return [(title, [m for p in ps for m in mods if owner[m] == p]) for title, ps in API_PARTS]


def api_page() -> str:
    """The text of ``book/api.md``: one part per layer and study (:data:`API_PARTS`), one autodoc section per
    module."""
    lines = ["# API reference", "",
             "The library `cmrlib` holds every computation of the book; the chapters only call it. Its packages are",
             "layers, each importing only those before it: data, then training and evaluation, the run store, one",
             "package per study, the claims, and the book. Each module's documentation below is generated from its",
             "docstrings.", ""]
    for title, mods in api_parts():
        lines += [f"## {title}", ""]
        for m in mods:
            lines += [f"### `{m}`", "", "```{eval-rst}", f".. automodule:: {m}", "   :members:", "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":   # python -m cmrlib.book.build: rewrite book/api.md after adding or removing a module
    Path("book/api.md").write_text(api_page())
