"""Fairness metrics over per-subject scores (Lee et al. 2025 §4.8; the SD is from the 2021 study, Puyol-Antón et al. 2021).

- fairness gap FG = median DSC(advantaged group) − median DSC(other group)
- skewed error ratio SER = max_g(1 − D_g) / min_g(1 − D_g), D_g the median DSC of group g
- SD = sample standard deviation (ddof 1) of the group mean DSCs: the 2021 study's Table 2 values follow from its
  group means with ddof 1 (baseline 3.25; ddof 0 would give 2.97)
- the 2021 study's SER uses the group means, as its Table 2 (:func:`group_table`)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib.evaluation.stats import bootstrap_gap, mann_whitney
from cmrlib.evaluation.verdicts import Estimate


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
    """Sample standard deviation (ddof 1) of the groups' mean DSCs (Puyol-Antón et al. 2021, Table 2)."""
    means = scores.groupby(group_col)[value].mean()
    if groups is not None:
        means = means.reindex(list(groups)).dropna()
    return float(np.std(means.to_numpy(), ddof=1))


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
    """Subject-level percentile bootstrap interval of the fairness gap (:func:`cmrlib.evaluation.stats.bootstrap_gap` on
    the two groups' DSC)."""
    a = scores.loc[scores[group_col] == advantaged, "dsc"]
    b = scores.loc[scores[group_col] == other, "dsc"]
    return bootstrap_gap(a, b, seed=seed, level=level)


def group_table(scores_by_method: dict, group_col: str, groups, reference: str | None = None,
                n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The 2021 study's Table 2 (Puyol-Antón et al. 2021): per method, each group's mean subject DSC, their
    unweighted average (Avg), SD and SER over the groups, each fairness number with a subject-level percentile
    bootstrap interval; with ``reference``, the change of SD and SER against that method with its interval.
    A method's scores may be given per training seed (``{seed: scores}``): each number is then the median over
    its seeds, its interval pooled over them (:class:`GroupMeans`), and ``seeds`` counts them.

    Subjects are resampled within each group, and the same draw serves every method (the methods are scored
    on the same test subjects), so the change against the reference is a paired comparison. Written with
    numpy rather than ``scipy.stats.bootstrap``, which resamples several samples either independently or
    paired only when all have the same length; here six groups of different sizes are paired across methods."""
    gm = GroupMeans(scores_by_method, group_col, groups, n_boot=n_boot, level=level, boot_seed=seed)
    rows = []
    for m, means in gm.point.items():
        e_sd, e_ser = gm.estimate(sd, m), gm.estimate(ser, m)
        row = {"method": m, **dict(zip(gm.groups, means)), "Avg": gm.estimate(lambda x: x.mean(-1), m).point,
               "SD": e_sd.point, "SD low": e_sd.low, "SD high": e_sd.high, "SER": e_ser.point,
               "SER low": e_ser.low, "SER high": e_ser.high, "seeds": e_sd.seeds}
        if reference is not None and reference in gm.point:
            for name, f in (("ΔSD", sd), ("ΔSER", ser)):
                d = gm.estimate(lambda a, b, f=f: f(a) - f(b), m, reference)
                row[f"{name} low"], row[f"{name} high"] = d.low, d.high
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def _ser_of_two(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SER of two groups' medians, elementwise; infinite where one group has no error at all (as
    :func:`skewed_error_ratio`)."""
    hi, lo = np.maximum(1 - a, 1 - b), np.minimum(1 - a, 1 - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > 0, hi / np.where(lo > 0, lo, 1), np.inf)


def median_table(scores_by_method: dict[str, pd.DataFrame], group_col: str, advantaged: str, other: str,
                 references=(), n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Lee et al. 2025, Table 4 for several methods on the same test subjects, every fairness number with a
    subject-level percentile bootstrap interval: median DSC of both groups, FG, SER (two groups) and the
    Mann–Whitney p; for each method in ``references``, the change of FG and of the ``other`` group's median
    against it. Subjects are resampled within each group with one draw shared by every method, so changes are
    paired comparisons (as :func:`group_table`, with medians instead of means)."""
    rng = np.random.default_rng(seed)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    vals, boot = {}, {}
    for g in (advantaged, other):
        ids = sorted(set.intersection(*(set(s.loc[s[group_col] == g, "subject_id"]) for s in scores_by_method.values())))
        if not ids:
            raise ValueError(f"no {group_col}={g} test subject is scored under every method")
        draw = rng.integers(0, len(ids), (n_boot, len(ids)))
        for m, s in scores_by_method.items():
            x = s.set_index("subject_id").dsc.groupby(level=0).mean().reindex(ids).to_numpy()
            vals.setdefault(m, {})[g] = x
            boot.setdefault(m, {})[g] = np.median(x[draw], axis=1)
    rows = []
    for m, v in vals.items():
        a, b = np.median(v[advantaged]), np.median(v[other])
        fg_b = boot[m][advantaged] - boot[m][other]
        ser_b = _ser_of_two(boot[m][advantaged], boot[m][other])
        row = {"method": m, advantaged: a, other: b, "FG": a - b, "FG low": np.quantile(fg_b, q[0]),
               "FG high": np.quantile(fg_b, q[1]), "SER": float(_ser_of_two(np.array([a]), np.array([b]))[0]),
               "SER low": np.quantile(ser_b, q[0]), "SER high": np.quantile(ser_b, q[1]),
               "p": mann_whitney(v[advantaged], v[other])[1]}
        for r in references:
            if r in boot and r != m:
                ref_fg = boot[r][advantaged] - boot[r][other]
                row[f"ΔFG vs {r}"] = (a - b) - (np.median(vals[r][advantaged]) - np.median(vals[r][other]))
                row[f"ΔFG vs {r} low"], row[f"ΔFG vs {r} high"] = np.quantile(fg_b - ref_fg, q)
                row[f"Δ{other} vs {r}"] = b - np.median(vals[r][other])
                row[f"Δ{other} vs {r} low"], row[f"Δ{other} vs {r} high"] = np.quantile(boot[m][other] - boot[r][other], q)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def gap_survives(fair: dict, alpha: float = 0.05) -> str:
    """Chapter 02's check of a longer-trained baseline (:func:`fairness_summary`'s ``fg`` and ``p``)."""
    if fair["fg"] > 0 and fair["p"] < alpha:
        return "the gap survives the longer training"
    return "the gap does not survive the longer training: at this budget it is mostly under-training"


def gap_interval_text(scores: pd.DataFrame, group_col: str, advantaged: str, other: str, seed: int = 0) -> str:
    """:func:`gap_interval` as the text a chapter's prose quotes beside the gap: ``[low, high]``, three decimals."""
    lo, hi = gap_interval(scores, group_col, advantaged, other, seed=seed)
    return f"[{lo:.3f}, {hi:.3f}]"


class GroupMeans:
    """The study's statistics (each group's mean subject DSC, their SD, SER and unweighted average) for several
    approaches scored on the same test subjects, over training seeds, with one subject bootstrap shared by every
    approach and seed (subjects resampled within each group), so any contrast between groups or approaches gets a
    paired interval and seeds are pooled as in :class:`cmrlib.runs.evidence.Evidence`.

    ``scores_by_method`` maps an approach to its subject scores, or to ``{training seed: scores}``; plain scores
    are labelled with ``seed``. ``value`` names the column averaged (``dsc``; chapter 16's claims average
    clinical-measure errors); ``stat`` is ``mean`` (the 2021 study) or ``median`` (the audit's group medians).
    :meth:`estimate` returns a :class:`cmrlib.evaluation.verdicts.Estimate` (the statistic
    in each seed the approaches share, their median, and the interval of that median over the draws) for the
    rules of :mod:`cmrlib.claims.rules`. :attr:`point` and :attr:`boot` hold, per approach, the median over its
    seeds of the group means (G,) and of their draws (B, G)."""

    def __init__(self, scores_by_method: dict, group_col: str, groups, seed: int = 0, n_boot: int = 2000,
                 level: float = 0.95, boot_seed: int = 0, value: str = "dsc", stat: str = "mean"):
        runs = {m: ({int(k): v for k, v in s.items()} if isinstance(s, dict) else {int(seed): s})
                for m, s in scores_by_method.items()}
        every = [s for r in runs.values() for s in r.values()]
        if not every:
            raise ValueError("the fairness table needs the scores of at least one approach")
        self.groups = [g for g in groups if all((s[group_col] == g).any() for s in every)]
        if len(self.groups) < 2:
            raise ValueError("the fairness table needs at least two groups with test subjects under every method")
        rng = np.random.default_rng(boot_seed)
        self.level = level
        self.per_seed: dict = {m: {} for m in runs}       # approach → seed → (group means (G,), draws (B, G))
        vals = {(m, k): [] for m, r in runs.items() for k in r}
        draws = []
        for g in self.groups:
            ids = sorted(set.intersection(*(set(s.loc[s[group_col] == g, "subject_id"]) for s in every)))
            for (m, k) in vals:
                s = runs[m][k]
                vals[(m, k)].append(s.set_index("subject_id")[value].groupby(level=0).mean().reindex(ids).to_numpy())
            draws.append(rng.integers(0, len(ids), (n_boot, len(ids))))
        if stat not in ("mean", "median"):
            raise ValueError(f"stat {stat!r}: mean or median")
        agg = np.mean if stat == "mean" else np.median
        for (m, k), v in vals.items():
            self.per_seed[m][k] = (np.array([agg(x) for x in v]),
                                   np.stack([agg(x[d], axis=1) for x, d in zip(v, draws)], axis=-1))
        self.point = {m: np.median([p for p, _ in r.values()], axis=0) for m, r in self.per_seed.items()}
        self.boot = {m: np.median([b for _, b in r.values()], axis=0) for m, r in self.per_seed.items()}

    def index(self, group) -> int:
        return self.groups.index(group)

    def seeds(self, *methods: str) -> list[int]:
        """The training seeds every one of ``methods`` holds."""
        return sorted(set.intersection(*(set(self.per_seed[m]) for m in methods)))

    def estimate(self, fn, *methods: str) -> Estimate:
        """``fn`` of the approaches' group means (arrays whose last axis follows :attr:`groups`): its value in
        each shared seed, their median, and the percentile interval of the median over the shared draws."""
        common = self.seeds(*methods)
        if not common:
            raise ValueError(f"{', '.join(methods)}: no training seed common to all of them")
        per = {k: float(fn(*(self.per_seed[m][k][0] for m in methods))) for k in common}
        boot = np.median(np.stack([fn(*(self.per_seed[m][k][1] for m in methods)) for k in common]), axis=0)
        a = (1 - self.level) / 2
        lo, hi = np.nanquantile(boot, [a, 1 - a])
        return Estimate(per, float(np.median(list(per.values()))), float(lo), float(hi))

    def draws(self, method: str) -> np.ndarray:
        """The bootstrap draws of ``method``'s group means, every seed's stacked: (seeds × B, G)."""
        return np.concatenate([b for _, b in self.per_seed[method].values()])


def sd(m):
    """SD (ddof 1) of group means along the last axis (the study's Table 2)."""
    return np.std(m, axis=-1, ddof=1)


def ser(m):
    """Skewed error ratio of group means along the last axis: the largest error (1 − DSC) over the smallest."""
    err = 1.0 - m
    with np.errstate(divide="ignore", invalid="ignore"):
        return err.max(-1) / err.min(-1)
