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


def bootstrap_gap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95, stat=np.median) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(a) − stat(b) (``stat``: np.median, or np.mean), each sample
    resampled on its own; NaN when either is empty."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan")
    ia = rng.integers(0, len(a), (n_boot, len(a)))
    ib = rng.integers(0, len(b), (n_boot, len(b)))
    gaps = stat(a[ia], axis=1) - stat(b[ib], axis=1)
    lo, hi = np.quantile(gaps, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_mean(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (scipy.stats.bootstrap); NaN for fewer than two values."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return float("nan"), float("nan")
    r = stats.bootstrap((x,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                        random_state=np.random.default_rng(seed))
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


def scheffe_vs_total(values, groups, reference: str = "weighted") -> dict:
    """Scheffé's test of each group's mean against the whole (Puyol-Antón et al. 2021, Table 1: each group
    against the full test set, p < 0.01 with Scheffé's post hoc correction).

    The whole is the mean of all values (``reference="weighted"``) or the unweighted mean of the group means
    (``"unweighted"``, the study's Total row). For group g the contrast is ψ = mean_g − reference = Σ_i c_i mean_i
    with c_g = 1 − w_g and c_i = −w_i otherwise (w_i = n_i/N, or 1/k unweighted); F = ψ² / (MSW Σ c_i²/n_i) / (k − 1)
    against F(k − 1, N − k), MSW the one-way ANOVA's within-group mean square. Returns group → p. Written here
    because scipy and statsmodels offer Scheffé's test only for pairs of groups, not for a group against the
    whole."""
    if reference not in ("weighted", "unweighted"):
        raise ValueError(f"reference {reference!r}: weighted or unweighted")
    v = np.asarray(values, float)
    g = np.asarray(groups)
    names = [x for x in dict.fromkeys(g.tolist())]
    n = {x: int((g == x).sum()) for x in names}
    m = {x: float(v[g == x].mean()) for x in names}
    N, k = len(v), len(names)
    if k < 2 or N <= k:
        return {x: float("nan") for x in names}
    w = {x: (n[x] / N if reference == "weighted" else 1.0 / k) for x in names}
    msw = sum(float(((v[g == x] - m[x]) ** 2).sum()) for x in names) / (N - k)
    ref = sum(w[x] * m[x] for x in names)
    out = {}
    for x in names:
        var_factor = (1 - w[x]) ** 2 / n[x] + sum(w[y] ** 2 / n[y] for y in names if y != x)
        f = (m[x] - ref) ** 2 / (msw * var_factor) / (k - 1) if msw > 0 else float("inf")
        out[x] = float(stats.f.sf(f, k - 1, N - k))
    return out


def spearman(x, y) -> tuple[float, float]:
    """Spearman's rank correlation and its two-sided p (scipy.stats.spearmanr)."""
    r = stats.spearmanr(np.asarray(x, float), np.asarray(y, float))
    return float(r.statistic), float(r.pvalue)
