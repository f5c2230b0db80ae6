"""Statistical tests used by the papers: two-sided Mann–Whitney U (Lee et al. 2025 §5), Student's t-test (Table 1),
one-way ANOVA (Table 2), and bootstrap intervals for medians and gaps. Thin wrappers over scipy.stats."""
from __future__ import annotations

import numpy as np
from scipy import stats


def mann_whitney(a, b) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test: returns (U, p)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan")
    r = stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(r.statistic), float(r.pvalue)


def t_test(a, b) -> float:
    """Two-tailed Student's t-test p-value (equal variances, as the paper's Table 1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b).pvalue)


def anova(*groups) -> float:
    """One-way ANOVA p-value across groups (Table 2); groups with fewer than two values are dropped."""
    gs = [np.asarray(g, float) for g in groups if len(g) >= 2]
    return float(stats.f_oneway(*gs).pvalue) if len(gs) >= 2 else float("nan")


def bootstrap_gap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of median(a) − median(b)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    ia = rng.integers(0, len(a), (n_boot, len(a)))
    ib = rng.integers(0, len(b), (n_boot, len(b)))
    gaps = np.median(a[ia], axis=1) - np.median(b[ib], axis=1)
    lo, hi = np.quantile(gaps, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
