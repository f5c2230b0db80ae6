"""The 2022 study (Lee et al. 2022) on the book's cohort: training sets whose make-up is swept in steps of a
quarter, with sex or race held balanced, one fixed balanced test set per experiment (chapter 15), and the
clinical measures of chapter 16.

Three experiments (§2.1): (1) the female share 0–100 % with Black/White held 50/50; (2) the Black share 0–100 %
with sex held 50/50; (3) the Asian share 0–100 % with sex held 50/50. Every point is an ordinary run of the
store, trained once per seed of the profile (``study2022.seeds``), or as a k-fold ensemble where
``study2022.folds`` > 1 (:mod:`cmrlib.studies.lee2022.ensemble`). Settings come from the profile's ``study2022`` section
(:data:`DEFAULTS`, the paper's sizes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib.data.curation import proportion_split
from cmrlib.data.pipeline import Data, with_training
from cmrlib.evaluation.report import experiment_scores
from cmrlib.evaluation.stats import bootstrap_gap, mann_whitney
from cmrlib.evaluation.verdicts import Estimate
from cmrlib.runs.evidence import Evidence
from cmrlib.runs.experiments import run_experiment
from cmrlib.runs.measures import method_errors
from cmrlib.studies.lee2022.ensemble import run_ensemble
from cmrlib.training.methods import METHODS

DEFAULTS = {"n_train": 176, "n_test": 84, "shares": [0.0, 0.25, 0.5, 0.75, 1.0], "seeds": [0], "folds": 1,
            "compare_folds": 5, "min_cell": 5}
EXPERIMENTS = {
    1: dict(attr="sex", pair=("F", "M"), control="ethnicity", control_pair=("Black", "White"),
            names=("Female", "Male")),
    2: dict(attr="ethnicity", pair=("Black", "White"), control="sex", control_pair=("F", "M"),
            names=("Black", "White")),
    3: dict(attr="ethnicity", pair=("Asian", "White"), control="sex", control_pair=("F", "M"),
            names=("Asian", "White")),
}
PAPER = "data_manifest/paper_tables/lee2022.csv"


def settings(params: dict) -> dict:
    s = {**DEFAULTS, **(params.get("study2022") or {})}
    s["shares"] = [float(x) for x in s["shares"]]
    s["seeds"] = [int(x) for x in s["seeds"]]
    return s


def point_data(data: Data, exp: int, share: float) -> Data:
    """The training and test sets of one point of an experiment (:func:`cmrlib.data.curation.proportion_split`)."""
    e, s = EXPERIMENTS[exp], settings(data.params)
    split = proportion_split(data.cache.subjects, e["attr"], e["pair"], share, e["control"], e["control_pair"],
                             s["n_train"], s["n_test"], data.params["seed"],
                             site="internal" if "site" in data.cache.subjects else None)
    return Data(data.cache, split, data.params)


def point_name(exp: int, share: float) -> str:
    return f"lee2022_exp{exp}_{int(round(100 * share)):03d}"


def run_point(data: Data, exp: int, share: float, seed: int, progress: bool = False) -> pd.DataFrame:
    """Per-structure metrics of one point and seed: a single model, or a k-fold ensemble (``folds`` > 1)."""
    d = with_training(point_data(data, exp, share), {"seed": int(seed)})
    name = point_name(exp, share)
    k = settings(data.params)["folds"]
    if k > 1:
        return run_ensemble(d, name, k, progress)
    return run_experiment(d, name, METHODS["baseline"], progress)


def sweep(data: Data, experiments=(1, 2, 3), progress: bool = False) -> pd.DataFrame:
    """Subject-level DSC on each experiment's test set for every point and seed (columns ``exp``, ``share``,
    ``seed``, ``dsc``, the subject's columns), and the per-structure table as ``attrs["per_structure"]``."""
    s = settings(data.params)
    subj, per = [], []
    for exp in experiments:
        for share in s["shares"]:
            for seed in s["seeds"]:
                ps = run_point(data, exp, share, seed, progress)
                ps = ps[ps.split == "test"].assign(exp=exp, share=share, seed=seed)
                per.append(ps)
                subj.append(experiment_scores(ps, "test").assign(exp=exp, share=share, seed=seed))
    out = pd.concat(subj, ignore_index=True)
    out.attrs["per_structure"] = pd.concat(per, ignore_index=True)
    return out


def table2(scores: pd.DataFrame) -> pd.DataFrame:
    """Table 2: per experiment and training share, the median DSC of each protected group and of all test
    subjects (the median over seeds of each seed's median), with the range over seeds."""
    rows = []
    for (exp, share), d in scores.groupby(["exp", "share"]):
        e = EXPERIMENTS[exp]
        row = {"exp": exp, "share (%)": 100 * share}
        for value, name in [*zip(e["pair"], e["names"]), (None, "All")]:
            per_seed = [(g if value is None else g[g[e["attr"]] == value]).dsc.median() for _, g in d.groupby("seed")]
            row[name] = float(np.median(per_seed))
            row[f"{name} seed range"] = float(np.ptp(per_seed)) if len(per_seed) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_evidence(scores: pd.DataFrame, exp: int, col: str, groups, within: tuple | None = None,
                   structure: str | None = None, seed: int = 0, n_boot: int = 2000) -> Evidence:
    """The evidence of one experiment (:class:`cmrlib.runs.evidence.Evidence`): every share's subject DSC per seed on
    the experiment's test set (experiment names are the shares in %, e.g. ``"25"``), the subjects grouped by
    ``col`` into ``groups`` (a statistic's group 0 and 1), optionally only those with ``within = (column,
    value)``, and optionally one ``structure``'s DSC (mean of the frames). Each subject counts once: seeds are
    pooled on one subject bootstrap, never as extra subjects."""
    d = scores[scores.exp == exp]
    if structure is not None:
        per = scores.attrs["per_structure"]
        per = per[(per.exp == exp) & (per.structure == structure)]
        d = pd.concat([experiment_scores(g, "test").assign(share=sh, seed=sd)
                       for (sh, sd), g in per.groupby(["share", "seed"])], ignore_index=True)
    if within is not None:
        d = d[d[within[0]] == within[1]]
    runs = {share_key(sh): {int(sd): g for sd, g in by.groupby("seed")} for sh, by in d.groupby("share")}
    subjects = d.drop_duplicates("subject_id")
    return Evidence.from_scores(runs, subjects, col, list(groups), n_boot=n_boot, seed=seed)


def structure_evidence(scores: pd.DataFrame, exp: int, col: str, groups, seed: int = 0,
                       n_boot: int = 2000) -> Evidence:
    """As :func:`sweep_evidence`, with one experiment per structure and share, named ``"<structure>:<share>"``
    (e.g. ``"LVM:25"``), all on one subject bootstrap, so differences between structures are paired."""
    per = scores.attrs["per_structure"]
    per = per[per.exp == exp]
    runs = {}
    for (k, sh, sd), g in per.groupby(["structure", "share", "seed"]):
        runs.setdefault(f"{k}:{share_key(sh)}", {})[int(sd)] = experiment_scores(g, "test")
    subjects = scores[scores.exp == exp].drop_duplicates("subject_id")
    return Evidence.from_scores(runs, subjects, col, list(groups), n_boot=n_boot, seed=seed)


def share_key(share: float) -> str:
    """An experiment's name in :func:`sweep_evidence`: the share in % (``0.25`` → ``"25"``)."""
    return f"{100 * float(share):g}"


def within_sex(scores: pd.DataFrame, exp: int, share: float, seed: int = 0,
               n_boot: int = 2000) -> list[tuple[str, Estimate]]:
    """Table 3's comparison (the study's Experiment 1): the race pair's median DSC difference within each sex at
    one share, as (sex, estimate of first race − second race); Experiment 1 compares Black with White, 2 and 3
    their own race pair."""
    e = EXPERIMENTS[exp]
    race = e["control_pair"] if e["attr"] == "sex" else e["pair"]
    sexes = e["pair"] if e["attr"] == "sex" else e["control_pair"]
    out = []
    for sex in sexes:
        ev = sweep_evidence(scores, exp, "ethnicity", race, within=("sex", sex), seed=seed, n_boot=n_boot)
        out.append((sex, ev.estimate(lambda m: m[..., 0] - m[..., 1], share_key(share))))
    return out


def intersectional(scores: pd.DataFrame, min_cell: int = 5, seed: int = 0) -> pd.DataFrame:
    """Table 3 as the study compares it: per experiment, share and sex, the median DSC of each race of the
    experiment's race pair (the median over seeds of each seed's median; Experiment 1: Black and White), the
    difference with its subject-level bootstrap 95 % interval (seeds pooled on one bootstrap), the Mann–Whitney p
    of the subjects' DSC averaged over seeds (every subject counted once) and Holm's correction of those p over the
    whole table; cells with fewer than ``min_cell`` subjects are flagged."""
    rows = []
    for (exp, share), d in scores.groupby(["exp", "share"]):
        e = EXPERIMENTS[exp]
        race = e["control_pair"] if e["attr"] == "sex" else e["pair"]
        per_subject = d.groupby(["subject_id", "sex", "ethnicity"], as_index=False).dsc.mean()
        for sex, est in within_sex(scores, exp, share, seed):
            a, b = (per_subject[(per_subject.sex == sex) & (per_subject.ethnicity == r)].dsc for r in race)
            med = {r: float(np.median([g[(g.sex == sex) & (g.ethnicity == r)].dsc.median()
                                       for _, g in d.groupby("seed")])) for r in race}
            rows.append({"exp": exp, "share (%)": 100 * share, "within": sex, "group 1": race[0],
                         "median 1": med[race[0]], "n 1": a.size, "group 2": race[1], "median 2": med[race[1]],
                         "n 2": b.size, "difference": est.point, "low": est.low, "high": est.high,
                         "seeds": est.seeds, "p": mann_whitney(a, b)[1], "too small": min(a.size, b.size) < min_cell})
    t = pd.DataFrame(rows)
    t["p (Holm)"] = holm(t.p.to_numpy())
    t["sig"] = np.where(t["p (Holm)"] < 0.05, "*", "")
    return t


def table3_beside_paper(t3: pd.DataFrame) -> pd.DataFrame:
    """Table 3, ours beside the study's: per experiment, share and sex, both races' median DSC and the marks
    (the study marks Experiment 1 only)."""
    p = paper_table("3").assign(share=lambda d: d.share.astype(float))
    rows = []
    for _, r in t3.iterrows():
        q = p[(p.exp == r.exp) & (p.share == r["share (%)"]) & (p.within == r.within)].set_index("group")
        rows.append({"exp": r.exp, "share (%)": r["share (%)"], "sex": r.within, "races": f"{r['group 1']} / {r['group 2']}",
                     "ours 1": r["median 1"], "ours 2": r["median 2"], "ours sig": r.sig,
                     "study 1": q.value.get(r["group 1"], np.nan), "study 2": q.value.get(r["group 2"], np.nan),
                     "study sig": "".join(str(x) for x in q.sig.fillna("") if str(x) not in ("", "nan"))})
    return pd.DataFrame(rows)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down correction of a family of p-values (NaN left as NaN): controls the chance of any false
    positive across the family without assuming the tests independent. Written here because scipy offers only
    the Benjamini–Hochberg false discovery rate (``scipy.stats.false_discovery_control``), a weaker guarantee."""
    p = np.asarray(p, float)
    ok = ~np.isnan(p)
    q = np.full_like(p, np.nan)
    m = int(ok.sum())
    order = np.argsort(p[ok])
    adj = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    q_ok = np.empty(m)
    q_ok[order] = np.minimum(adj, 1.0)
    q[ok] = q_ok
    return q


def paper_table(table: str) -> pd.DataFrame:
    """The study's Table 2 or 3 (long: table, exp, share, group, within, value, sig)."""
    df = pd.read_csv(PAPER, comment="#", dtype={"table": str})
    return df[df.table == str(table)].drop(columns="table")


def beside_paper(t2: pd.DataFrame, exp: int) -> pd.DataFrame:
    """Table 2 for one experiment: our medians beside the study's, one row per training share."""
    names = [*EXPERIMENTS[exp]["names"], "All"]
    ours = t2[t2.exp == exp].set_index("share (%)")[names]
    p = paper_table("2")
    p = p[p.exp == exp].assign(share=lambda d: d.share.astype(float)).pivot(index="share", columns="group", values="value")
    return pd.concat({"ours": ours, "study": p.reindex(index=ours.index, columns=names)}, axis=1)


def structure_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3: median DSC per experiment, share, structure and protected group (seeds and frames pooled)."""
    per = scores.attrs["per_structure"]
    rows = []
    for exp, d in per.groupby("exp"):
        e = EXPERIMENTS[exp]
        t = d.groupby(["share", "structure", e["attr"]]).dsc.median().rename("dsc").reset_index()
        t = t.rename(columns={e["attr"]: "group"})
        t["group"] = t.group.map(dict(zip(e["pair"], e["names"])))
        rows.append(t.assign(exp=exp))
    return pd.concat(rows, ignore_index=True)


def point_errors(data: Data, exp: int, share: float, seed: int, progress: bool = False) -> pd.DataFrame:
    """Clinical-measure errors of one sweep point's single model on its test set
    (:func:`cmrlib.runs.measures.method_errors`); with ``folds`` > 1 that model is trained here besides the ensemble."""
    d = with_training(point_data(data, exp, share), {"seed": int(seed)})
    return method_errors(d, [point_name(exp, share)], progress, method=METHODS["baseline"]).assign(
        exp=exp, share=share, seed=seed)


def ensemble_comparison(data: Data, exp: int = 2, share: float | None = None, progress: bool = False) -> pd.DataFrame:
    """One point of an experiment (by default the middle of the profile's shares) as a single model and as a
    ``compare_folds``-fold ensemble: median DSC per group, the gap between them, and its bootstrap interval;
    the share as ``attrs["share"]``."""
    e, s = EXPERIMENTS[exp], settings(data.params)
    share = s["shares"][len(s["shares"]) // 2] if share is None else share
    d = with_training(point_data(data, exp, share), {"seed": s["seeds"][0]})
    runs = {"single model": run_experiment(d, point_name(exp, share), METHODS["baseline"], progress),
            f"{s['compare_folds']}-fold ensemble": run_ensemble(d, point_name(exp, share), s["compare_folds"], progress)}
    rows = []
    for label, ps in runs.items():
        sc = experiment_scores(ps, "test")
        a, b = (sc.loc[sc[e["attr"]] == g, "dsc"] for g in e["pair"])
        lo, hi = bootstrap_gap(b, a, seed=data.params["seed"])
        rows.append({"model": label, e["names"][0]: a.median(), e["names"][1]: b.median(),
                     "gap": b.median() - a.median(), "gap low": lo, "gap high": hi})
    out = pd.DataFrame(rows).set_index("model")
    out.attrs["share"] = share
    return out


def design_table(data: Data) -> pd.DataFrame:
    """Per experiment and share: training subjects of each swept group, how each splits over the held
    attribute, and the test subjects."""
    rows = []
    for exp, e in EXPERIMENTS.items():
        for share in settings(data.params)["shares"]:
            s = point_data(data, exp, share).subjects
            tr = s[s.split == "train"]
            row = {"exp": exp, "share (%)": 100 * share}
            for k, (a, name) in enumerate(zip(e["pair"], e["names"]), 1):
                sub = tr[tr[e["attr"]] == a]
                row[f"group {k}"] = name
                row[f"train {k}"] = len(sub)
                row[f"held {k}"] = " / ".join(f"{c} {int((sub[e['control']] == c).sum())}" for c in e["control_pair"])
            row["test"] = int((s.split == "test").sum())
            rows.append(row)
    return pd.DataFrame(rows)
