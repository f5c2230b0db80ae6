"""Chapter 12's evaluation of synthetic-only models on another dataset (here: the tiny synthetic cohort stands in
for the real one)."""
import numpy as np
import pandas as pd
import pytest

from cmrlib.errors import InputError


@pytest.fixture(scope="module")
def data(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    params = {**tiny_params, "transfer": {"steps": 8, "augment": {"contrast": 0.2}}}
    return prepare_data(params, progress=False)


def test_on_real_counts_every_pixel_once(data):
    from cmrlib.data.pipeline import volume_indices
    from cmrlib.runs.experiments import trained_model
    from cmrlib.studies.lee2025.realdata import on_real, overall_dsc, row_shares
    model, _ = trained_model(data, "baseline", progress=False)
    scores, counts = on_real(model, data, data.params, splits=("test",))
    vols = volume_indices(data, ("test",))
    assert len(scores) == 3 * len(vols) and set(scores.structure) == {"LVBP", "LVM", "RVBP"}
    n_pixels = sum(data.cache.volume(int(v))[1].size for v in vols)
    assert int(counts.to_numpy().sum()) == n_pixels
    true_lvbp = sum(int((data.cache.volume(int(v))[1] == 1).sum()) for v in vols)
    assert int(counts.loc["LVBP"].sum()) == true_lvbp
    assert np.allclose(row_shares(counts).sum(axis=1), 1.0)
    assert 0.0 <= overall_dsc(scores) <= 1.0


def on_real_plain(models, data):
    from cmrlib.studies.lee2025.realdata import on_real
    return on_real(models["plain"][1], data, data.params)


def test_transfer_comparison_names_the_profiles_groups(data, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from cmrlib.studies.lee2025.realdata import mid_slices, prediction_grid, transfer_comparison, transfer_models
    models = transfer_models(data)
    assert [d.params["training"]["steps"] for d, _ in models.values()] == [6, 8, 8]
    table, counts = transfer_comparison(models, data, data.params)
    import cmrlib.studies.lee2025.realdata as rd
    plain = on_real_plain(models, data)
    seen = []
    real_on = rd.on_real
    monkeypatch.setattr(rd, "on_real", lambda model, *a, **k: seen.append(model) or real_on(model, *a, **k))
    again, _ = transfer_comparison(models, data, data.params, {"plain": plain})
    assert models["plain"][1] not in seen and len(seen) == 2     # the plain model is not segmented again
    assert again.equals(table)
    assert list(table.index) == ["plain", "plain, as long", "randomised"] and set(counts) == set(models)
    assert {"synthetic test, White", "synthetic test, Black", "synthetic test, gap", "real, all", "real, RVBP"} <= set(table)
    gap = table["synthetic test, White"] - table["synthetic test, Black"]
    assert np.allclose(gap, table["synthetic test, gap"])
    fig = prediction_grid(data, {k: m for k, (_, m) in models.items()}, data.params, n=3, every=1)
    assert len(fig.axes) == 9
    assert len(mid_slices({"a": data, "b": data}).axes) == 8


def _cv_data(n_obese=12, n_lean=48):
    from types import SimpleNamespace
    ids = [f"p{i:03d}" for i in range(n_obese + n_lean)]
    subj = pd.DataFrame({"subject_id": ids, "obesity": ["obese"] * n_obese + ["not obese"] * n_lean,
                         "split": "test"})
    return SimpleNamespace(subjects=subj, group_col="obesity", advantaged="not obese", minority="obese",
                           params={"seed": 0})


def test_cv_folds_test_every_patient_once_and_keep_the_imbalance():
    from cmrlib.studies.lee2025.realdata import cv_folds
    data = _cv_data()
    folds = cv_folds(data, 4, repeat=0, train={"not obese": 30, "obese": 2}, seed=0)
    tested = pd.concat([f[f.split == "test"] for f in folds]).subject_id
    assert sorted(tested) == sorted(data.subjects.subject_id) and tested.is_unique
    for f in folds:
        tr = f[f.split == "train"]
        assert tr.obesity.value_counts().to_dict() == {"not obese": 30, "obese": 2}
        assert (f[f.split == "test"].obesity == "obese").sum() == 3              # stratified: 12 obese over 4 folds
    other = cv_folds(data, 4, repeat=1, train={"not obese": 30, "obese": 2}, seed=0)
    assert not all(a.split.equals(b.split) for a, b in zip(folds, other))      # a new repeat, a new split
    with pytest.raises(InputError, match="obese"):
        cv_folds(data, 4, repeat=0, train={"not obese": 30, "obese": 10}, seed=0)


def test_cv_evidence_pools_repeats_and_pairs_methods():
    from cmrlib.studies.lee2025.realdata import cv_evidence, cv_table, cv_verdicts
    data = _cv_data()
    rng = np.random.default_rng(0)
    rows = []
    for r in range(2):
        for m, drop in (("baseline", 0.10), ("oversampling", 0.02)):
            dsc = np.where(data.subjects.obesity == "obese", 0.85 - drop, 0.85) + 0.005 * rng.standard_normal(60)
            rows.append(data.subjects.assign(dsc=dsc, repeat=r, method=m))
    ev = cv_evidence(pd.concat(rows), data)
    t = cv_table(ev, ["baseline", "oversampling"])
    assert t.loc["baseline", "repeats"] == 2 and t.loc["baseline", "FG low"] > 0.05
    assert t.loc["oversampling", "ΔFG high"] < 0
    v = cv_verdicts(ev, ["baseline", "oversampling"])
    assert v["gap"].status == "reproduced" and v["oversampling"].status == "reproduced"
