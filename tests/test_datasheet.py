import pandas as pd

from cmrlib.book.datasheet import composition, largest_share, measures, subjects_of


def _subjects():
    return pd.DataFrame({"subject_id": list("abcdef"), "ethnicity": ["White"] * 4 + ["Black"] * 2,
                         "sex": ["F", "M", "F", "M", "F", "F"], "split": ["train"] * 3 + ["test"] * 3,
                         "bmi": [20.0, 30.0, 25.0, 35.0, 40.0, None]})


def test_composition_counts_each_group_by_split_and_sex():
    t = composition(_subjects(), "ethnicity", groups=["White", "Black", "Asian"])
    assert list(t.index) == ["White", "Black", "all groups"]
    assert t.loc["White", "train · F"] == 2 and t.loc["White", "test · M"] == 1 and t.loc["Black", "test · F"] == 2
    assert t.loc["all groups", "total"] == 6 and (t["total"].iloc[:-1].sum() == 6)
    whole = composition(_subjects().drop(columns="split"), "ethnicity", by=None)
    assert list(whole.columns) == ["all", "total"] and whole.loc["Black", "all"] == 2


def test_measures_and_shares():
    m = measures(_subjects(), "ethnicity", ["bmi", "age"], groups=["White", "Black"])
    assert m.loc["White", "bmi"] == "27.5 (6.5)" and m.loc["Black", "age"] == "—" and m.loc["Black", "bmi"] == "40.0 (—)"
    assert largest_share(_subjects(), "ethnicity") == ("White", 4 / 6)
    man = pd.DataFrame({"subject_id": ["a", "a", "b"], "frame": ["ED", "ES", "ED"]})
    assert subjects_of(man).subject_id.tolist() == ["a", "b"]
