"""The 2022 study (Lee et al. 2022) on the book's cohort: training sets whose make-up is swept in steps of a
quarter, with sex or race held balanced, one fixed balanced test set per experiment (chapter 15), and the
clinical measures of chapter 16.

Three experiments (§2.1): (1) the female share 0–100 % with Black/White held 50/50; (2) the Black share 0–100 %
with sex held 50/50; (3) the Asian share 0–100 % with sex held 50/50. Every point is an ordinary run of the
store, trained once per seed of the profile (``study2022.seeds``), or as a k-fold ensemble where
``study2022.folds`` > 1 (:mod:`cmrlib.ensemble`). Settings come from the profile's ``study2022`` section
(:data:`DEFAULTS`, the paper's sizes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.curation import proportion_split
from .experiments import run_experiment
from .methods import METHODS
from .pipeline import Data, with_training
from .report import experiment_scores
from .stats import mann_whitney

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
        from .ensemble import run_ensemble
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


def intersectional(scores: pd.DataFrame, min_cell: int = 5) -> pd.DataFrame:
    """Table 3: per experiment and share, the median DSC of each cell of the two attributes with its n (seeds
    pooled), the Mann–Whitney p between the swept attribute's two groups within each level of the other, and
    Holm's correction of those p over the whole table; cells with fewer than ``min_cell`` subjects are flagged."""
    rows = []
    for (exp, share), d in scores.groupby(["exp", "share"]):
        e = EXPERIMENTS[exp]
        for c in e["control_pair"]:
            a = d[(d[e["control"]] == c) & (d[e["attr"]] == e["pair"][0])].dsc
            b = d[(d[e["control"]] == c) & (d[e["attr"]] == e["pair"][1])].dsc
            n_a, n_b = a.size // max(1, d.seed.nunique()), b.size // max(1, d.seed.nunique())
            rows.append({"exp": exp, "share (%)": 100 * share, "within": c, "group 1": e["pair"][0],
                         "median 1": a.median(), "n 1": n_a, "group 2": e["pair"][1], "median 2": b.median(),
                         "n 2": n_b, "p": mann_whitney(a, b)[1], "too small": min(n_a, n_b) < min_cell})
    t = pd.DataFrame(rows)
    t["p (Holm)"] = holm(t.p.to_numpy())
    t["sig"] = np.where(t["p (Holm)"] < 0.05, "*", "")
    return t


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


def verdicts(t2: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The study's three claims on the sweeps: no sex bias overall at any share (Experiment 1); the minority's
    DSC rises with its share (Experiments 2–3); the best overall DSC is not at 50/50."""
    out = {}
    e1 = scores[scores.exp == 1]
    sig = [100 * s for s, d in e1.groupby("share") if mann_whitney(d[d.sex == "F"].dsc, d[d.sex == "M"].dsc)[1] < 0.05]
    out["no_sex_bias"] = ("reproduced: women and men do not differ significantly at any share" if not sig else
                          "not reproduced: women and men differ significantly (p < 0.05) at share(s) "
                          + ", ".join(f"{x:.0f} %" for x in sig))
    for exp in (2, 3):
        name = EXPERIMENTS[exp]["names"][0]
        d = t2[t2.exp == exp].sort_values("share (%)")
        rises = bool(np.all(np.diff(d[name].to_numpy()) >= 0))
        first, last = d[name].iloc[0], d[name].iloc[-1]
        out[f"rises_{exp}"] = (f"reproduced: the {name} median rises at every step" if rises else
                               f"partly reproduced: the {name} median is higher at 100 % than at 0 % but not at every step"
                               if last > first else f"not reproduced: the {name} median does not rise with its share")
        best = d.loc[d.All.idxmax(), "share (%)"]
        out[f"best_{exp}"] = (f"reproduced: the best overall median is at {best:.0f} % {name}, a mixed set other than 50/50"
                              if 0 < best < 100 and best != 50 else
                              "not reproduced: the best overall median is at the 50/50 split" if best == 50 else
                              f"not reproduced: the best overall median is at {best:.0f} % {name}, a set of one group only")
    return out


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
    (:func:`cmrlib.clinical.method_errors`); with ``folds`` > 1 that model is trained here besides the ensemble."""
    from .clinical import method_errors
    d = with_training(point_data(data, exp, share), {"seed": int(seed)})
    return method_errors(d, [point_name(exp, share)], progress, method=METHODS["baseline"]).assign(
        exp=exp, share=share, seed=seed)


def ensemble_comparison(data: Data, exp: int = 2, share: float | None = None, progress: bool = False) -> pd.DataFrame:
    """One point of an experiment (by default the middle of the profile's shares) as a single model and as a
    ``compare_folds``-fold ensemble: median DSC per group, the gap between them, and its bootstrap interval;
    the share as ``attrs["share"]``."""
    from .ensemble import run_ensemble
    from .stats import bootstrap_gap
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
