"""The 2021 study (Puyol-Antón et al. 2021) on the book's cohort: its curation, its five approaches as runs of
the store, its Tables 1–2 and verdicts on its claims (chapters 13–14).

The study trains on the cohort's own group mix (train / validation / test drawn at random, stratified here by
group and sex: :func:`cmrlib.data.curation.split_natural`) instead of the main paper's 1 % minority, and
compares five approaches over six groups with the SD and SER of the groups' mean DSC. Settings come from the
profile's ``study2021`` section (:data:`DEFAULTS`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import ETHNICITIES, STRUCTURES
from .data.curation import balanced_train, present_groups, split_natural
from .experiments import run_experiment
from .methods import METHODS
from .pipeline import Data
from .report import experiment_scores
from .stats import bootstrap_mean, scheffe_vs_total, spearman, t_test

# training steps of the extra phases default to shares of the profile's training.steps
DEFAULTS = {"split": {"train": 0.8, "val": 0.1, "test": 0.1}, "finetune_steps": None, "classifier_steps": None,
            "joint_steps": None, "meta_weight": 0.1, "classifier_lr": 1e-3, "sex_margin": 0.01}
ALPHA = 0.01          # the study's significance threshold (Table 1)
APPROACHES = {        # run name → the study's name for it (Table 2, in its order)
    "baseline": "Baseline – fairness through unawareness",
    "stratified": "1. Stratified batch sampling",
    "fair_meta_learning": "2. Fair meta-learning for segmentation",
    "protected_group_models": "3. Protected group models",
    "balanced_database": "Comparative approach – balanced database",
}
SHORT = {"baseline": "the baseline", "stratified": "stratified batch sampling",
         "fair_meta_learning": "fair meta-learning", "protected_group_models": "protected-group models",
         "balanced_database": "the balanced database"}
NEEDS_GROUP_AT_INFERENCE = ("protected_group_models",)
PAPER = "data_manifest/paper_tables/puyol2021.csv"


def settings(params: dict) -> dict:
    """The profile's ``study2021`` section with defaults: fine-tuning and joint training take half the
    profile's training steps (the first phase the other half, so every approach trains its segmenter for the
    same number of steps, as the study's 500 + 500 epochs against 1,000), the classifier's own phase as many."""
    s = {**DEFAULTS, **(params.get("study2021") or {})}
    steps = int(params["training"]["steps"])
    for k, share in (("finetune_steps", 0.5), ("classifier_steps", 1.0), ("joint_steps", 0.5)):
        s[k] = int(s[k]) if s[k] is not None else max(1, int(steps * share))
    return s


def natural_data(data: Data) -> Data:
    """The cohort split as the study splits it (its own group mix in every split), with the cache of ``data``."""
    subjects = data.cache.subjects
    site = "internal" if "site" in subjects and (subjects["site"] == "internal").any() else None
    split = split_natural(subjects, settings(data.params)["split"], data.params["seed"], data.group_col, site=site)
    return Data(data.cache, split, data.params)


def balanced_data(natural: Data) -> Data:
    """The study's balanced database: every group and sex with as many training subjects as the smallest."""
    return Data(natural.cache, balanced_train(natural.subjects, natural.params["seed"], natural.group_col),
                natural.params)


def groups_present(data: Data) -> tuple[list, list]:
    """The six groups with training subjects, and those missing (the chapters go on without them)."""
    return present_groups(data.subjects[data.subjects.split == "train"], data.group_col, ETHNICITIES)


def run_approach(natural: Data, name: str, progress: bool = False) -> pd.DataFrame:
    """Per-structure metrics of one approach of :data:`APPROACHES` on the study's split."""
    if name in ("baseline", "stratified"):
        return run_experiment(natural, name, METHODS[name], progress)
    if name == "balanced_database":
        return run_experiment(balanced_data(natural), name, METHODS["baseline"], progress)
    if name == "fair_meta_learning":
        from .metalearning import run_fair_meta_learning
        return run_fair_meta_learning(natural, progress)[0]
    if name == "protected_group_models":
        from .groupmodels import run_group_models
        s = settings(natural.params)
        return run_group_models(natural, groups_present(natural)[0], s["finetune_steps"],
                                max(1, int(natural.params["training"]["steps"]) - s["finetune_steps"]), progress)
    raise KeyError(f"unknown approach {name!r}; expected one of {', '.join(APPROACHES)}")


def split_counts(data: Data, fractions: dict | None = None) -> pd.DataFrame:
    """Subjects per group (rows) and split (columns), with the training share of each group; with
    ``fractions``, of the split those fractions would give instead."""
    subjects = data.subjects
    if fractions is not None:
        site = "internal" if "site" in data.cache.subjects and (data.cache.subjects.site == "internal").any() else None
        subjects = split_natural(data.cache.subjects, fractions, data.params["seed"], data.group_col, site=site)
    s = subjects[subjects.split.isin(["train", "val", "test"])]
    t = pd.crosstab(s[data.group_col], s.split).reindex(columns=["train", "val", "test"], fill_value=0)
    t["train share (%)"] = 100 * t["train"] / t["train"].sum()
    return t.reindex([g for g in ETHNICITIES if g in t.index])


def dice_table(per_structure: pd.DataFrame, group_col: str, groups, sex_col: str = "sex") -> pd.DataFrame:
    """Table 1: mean DSC (%) per frame × structure and the subject average (Avg) for the whole test set, each
    sex and each group, with Avg's subject-level bootstrap 95 % interval (``Avg low``, ``Avg high``), the
    unpaired t-test of each row's Avg against the whole test set, Scheffé's p for the same comparison
    (:func:`cmrlib.stats.scheffe_vs_total`, within sexes and within groups), and ``*`` where Scheffé's p < 0.01."""
    d = per_structure[per_structure.split == "test"]
    cols = [f"{f} {s}" for f in ("ED", "ES") for s in STRUCTURES]
    wide = d.assign(col=d.frame + " " + d.structure).pivot_table(index="subject_id", columns="col", values="dsc")
    subj = experiment_scores(d, "test").set_index("subject_id")
    wide = wide.reindex(columns=cols).join(subj[["dsc", group_col, sex_col]]).rename(columns={"dsc": "Avg"})
    rows = {"Total": wide}
    for sex, label in (("M", "Male"), ("F", "Female")):
        rows[label] = wide[wide[sex_col] == sex]
    for g in groups:
        rows[g] = wide[wide[group_col] == g]
    p_sex = scheffe_vs_total(wide.Avg, wide[sex_col])
    p_grp = scheffe_vs_total(wide.Avg, wide[group_col])
    out = []
    for name, w in rows.items():
        lo, hi = bootstrap_mean(w.Avg)
        r = {"row": name, "n": len(w), **(100 * w[cols + ["Avg"]].mean()).to_dict(), "Avg low": 100 * lo,
             "Avg high": 100 * hi}
        if name != "Total":
            r["t-test p"] = t_test(w.Avg, wide.Avg)
            r["Scheffé p"] = p_sex.get({"Male": "M", "Female": "F"}.get(name), np.nan) if name in ("Male", "Female") \
                else p_grp.get(name, np.nan)
            r["sig"] = "*" if r["Scheffé p"] < ALPHA else ""
        out.append(r)
    return pd.DataFrame(out).set_index("row")


def beside_paper(table1: pd.DataFrame) -> pd.DataFrame:
    """Table 1's average column and significance marks, ours beside the study's."""
    paper = paper_table("1")
    marks = paper.get("significant", pd.Series(dtype=float)).map({1.0: "*"}).reindex(table1.index).fillna("")
    return pd.DataFrame({"n": table1.n, "Avg (ours)": table1.Avg, "sig (ours)": table1.get("sig", "").fillna(""),
                         "Avg (study)": paper.Avg.reindex(table1.index), "sig (study)": marks})


def paper_table(table: str) -> pd.DataFrame:
    """The study's Table 1 (rows × measures) or Table 2 (approaches × groups, Avg, SD, SER)."""
    df = pd.read_csv(PAPER, comment="#", dtype={"table": str})
    d = df[df.table == str(table)]
    if table == "1":
        return d.pivot(index="row", columns="measure", values="value")
    return d.pivot(index="method", columns="row", values="value")


def paper_value(method: str, row: str, measure: str) -> float:
    """One number of the study's text (``table == "text"``)."""
    df = pd.read_csv(PAPER, comment="#", dtype={"table": str})
    return float(df[(df.table == "text") & (df.method == method) & (df.row == row) & (df.measure == measure)].value.iloc[0])


def racial_bias_verdict(table1: pd.DataFrame, groups) -> str:
    """The claim "a clear racial bias": every group of Table 1 differs from the full test set (Scheffé p < 0.01)."""
    k = int((table1.loc[list(groups), "sig"] == "*").sum())
    if k == len(groups):
        return f"reproduced: all {k} groups differ significantly from the full test set, as in the study"
    if k:
        return f"partly reproduced: {k} of {len(groups)} groups differ significantly from the full test set (all six in the study)"
    return f"not reproduced: none of the {len(groups)} groups differs significantly from the full test set"


def sex_difference(scores: pd.DataFrame, seed: int = 0, sex_col: str = "sex") -> dict:
    """Mean subject DSC of men minus women, its percentile bootstrap 95 % interval (scipy.stats.bootstrap,
    subjects resampled within each sex) and the t-test p."""
    from scipy.stats import bootstrap
    m = scores.loc[scores[sex_col] == "M", "dsc"].to_numpy()
    f = scores.loc[scores[sex_col] == "F", "dsc"].to_numpy()
    res = bootstrap((m, f), lambda a, b, axis: a.mean(axis) - b.mean(axis), n_resamples=2000, method="percentile",
                    random_state=seed, vectorized=True)
    ci = res.confidence_interval
    return dict(diff=float(m.mean() - f.mean()), low=float(ci.low), high=float(ci.high), p=t_test(m, f))


def sex_verdict(diff: dict, margin: float) -> str:
    """The claim "no significant sex bias", with an equivalence margin on the mean DSC difference."""
    if diff["p"] < ALPHA:
        return f"not reproduced: men and women differ significantly (p < {ALPHA:g})"
    if -margin < diff["low"] and diff["high"] < margin:
        return f"reproduced: no significant difference, and the interval lies within ±{margin:g} DSC"
    return (f"partly reproduced: no significant difference, but the interval reaches beyond ±{margin:g} DSC, "
            "so a difference of that size is not ruled out")


def share_vs_accuracy(table1: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Each group's training share (%) beside its mean DSC (%) from Table 1."""
    g = [x for x in counts.index if x in table1.index]
    return pd.DataFrame({"train share (%)": counts.loc[g, "train share (%)"], "Avg DSC (%)": table1.loc[g, "Avg"]})


def share_verdict(table: pd.DataFrame) -> tuple[str, float, float]:
    """The claim "accuracy tracks each group's share of the training set": Spearman's ρ over the groups."""
    rho, p = spearman(table["train share (%)"], table["Avg DSC (%)"])
    if rho > 0 and p < 0.05:
        v = "reproduced: groups with a larger training share are segmented better"
    else:
        v = "not reproduced: no significant rise of accuracy with a group's training share over these groups"
    return v, rho, p


def table2(scores_by_approach: dict, group_col: str, groups, seed: int = 0) -> pd.DataFrame:
    """Table 2 in the study's units: :func:`cmrlib.fairness.group_table` against the baseline, with the group
    means, their average and SD (with intervals) in % DSC; SER is a ratio and stays as it is."""
    from .fairness import group_table
    t = group_table(scores_by_approach, group_col, groups, reference="baseline", seed=seed)
    pct = [c for c in t.columns if "SER" not in c]
    t[pct] = 100 * t[pct]
    return t


def table2_verdicts(t2: pd.DataFrame) -> dict:
    """The study's four claims on Table 2 (:func:`cmrlib.fairness.group_table` with the baseline as
    reference), each as a verdict string."""
    base = t2.loc["baseline"]
    methods = [m for m in ("stratified", "fair_meta_learning", "protected_group_models") if m in t2.index]
    lower = [m for m in methods if t2.loc[m, "SD"] < base.SD and t2.loc[m, "SER"] < base.SER]
    sure = [m for m in lower if t2.loc[m, "ΔSD high"] < 0 and t2.loc[m, "ΔSER high"] < 0]
    out = {}
    if len(lower) == len(methods):
        out["all_reduce"] = (f"reproduced: all {len(methods)} approaches lower SD and SER; the intervals of both "
                             f"changes exclude zero for {len(sure)} of them")
    elif lower:
        out["all_reduce"] = f"partly reproduced: {' and '.join(SHORT[m] for m in lower)} lower both SD and SER, the others do not"
    else:
        out["all_reduce"] = "not reproduced: no approach lowers both SD and SER"
    best_sd, best_ser = t2.loc[methods, "SD"].idxmin(), t2.loc[methods, "SER"].idxmin()
    pg = "protected_group_models"
    out["group_models_fairest"] = ("reproduced: protected group models have the lowest SD and SER of the three approaches"
                                   if best_sd == pg and best_ser == pg else
                                   f"not reproduced: the lowest SD comes with {SHORT[best_sd]}, the lowest SER with {SHORT[best_ser]}")
    blind = [m for m in methods if m not in NEEDS_GROUP_AT_INFERENCE]
    st = "stratified"
    if st in blind and len(blind) > 1:
        others = [m for m in blind if m != st]
        wins = all(t2.loc[st, "SD"] < t2.loc[m, "SD"] and t2.loc[st, "SER"] < t2.loc[m, "SER"] for m in others)
        out["stratified_best_blind"] = ("reproduced: stratified batch sampling has lower SD and SER than fair meta-learning"
                                        if wins else "not reproduced: fair meta-learning is as fair or fairer than "
                                        "stratified batch sampling on SD or SER")
    if "balanced_database" in t2.index:
        b = t2.loc["balanced_database"]
        fairest = b.SD <= t2.SD.min() and b.SER <= t2.SER.min()
        lowest = b.Avg <= t2.Avg.min()
        out["balanced"] = ("reproduced: the balanced database is the fairest and the least accurate" if fairest and lowest
                           else "partly reproduced: the balanced database is the least accurate but not the fairest" if lowest
                           else "partly reproduced: the balanced database is the fairest but not the least accurate" if fairest
                           else "not reproduced: the balanced database is neither the fairest nor the least accurate")
    return out
