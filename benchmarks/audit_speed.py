"""Speed of ``cmrlib audit`` (:func:`cmrlib.evaluation.audit.run_audit`, tables only): cases (subject × frame) per
second, and the time projected for the target of 5,000 subjects × 2 frames in 5 minutes on 2 cores.

A folder of ``--subjects`` subjects (two frames each) is written once into ``--folder``: UK Biobank-sized stacks
(10 slices of 208 × 208 at 1.8 mm, slices 10 mm apart), true label maps of a drawn heart and predictions that
differ from them by a drawn shift, in three groups. The audit is timed with ``--workers`` processes (the full
audit: reading, DSC, HD, bootstrap, clinical measures and the CSV tables), and the rate is projected to the
target's 10,000 cases. It prints the rate, the projected time and its ratio to the target's 300 s (≤ 1 meets it).

    python benchmarks/audit_speed.py [--subjects 400] [--workers 2] [--folder /tmp/cmrlib-audit-bench]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cmrlib.data.io import write_nifti
from cmrlib.evaluation.audit import AuditSettings, run_audit

TARGET_CASES, TARGET_S = 10_000, 300.0
SHAPE, SPACING = (10, 208, 208), (10.0, 1.8, 1.8)


def heart(rng: np.random.Generator, es: bool) -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    cy, cx = 104 + rng.integers(-10, 10), 90 + rng.integers(-10, 10)
    r = (16 if es else 22) + rng.integers(-3, 3)
    d = np.hypot(yy - cy, xx - cx)
    inside = (zz >= 1) & (zz <= 8)
    lab[inside & (d < r + 7)] = 2
    lab[inside & (d < r)] = 1
    lab[inside & (np.hypot(yy - cy, xx - cx - 2.2 * r) < 1.3 * r) & (lab == 0)] = 3
    return lab


def make(folder: Path, subjects: int) -> Path:
    manifest = folder / "cases.csv"
    if manifest.exists() and len(pd.read_csv(manifest)) == 2 * subjects:
        return manifest
    rng = np.random.default_rng(0)
    rows = []
    for i in range(subjects):
        g = ("A", "B", "C")[i % 3]
        for frame in ("ED", "ES"):
            lab = heart(rng, frame == "ES")
            pred = np.roll(lab, int(rng.integers(0, 3 + 2 * (g == "C"))), axis=2)
            case = f"S{i:05d}_{frame}"
            write_nifti(lab, SPACING, folder / "labels" / f"{case}.nii.gz")
            write_nifti(pred, SPACING, folder / "preds" / f"{case}.nii.gz")
            rows.append(dict(subject_id=f"S{i:05d}", frame=frame, label=f"labels/{case}.nii.gz", group=g))
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--folder", default="/tmp/cmrlib-audit-bench")
    a = ap.parse_args(argv)
    folder = Path(a.folder)
    t0 = time.perf_counter()
    manifest = make(folder, a.subjects)
    print(f"cases written in {time.perf_counter() - t0:.1f} s ({2 * a.subjects} cases of {SHAPE})")
    t0 = time.perf_counter()
    run_audit(manifest, folder / "out", folder / "preds", AuditSettings(groups=["group"], reference="A"),
              progress=False, workers=a.workers)
    took = time.perf_counter() - t0
    rate = 2 * a.subjects / took
    projected = TARGET_CASES / rate
    print(f"audit of {2 * a.subjects} cases with {a.workers} worker(s) on {os.cpu_count()} cores: {took:.1f} s, "
          f"{rate:.1f} cases/s")
    print(f"projected for {TARGET_CASES} cases: {projected:.0f} s; ratio to the {TARGET_S:.0f} s target: "
          f"{projected / TARGET_S:.2f} (≤ 1 meets it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
