"""Run folders keep their names: every kind of run the chapters store, named on the tiny profile, against the
names recorded in ``tests/data/run_names.json``. A stored run whose name changed would be trained again (and a
filled store would no longer serve the book), so a change here must be deliberate: regenerate the file with
``python tests/test_run_names.py`` and say why in the commit."""
import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).with_name("data") / "run_names.json"


def run_names(params) -> dict:
    import copy

    from cmrlib.data.pipeline import prepare_data
    from cmrlib.runs.store import run_dir_for
    from cmrlib.studies.puyol2021.study import natural_data
    from cmrlib.studies.skorupko2024.synthesis import generator_dir, synthetic_dir, synthetic_method
    from cmrlib.training.methods import METHODS
    params = copy.deepcopy(params)
    params["cohort"]["route"] = "direct"     # the NIfTI route keys its cache by file paths and times
    data = prepare_data(params, progress=False)
    names = {f"method {m}": run_dir_for(data, m, method).name for m, method in METHODS.items()}
    nat = natural_data(data)
    names["2021 baseline"] = run_dir_for(nat, "baseline", METHODS["baseline"]).name
    names["2021 stratified"] = run_dir_for(nat, "stratified", METHODS["stratified"]).name
    names["generator"] = generator_dir(data).name
    names["synthetic set"] = synthetic_dir(data).name
    for mix in ("pool", "uniform"):
        name, method = synthetic_method(data, 8, mix)
        names[f"synthetic {mix}"] = run_dir_for(data, name, method).name
    return names


def fresh_tiny_params(tmp_path_factory):
    """The tiny profile as the fixture makes it, but a copy of its own: other tests may change the shared one."""
    import conftest
    return conftest.tiny_params.__wrapped__(tmp_path_factory)


def test_run_folders_keep_their_names(tmp_path_factory):
    golden = json.loads(GOLDEN.read_text())
    names = run_names(fresh_tiny_params(tmp_path_factory))
    # other tests may register methods of their own (chapter 10's sweep levels): the recorded runs are what count
    assert {k: names.get(k) for k in golden} == golden


if __name__ == "__main__":      # regenerate the record (deliberately)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))

    class Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=name))
    params = fresh_tiny_params(Factory())
    GOLDEN.write_text(json.dumps(run_names(params), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
