"""Clinical measures from label maps, true or predicted (Lee et al. 2022, Fig. 4; chapter 16).

Per subject, from its ED and ES label stacks: LV and RV end-diastolic and end-systolic volumes (ml), their
ejection fractions (%), and LV mass at ED (g, myocardial volume × 1.05 g/ml). A volume is the voxel count
times the voxel volume, whose through-plane side is the slice *spacing* (the distance between slice centres),
not the slice thickness: with gaps between slices the thickness would undercount the volume.

An ejection fraction needs a non-empty end-diastolic volume; where it is empty the EF is NaN and the ``note``
column says why, instead of a division by zero.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cmrlib.evaluation.stats import bootstrap_gap

MEASURES = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF")
UNITS = {"LVEDV": "ml", "LVESV": "ml", "LVEF": "%", "LVM": "g", "RVEDV": "ml", "RVESV": "ml", "RVEF": "%"}
MYOCARDIAL_DENSITY = 1.05      # g/ml


def voxel_ml(spacing) -> float:
    """Volume of one voxel in ml from its (slice spacing, row, column) spacing in mm."""
    return float(np.prod(spacing)) / 1000.0


def cardiac_measures(ed: np.ndarray, es: np.ndarray, spacing) -> dict:
    """The seven measures of :data:`MEASURES` from ED and ES label stacks (0 background, 1 LVBP, 2 LVM, 3 RVBP)
    on a grid of ``spacing`` mm (slice spacing first), and a ``note`` naming any measure left undefined."""
    v = voxel_ml(spacing)
    return measures_from_volumes({k: (ed == k).sum() * v for k in (1, 2, 3)}, {k: (es == k).sum() * v for k in (1, 3)})


def measures_from_volumes(ed: dict, es: dict) -> dict:
    """:func:`cardiac_measures` from each label's volume in ml (label → ml) at ED (1, 2, 3) and ES (1, 3): what a
    streaming reader keeps of a case instead of its arrays."""
    out = {"LVEDV": ed[1], "LVESV": es[1], "LVM": ed[2] * MYOCARDIAL_DENSITY, "RVEDV": ed[3], "RVESV": es[3]}
    notes = []
    for side in ("LV", "RV"):
        edv, esv = out[f"{side}EDV"], out[f"{side}ESV"]
        if edv > 0:
            out[f"{side}EF"] = 100.0 * (edv - esv) / edv
        else:
            out[f"{side}EF"] = float("nan")
            notes.append(f"{side}EF undefined: no {side} blood pool at ED")
    return {**{k: float(out[k]) for k in MEASURES}, "note": "; ".join(notes)}


def measures_table(pairs) -> pd.DataFrame:
    """One row per subject from ``(subject_id, ed_label, es_label, spacing)`` tuples."""
    return pd.DataFrame([{"subject_id": sid, **cardiac_measures(ed, es, sp)} for sid, ed, es, sp in pairs])


def errors(predicted: pd.DataFrame, true: pd.DataFrame, subjects: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table of predicted − true per subject and measure, with the mean of the two (for Bland–Altman)
    and the subject's columns from ``subjects``."""
    p = predicted.set_index("subject_id")[list(MEASURES)].stack().rename("predicted")
    t = true.set_index("subject_id")[list(MEASURES)].stack().rename("true")
    d = pd.concat([p, t], axis=1).dropna().rename_axis(["subject_id", "measure"]).reset_index()
    d["error"] = d.predicted - d.true
    d["mean"] = (d.predicted + d.true) / 2
    return d.merge(subjects, on="subject_id", how="left") if subjects is not None else d


def bland_altman(err: pd.DataFrame, group_col: str) -> pd.DataFrame:
    """Per measure and group: n, bias (mean error) and the 95 % limits of agreement (bias ± 1.96 SD)."""
    g = err.groupby(["measure", group_col]).error
    t = pd.DataFrame({"n": g.size(), "bias": g.mean(), "sd": g.std(ddof=1)})
    t["loa_low"], t["loa_high"] = t.bias - 1.96 * t.sd, t.bias + 1.96 * t.sd
    return t.reindex(list(MEASURES), level=0)


def group_test(err: pd.DataFrame, group_col: str, groups) -> pd.Series:
    """Per measure, the Kruskal–Wallis p of the error across ``groups`` (the Mann–Whitney U test for two)."""
    out = {}
    for m in MEASURES:
        parts = [err.loc[(err.measure == m) & (err[group_col] == g), "error"].to_numpy() for g in groups]
        parts = [x for x in parts if len(x)]
        out[m] = float(stats.kruskal(*parts).pvalue) if len(parts) >= 2 and sum(map(len, parts)) > len(parts) \
            else float("nan")
    return pd.Series(out, name="p")


REFERENCE = "data_manifest/paper_tables/petersen2017_reference.csv"


def ef_relevance_threshold(path: str = REFERENCE) -> float:
    """The EF error (percentage points) this book calls clinically relevant: half the SD of LVEF among healthy
    UK Biobank participants (Petersen et al. 2017, men and women averaged), a shift that moves a subject half a
    healthy spread along the normal range."""
    ref = pd.read_csv(path, comment="#")
    return float(ref[ref.measure == "lvef_pct"].sd.mean() / 2)


def error_summary(err: pd.DataFrame, group_col: str, groups, threshold: float) -> pd.DataFrame:
    """Per method and measure: each group's mean error, the Kruskal–Wallis (two groups: Mann–Whitney) p between
    groups, and for the EFs whether any group's mean error exceeds ``threshold`` points."""
    rows = []
    for m, d in err.groupby("method", sort=False):
        means = d.groupby(["measure", group_col]).error.mean().unstack().reindex(columns=list(groups))
        p = group_test(d, group_col, groups)
        for meas in MEASURES:
            if meas not in means.index:
                continue
            row = {"method": m, "measure": meas, "unit": UNITS[meas], **means.loc[meas].to_dict(), "p": p[meas]}
            row["relevant"] = bool(means.loc[meas].abs().max() > threshold) if meas.endswith("EF") else None
            rows.append(row)
    return pd.DataFrame(rows)


def gap_and_error(err: pd.DataFrame, dsc_gap: dict, group_col: str, advantaged: str, minority: str,
                  threshold: float, dsc_gap_ci: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """Per method: the DSC gap (``dsc_gap``: method → advantaged − minority median DSC; ``dsc_gap_ci``: method →
    its 95 % interval, shown as ``DSC gap low/high``) beside each group's mean LVEF and RVEF error, the
    difference of the two groups' mean errors with its subject-level bootstrap 95 % interval, and whether that
    difference exceeds ``threshold`` points (:func:`ef_relevance_threshold`) for either EF: an error both groups
    share is a matter of accuracy, one that differs between them a matter of fairness."""
    rows = []
    for m, d in err.groupby("method", sort=False):
        row = {"method": m, "DSC gap": dsc_gap.get(m, np.nan)}
        if dsc_gap_ci is not None:
            row["DSC gap low"], row["DSC gap high"] = dsc_gap_ci.get(m, (np.nan, np.nan))
        diffs = []
        for meas in ("LVEF", "RVEF"):
            e = {g: d[(d.measure == meas) & (d[group_col] == g)].error for g in (advantaged, minority)}
            for g in (advantaged, minority):
                row[f"{meas} error, {g}"] = e[g].mean()
            row[f"{meas} difference"] = row[f"{meas} error, {minority}"] - row[f"{meas} error, {advantaged}"]
            row[f"{meas} difference low"], row[f"{meas} difference high"] = bootstrap_gap(
                e[minority].dropna(), e[advantaged].dropna(), seed=seed, stat=np.mean)
            diffs.append(abs(row[f"{meas} difference"]))
        row["relevant EF difference"] = bool(np.nanmax(diffs) > threshold) if not np.all(np.isnan(diffs)) else False
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")
