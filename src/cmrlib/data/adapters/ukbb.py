"""UK Biobank: per-subject folders of short-axis ED/ES images and labels in NIfTI, plus a demographics CSV with
UK Biobank field codes. Subject IDs (eids) are replaced by keyed pseudonyms (HMAC-SHA256 under a secret key
kept outside the repository and the outputs) in the manifest's ``subject_id``; only the manifest's file paths
still contain the eid, and nothing downstream (cache, runs, summaries, the book) records a path. Messages
about a subject name its demographics row and file, never its pseudonym beside an eid.

Fields (instance 2 is the imaging visit): 21000 ethnic background (data-coding 1001), 31 sex (0 female,
1 male), 21003 age, 50 standing height (cm), 21002 weight (kg), 21001 BMI.
"""
from __future__ import annotations

from pathlib import Path
from string import Formatter

import pandas as pd

from cmrlib.data.adapters import KEY_HELP, AdapterError, bmi_class, check_out, check_pairs, finish, pseudonym
from cmrlib.data.manifest import read_csv_checked

# UK Biobank data-coding 1001 → the paper's six groups (Lee et al. 2025 §4.1); exactly these codes are accepted
ETHNICITY_CODES = {
    **{c: "White" for c in (1, 1001, 1002, 1003)},
    **{c: "Mixed" for c in (2, 2001, 2002, 2003, 2004)},
    **{c: "Asian" for c in (3, 3001, 3002, 3003, 3004)},
    **{c: "Black" for c in (4, 4001, 4002, 4003)},
    5: "Chinese",
    6: "Other",
}
NOT_STATED = (-1, -3)          # "Do not know", "Prefer not to answer": left out, counted
FIELDS = {"eid": "eid", "ethnicity": "21000-0.0", "sex": "31-0.0", "age": "21003-2.0", "height": "50-2.0",
          "weight": "21002-2.0", "bmi": "21001-2.0"}
PATTERN_KEYS = ("eid", "frame")


def _code(value):
    """A data-coding value as an int, or None when it is not exactly an integer."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def _shown(value) -> str:
    """A demographics cell as a message shows it: ``7`` for a code read as 7.0, text quoted, never numpy's
    ``np.float64(7.0)``."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _check_pattern(name: str, pattern: str) -> list[str]:
    keys = [k for _, k, _, _ in Formatter().parse(pattern) if k is not None]
    bad = [k for k in keys if k not in PATTERN_KEYS]
    if bad:
        return [f"{name} {pattern!r} uses unknown key(s) {', '.join('{' + k + '}' for k in bad)} "
                f"(known: {', '.join('{' + k + '}' for k in PATTERN_KEYS)})"]
    if "eid" not in keys:
        return [f"{name} {pattern!r} has no {{eid}}, so every subject would share one file"]
    return []


def build_manifest(root: str | Path, demographics: str | Path, out: str | Path | None = None,
                   image_pattern: str = "{eid}/sa_{frame}.nii.gz", label_pattern: str = "{eid}/label_sa_{frame}.nii.gz",
                   key: str | None = None, fields: dict | None = None, label_map: str | None = None,
                   check_images: bool = True) -> pd.DataFrame:
    """Manifest for every subject of the demographics CSV with a stated ethnic background. Subjects whose
    ethnicity is missing or coded "do not know" (−1) / "prefer not to answer" (−3) are left out and counted
    in ``df.attrs['excluded']``; any other code outside data-coding 1001, a missing eid, missing or unreadable
    files are problems. ``key``: the secret pseudonymisation key (:func:`cmrlib.data.adapters.read_key`)."""
    root = Path(root)
    if not key:
        raise AdapterError("UK Biobank", [f"no pseudonymisation key given; {KEY_HELP}"])
    check_out(Path(out) if out else None, "UK Biobank")
    f = {**FIELDS, **(fields or {})}
    demo = read_csv_checked(demographics)
    problems = [f"{demographics}: missing column {c!r} (field {k})" for k, c in f.items() if c not in demo.columns]
    problems += _check_pattern("image pattern", image_pattern) + _check_pattern("label pattern", label_pattern)
    if not root.is_dir():
        problems.append(f"UK Biobank folder not found: {root}")
    if problems:
        return finish([], root, None, "UK Biobank", problems)
    rows, excluded = [], []
    name = Path(demographics).name
    for i, d in demo.iterrows():
        here = f"{name} row {i + 2}"
        eid = _code(d[f["eid"]])
        if eid is None or eid <= 0:
            problems.append(f"{here}: eid {_shown(d[f['eid']])} is missing or not a positive whole number")
            continue
        eid = str(eid)
        raw = d[f["ethnicity"]]
        code = _code(raw)
        if pd.isna(raw) if not isinstance(raw, str) else not raw.strip():
            excluded.append(eid)
            continue
        if code in NOT_STATED:
            excluded.append(eid)
            continue
        group = ETHNICITY_CODES.get(code)
        if group is None:
            problems.append(f"{here}: field {f['ethnicity']} (ethnic background) is {_shown(raw)}, not a code of "
                            "data-coding 1001 (1-6, 1001-1003, 2001-2004, 3001-3004, 4001-4003, -1, -3)")
            continue
        sex_code = _code(d[f["sex"]])
        sex = {0: "F", 1: "M"}.get(sex_code)
        if sex is None:
            problems.append(f"{here}: field {f['sex']} (sex) is {_shown(d[f['sex']])}, expected 0 or 1")
        nums = {}
        for k in ("age", "height", "weight", "bmi"):
            v = pd.to_numeric(pd.Series([d[f[k]]]), errors="coerce").iloc[0]
            if pd.isna(v) and not pd.isna(d[f[k]]):
                problems.append(f"{here}: field {f[k]} ({k}) is {_shown(d[f[k]])}, not a number")
            nums[k] = v
        bmi = nums["bmi"]
        if pd.isna(bmi) and not pd.isna(nums["height"]) and not pd.isna(nums["weight"]) and nums["height"] > 0:
            bmi = nums["weight"] / (nums["height"] / 100) ** 2
        sid = pseudonym(eid, key, "UKB-")
        for frame in ("ED", "ES"):
            img, lab = image_pattern.format(eid=eid, frame=frame), label_pattern.format(eid=eid, frame=frame)
            for p in (img, lab):
                if not (root / p).exists():
                    problems.append(f"{here} frame {frame}: missing file {root / p}")
            row = dict(subject_id=sid, frame=frame, image=img, label=lab, ethnicity=group, sex=sex,
                       age=nums["age"], height=nums["height"], weight=nums["weight"],
                       bmi=round(float(bmi), 2) if not pd.isna(bmi) else float("nan"),
                       bmi_class=bmi_class(bmi), site="UK Biobank", _where=f"{here} frame {frame}")
            if label_map:
                row["label_map"] = label_map
            rows.append(row)
    if check_images and not problems:
        check_pairs(rows, root, problems, where_of=lambda r: r["_where"])
    for r in rows:
        r.pop("_where", None)
    df = finish(rows, root, Path(out) if out else None, "UK Biobank", problems)
    df.attrs["excluded"] = excluded
    return df
