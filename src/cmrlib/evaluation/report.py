"""Paper-style tables: per-group median and IQR of DSC and HD, fairness gap, SER and Mann–Whitney p
(Lee et al. 2025 Tables 4–9), and the one-row-per-experiment-×-group ``summary.csv`` of ``cmrlib run``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cmrlib.evaluation.fairness import fairness_summary, median_table
from cmrlib.evaluation.metrics import subject_scores
from cmrlib.evaluation.stats import anova, mann_whitney, t_test
from cmrlib.files import write_atomic

MISSING = "—"      # shown where a value does not apply (a table cell, a missing SD)


def iqr(x) -> float:
    q1, q3 = np.percentile(np.asarray(x, float), [25, 75])
    return float(q3 - q1)


def group_stats(scores: pd.DataFrame, group_col: str, groups=None) -> pd.DataFrame:
    """n, median and IQR of DSC and HD per group (subject-level scores)."""
    rows = []
    for g, d in scores.groupby(group_col):
        rows.append(dict(group=g, n=len(d), dsc_median=d.dsc.median(), dsc_iqr=iqr(d.dsc),
                         hd_median=d.hd.median(), hd_iqr=iqr(d.hd)))
    out = pd.DataFrame(rows).set_index("group")
    return out.reindex([g for g in (groups or out.index) if g in out.index])


def experiment_scores(per_structure: pd.DataFrame, split: str = "test", frames=("ED", "ES")) -> pd.DataFrame:
    d = per_structure[per_structure.split == split] if "split" in per_structure else per_structure
    return subject_scores(d, frames)


def summary_table(results: dict[str, pd.DataFrame], group_col: str, advantaged: str, other: str,
                  groups=None, split: str = "test") -> pd.DataFrame:
    """One row per experiment × group: n, median/IQR of DSC and HD, and the experiment's FG, SER and p."""
    rows = []
    for name, per in results.items():
        sc = experiment_scores(per, split)
        fair = fairness_summary(sc, group_col, advantaged, other)
        gs = group_stats(sc, group_col, groups)
        for g, r in gs.iterrows():
            rows.append(dict(experiment=name, split=split, group=g, **r.to_dict(), **fair))
    return pd.DataFrame(rows)


def write_summary(results: dict[str, pd.DataFrame], params: dict, path: str | Path) -> pd.DataFrame:
    cur = params["curation"]
    df = summary_table(results, cur.get("group_col", "ethnicity"), cur.get("advantaged", "White"),
                       cur.get("minority", "Black"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, df.to_csv(index=False))     # a reader never sees half a summary
    return df


def paper_style(scores: pd.DataFrame, group_col: str, advantaged: str, other: str, seed: int = 0) -> pd.DataFrame:
    """The layout of the paper's Table 4 for one experiment: rows are measures, columns the two groups; SER and
    the fairness gap with the bounds of their subject-level bootstrap 95 % intervals
    (:func:`cmrlib.evaluation.fairness.median_table`)."""
    gs = group_stats(scores, group_col, [advantaged, other])
    fair = fairness_summary(scores, group_col, advantaged, other)
    ci = median_table({"x": scores}, group_col, advantaged, other, seed=seed).iloc[0]
    t = pd.DataFrame({g: [gs.loc[g, "dsc_median"], gs.loc[g, "dsc_iqr"], gs.loc[g, "hd_median"], gs.loc[g, "hd_iqr"]]
                      for g in (advantaged, other)},
                     index=["Median DSC", "IQR DSC", "Median HD (mm)", "IQR HD (mm)"])
    rows = {"SER": fair["ser"], "SER 95 % low": ci["SER low"], "SER 95 % high": ci["SER high"],
            "Fairness gap": fair["fg"], "FG 95 % low": ci["FG low"], "FG 95 % high": ci["FG high"],
            "Mann–Whitney p": fair["p"]}
    extra = pd.DataFrame({advantaged: list(rows.values()), other: [np.nan] * len(rows)}, index=list(rows))
    return pd.concat([t, extra])


def load_paper_table(path: str | Path, table: str, method: str) -> pd.DataFrame:
    """The paper's values for one method of one table, as rows × groups (from data_manifest/paper_tables)."""
    df = pd.read_csv(path, comment="#", dtype={"table": str})
    d = df[(df.table == str(table)) & (df.method == method)]
    if d.empty:
        raise KeyError(f"{path}: no rows for table {table!r}, method {method!r}")
    return d.pivot(index="measure", columns="group", values="value")


DEMOGRAPHIC_MEASURES = {"age": "Age (years)", "weight": "Weight (kg)", "height": "Height (cm)", "bmi": "Body Mass Index"}


def mean_sd(x) -> str:
    """``mean (SD)`` to one decimal; the SD shows ``—`` where it is undefined (a single subject)."""
    x = pd.Series(x, dtype=float)
    sd = x.std()
    return f"{x.mean():.1f} ({MISSING if pd.isna(sd) else format(sd, '.1f')})"


def demographics_table(subjects: pd.DataFrame, group_col: str, groups, test: str = "t") -> pd.DataFrame:
    """Mean (SD) per group beside the overall values, as the paper's Tables 1–3.

    ``test="t"``: each group against the overall set with a two-tailed Student's t-test, an asterisk on the
    cell when p < 0.05 (Table 1). ``test="anova"``: one-way ANOVA across the groups, an asterisk on the measure
    when p < 0.05 (Table 2). The p-values are returned in the ``attrs['p']`` mapping."""
    groups = [g for g in groups if (subjects[group_col] == g).any()]
    cols = {"Overall": subjects, **{g: subjects[subjects[group_col] == g] for g in groups}}
    out = {name: [str(len(d))] for name, d in cols.items()}
    index = ["n subjects"]
    pvals = {}
    for col, label in DEMOGRAPHIC_MEASURES.items():
        if col not in subjects:
            continue
        if test == "anova":
            p = anova(*[cols[g][col] for g in groups])
            pvals[col] = p
            index.append(label + (" *" if p < 0.05 else ""))
        else:
            index.append(label)
        for name, d in cols.items():
            cell = mean_sd(d[col])
            if test == "t" and name != "Overall":
                p = t_test(d[col], subjects[col])
                pvals[(col, name)] = p
                cell += "*" if p < 0.05 else ""
            out[name].append(cell)
    table = pd.DataFrame(out, index=index)
    table.attrs["p"] = pvals
    return table


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our :func:`paper_style` table with the paper's values in extra columns. Per-experiment values (SER,
    FG, p; stored under group ``all``) go in the first group's column, as the paper prints them."""
    groups = list(ours.columns)
    out = ours.rename(columns=lambda c: f"{c} (ours)")
    alias = {"Mann–Whitney p": "p"}
    for i, g in enumerate(groups):
        vals = []
        for m in ours.index:
            key = alias.get(m, m)
            v = np.nan
            if key in paper.index:
                if g in paper.columns and not pd.isna(paper.loc[key, g]):
                    v = paper.loc[key, g]
                elif i == 0 and "all" in paper.columns:
                    v = paper.loc[key, "all"]
            vals.append(v)
        out[f"{g} (paper)"] = vals
    return out


def compare_methods(results: dict[str, pd.DataFrame], paper_csv: str | Path, table: str, group_col: str,
                    advantaged: str, other: str, split: str = "test", frames=("ED", "ES"),
                    structure: str | None = None) -> pd.DataFrame:
    """Side-by-side columns of several experiments, ours beside the paper's (Lee et al. 2025 Tables 4–9, S9).

    ``frames=("ED",)`` and ``split="external"`` give the external tables; ``structure`` restricts to one
    structure (Tables S1–S3). Methods absent from the paper's table get only our columns."""
    parts = {}
    for name, per in results.items():
        if structure is not None:
            per = per[per.structure == structure]
        ours = paper_style(experiment_scores(per, split, frames), group_col, advantaged, other)
        try:
            parts[name] = beside_paper(ours, load_paper_table(paper_csv, table, name))
        except KeyError:
            parts[name] = ours.rename(columns=lambda c: f"{c} (ours)")
    return pd.concat(parts, axis=1)


def change_vs_baseline(results: dict[str, pd.DataFrame], group_col: str, groups, baseline: str = "baseline",
                       split: str = "test") -> pd.DataFrame:
    """Median DSC per group for each method minus the baseline's, with the Mann–Whitney p of each group's
    DSC against the baseline's (is the change significant?)."""
    base = experiment_scores(results[baseline], split)
    rows = []
    for name, per in results.items():
        if name == baseline:
            continue
        sc = experiment_scores(per, split)
        for g in groups:
            a, b = sc.loc[sc[group_col] == g, "dsc"], base.loc[base[group_col] == g, "dsc"]
            if len(a) and len(b):
                rows.append(dict(method=name, group=g, delta_median_dsc=a.median() - b.median(),
                                 p_vs_baseline=mann_whitney(a, b)[1]))
    return pd.DataFrame(rows)


def change_table(delta: pd.DataFrame, groups) -> pd.DataFrame:
    """:func:`change_vs_baseline`'s rows as a table: one row per group, and for each method the change of the
    median DSC (4 decimals) beside the Mann–Whitney p of the group's DSC against the baseline's (2 significant
    figures, so a small p does not print as 0)."""
    t = delta.assign(delta_median_dsc=delta.delta_median_dsc.round(4),
                     p_vs_baseline=[float(f"{p:.2g}") for p in delta.p_vs_baseline])
    t = t.rename(columns={"delta_median_dsc": "Δ median DSC", "p_vs_baseline": "p vs baseline"})
    t = t.pivot(index="group", columns="method", values=["Δ median DSC", "p vs baseline"])
    t = t.swaplevel(0, 1, axis=1)
    methods = list(dict.fromkeys(delta["method"]))
    t = t.reindex(columns=pd.MultiIndex.from_product([methods, ["Δ median DSC", "p vs baseline"]]))
    return t.reindex([g for g in groups if g in t.index])


def paper_consistency(*paths: str | Path, first: str = "White", rounding: float = 0.0005) -> pd.DataFrame:
    """Where a table of the main paper disagrees with itself: per table and method, the fairness gap and the SER
    as printed beside the range that the same table's two median DSCs allow (FG = median of ``first`` − the
    other's; SER = the larger of 1 − median over the smaller), with every printed value taken as rounded by up
    to ``rounding``. Rows whose printed value lies outside that range are kept; tables whose groups do not
    include ``first`` (Table S8: sex, age) are skipped. Several CSVs may be given."""
    df = pd.concat([pd.read_csv(p, comment="#", dtype={"table": str}) for p in paths], ignore_index=True)
    rows = []
    for (table, method), d in df.groupby(["table", "method"], sort=False):
        med = d[d.measure == "Median DSC"].set_index("group").value
        printed = d[d.group == "all"].set_index("measure").value
        if len(med) != 2 or first not in med.index:
            continue
        a, b = med[first], med.drop(first).iloc[0]
        corners = [(a + da, b + db) for da in (-rounding, rounding) for db in (-rounding, rounding)]
        ser = [max(1 - x, 1 - y) / min(1 - x, 1 - y) for x, y in corners]
        allowed = {"Fairness gap": (a - b - 2 * rounding, a - b + 2 * rounding), "SER": (min(ser), max(ser))}
        for measure, (lo, hi) in allowed.items():
            if measure in printed.index and not lo - rounding <= printed[measure] <= hi + rounding:
                rows.append(dict(table=table, method=method, measure=measure, printed=float(printed[measure]),
                                 from_medians=float(a - b if measure == "Fairness gap" else
                                                    max(1 - a, 1 - b) / min(1 - a, 1 - b))))
    return pd.DataFrame(rows, columns=["table", "method", "measure", "printed", "from_medians"])

