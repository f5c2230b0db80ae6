"""Run folders keep their names: every kind of run the chapters store, named on the tiny profile, against the
names recorded in ``tests/data/run_names.json``. A stored run whose name changed would be trained again (and a
filled store would no longer serve the book), so a change here must be deliberate: regenerate the file with
``python tests/test_run_names.py`` and say why in the commit."""
import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).with_name("data") / "run_names.json"


def run_names(params) -> dict:
    from cmrlib.methods import METHODS
    from cmrlib.pipeline import prepare_data
    from cmrlib.runstore import run_dir_for
    from cmrlib.study2021 import natural_data
    from cmrlib.synthesis import generator_dir, synthetic_dir, synthetic_method
    import copy
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


def test_run_folders_keep_their_names(tiny_params):
    assert run_names(tiny_params) == json.loads(GOLDEN.read_text())


if __name__ == "__main__":      # regenerate the record (deliberately)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import conftest

    class Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=name))
    params = conftest.tiny_params.__wrapped__(Factory())
    GOLDEN.write_text(json.dumps(run_names(params), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
