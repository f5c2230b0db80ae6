"""Every chapter runs in the smoke profile, and no source notebook carries outputs."""
import json
import os
from pathlib import Path

import pytest

from cmrlib.book.build import notebook_has_outputs, toc_notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_toc_lists_every_notebook(root):
    listed = {f"{p}.ipynb" for p in toc_notebooks(root)}
    on_disk = {f"notebooks/{p.name}" for p in (root / "notebooks").glob("*.ipynb")}
    assert listed == on_disk


def test_source_notebooks_have_no_outputs(root):
    dirty = [p.name for p in (root / "notebooks").glob("*.ipynb") if notebook_has_outputs(p)]
    assert not dirty, f"strip outputs from: {dirty}"


def test_output_detector_catches_outputs(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "1", "outputs": [{"output_type": "stream", "text": "1"}],
                     "execution_count": 1, "metadata": {}}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    assert notebook_has_outputs(p)


def test_each_notebook_has_one_parameters_cell(root):
    for p in (root / "notebooks").glob("*.ipynb"):
        cells = json.loads(p.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, p.name
        assert "PARAMS = " in "".join(tagged[0]["source"])


@pytest.fixture(scope="session")
def notebook_runs(tmp_path_factory):
    """One run store for the chapters of this session, so later chapters reuse the models of earlier ones
    as in a book build (the chapters run in order)."""
    runs = tmp_path_factory.mktemp("notebook_runs")
    old = os.environ.get("CMRLIB_RUNS")
    os.environ["CMRLIB_RUNS"] = str(runs)
    yield runs
    if old is None:
        os.environ.pop("CMRLIB_RUNS", None)
    else:
        os.environ["CMRLIB_RUNS"] = old


WORKERS = int(os.environ.get("CMRLIB_TEST_WORKERS", "2"))
CLAIMS = "18_claims"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture(scope="session")
def executed(root, notebook_runs, tmp_path_factory):
    """Every chapter executed once in the smoke profile with papermill: chapter 01 first (it writes the cohort
    and cache the others read), then the rest ``CMRLIB_TEST_WORKERS`` (2) at a time from the last back, each kernel
    on one thread so that two do not oversubscribe two cores. A chapter that needs a model another is training
    waits on that run's lock, as cluster jobs do. The claims chapter, which reads what the others stored, runs
    last. Returns chapter → (return code, executed notebook, stderr)."""
    from concurrent.futures import ThreadPoolExecutor

    import papermill
    out = tmp_path_factory.mktemp("executed")

    def run(nb):      # in this process: a papermill process per chapter would cost its start-up each time
        dst = out / f"{os.path.basename(nb)}.ipynb"
        try:
            papermill.execute_notebook(str(root / f"{nb}.ipynb"), str(dst), parameters={"PARAMS": "params/smoke.yaml"},
                                       cwd=str(root), kernel_name="python3", progress_bar=False,
                                       request_save_on_cell_execute=False)     # written once, at the end
            return 0, dst, ""
        except Exception as e:           # the chapter's error cell is in dst; the message names the rest
            return 1, dst, f"{type(e).__name__}: {str(e)[-3000:]}"

    nbs = toc_notebooks(root)
    first = next(nb for nb in nbs if os.path.basename(nb).startswith("01_"))
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: "1" for k in THREAD_VARS})      # the kernels inherit it: one thread each
    try:
        results = {first: run(first)}
        # the rest from the last chapter back: the later chapters are the longest, and the early ones then find
        # most of their models trained, so the two workers finish close together
        last = [nb for nb in nbs if os.path.basename(nb) == CLAIMS]
        rest = [nb for nb in reversed(nbs) if nb != first and nb not in last]
        with ThreadPoolExecutor(WORKERS) as pool:
            for nb, res in zip(rest, pool.map(run, rest)):
                results[nb] = res
        for nb in last:
            results[nb] = run(nb)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results


@pytest.mark.notebooks
@pytest.mark.parametrize("nb", toc_notebooks(ROOT), ids=lambda nb: os.path.basename(nb))
def test_notebook_runs_in_smoke_profile(nb, executed):
    code, out, stderr = executed[nb]
    assert out.exists(), f"{nb}: papermill wrote no notebook: {stderr}"
    cells = json.loads(out.read_text())["cells"]
    errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    if errors:       # name the chapter and the cell that failed
        e = errors[0]
        pytest.fail(f"{nb}: {e.get('ename')}: {e.get('evalue')}", pytrace=False)
    assert code == 0, f"{nb}: papermill exited {code}: {stderr}"


def test_tidy_for_reading_hides_plumbing_only(tmp_path):
    import json

    from cmrlib.book.build import tidy_for_reading

    def code(src, tags=(), outputs=()):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": src, "outputs": list(outputs),
                "execution_count": 1}
    shown = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    glued = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": "k"}}, "data": {}}]
    nb = {"cells": [code('PARAMS = "a"', ["parameters"]), code('PARAMS = "b"', ["injected-parameters"]),
                    code("import x\nparams = start(PARAMS)", outputs=shown), code('glue("k", 1)', outputs=glued),
                    code('glue("k", 1)\nt', outputs=glued + shown), code("table", outputs=shown),
                    {"cell_type": "markdown", "metadata": {}, "source": "text glue("}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    tidy_for_reading(path)
    tags = [c["metadata"].get("tags") for c in json.loads(path.read_text())["cells"]]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "hide-cell"], ["hide-input"],
                    ["remove-cell"], [], [], None]


def test_frames_show_a_dash_where_a_value_does_not_apply():
    import numpy as np
    import pandas as pd

    from cmrlib.book.chapter import frame_html
    from cmrlib.evaluation.report import MISSING
    html = frame_html(pd.DataFrame({"a": [1.0, np.nan]}, index=["x", "y"]))
    assert MISSING in html and "NaN" not in html and "nan" not in html


def test_setup_headings_link_every_library_call(root):
    """Each chapter's Setup heading links the library names its setup cell imports, so the two cannot drift."""
    import json

    from cmrlib.book.build import library_calls
    for p in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        i = next(k for k, c in enumerate(cells) if "".join(c["source"]).startswith("## Setup"))
        roles = library_calls("".join(cells[i + 1]["source"]))
        text = "".join(cells[i]["source"])
        assert roles and all(r in text for r in roles), (p.name, [r for r in roles if r not in text])


def test_api_reference_lists_every_module(root):
    from cmrlib.book.build import api_page
    assert (root / "book" / "api.md").read_text() == api_page(), "run `python -m cmrlib.book.build` to rewrite book/api.md"


def test_every_chapter_ends_with_exercises(root):
    """2–4 numbered exercises in a final section, each with a collapsed answer, at least one asking for judgement."""
    import json
    import re
    for p in sorted((root / "notebooks").glob("*.ipynb")):
        last = "".join(json.loads(p.read_text())["cells"][-1]["source"])
        assert last.startswith("## Exercises"), p.name
        items = re.findall(r"^(\d)\. \*\*", last, re.M)
        assert 2 <= len(items) <= 4 and items == [str(i + 1) for i in range(len(items))], (p.name, items)
        assert last.count(":class: dropdown") == len(items), p.name
        assert "**Judgement.**" in last, p.name


def test_no_code_cell_over_fifteen_lines(root):
    """A chapter calls the library; longer code belongs in it."""
    import json
    long = [(p.name, i, len("".join(c["source"]).splitlines()))
            for p in sorted((root / "notebooks").glob("*.ipynb"))
            for i, c in enumerate(json.loads(p.read_text())["cells"])
            if c["cell_type"] == "code" and len("".join(c["source"]).splitlines()) > 15]
    assert not long, long


# ---- no number typed into prose ---------------------------------------------------------------------------
# stripped before looking for digits: fenced code, glue and other roles, inline code, math, links, html tags
_STRIP = [r"```.*?```", r"\{[a-z:]+\}`[^`]*`", r"`[^`]*`", r"\$[^$]*\$", r"\[[^\]]*\]\([^)]*\)", r"<[^>]+>"]
_REF = (r"(?:Tables?|Figs?\.|Figures?|§|Eqs?\.|Sections?|[Cc]hapters?|[Ss]essions?|[Ee]xperiments?|[Ee]xercises?"
        r"|[Aa]pproach(?:es)?)")
_NUM = r"S?\d+[a-z]?(?:\.\d+)*"
# the allow-list: a chapter's heading number, years, references to tables, figures, sections, equations,
# chapters, sessions, experiments and exercises, numbered list items, the 95 % of an interval, the p-value
# thresholds of the tests, and 2D/3D/4D
_ALLOW = [r"^#+\s*\d+\s*·", r"\b(?:19|20)\d\d[a-z]?\b", _REF + r"\s*" + _NUM + r"(?:\s*(?:[–,-]|and|or)\s*" + _NUM + r")*",
          r"^\s*\d+\.\s", r"\b95\s*%", r"p\s*<\s*0\.0[15]\b", r"\b[234]D\b"]


def typed_numbers(markdown: str) -> list[str]:
    """Lines of a markdown cell that still hold a digit once glue, code, math, links and the allow-list are
    removed: numbers typed into prose."""
    import re
    text = markdown
    for p in _STRIP:
        text = re.sub(p, "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        s = line
        for p in _ALLOW:
            s = re.sub(p, "", s)
        if re.search(r"\d", s):
            out.append(line.strip())
    return out


def test_typed_number_scan_catches_typed_numbers():
    assert typed_numbers("The gap is 0.050 here.") == ["The gap is 0.050 here."]
    assert typed_numbers("The gap is {glue:text}`nb02_fg:.3f` (Table 4, §4.7, Eqs. 1–2; 95 % interval).") == []
    assert typed_numbers("# 02 · The baseline\n1. **Predict.** In 2025, p < 0.05 in [chapter 07](07_x.ipynb).") == []
    assert typed_numbers("```yaml\ncrop: {buffer_mm: 30}\n```\nA 4D cine, $w = 0$, `seeds: 3`.") == []
    assert typed_numbers("with 15 Black subjects") == ["with 15 Black subjects"]


def test_no_number_is_typed_into_prose(root):
    typed = [(p.name, line) for p in sorted((root / "notebooks").glob("*.ipynb"))
             for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "markdown"
             for line in typed_numbers("".join(c["source"]))]
    assert not typed, "numbers typed into prose (glue them): " + "; ".join(f"{n}: {l[:80]}" for n, l in typed)


@pytest.mark.notebooks
def test_claims_chapter_judges_every_registered_claim(root, executed):
    """Run after every other chapter, the claims chapter lists each claim of the registry, and each has been
    judged (none is "not run": the chapters train what their claims need)."""
    from cmrlib.claims.registry import REGISTRY
    nb = next(nb for nb in executed if os.path.basename(nb) == CLAIMS)
    code, out, stderr = executed[nb]
    cells = json.loads(out.read_text())["cells"]
    text = "".join("".join(o.get("data", {}).get("text/plain", "")) for c in cells if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    missing = [cid for cid in REGISTRY if cid not in text]
    assert not missing, f"claims absent from the claims chapter: {missing}"
    table = [c for c in cells if c["cell_type"] == "code" and "set_index(\"claim\")" in "".join(c["source"])]
    shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in table[0]["outputs"])
    assert "not run" not in shown, "a claim was not judged in the smoke book"
