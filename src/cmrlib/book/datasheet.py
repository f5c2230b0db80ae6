"""Numbers for the datasets' datasheets (``notebooks/datasheets.ipynb``), in the spirit of the STANDING Together
recommendations for health datasets: who is in a dataset, by the attributes it records, and how many.

Every function takes a subject table (one row per subject: the ``subjects`` of a
:class:`~cmrlib.data.pipeline.Data`, or a manifest reduced to subjects with :func:`subjects_of`), so the same code
describes the synthetic cohort and any real dataset read through an adapter.
"""
from __future__ import annotations

import pandas as pd

from cmrlib.evaluation.report import MISSING, mean_sd


def subjects_of(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per subject of a manifest (its first frame's row)."""
    return manifest.drop_duplicates("subject_id").reset_index(drop=True)


def composition(subjects: pd.DataFrame, group_col: str, by: str | None = "sex", split_col: str | None = "split",
                groups=None) -> pd.DataFrame:
    """Subjects per group (rows) and per value of ``by`` within each split (columns), with totals; a group or
    column absent from the data shows 0. Without ``split_col`` (or where the table has none) the whole set is
    one column group, ``all``."""
    d = subjects.assign(_split=subjects[split_col] if split_col and split_col in subjects else "all")
    keys = ["_split"] + ([by] if by and by in d else [])
    t = d.groupby([group_col] + keys).size().unstack(keys, fill_value=0)
    if groups is not None:
        t = t.reindex([g for g in groups if g in set(d[group_col])] + sorted(set(d[group_col]) - set(groups)),
                      fill_value=0)
    t.loc["all groups"] = t.sum()
    t.columns = [" · ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in t.columns]
    t["total"] = t.sum(axis=1)
    return t.rename_axis(group_col)


def measures(subjects: pd.DataFrame, group_col: str, columns=("age", "bmi"), groups=None) -> pd.DataFrame:
    """Mean (SD) of each recorded measure per group, as text; ``—`` where a dataset does not record it."""
    rows = {}
    order = [g for g in (groups or sorted(set(subjects[group_col]))) if g in set(subjects[group_col])]
    for g in order:
        d = subjects[subjects[group_col] == g]
        rows[g] = {c: mean_sd(d[c]) if c in d and d[c].notna().any() else MISSING for c in columns}
    return pd.DataFrame(rows).T.rename_axis(group_col)


def largest_share(subjects: pd.DataFrame, group_col: str) -> tuple[str, float]:
    """The most frequent group and its share of the subjects (0–1)."""
    share = subjects[group_col].value_counts(normalize=True)
    return str(share.index[0]), float(share.iloc[0])
