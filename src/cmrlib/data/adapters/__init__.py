"""Adapters: build a validated manifest from a dataset as its providers distribute it.

Each adapter checks every subject (files present, readable, image and label shapes and spacings agree,
label values known) and raises :class:`AdapterError` listing *every* problem, with subject and path, before
anything is written; a manifest is written only when the whole dataset passes. Used by the "Using your own
data" page and chapter 12.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_nifti
from ..manifest import apply_label_map, parse_label_map, validate_manifest


class AdapterError(ValueError):
    def __init__(self, dataset: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{dataset}: {len(problems)} problem(s); no manifest written\n"
                         + "\n".join(f"  - {p}" for p in problems))


def pseudonym(subject_id: str, salt: str, prefix: str) -> str:
    """A stable pseudonym: the same ID and salt always give the same pseudonym; the ID cannot be read back."""
    return prefix + hashlib.sha256(f"{salt}:{subject_id}".encode()).hexdigest()[:10]


def bmi_class(bmi) -> str:
    """WHO classes: underweight < 18.5 ≤ normal < 25 ≤ overweight < 30 ≤ obese."""
    if pd.isna(bmi):
        return "unknown"
    return "underweight" if bmi < 18.5 else "normal" if bmi < 25 else "overweight" if bmi < 30 else "obese"


def check_pairs(rows: list[dict], root: Path, problems: list[str], max_label: int = 3) -> None:
    """Read every image/label pair of ``rows``: readable, same shape and spacing, plausible spacing, label
    values within the (mapped) label set. Appends problems naming subject and path."""
    for r in rows:
        where = f"subject {r['subject_id']} frame {r['frame']}"
        fi = r.get("frame_index")
        try:
            img, isp = read_nifti(root / r["image"], fi)
            lab, lsp = read_nifti(root / r["label"], fi)
        except Exception as exc:  # noqa: BLE001 - collected, reported together
            problems.append(f"{where}: {exc}")
            continue
        if img.shape != lab.shape:
            problems.append(f"{where}: image {r['image']} shape {img.shape} != label {r['label']} shape {lab.shape}")
        if not np.allclose(isp, lsp, atol=1e-3):
            problems.append(f"{where}: image spacing {isp} != label spacing {lsp} ({r['label']})")
        if not (0.3 <= isp[1] <= 5 and 0.3 <= isp[2] <= 5 and 1 <= isp[0] <= 30):
            problems.append(f"{where}: implausible spacing {isp} mm in {r['image']}")
        vals = set(np.unique(lab).tolist())
        known = set(range(max_label + 1))
        if r.get("label_map"):
            mapping = parse_label_map(r["label_map"])
            known = {0} | set(mapping)
            if vals <= known:
                vals = set(np.unique(apply_label_map(lab, mapping)).tolist())
        if not vals <= known:
            problems.append(f"{where}: unexpected label values {sorted(vals)} in {r['label']}")
        elif vals == {0}:
            problems.append(f"{where}: label {r['label']} is empty")


def finish(rows: list[dict], root: Path, out: Path | None, dataset: str, problems: list[str]) -> pd.DataFrame:
    """Raise with every problem, or validate and write the manifest (atomically) and return it."""
    if problems:
        raise AdapterError(dataset, problems)
    df = pd.DataFrame(rows)
    validate_manifest(df, root, dataset)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        df = df.copy()
        for c in ("image", "label"):   # absolute, so the manifest can live anywhere
            df[c] = [str((root / p).resolve()) for p in df[c]]
        tmp = out.with_suffix(".tmp")
        df.to_csv(tmp, index=False)
        os.replace(tmp, out)
    return df
