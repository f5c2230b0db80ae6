"""Every chapter runs in the smoke profile, and no source notebook carries outputs."""
import json
import os
from pathlib import Path

import pytest

from cmrlib.book import notebook_has_outputs, toc_notebooks

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


@pytest.mark.notebooks
@pytest.mark.parametrize("nb", toc_notebooks(ROOT), ids=lambda nb: os.path.basename(nb))
def test_notebook_runs_in_smoke_profile(nb, root, notebook_runs, tmp_path):
    pm = pytest.importorskip("papermill")
    out = tmp_path / f"{os.path.basename(nb)}.ipynb"
    try:
        pm.execute_notebook(str(root / f"{nb}.ipynb"), str(out), parameters={"PARAMS": "params/smoke.yaml"},
                            cwd=str(root), kernel_name="python3", progress_bar=False)
    except pm.PapermillExecutionError as e:   # name the chapter and the cell that failed
        pytest.fail(f"{nb}: cell {e.exec_count} raised {e.ename}: {e.evalue}", pytrace=False)
    cells = json.loads(out.read_text())["cells"]
    errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
