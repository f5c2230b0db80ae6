"""The manifest: one row per subject × frame, the single entry point for every data source.

Required columns: ``subject_id``, ``frame`` (ED/ES), ``image``, ``label`` (paths, relative to the manifest's
folder or absolute). Optional group columns are validated when present: ``ethnicity`` (the paper's six
groups), ``sex`` (F/M), ``age``, ``height`` (cm), ``weight`` (kg), ``bmi``, ``site``, ``split``; any other column
is kept as a further protected attribute (for example ACDC's diagnosis ``group``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import ETHNICITIES, FRAMES

REQUIRED = ("subject_id", "frame", "image", "label")
NUMERIC_RANGES = {"age": (0, 120), "height": (50, 250), "weight": (20, 350), "bmi": (8, 90)}
CATEGORIES = {"ethnicity": ETHNICITIES, "sex": ("F", "M"), "frame": FRAMES}


class ManifestError(ValueError):
    """Every problem found in a manifest, one per line, each naming the row, subject, file and problem."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


def validate_manifest(df: pd.DataFrame, root: str | Path, source: str = "manifest",
                      check_files: bool = True) -> pd.DataFrame:
    """Check a manifest and return it with absolute paths; raise ManifestError listing every problem."""
    root = Path(root)
    problems: list[str] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(source, [f"missing required column(s): {', '.join(missing)}"])
    df = df.copy()
    df["subject_id"] = df["subject_id"].astype(str)
    for i, row in df.iterrows():
        where = f"row {i + 2} (subject {row['subject_id']}, frame {row['frame']})"
        for col, allowed in CATEGORIES.items():
            if col in df.columns and row[col] not in allowed:
                problems.append(f"{where}: {col} {row[col]!r} is not one of {', '.join(allowed)}")
        for col, (lo, hi) in NUMERIC_RANGES.items():
            if col in df.columns:
                v = pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0]
                if pd.isna(v) or not lo <= v <= hi:
                    problems.append(f"{where}: {col} {row[col]!r} is outside [{lo}, {hi}]")
        for col in ("image", "label"):
            p = row[col]
            if not isinstance(p, str) or not p:
                problems.append(f"{where}: {col} path is empty")
                continue
            full = Path(p) if Path(p).is_absolute() else root / p
            if check_files and not full.exists():
                problems.append(f"{where}: {col} file not found: {full}")
    dup = df[df.duplicated(["subject_id", "frame"], keep=False)]
    for sid, frame in dup[["subject_id", "frame"]].drop_duplicates().itertuples(index=False):
        problems.append(f"subject {sid}, frame {frame}: appears more than once")
    if problems:
        raise ManifestError(source, problems)
    for col in ("image", "label"):
        df[col] = [str(Path(p) if Path(p).is_absolute() else (root / p).resolve()) for p in df[col]]
    return df


def load_manifest(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a manifest CSV; paths become absolute."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(str(path), ["manifest file not found"])
    df = pd.read_csv(path)
    return validate_manifest(df, path.parent, str(path), check_files=check_files)


def subjects_from_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per subject with its group columns (frame-specific columns dropped)."""
    cols = [c for c in df.columns if c not in ("frame", "image", "label")]
    return df[cols].drop_duplicates("subject_id").reset_index(drop=True)
