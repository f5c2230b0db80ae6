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

from cmrlib import ETHNICITIES, STRUCTURES
from cmrlib.data.curation import balanced_train, present_groups, split_natural
from cmrlib.data.pipeline import Data
from cmrlib.evaluation.fairness import group_table
from cmrlib.evaluation.report import experiment_scores
from cmrlib.evaluation.stats import bootstrap_mean, scheffe_vs_total, t_test
from cmrlib.runs.evidence import seeded
from cmrlib.runs.experiments import run_experiment
from cmrlib.runs.store import NotInStore
from cmrlib.studies.puyol2021.groupmodels import run_group_models
from cmrlib.studies.puyol2021.metalearning import run_fair_meta_learning
from cmrlib.studies.puyol2021.settings import settings
from cmrlib.training.methods import METHODS, training_steps

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
        return run_fair_meta_learning(natural, progress)[0]
    if name == "protected_group_models":
        s = settings(natural.params)
        return run_group_models(natural, groups_present(natural)[0], s["finetune_steps"],
                                max(1, training_steps(natural.params) - s["finetune_steps"]), progress)
    raise KeyError(f"unknown approach {name!r}; expected one of {', '.join(APPROACHES)}")


def approach_runs(natural: Data, name: str, progress: bool = False) -> dict[int, pd.DataFrame]:
    """Per-structure metrics of one approach for each training seed of ``study2021.seeds`` (trained or resumed
    where missing; inside :func:`cmrlib.runs.store.read_only`, the seeds the store holds). The split stays the
    profile's: only the training seed changes."""
    out = {}
    for k in settings(natural.params)["seeds"]:
        try:
            out[k] = run_approach(seeded(natural, k), name, progress)
        except NotInStore:
            continue
    if not out:
        raise NotInStore(f"{name}: no training seed of this approach is in the run store; run chapter 14 first")
    return out


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
    """Table 1: mean DSC (%) per frame × structure and the subject average (Avg) for each sex and each group, and
    the study's ``Total`` row: in every column the unweighted mean of the group rows (the study's Total equals the
    mean of its six group rows to ±0.005 in every column), so the majority does not dominate it; ``All subjects``
    is the subject-weighted mean, shown beside it. Avg carries a subject-level bootstrap 95 % interval (``Avg
    low``, ``Avg high``; the Total's resamples within each group). Each group's and each sex's Avg is tested
    against the mean of the group means (of the sex means, for the sexes) by Scheffé's contrast
    (:func:`cmrlib.evaluation.stats.scheffe_vs_total`, ``reference="unweighted"``), ``*`` where p < 0.01; the t-test p
    compares the row's subjects with all subjects."""
    d = per_structure[per_structure.split == "test"]
    cols = [f"{f} {s}" for f in ("ED", "ES") for s in STRUCTURES]
    wide = d.assign(col=d.frame + " " + d.structure).pivot_table(index="subject_id", columns="col", values="dsc")
    subj = experiment_scores(d, "test").set_index("subject_id")
    wide = wide.reindex(columns=cols).join(subj[["dsc", group_col, sex_col]]).rename(columns={"dsc": "Avg"})
    rows = {}
    for sex, label in (("M", "Male"), ("F", "Female")):
        rows[label] = wide[wide[sex_col] == sex]
    for g in groups:
        rows[g] = wide[wide[group_col] == g]
    p_sex = scheffe_vs_total(wide.Avg, wide[sex_col], reference="unweighted")
    in_groups = wide[wide[group_col].isin(list(groups))]
    p_grp = scheffe_vs_total(in_groups.Avg, in_groups[group_col], reference="unweighted")
    out = []
    for name, w in rows.items():
        lo, hi = bootstrap_mean(w.Avg)
        r = {"row": name, "n": len(w), **(100 * w[cols + ["Avg"]].mean()).to_dict(), "Avg low": 100 * lo,
             "Avg high": 100 * hi, "t-test p": t_test(w.Avg, wide.Avg)}
        r["Scheffé p"] = p_sex.get({"Male": "M", "Female": "F"}.get(name), np.nan) if name in ("Male", "Female") \
            else p_grp.get(name, np.nan)
        r["sig"] = "*" if r["Scheffé p"] < ALPHA else ""
        out.append(r)
    t = pd.DataFrame(out).set_index("row")
    total = t.loc[list(groups), cols + ["Avg"]].mean()
    lo, hi = bootstrap_mean_of_means([rows[g].Avg.to_numpy() for g in groups])
    t.loc["Total", cols + ["Avg"]] = total
    t.loc["Total", ["n", "Avg low", "Avg high", "sig"]] = [sum(len(rows[g]) for g in groups), 100 * lo, 100 * hi, ""]
    lo, hi = bootstrap_mean(wide.Avg)
    t.loc["All subjects", cols + ["Avg"]] = 100 * wide[cols + ["Avg"]].mean()
    t.loc["All subjects", ["n", "Avg low", "Avg high", "sig"]] = [len(wide), 100 * lo, 100 * hi, ""]
    t["n"] = t.n.astype(int)
    return t.reindex(["Total", "All subjects", *rows])


def bootstrap_mean_of_means(samples, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the unweighted mean of several samples' means, each resampled within
    itself (scipy.stats.bootstrap over several independent samples)."""
    from scipy.stats import bootstrap
    xs = [np.asarray(x, float) for x in samples if len(x) >= 1]
    if any(len(x) < 2 for x in xs):
        return float("nan"), float("nan")
    r = bootstrap(tuple(xs), lambda *a, axis: np.mean([v.mean(axis=axis) for v in a], axis=0), n_resamples=n_boot,
                  confidence_level=level, method="percentile", random_state=np.random.default_rng(seed),
                  vectorized=True)
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


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


def share_vs_accuracy(table1: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Each group's training share (%) beside its mean DSC (%) from Table 1."""
    g = [x for x in counts.index if x in table1.index]
    return pd.DataFrame({"train share (%)": counts.loc[g, "train share (%)"], "Avg DSC (%)": table1.loc[g, "Avg"]})


def table2(scores_by_approach: dict, group_col: str, groups, seed: int = 0) -> pd.DataFrame:
    """Table 2 in the study's units: :func:`cmrlib.evaluation.fairness.group_table` against the baseline, with the group
    means, their average and SD (with intervals) in % DSC; SER is a ratio and stays as it is. Scores may be
    given per training seed (``{seed: scores}``, :func:`approach_runs`)."""
    t = group_table(scores_by_approach, group_col, groups, reference="baseline", seed=seed)
    pct = [c for c in t.columns if "SER" not in c and c != "seeds"]
    t[pct] = 100 * t[pct]
    return t
