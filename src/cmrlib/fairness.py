"""Fairness metrics over per-subject scores (Lee et al. 2025 §4.8; the SD is from the 2021 study, Puyol-Antón et al. 2021).

- fairness gap FG = median DSC(advantaged group) − median DSC(other group)
- skewed error ratio SER = max_g(1 − D_g) / min_g(1 − D_g), D_g the median DSC of group g
- SD = standard deviation of the group mean DSCs
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import bootstrap_gap, mann_whitney


def group_medians(scores: pd.DataFrame, group_col: str, value: str = "dsc", groups=None) -> pd.Series:
    med = scores.groupby(group_col)[value].median()
    return med if groups is None else med.reindex(list(groups))


def fairness_gap(scores: pd.DataFrame, group_col: str, advantaged: str, other: str, value: str = "dsc") -> float:
    """Median DSC of the advantaged group minus that of the other group."""
    med = group_medians(scores, group_col, value)
    for g in (advantaged, other):
        if g not in med.index:
            raise KeyError(f"no subjects with {group_col}={g}")
    return float(med[advantaged] - med[other])


def skewed_error_ratio(scores: pd.DataFrame, group_col: str, groups=None, value: str = "dsc") -> float:
    """max over groups of (1 − median DSC) divided by the min over groups; 1 is perfectly fair."""
    med = group_medians(scores, group_col, value, groups).dropna()
    err = 1.0 - med.to_numpy()
    if len(err) < 2:
        raise ValueError("SER needs at least two groups")
    if err.min() <= 0:
        return float("inf")
    return float(err.max() / err.min())


def group_sd(scores: pd.DataFrame, group_col: str, groups=None, value: str = "dsc") -> float:
    """Standard deviation (ddof 0) of the groups' mean DSCs."""
    means = scores.groupby(group_col)[value].mean()
    if groups is not None:
        means = means.reindex(list(groups)).dropna()
    return float(np.std(means.to_numpy()))


def fairness_summary(scores: pd.DataFrame, group_col: str, advantaged: str, other: str) -> dict:
    """FG, SER (over the two groups, as Table 4) and the two-sided Mann–Whitney p on subject DSC."""
    a = scores.loc[scores[group_col] == advantaged, "dsc"]
    b = scores.loc[scores[group_col] == other, "dsc"]
    two = scores[scores[group_col].isin([advantaged, other])]
    return dict(fg=fairness_gap(scores, group_col, advantaged, other),
                ser=skewed_error_ratio(two, group_col),
                p=mann_whitney(a, b)[1])


def gap_interval(scores: pd.DataFrame, group_col: str, advantaged: str, other: str, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Subject-level percentile bootstrap interval of the fairness gap (:func:`cmrlib.stats.bootstrap_gap` on
    the two groups' DSC)."""
    a = scores.loc[scores[group_col] == advantaged, "dsc"]
    b = scores.loc[scores[group_col] == other, "dsc"]
    return bootstrap_gap(a, b, seed=seed, level=level)
