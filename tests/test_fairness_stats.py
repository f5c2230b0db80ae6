import numpy as np
import pandas as pd
import pytest

from cmrlib.fairness import fairness_gap, group_sd, skewed_error_ratio
from cmrlib.report import demographics_table, fairness_summary, group_stats
from cmrlib.stats import anova, bootstrap_gap, mann_whitney


@pytest.fixture
def scores():
    return pd.DataFrame({"g": ["W"] * 3 + ["B"] * 3 + ["A"] * 2,
                         "dsc": [0.90, 0.92, 0.94, 0.80, 0.85, 0.86, 0.88, 0.90], "hd": np.arange(8.0)})


def test_fairness_gap_hand_computed(scores):
    assert fairness_gap(scores, "g", "W", "B") == pytest.approx(0.92 - 0.85)


def test_ser_hand_computed(scores):
    # medians W .92, B .85, A .89 → errors .08 .15 .11
    assert skewed_error_ratio(scores, "g") == pytest.approx(0.15 / 0.08)
    assert skewed_error_ratio(scores, "g", groups=["W", "A"]) == pytest.approx(0.11 / 0.08)


def test_ser_matches_paper_table4():
    df = pd.DataFrame({"g": ["W", "B"], "dsc": [0.896, 0.846]})
    assert skewed_error_ratio(df, "g") == pytest.approx(1.48, abs=0.01)   # paper: 1.486 from unrounded medians


def test_group_sd(scores):
    means = [np.mean([0.9, 0.92, 0.94]), np.mean([0.8, 0.85, 0.86]), 0.89]
    assert group_sd(scores, "g") == pytest.approx(np.std(means, ddof=1))


def test_group_sd_matches_the_2021_study_table_2():
    """Its baseline SD, 3.25, follows from its six group means with divisor G − 1 (G = 6), not G."""
    means = [93.51, 84.52, 88.90, 85.88, 87.63, 85.66]
    df = pd.DataFrame({"g": list("abcdef"), "dsc": means})
    assert group_sd(df, "g") == pytest.approx(3.25, abs=0.005)


def test_mann_whitney_matches_scipy_and_detects_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(1.5, 1, 60)
    u, p = mann_whitney(a, b)
    assert p < 1e-6 and 0 <= u <= 3600
    assert np.isnan(mann_whitney([], b)[1])
    lo, hi = bootstrap_gap(b, a, n_boot=500)
    assert lo > 0.5 and hi > lo


def test_summary_and_group_stats(scores):
    fs = fairness_summary(scores, "g", "W", "B")
    assert fs["fg"] == pytest.approx(0.07) and fs["ser"] == pytest.approx(0.15 / 0.08)
    gs = group_stats(scores, "g", ["W", "B", "A"])
    assert list(gs.index) == ["W", "B", "A"] and gs.loc["W", "n"] == 3
    assert gs.loc["W", "dsc_iqr"] == pytest.approx(0.02)


def test_demographics_table_marks_significant_groups():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"ethnicity": ["White"] * 200 + ["Black"] * 200,
                       "age": np.r_[rng.normal(65, 5, 200), rng.normal(55, 5, 200)],
                       "bmi": np.r_[rng.normal(27, 3, 200), rng.normal(27, 3, 200)]})
    t = demographics_table(df, "ethnicity", ["White", "Black"], test="t")
    assert t.loc["Age (years)", "Black"].endswith("*")
    a = demographics_table(df, "ethnicity", ["White", "Black"], test="anova")
    assert "Age (years) *" in a.index and a.attrs["p"]["age"] < 1e-6
    assert anova([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_change_table_puts_each_methods_change_beside_its_p():
    import pandas as pd

    from cmrlib.report import change_table
    delta = pd.DataFrame([dict(method="m1", group="Black", delta_median_dsc=0.123456, p_vs_baseline=2.34e-9),
                          dict(method="m1", group="White", delta_median_dsc=-0.01, p_vs_baseline=0.5),
                          dict(method="m2", group="Black", delta_median_dsc=0.2, p_vs_baseline=0.04)])
    t = change_table(delta, ["White", "Black", "Asian"])
    assert list(t.index) == ["White", "Black"]
    assert list(t.columns) == [("m1", "Δ median DSC"), ("m1", "p vs baseline"), ("m2", "Δ median DSC"),
                               ("m2", "p vs baseline")]
    assert t.loc["Black", ("m1", "Δ median DSC")] == 0.1235 and t.loc["Black", ("m1", "p vs baseline")] == 2.3e-9
    assert pd.isna(t.loc["White", ("m2", "p vs baseline")])


def test_mean_sd_shows_a_dash_for_one_subject():
    from cmrlib.report import mean_sd
    assert mean_sd([1.0, 3.0]) == "2.0 (1.4)" and mean_sd([54.2]) == "54.2 (—)"


def test_gap_interval_is_the_bootstrap_of_the_two_groups():
    import pandas as pd

    from cmrlib.fairness import gap_interval
    from cmrlib.stats import bootstrap_gap
    s = pd.DataFrame({"g": ["A"] * 5 + ["B"] * 4 + ["C"], "dsc": [0.9, 0.8, 0.85, 0.95, 0.88, 0.7, 0.6, 0.75, 0.65, 0.1]})
    lo, hi = gap_interval(s, "g", "A", "B", seed=3)
    assert (lo, hi) == bootstrap_gap(s.dsc[:5], s.dsc[5:9], seed=3) and 0 < lo <= hi
