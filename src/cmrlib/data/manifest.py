"""The manifest: one row per subject × frame, the single entry point for every data source.

Required columns: ``subject_id``, ``frame`` (ED/ES), ``image``, ``label`` (paths, relative to the manifest's
folder or absolute). Optional group columns are validated when present: ``ethnicity`` (the paper's six
groups), ``sex`` (F/M), ``age``, ``height`` (cm), ``weight`` (kg), ``bmi``, ``site``, ``split``; any other column
is kept as a further protected attribute (for example ACDC's diagnosis ``group``).

Two optional technical columns: ``label_map`` ("1:3,3:1" maps a dataset's label values to the project's
1 LVBP, 2 LVM, 3 RVBP when read) and ``frame_index`` (the time point to read from a 4D cine file).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmrlib import ETHNICITIES, FRAMES
from cmrlib.errors import ProblemsError

REQUIRED = ("subject_id", "frame", "image", "label")
NUMERIC_RANGES = {"age": (0, 120), "height": (50, 250), "weight": (20, 350), "bmi": (8, 90)}
CATEGORIES = {"ethnicity": ETHNICITIES, "sex": ("F", "M"), "frame": FRAMES}


class ManifestError(ProblemsError):
    """Every problem found in a manifest, one per line, each naming the row, subject, file and problem."""


def validate_manifest(df: pd.DataFrame, root: str | Path, source: str = "manifest",
                      check_files: bool = True) -> pd.DataFrame:
    """Check a manifest and return it with absolute paths; raise ManifestError listing every problem."""
    root = Path(root)
    problems: list[str] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(source, [f"missing required column(s): {', '.join(missing)}"])
    df = df.copy()
    for i, sid in df["subject_id"].items():
        if pd.isna(sid) or not str(sid).strip():
            problems.append(f"row {i + 2}: subject_id is empty")
        elif str(sid) != str(sid).strip():
            problems.append(f"row {i + 2}: subject_id {str(sid)!r} has leading or trailing spaces; remove them "
                            f"(as written it is another subject than {str(sid).strip()!r})")
    df["subject_id"] = df["subject_id"].astype(str)
    for i, row in df.iterrows():
        where = row_name(row, i)
        for col, allowed in CATEGORIES.items():
            if col in df.columns and row[col] not in allowed and not (col != "frame" and pd.isna(row[col])):
                problems.append(f"{where}: {col} {row[col]!r} is not one of {', '.join(allowed)}")
        for col, (lo, hi) in NUMERIC_RANGES.items():
            if col in df.columns:
                if pd.isna(row[col]):        # a missing value is allowed; a wrong one is not
                    continue
                v = pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0]
                if pd.isna(v) or not lo <= v <= hi:
                    problems.append(f"{where}: {col} {row[col]!r} is outside [{lo}, {hi}]")
        if "label_map" in df.columns and isinstance(row["label_map"], str) and row["label_map"]:
            try:
                parse_label_map(row["label_map"])
            except ValueError as exc:
                problems.append(f"{where}: label_map {row['label_map']!r}: {exc}")
        if "frame_index" in df.columns and not pd.isna(row["frame_index"]):
            fi = pd.to_numeric(pd.Series([row["frame_index"]]), errors="coerce").iloc[0]
            if pd.isna(fi) or not float(fi).is_integer() or fi < 0:
                problems.append(f"{where}: frame_index {row['frame_index']!r} is not a non-negative integer")
        full = {}
        for col in ("image", "label"):
            p = row[col]
            if not isinstance(p, str) or not p:
                problems.append(f"{where}: {col} path is empty")
                continue
            full[col] = Path(p) if Path(p).is_absolute() else root / p
            if check_files and not full[col].exists():
                problems.append(f"{where}: {col} file not found: {full[col]}")
        if len(full) == 2 and full["image"].resolve() == full["label"].resolve():
            problems.append(f"{where}: image and label are the same file ({row['image']}); the label column "
                            "must name the segmentation")
    problems += subject_disagreements(df)
    dup = df[df.duplicated(["subject_id", "frame"], keep=False)]
    for sid, frame in dup[["subject_id", "frame"]].drop_duplicates().itertuples(index=False):
        problems.append(f"subject {sid}, frame {frame}: appears more than once")
    if problems:
        raise ManifestError(source, problems)
    for col in ("image", "label"):
        df[col] = [str(Path(p) if Path(p).is_absolute() else (root / p).resolve()) for p in df[col]]
    return df


PER_FRAME = ("frame", "image", "label", "label_map", "frame_index")


def subject_disagreements(df: pd.DataFrame) -> list[str]:
    """A subject's columns other than the per-frame ones (:data:`PER_FRAME`: its group, sex, age, split, …) must
    hold one value in all its rows: otherwise the cache would keep the first row's without a word."""
    out = []
    cols = [c for c in df.columns if c not in PER_FRAME and c != "subject_id"]
    several = df[df.duplicated("subject_id", keep=False)]
    for sid, rows in several.groupby("subject_id", sort=False):
        for c in cols:
            vals = rows[c].astype(object).where(rows[c].notna(), None)
            if vals.nunique(dropna=False) > 1:
                by_frame = ", ".join(f"{f}: {v!r}" for f, v in zip(rows["frame"], vals))
                out.append(f"subject {sid}: {c} differs between its rows ({by_frame}); a subject has one {c}")
    return out


def row_name(row, i: int) -> str:
    """How messages name a manifest row: by subject and frame, or by row number and frame alone where the
    subject ID is a pseudonym that does not appear in the file path (a message must not put a pseudonym next
    to a path that holds the real ID)."""
    sid = str(row["subject_id"])
    if sid and sid in f"{row.get('image', '')}{row.get('label', '')}":
        return f"row {i + 2} (subject {sid}, frame {row['frame']})"
    return f"row {i + 2} (frame {row['frame']})"


def read_csv_checked(path: str | Path, text_columns=("subject_id",)) -> pd.DataFrame:
    """Read a CSV as a data table: UTF-8, comma-separated, not empty; ``text_columns`` kept as text (IDs such
    as ``007`` keep their leading zeros). Errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(str(path), ["file not found"])
    if path.is_dir():
        raise ManifestError(str(path), ["is a folder, not a CSV file"])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), [f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                                        "save it as UTF-8"]) from None
    if not text.strip():
        raise ManifestError(str(path), ["the file is empty; a CSV needs a header row and one row per entry"])
    header = text.splitlines()[0]
    for delim, name in ((";", "semicolon"), ("\t", "tab")):
        if delim in header and "," not in header:
            raise ManifestError(str(path), [f"the header is {name}-delimited ({header[:60]!r}); "
                                            "save the file with commas as delimiters"])
    import io
    try:
        return pd.read_csv(io.StringIO(text), dtype={c: str for c in text_columns}, keep_default_na=True)
    except pd.errors.ParserError as exc:
        raise ManifestError(str(path), [f"not a well-formed CSV ({exc})"]) from None


def load_manifest(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a manifest CSV; paths become absolute."""
    path = Path(path)
    df = read_csv_checked(path)
    df = validate_manifest(df, path.parent, str(path), check_files=check_files)
    df.attrs["source"] = str(path)
    return df


def subjects_from_manifest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per subject with its group columns (frame-specific columns dropped)."""
    cols = [c for c in df.columns if c not in PER_FRAME]
    return df[cols].drop_duplicates("subject_id").reset_index(drop=True)


def parse_label_map(text: str) -> dict[int, int]:
    """"1:3,2:2,3:1" → {1: 3, 2: 2, 3: 1}; targets must be project labels 0–3."""
    out = {}
    for part in text.split(","):
        src, sep, dst = part.partition(":")
        if not sep:
            raise ValueError(f"expected source:target pairs, got {part!r}")
        try:
            s, d = int(src), int(dst)
        except ValueError:
            raise ValueError(f"{part!r}: labels must be whole numbers") from None
        if d not in (0, 1, 2, 3):
            raise ValueError(f"target {d} is not a project label (0 background, 1 LVBP, 2 LVM, 3 RVBP)")
        out[s] = d
    return out


def apply_label_map(label, mapping: dict[int, int]):
    """Relabel an array; values absent from the mapping become background. Values must be whole numbers
    from 0 to the largest source label (checked by :func:`cmrlib.data.validate.pair_problems` first)."""
    import numpy as np
    lab = np.asarray(label).astype(np.int64)
    if lab.size and (lab.min() < 0):
        raise ValueError(f"negative label value {int(lab.min())}")
    lut = np.zeros(max(max(mapping), int(lab.max()) if lab.size else 0) + 1, dtype=np.uint8)
    for s, d in mapping.items():
        lut[s] = d
    return lut[lab]
