import numpy as np
import pandas as pd
import pytest

from cmrlib.studies.lee2025.rootcause import auc, error_location, subject_split, view_slices
from cmrlib.training.classifier import train_classifier


def test_subject_split_keeps_subjects_together_and_balances():
    subj = pd.DataFrame({"subject_id": [f"s{i}" for i in range(30)], "g": ["A"] * 20 + ["B"] * 10})
    sp = subject_split(subj, "g", ["A", "B"], seed=0)
    assert sp.subject_id.is_unique
    assert (sp.g == "A").sum() == (sp.g == "B").sum() == 10
    assert set(sp.groupby(["g", "role"]).size().tolist()) == {5}
    fit, held = set(sp.subject_id[sp.role == "fit"]), set(sp.subject_id[sp.role == "held_out"])
    assert not fit & held


def test_auc_from_mann_whitney():
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auc([0.5, 0.5], [1, 0]) == 0.5


def test_views_and_error_location(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    data = prepare_data(tiny_params, progress=False)
    ids = data.ids("test")[:3]
    full, got = view_slices(data.cache, ids, "full", (24, 24))
    heart, _ = view_slices(data.cache, ids, "heart", (24, 24))
    out, _ = view_slices(data.cache, ids, "outside", (24, 24))
    assert got == ids and heart.shape == (3, 24, 24) and out.shape == full.shape
    assert (out != full).any() and (out[:, 0, 0] == full[:, 0, 0]).all()
    lab = np.zeros((2, 20, 20), np.uint8); lab[:, 8:12, 8:12] = 1
    pred = lab.copy(); pred[0, 0, 0] = 1; pred[1, 9, 9] = 0
    e = error_location(pred, lab, (8, 8))
    assert e == {"errors_inside": 1, "errors_outside": 1, "fp_outside": 1}


def test_classifier_learns_an_outside_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16, 16)).astype(np.float32)
    y = np.r_[np.ones(32), np.zeros(32)].astype(int)
    x[y == 1, :3, :] += 2.0          # a bright band at the top for group 1
    clf = train_classifier(x, y, steps=60, seed=0)
    assert auc(clf(x), y) > 0.9
    with pytest.raises(ValueError):
        view_slices(None, [], "sideways", (4, 4))


def test_oversampling_sweep_reuses_named_runs(tiny_params, monkeypatch):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.studies.lee2025 import sweeps
    names = []
    monkeypatch.setattr(sweeps, "run_experiment", lambda data, name, method, progress: names.append((name, method.level))
                        or pd.DataFrame())
    monkeypatch.setattr(sweeps, "_row", lambda *a, **k: k)
    data = prepare_data(tiny_params, progress=False)
    out = sweeps.oversampling_sweep(data, [0, 0.25, 0.5])
    assert [n for n, _ in names] == ["baseline", "oversampling_0.25", "oversampling"]
    assert out.level.tolist() == [0.0, 0.25, 0.5]
    p = sweeps.with_training_counts(tiny_params, {"White": 3, "Asian": 1}, minority="Asian")
    assert p["curation"]["train"] == {"White": 3, "Asian": 1} and p["curation"]["minority"] == "Asian"
    assert tiny_params["curation"]["train"] != p["curation"]["train"]
