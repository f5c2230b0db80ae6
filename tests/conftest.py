import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "data_manifest" / "synthetic_cohort.yaml"


def pytest_collection_modifyitems(config, items):
    """The chapter runs last, after the quick unit tests, so a broken library fails fast."""
    items.sort(key=lambda item: item.get_closest_marker("notebooks") is not None)


@pytest.fixture(scope="session")
def spec():
    from cmrlib.data.synthetic import load_spec
    return load_spec(SPEC)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture()
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(scope="session")
def tiny_params(tmp_path_factory):
    """A profile smaller than smoke, with data and runs in a temporary folder."""
    from cmrlib.config import load_params
    tmp = tmp_path_factory.mktemp("tiny")
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        p = load_params(ROOT / "params" / "smoke.yaml")
    finally:
        os.chdir(old)
    p["cohort"]["spec"] = str(SPEC)
    p["cohort"]["internal"] = {"White": 12, "Black": 4, "Asian": 2}
    p["cohort"]["external"] = {"Black": 2}
    p["cohort"]["size"] = p["cache"]["size"] = 48
    p["cohort"]["spacing_mm"] = p["cache"]["spacing_mm"] = 7.0
    p["cohort"]["n_slices"] = 6
    p["curation"]["train"] = {"White": 8, "Black": 1}
    p["curation"]["max_minority_share"] = None
    p["training"].update(steps=6, batch_size=4, channels=[4, 8, 16], checkpoint_every=3)
    p["data_root"] = str(tmp / "data")
    p["runs_root"] = str(tmp / "runs")
    return p
