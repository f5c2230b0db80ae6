"""M&Ms (Campello et al. 2021): ``<split>/<code>/<code>_sa.nii.gz`` and ``<code>_sa_gt.nii.gz`` 4D cine files
and an information CSV (External code, VendorName, Vendor, Centre, ED, ES, Age, Pathology, Sex, Height,
Weight). ED and ES are time indices into the 4D series (0-based in the distributed CSV; ``frame_base``
adjusts). Labels are 1 LV, 2 myocardium, 3 RV, the project's convention.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmrlib.data.adapters import bmi_class, check_out, check_pairs, finish
from cmrlib.data.manifest import read_csv_checked

INFO_COLUMNS = ("External code", "Vendor", "Centre", "ED", "ES")


def find_info_csv(root: Path) -> Path | None:
    hits = sorted(root.rglob("*.csv"))
    for h in hits:
        try:
            cols = pd.read_csv(h, nrows=0).columns
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        if all(c in cols for c in INFO_COLUMNS):
            return h
    return None


def build_manifest(root: str | Path, out: str | Path | None = None, info_csv: str | Path | None = None,
                   frame_base: int = 0, check_images: bool = True) -> pd.DataFrame:
    root = Path(root)
    info_path = Path(info_csv) if info_csv else find_info_csv(root)
    if info_path is None or not info_path.exists():
        return finish([], root, None, "M&Ms", [f"{root}: no information CSV with columns {', '.join(INFO_COLUMNS)}"])
    check_out(Path(out) if out else None, "M&Ms")
    info = read_csv_checked(info_path, text_columns=("External code",))
    miss = [c for c in INFO_COLUMNS if c not in info.columns]
    if miss:
        return finish([], root, None, "M&Ms", [f"{info_path}: missing column(s) {', '.join(miss)}"])
    images = {p.name[: -len("_sa.nii.gz")]: p for p in root.rglob("*_sa.nii.gz")}
    problems, rows = [], []
    for _, r in info.iterrows():
        code = str(r["External code"])
        img = images.get(code)
        if img is None:
            continue                      # unlabelled or withheld subjects listed in the CSV
        lab = img.with_name(f"{code}_sa_gt.nii.gz")
        if not lab.exists():
            problems.append(f"subject {code}: missing label file {lab}")
            continue
        h = r.get("Height", float("nan"))
        w = r.get("Weight", float("nan"))
        bmi = w / (h / 100) ** 2 if not pd.isna(h) and h > 0 and not pd.isna(w) else float("nan")
        sex = {"M": "M", "F": "F"}.get(str(r.get("Sex", "")).strip())
        idx = {f: pd.to_numeric(pd.Series([r[f]]), errors="coerce").iloc[0] for f in ("ED", "ES")}
        bad = [f for f, v in idx.items() if pd.isna(v) or not float(v).is_integer()]
        if bad:
            problems += [f"subject {code}: {info_path.name} column {f} is {r[f]!r}, not a time index" for f in bad]
            continue
        for frame in ("ED", "ES"):
            row = dict(subject_id=code, frame=frame, image=str(img.relative_to(root)), label=str(lab.relative_to(root)),
                       frame_index=int(idx[frame]) - frame_base, vendor=r["Vendor"], centre=r["Centre"],
                       site=f"M&Ms centre {r['Centre']}", bmi_class=bmi_class(bmi))
            if sex:
                row["sex"] = sex
            if not pd.isna(r.get("Age", float("nan"))):
                row["age"] = r["Age"]
            if not pd.isna(bmi):
                row.update(height=h, weight=w, bmi=round(bmi, 2))
            if "Pathology" in r:
                row["group"] = r["Pathology"]
            rows.append(row)
    if not rows and not problems:
        problems.append(f"{root}: no <code>_sa.nii.gz files matching {info_path.name}")
    if check_images and not problems:
        check_pairs(rows, root, problems)
    return finish(rows, root, Path(out) if out else None, "M&Ms", problems)
