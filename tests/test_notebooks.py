"""Every chapter runs in the smoke profile, and no source notebook carries outputs."""
import json
import os

import pytest

from cmrlib.book import notebook_has_outputs, toc_notebooks


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


@pytest.mark.notebooks
def test_notebooks_run_in_smoke_profile(root, tmp_path, monkeypatch):
    pm = pytest.importorskip("papermill")
    monkeypatch.setenv("CMRLIB_RUNS", str(tmp_path / "runs"))
    for nb in toc_notebooks(root):
        out = tmp_path / f"{os.path.basename(nb)}.ipynb"
        pm.execute_notebook(str(root / f"{nb}.ipynb"), str(out), parameters={"PARAMS": "params/smoke.yaml"},
                            cwd=str(root), kernel_name="python3", progress_bar=False)
        cells = json.loads(out.read_text())["cells"]
        errors = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors
