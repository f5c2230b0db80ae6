"""Auditing any segmentation model: its predicted label maps and a table of groups in, the papers' fairness view
out, every fairness number with a subject-level bootstrap interval (``cmrlib audit``; the book's chapter "Audit
your own model").

Input: a manifest (one row per subject × frame: ``subject_id``, ``frame``, ``label``, optional ``image``, any group
columns) and the predictions, matched by case in nnU-Net's output convention (``<predictions>/<case>.nii.gz``,
the case being the manifest's ``case`` column or ``<subject_id>_<frame>``) or named in a ``prediction`` column.
Labels are 1 LV blood pool, 2 LV myocardium, 3 RV blood pool; a ``label_map`` ("1:3,3:1") maps another
convention, for labels and predictions alike.

What is computed, with the library's own code (:mod:`cmrlib.evaluation.metrics`, :class:`~cmrlib.evaluation.fairness.GroupMeans`):

- per case × structure: DSC, HD (mm) and HD normalised by the image's physical diagonal (the HD an empty mask
  gets, so it lies in [0, 1]);
- per subject: the mean over structures and frames (as the book's chapters);
- per group of each group column: n, median and IQR, the median's interval, the gap to the reference group
  with its interval, and the Mann–Whitney p against the reference;
- per group column: the spread of the groups (max − min of the medians), the skewed error ratio of the medians
  (Lee et al. 2025) and of the means (Puyol-Antón et al. 2021), the SD of the group means (Puyol-Antón et al.
  2021), ES-Dice (Tian et al. 2024: the mean DSC over 1 + the summed absolute deviations of the group means from
  it; and its variant with the SD of the group means in place of the sum), and a max − min fairness score in
  the manner of the MAMA-MIA challenge (Garrucho et al. 2026): 1 − ½(ΔDSC + ΔnHD) over the group means, with
  the normalisation of HD above;
- intersections of two group columns: the median and n of each cell, small cells flagged;
- clinical measures (EDV, ESV, EF, LV mass) from predicted against true masks where a subject has both frames:
  per subject the error, per group its Bland–Altman bias and limits.

Groups with fewer than ``min_n`` subjects are kept in every table, flagged, and left out of the statistics
across groups (whose note names them): an interval from three subjects is not one to read.
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cmrlib import STRUCTURES
from cmrlib.data.io import ImageReadError, read_volume
from cmrlib.data.manifest import apply_label_map, parse_label_map, read_csv_checked, subject_disagreements
from cmrlib.data.validate import affine_problems
from cmrlib.errors import ProblemsError
from cmrlib.evaluation.clinical import MEASURES, bland_altman, measures_from_volumes, voxel_ml
from cmrlib.evaluation.fairness import GroupMeans, sd
from cmrlib.evaluation.metrics import extent_diagonal, volume_metrics
from cmrlib.evaluation.stats import mann_whitney
from cmrlib.files import folder_atomic

MIN_N = 5              # groups with fewer subjects get no interval and stay out of the statistics across groups
SHOWN = 20             # problems listed in one refusal before "and N more"


class AuditError(ProblemsError):
    """Every problem of an audit's input, one per line, each naming the case and the file or field (the first
    :data:`SHOWN` of them)."""
    shown = SHOWN


@dataclass
class AuditSettings:
    """What an audit groups by and how: ``groups`` (columns of the manifest; the first is the main one),
    ``reference`` (a value of the first column; by default its largest group), ``intersect`` (two columns),
    ``label_map``, ``min_n``, ``n_boot``, ``seed``."""
    groups: list = field(default_factory=list)
    reference: str | None = None
    intersect: tuple | None = None
    label_map: str | None = None
    min_n: int = MIN_N
    n_boot: int = 2000
    seed: int = 0


# ------------------------------------------------------------------------------------------ the input
def audit_cases(manifest: str | Path, predictions: str | Path | None = None, groups=()) -> pd.DataFrame:
    """The cases of an audit: one row per subject × frame with its ``case``, ``label`` and ``prediction`` paths
    and its group columns; every problem of the input raised at once (:class:`AuditError`)."""
    manifest = Path(manifest)
    df = read_csv_checked(manifest, text_columns=("subject_id", "case"))
    source = str(manifest)
    missing = [c for c in ("subject_id", "frame", "label") if c not in df.columns]
    if missing:
        raise AuditError(source, [f"missing required column(s): {', '.join(missing)}"])
    problems = []
    for g in groups:
        if g not in df.columns:
            problems.append(f"group column {g!r} is not in the manifest (its columns: {', '.join(df.columns)})")
        elif df[g].isna().all() or (df[g].astype(str).str.strip() == "").all():
            problems.append(f"group column {g!r} is empty")
    if predictions is None and "prediction" not in df.columns:
        problems.append("no predictions: give a folder (--predictions) or a 'prediction' column")
    if problems:
        raise AuditError(source, problems)
    df = df.copy()
    df["subject_id"] = df["subject_id"].astype(str)
    df["case"] = df["case"].astype(str) if "case" in df.columns else df["subject_id"] + "_" + df["frame"].astype(str)
    root, pred_dir = manifest.parent, Path(predictions) if predictions is not None else None
    if pred_dir is not None and not pred_dir.is_dir():
        raise AuditError(source, [f"predictions folder not found: {pred_dir}"])
    paths = []
    for i, r in df.iterrows():
        where = f"row {i + 2} (case {r['case']})"
        if not str(r["subject_id"]).strip() or r["subject_id"] in ("nan", "None"):
            problems.append(f"row {i + 2}: subject_id is empty")
        for g in groups:
            if pd.isna(r[g]) or not str(r[g]).strip():
                problems.append(f"{where}: group column {g!r} is empty")
        label = Path(str(r["label"]))
        label = label if label.is_absolute() else root / label
        if not label.exists():
            problems.append(f"{where}: label file not found: {label}")
        if "prediction" in df.columns and isinstance(r["prediction"], str) and r["prediction"]:
            pred = Path(r["prediction"])
            pred = pred if pred.is_absolute() else root / pred
        elif pred_dir is not None:
            pred = next((pred_dir / f"{r['case']}{ext}" for ext in (".nii.gz", ".nii")
                         if (pred_dir / f"{r['case']}{ext}").exists()), pred_dir / f"{r['case']}.nii.gz")
        else:
            pred = None
        if pred is None or not pred.exists():
            problems.append(f"{where}: no prediction" + (f" ({pred} not found)" if pred is not None else ""))
        paths.append((str(label), str(pred) if pred is not None else ""))
    dup = df[df.duplicated("case", keep=False)].case.unique()
    problems += [f"case {c}: appears more than once" for c in dup]
    problems += subject_disagreements(df[["subject_id", "frame", *groups]])
    if pred_dir is not None:
        known = set(df["case"])
        orphans = sorted(p.name for p in pred_dir.iterdir()
                         if p.name.endswith((".nii.gz", ".nii")) and p.name.removesuffix(".gz").removesuffix(".nii") not in known)
        if orphans:
            shown = ", ".join(orphans[:5]) + (f" and {len(orphans) - 5} more" if len(orphans) > 5 else "")
            problems.append(f"{len(orphans)} prediction(s) in {pred_dir} without a case in the manifest: {shown}")
    if problems:
        raise AuditError(source, problems)
    df["label"], df["prediction"] = [p[0] for p in paths], [p[1] for p in paths]
    return df[["case", "subject_id", "frame", "label", "prediction", *groups]].reset_index(drop=True)


def _mapped(arr: np.ndarray, mapping: dict | None, what: str, where: str, path: str) -> tuple[np.ndarray | None, list]:
    """A label map in the project's values (0-3), or the problem: values that are not whole numbers, or
    outside the map."""
    arr = np.asarray(arr)
    if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(arr, np.round(arr)):
        return None, [f"{where}: {what} {path} holds values that are not whole numbers"]
    vals = set(np.unique(arr).astype(np.int64).tolist())
    known = ({0} | set(mapping)) if mapping else {0, 1, 2, 3}
    if not vals <= known:
        hint = "" if mapping else "; give --label-map for another convention"
        return None, [f"{where}: {what} {path} holds values {sorted(vals - known)} outside {sorted(known)}{hint}"]
    return (apply_label_map(arr, mapping) if mapping else arr).astype(np.uint8), []


def score_case(case: dict, mapping: dict | None = None) -> tuple[list[dict], dict, list[str]]:
    """One case: its rows (per structure: DSC, HD, normalised HD), each label's volume in ml in the true and
    predicted maps, and its problems (a case with problems has no rows)."""
    where = f"case {case['case']}"
    try:
        lab, lsp, la = read_volume(case["label"])
        pred, psp, pa = read_volume(case["prediction"])
    except ImageReadError as exc:
        return [], {}, [f"{where}: {exc}"]
    if lab.shape != pred.shape:
        return [], {}, [f"{where}: prediction {case['prediction']} shape {pred.shape} != label {case['label']} "
                        f"shape {lab.shape}"]
    problems = []
    if not np.allclose(lsp, psp, atol=1e-3):
        problems.append(f"{where}: prediction spacing {psp} != label spacing {lsp} ({case['prediction']})")
    else:
        problems += affine_problems(la, pa, where, case["label"], case["prediction"])
    lab, p1 = _mapped(lab, mapping, "label", where, case["label"])
    pred, p2 = _mapped(pred, mapping, "prediction", where, case["prediction"])
    problems += p1 + p2
    if problems:
        return [], {}, problems
    diag = extent_diagonal(lab.shape, lsp)
    rows = [{**r, "nhd": r["hd"] / diag} for r in volume_metrics(pred, lab, lsp)]
    v = voxel_ml(lsp)
    volumes = {f"{src}_{k}": float((x == k).sum() * v) for src, x in (("true", lab), ("pred", pred)) for k in (1, 2, 3)}
    return rows, volumes, []


def _score(args):
    case, mapping = args
    return score_case(case, mapping)


def score_cases(cases: pd.DataFrame, label_map: str | None = None, progress: bool = True,
                workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every case read and scored, one at a time (memory stays that of one case per worker): the per case ×
    structure table and the per case volumes. ``workers`` > 1 reads and scores cases in that many processes.
    Any problem of any case is raised at the end, all of them together (:class:`AuditError`)."""
    from tqdm import tqdm
    mapping = parse_label_map(label_map) if label_map else None
    keep = [c for c in cases.columns if c not in ("label", "prediction")]
    jobs = [(r, mapping) for r in cases.to_dict("records")]
    rows, vols, problems = [], [], []
    if workers > 1:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_score, jobs, chunksize=16)
    else:
        pool, results = None, map(_score, jobs)
    try:
        for (case, _), (r, v, p) in tqdm(zip(jobs, results), total=len(jobs), desc="audit", disable=not progress,
                                          mininterval=2):
            meta = {k: case[k] for k in keep}
            rows += [{**meta, **x} for x in r]
            if v:
                vols.append({**meta, **v})
            problems += p
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if problems:
        raise AuditError("predictions", problems)
    return pd.DataFrame(rows), pd.DataFrame(vols)


# ------------------------------------------------------------------------------------------ the numbers
def subject_table(per_case: pd.DataFrame, groups) -> pd.DataFrame:
    """Per subject: DSC, HD and normalised HD averaged over structures and frames, with the group columns."""
    return per_case.groupby(["subject_id", *groups], as_index=False, dropna=False)[["dsc", "hd", "nhd"]].mean()


def structure_table(per_case: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per group × frame × structure: n, median and IQR of DSC and of HD (mm)."""
    def q(p):
        return lambda x: x.quantile(p)
    g = per_case.groupby([col, "frame", "structure"])
    return g.agg(n=("dsc", "size"), dsc_median=("dsc", "median"), dsc_q1=("dsc", q(0.25)), dsc_q3=("dsc", q(0.75)),
                 hd_median=("hd", "median"), hd_q1=("hd", q(0.25)), hd_q3=("hd", q(0.75))).reset_index()


def _means(subjects: pd.DataFrame, col: str, groups, s: AuditSettings, value="dsc", stat="mean") -> GroupMeans:
    return GroupMeans({"model": subjects}, col, groups, n_boot=s.n_boot, boot_seed=s.seed, value=value, stat=stat)


def group_summary(subjects: pd.DataFrame, col: str, reference: str, s: AuditSettings) -> pd.DataFrame:
    """Per group of ``col``: n, median DSC with its interval, IQR, mean, the gap to ``reference`` (reference −
    group, medians) with its interval, the Mann–Whitney p against the reference, and ``small`` where n < min_n
    (no interval then)."""
    counts = subjects[col].value_counts()
    order = [reference, *sorted((g for g in counts.index if g != reference), key=str)]
    big = [g for g in order if counts[g] >= s.min_n]
    gm = _means(subjects, col, big, s, stat="median") if len(big) >= 2 else None
    ref = subjects.loc[subjects[col] == reference, "dsc"]
    rows = []
    for g in order:
        x = subjects.loc[subjects[col] == g, "dsc"]
        r = {col: g, "n": len(x), "median": x.median(), "q1": x.quantile(0.25), "q3": x.quantile(0.75),
             "mean": x.mean(), "small": len(x) < s.min_n}
        if gm is not None and g in gm.groups:
            i, j = gm.index(g), gm.index(reference) if reference in gm.groups else None
            e = gm.estimate(lambda m, i=i: m[..., i], "model")
            r.update({"median low": e.low, "median high": e.high})
            if j is not None and g != reference:
                d = gm.estimate(lambda m, i=i, j=j: m[..., j] - m[..., i], "model")
                r.update({"gap": d.point, "gap low": d.low, "gap high": d.high})
        if g != reference:
            r.setdefault("gap", ref.median() - x.median())
            r["p"] = mann_whitney(ref, x)[1]
        rows.append(r)
    return pd.DataFrame(rows)


def es_dice(m: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ES-Dice (Tian et al. 2024): the mean DSC over all subjects divided by 1 + the summed absolute deviations
    of the group means from it; ``m`` group means along the last axis, ``weights`` the groups' sizes."""
    overall = (m * weights).sum(-1) / weights.sum()
    return overall / (1 + np.abs(m - overall[..., None]).sum(-1))


def es_dice_sd(m: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ES-Dice with the SD (ddof 1) of the group means in place of the summed deviations."""
    return (m * weights).sum(-1) / weights.sum() / (1 + sd(m))


def spread_score(dsc: np.ndarray, nhd: np.ndarray) -> np.ndarray:
    """1 − ½(ΔDSC + ΔnHD), Δ the max − min over groups (the MAMA-MIA challenge's manner of score)."""
    return 1 - 0.5 * ((dsc.max(-1) - dsc.min(-1)) + (nhd.max(-1) - nhd.min(-1)))


def fairness_numbers(subjects: pd.DataFrame, col: str, s: AuditSettings) -> pd.DataFrame:
    """The statistics across the groups of ``col`` (those with at least ``min_n`` subjects), each with its
    subject-level bootstrap 95 % interval from one shared resampling (:class:`GroupMeans`)."""
    counts = subjects[col].value_counts()
    groups = sorted((g for g in counts.index if counts[g] >= s.min_n), key=str)
    left = sorted((str(g) for g in counts.index if counts[g] < s.min_n))
    note = f"left out (fewer than {s.min_n} subjects): {', '.join(left)}" if left else ""
    if len(groups) < 2:
        return pd.DataFrame([{"statistic": "groups", "value": len(groups), "low": np.nan, "high": np.nan,
                              "note": f"fewer than two groups of at least {s.min_n} subjects; {note}".rstrip("; ")}])
    med, mean = _means(subjects, col, groups, s, stat="median"), _means(subjects, col, groups, s)
    w = np.array([counts[g] for g in groups], float)

    def ser(m):
        err = 1 - m
        with np.errstate(divide="ignore", invalid="ignore"):
            return err.max(-1) / err.min(-1)
    stats = {
        "spread of medians (max − min)": (med, lambda m: m.max(-1) - m.min(-1)),
        "SER of medians (Lee et al. 2025)": (med, ser),
        "SD of means (Puyol-Antón et al. 2021)": (mean, sd),
        "SER of means (Puyol-Antón et al. 2021)": (mean, ser),
        "ES-Dice (Tian et al. 2024)": (mean, lambda m: es_dice(m, w)),
        "ES-Dice, SD variant": (mean, lambda m: es_dice_sd(m, w)),
    }
    rows = []
    for name, (gm, fn) in stats.items():
        e = gm.estimate(fn, "model")
        rows.append({"statistic": name, "value": e.point, "low": e.low, "high": e.high, "note": note})
    both = GroupMeans({"dsc": subjects, "nhd": subjects.assign(dsc=subjects.nhd)}, col, groups, n_boot=s.n_boot,
                      boot_seed=s.seed)
    e = both.estimate(spread_score, "dsc", "nhd")
    rows.append({"statistic": "fairness score 1 − ½(ΔDSC + ΔnHD) (MAMA-MIA)", "value": e.point, "low": e.low,
                 "high": e.high, "note": note})
    return pd.DataFrame(rows)


def intersections(subjects: pd.DataFrame, a: str, b: str, min_n: int = MIN_N) -> pd.DataFrame:
    """Each cell of ``a`` × ``b``: n, median DSC, and ``small`` where n < min_n."""
    t = subjects.groupby([a, b]).dsc.agg(n="size", median="median").reset_index()
    t["small"] = t.n < min_n
    return t


def clinical_errors(volumes: pd.DataFrame, groups) -> tuple[pd.DataFrame, int]:
    """Per subject with both frames and measure: predicted, true, error (predicted − true) and mean, with the
    group columns; and how many subjects lacked a frame."""
    rows, lacking = [], 0
    for sid, v in volumes.groupby("subject_id"):
        frames = v.set_index("frame")
        if not {"ED", "ES"} <= set(frames.index):
            lacking += 1
            continue
        ed, es = frames.loc["ED"], frames.loc["ES"]
        meas = {src: measures_from_volumes({k: ed[f"{src}_{k}"] for k in (1, 2, 3)},
                                           {k: es[f"{src}_{k}"] for k in (1, 3)}) for src in ("true", "pred")}
        for m in MEASURES:
            p, t = meas["pred"][m], meas["true"][m]
            if np.isfinite(p) and np.isfinite(t):
                rows.append({"subject_id": sid, **{g: ed[g] for g in groups}, "measure": m, "predicted": p,
                             "true": t, "error": p - t, "mean": (p + t) / 2})
    return pd.DataFrame(rows), lacking


# ------------------------------------------------------------------------------------------ the audit
def run_audit(manifest, out, predictions=None, settings: AuditSettings | None = None, progress: bool = True,
              workers: int = 1) -> Path:
    """Audit the predictions of ``manifest``'s cases into the folder ``out`` (CSV tables and ``audit.json``);
    written into a temporary folder and renamed into place, so a refused or interrupted audit leaves nothing
    half-written. Returns ``out``."""
    s = settings or AuditSettings()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AuditError(str(out), ["--out names a file; give a folder"])
    if not s.groups:
        raise AuditError(str(manifest), ["no group column given (--group)"])
    if s.label_map:
        try:
            parse_label_map(s.label_map)
        except ValueError as exc:
            raise AuditError("--label-map", [f"{s.label_map!r}: {exc}"]) from None
    if s.min_n < 2 or s.n_boot < 100:
        raise AuditError("settings", [f"min_n {s.min_n} (at least 2) and n_boot {s.n_boot} (at least 100)"])
    if s.intersect is not None and (len(s.intersect) != 2 or any(c not in s.groups for c in s.intersect)):
        raise AuditError(str(manifest), [f"intersect {list(s.intersect)}: two of the group columns {s.groups}"])
    cases = audit_cases(manifest, predictions, s.groups)
    main = s.groups[0]
    counts = cases.drop_duplicates("subject_id")[main].value_counts()
    reference = s.reference if s.reference is not None else str(counts.idxmax())
    cases[main] = cases[main].astype(str)
    if reference not in set(cases[main]):
        raise AuditError(str(manifest), [f"reference group {reference!r} has no cases in {main!r} (its groups: "
                                         f"{', '.join(sorted(set(cases[main])))})"])
    per_case, volumes = score_cases(cases, s.label_map, progress, workers)
    for g in s.groups:
        per_case[g] = per_case[g].astype(str)
    subjects = subject_table(per_case, s.groups)
    tables = {"cases": per_case, "subjects": subjects}
    for g in s.groups:
        ref = reference if g == main else str(subjects[g].value_counts().idxmax())
        tables[f"groups_{g}"] = group_summary(subjects, g, ref, s)
        tables[f"fairness_{g}"] = fairness_numbers(subjects, g, s)
        tables[f"structures_{g}"] = structure_table(per_case, g)
    if s.intersect:
        tables[f"intersection_{s.intersect[0]}_{s.intersect[1]}"] = intersections(subjects, *s.intersect, s.min_n)
    if not volumes.empty:
        for g in s.groups:
            volumes[g] = volumes[g].astype(str)
        err, lacking = clinical_errors(volumes, s.groups)
        if not err.empty:
            tables["clinical_errors"] = err
            for g in s.groups:
                tables[f"bland_altman_{g}"] = bland_altman(err, g).reset_index()
    else:
        lacking = 0
    meta = {"manifest": str(manifest), "predictions": str(predictions) if predictions else None,
            "groups": s.groups, "reference": reference, "intersect": list(s.intersect) if s.intersect else None,
            "label_map": s.label_map, "min_n": s.min_n, "n_boot": s.n_boot, "seed": s.seed,
            "cases": len(cases), "subjects": int(subjects.subject_id.nunique()),
            "subjects_without_both_frames": lacking, "structures": list(STRUCTURES)}
    with folder_atomic(out) as tmp:
        for name, t in tables.items():
            t.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "audit.json").write_text(json.dumps(meta, indent=1))
    return out
