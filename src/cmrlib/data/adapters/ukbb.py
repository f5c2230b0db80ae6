"""UK Biobank: per-subject folders of short-axis ED/ES images and labels in NIfTI, plus a demographics CSV with
UK Biobank field codes. Subject IDs (eids) are replaced by stable pseudonyms in the manifest's ``subject_id``;
only the file paths still contain the eid, and the book never renders paths.

Fields (instance 2 is the imaging visit): 21000 ethnic background (data-coding 1001), 31 sex (0 female,
1 male), 21003 age, 50 standing height (cm), 21002 weight (kg), 21001 BMI.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import bmi_class, check_pairs, finish, pseudonym

# UK Biobank data-coding 1001 → the paper's six groups (seed 001 §4.1)
ETHNICITY_CODES = {
    **{c: "White" for c in (1, 1001, 1002, 1003)},
    **{c: "Mixed" for c in (2, 2001, 2002, 2003, 2004)},
    **{c: "Asian" for c in (3, 3001, 3002, 3003, 3004)},
    **{c: "Black" for c in (4, 4001, 4002, 4003)},
    5: "Chinese",
    6: "Other",
}
FIELDS = {"eid": "eid", "ethnicity": "21000-0.0", "sex": "31-0.0", "age": "21003-2.0", "height": "50-2.0",
          "weight": "21002-2.0", "bmi": "21001-2.0"}


def build_manifest(root: str | Path, demographics: str | Path, out: str | Path | None = None,
                   image_pattern: str = "{eid}/sa_{frame}.nii.gz", label_pattern: str = "{eid}/label_sa_{frame}.nii.gz",
                   salt: str = "cmrlib", fields: dict | None = None, label_map: str | None = None,
                   check_images: bool = True) -> pd.DataFrame:
    """Manifest for every subject of the demographics CSV with a known ethnic background. Subjects whose
    ethnicity is missing or coded "do not know"/"prefer not to answer" are left out and counted in
    ``df.attrs['excluded']``; missing or unreadable files are errors."""
    root = Path(root)
    f = {**FIELDS, **(fields or {})}
    demo = pd.read_csv(demographics)
    problems = [f"{demographics}: missing column {c!r} (field {k})" for k, c in f.items() if c not in demo.columns]
    if problems:
        return finish([], root, None, "UK Biobank", problems)
    rows, excluded = [], []
    for _, d in demo.iterrows():
        eid = str(int(d[f["eid"]]))
        code = d[f["ethnicity"]]
        group = ETHNICITY_CODES.get(int(code)) if not pd.isna(code) else None
        if group is None:
            excluded.append(eid)
            continue
        sid = pseudonym(eid, salt, "UKB-")
        sex = {0: "F", 1: "M"}.get(int(d[f["sex"]])) if not pd.isna(d[f["sex"]]) else None
        if sex is None:
            problems.append(f"subject {sid}: sex field {f['sex']} is {d[f['sex']]!r}, expected 0 or 1")
        bmi = d[f["bmi"]]
        if pd.isna(bmi) and not pd.isna(d[f["height"]]):
            bmi = d[f["weight"]] / (d[f["height"]] / 100) ** 2
        for frame in ("ED", "ES"):
            img, lab = image_pattern.format(eid=eid, frame=frame), label_pattern.format(eid=eid, frame=frame)
            for p in (img, lab):
                if not (root / p).exists():
                    problems.append(f"subject {sid} frame {frame}: missing file {root / p}")
            row = dict(subject_id=sid, frame=frame, image=img, label=lab, ethnicity=group, sex=sex,
                       age=d[f["age"]], height=d[f["height"]], weight=d[f["weight"]], bmi=round(float(bmi), 2),
                       bmi_class=bmi_class(bmi), site="UK Biobank")
            if label_map:
                row["label_map"] = label_map
            rows.append(row)
    if check_images and not problems:
        check_pairs(rows, root, problems)
    df = finish(rows, root, Path(out) if out else None, "UK Biobank", problems)
    df.attrs["excluded"] = excluded
    return df
