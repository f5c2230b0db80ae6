"""Chapter 12's evaluation of synthetic-only models on another dataset (here: the tiny synthetic cohort stands in
for the real one)."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def data(tiny_params):
    from cmrlib.pipeline import prepare_data
    params = {**tiny_params, "transfer": {"steps": 8, "augment": {"contrast": 0.2}}}
    return prepare_data(params, progress=False)


def test_on_real_counts_every_pixel_once(data):
    from cmrlib.experiments import trained_model
    from cmrlib.pipeline import volume_indices
    from cmrlib.realdata import on_real, overall_dsc, row_shares
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
    from cmrlib.realdata import on_real
    return on_real(models["plain"][1], data, data.params)


def test_transfer_comparison_names_the_profiles_groups(data, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from cmrlib.realdata import mid_slices, prediction_grid, transfer_comparison, transfer_models
    models = transfer_models(data)
    assert [d.params["training"]["steps"] for d, _ in models.values()] == [6, 8, 8]
    table, counts = transfer_comparison(models, data, data.params)
    import cmrlib.realdata as rd
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
