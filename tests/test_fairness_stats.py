import numpy as np
import pandas as pd
import pytest

from cmrlib.evaluation.fairness import fairness_gap, group_sd, skewed_error_ratio
from cmrlib.evaluation.report import demographics_table, fairness_summary, group_stats
from cmrlib.evaluation.stats import anova, bootstrap_gap, mann_whitney


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

    from cmrlib.evaluation.report import change_table
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
    from cmrlib.evaluation.report import mean_sd
    assert mean_sd([1.0, 3.0]) == "2.0 (1.4)" and mean_sd([54.2]) == "54.2 (—)"


def test_gap_interval_is_the_bootstrap_of_the_two_groups():
    import pandas as pd

    from cmrlib.evaluation.fairness import gap_interval
    from cmrlib.evaluation.stats import bootstrap_gap
    s = pd.DataFrame({"g": ["A"] * 5 + ["B"] * 4 + ["C"], "dsc": [0.9, 0.8, 0.85, 0.95, 0.88, 0.7, 0.6, 0.75, 0.65, 0.1]})
    lo, hi = gap_interval(s, "g", "A", "B", seed=3)
    assert (lo, hi) == bootstrap_gap(s.dsc[:5], s.dsc[5:9], seed=3) and 0 < lo <= hi


def test_median_table_changes_are_paired_and_intervals_cover_the_point():
    from cmrlib.evaluation.fairness import median_table
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(60)]
    groups = ["White"] * 30 + ["Black"] * 30
    base = pd.DataFrame({"subject_id": ids, "ethnicity": groups,
                         "dsc": np.r_[rng.normal(0.9, 0.02, 30), rng.normal(0.8, 0.02, 30)]})
    better = base.assign(dsc=base.dsc + np.where(base.ethnicity == "Black", 0.05, 0.0))
    same = base.copy()
    t = median_table({"baseline": base, "better": better, "same": same}, "ethnicity", "White", "Black",
                     references=("baseline",), n_boot=500)
    assert t.loc["baseline", "FG"] == pytest.approx(base[base.ethnicity == "White"].dsc.median()
                                                    - base[base.ethnicity == "Black"].dsc.median())
    for m in t.index:
        assert t.loc[m, "FG low"] <= t.loc[m, "FG"] <= t.loc[m, "FG high"]
        assert t.loc[m, "SER low"] <= t.loc[m, "SER"] <= t.loc[m, "SER high"]
    assert t.loc["better", "ΔFG vs baseline"] == pytest.approx(-0.05)
    # the same subjects shifted by a constant: the paired interval is a point, an unpaired one would not be
    assert t.loc["better", "ΔFG vs baseline low"] == pytest.approx(-0.05)
    assert t.loc["better", "ΔFG vs baseline high"] == pytest.approx(-0.05)
    assert t.loc["same", "ΔFG vs baseline low"] == t.loc["same", "ΔFG vs baseline high"] == 0
    assert np.isnan(t.loc["baseline"].get("ΔFG vs baseline", np.nan))


def test_synthesis_verdicts_on_hand_made_tables(monkeypatch):
    from types import SimpleNamespace

    from cmrlib.studies.skorupko2024 import synthesis

    def table(lo, hi, gain_lo, gain_hi, fg0=0.1):
        row = {"FG": fg0 + (lo + hi) / 2, "ΔFG vs baseline low": lo, "ΔFG vs baseline high": hi,
               "ΔFG vs oversampling low": lo, "ΔFG vs oversampling high": hi, "ΔFG vs ctrl low": lo,
               "ΔFG vs ctrl high": hi, "ΔBlack vs baseline low": gain_lo, "ΔBlack vs baseline high": gain_hi,
               "ΔBlack vs oversampling low": gain_lo, "ΔBlack vs oversampling high": gain_hi}
        return pd.DataFrame([{"FG": fg0}, row], index=["baseline", "best"])
    data = SimpleNamespace(minority="Black")
    monkeypatch.setattr(synthesis, "headline", lambda d: "best")
    monkeypatch.setattr(synthesis, "control", lambda d: "ctrl")
    v = synthesis.verdicts(table(-0.05, -0.01, 0.01, 0.05), data)
    assert v["vs_baseline"] == "the gap is narrower than the baseline's"
    v = synthesis.verdicts(table(0.01, 0.03, -0.05, -0.01), data)
    assert v["vs_oversampling"] == "the gap is wider than with oversampling alone"
    assert v["minority_vs_oversampling"] == "the minority's median DSC is lower than with oversampling alone"
    v = synthesis.verdicts(table(-0.01, 0.02, -0.01, 0.01), data)
    assert v["vs_control"].startswith("no change of the gap against the real slices")
    assert v["vs_control"].endswith("tell from zero")

