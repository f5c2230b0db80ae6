"""`make lab`: the project's kernel starts, and a chapter opened where JupyterLab opens it (its own folder) runs
its first cells against the repository's profiles."""
import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "cmrlib-test",
                    "--display-name", "Python (cmrlib)"], check=True, capture_output=True)
    return prefix / "share" / "jupyter"


def test_kernel_runs_a_chapters_first_cells_from_the_notebooks_folder(root, kernel_dir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    spec = json.loads((kernel_dir / "kernels" / "cmrlib-test" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and spec["display_name"] == "Python (cmrlib)"
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    nb = nbformat.read(root / "notebooks" / "01_cohort_and_curation.ipynb", as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if "start(PARAMS)" in c.source)
    nb.cells = nb.cells[: setup + 1] + [nbformat.v4.new_code_cell("import os; print(os.getcwd()); print(params['profile'])")]
    NotebookClient(nb, kernel_name="cmrlib-test", timeout=120,
                   resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert text.splitlines() == [str(root), "smoke"]
    started = "".join(o.get("text", "") for o in nb.cells[setup].outputs)
    assert "profile smoke (params/smoke.yaml)" in started


def test_book_root_is_found_from_a_subfolder(root, tmp_path):
    from cmrlib.book.chapter import book_root
    assert book_root(root / "notebooks") == root and book_root(root) == root
    assert book_root(tmp_path) is None or (book_root(tmp_path) / "_toc.yml").exists()
    assert os.getcwd()
