"""Time every chapter of the book for a profile, from an empty run store and again from the filled one.

Runs each notebook with papermill (as ``cmrlib book`` does, without rendering) twice: first with empty data and
run folders (the cohort, cache and every model are made), then again on what the first pass left (every
experiment comes from the run store). Writes one row per chapter and pass to
``benchmarks/results/chapter_times.csv`` (replacing that profile's rows), which the teachers' page reads, and
prints each chapter's time against the course budget of 15 minutes per chapter and the whole book's against
120 minutes (ratios > 1 meet them).

    python benchmarks/chapter_times.py params/course.yaml        # about 40 min on 2 cores
    python benchmarks/chapter_times.py params/smoke.yaml
    python benchmarks/chapter_times.py params/course.yaml --only 13 14   # some chapters; their rows replaced
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "chapter_times.csv"
CHAPTER_BUDGET_S, BOOK_BUDGET_S = 15 * 60, 120 * 60


def main(argv=None) -> None:
    from cmrlib.book import execute
    from cmrlib.config import load_params
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", help="profile, e.g. params/course.yaml")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", nargs="*", help="chapter numbers to time (default: all); the first pass still starts "
                                              "from an empty store, so each listed chapter makes what it needs")
    ap.add_argument("--store", help="an empty or new folder to keep the data and runs in (default: a temporary "
                                    "one, deleted afterwards)")
    a = ap.parse_args(argv)
    profile = load_params(ROOT / a.params)["profile"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="chapter-times-") as tmp:
        if a.store:
            if Path(a.store).exists() and any(Path(a.store).iterdir()):
                raise SystemExit(f"--store {a.store}: not empty; the first pass must start from an empty store")
            tmp = a.store
        os.environ["CMRLIB_DATA"], os.environ["CMRLIB_RUNS"] = f"{tmp}/data", f"{tmp}/runs"
        for store in ("empty", "filled"):
            times = execute(ROOT, a.params, Path(tmp) / f"executed-{store}", only=a.only)
            for chapter, seconds in times.items():
                rows.append(dict(profile=profile, store=store, chapter=chapter, seconds=round(seconds, 1)))
                print(f"[chapter-times] {store:6s} {chapter}: {seconds:7.1f} s "
                      f"(budget ratio {CHAPTER_BUDGET_S / seconds:.2f})", flush=True)
    df = pd.DataFrame(rows).assign(cores=os.cpu_count(), machine=platform.machine(),
                                   date=datetime.date.today().isoformat())
    for store, d in df.groupby("store", sort=False):
        total = d.seconds.sum()
        what = f"chapters {', '.join(a.only)}" if a.only else "whole book"
        print(f"[chapter-times] {store} store: {what} {total / 60:.1f} min (budget ratio {BOOK_BUDGET_S / total:.2f})")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        old = pd.read_csv(out)
        keep = old.profile != profile
        if a.only:          # only the timed chapters' rows are replaced
            keep |= ~old.chapter.str[:2].isin(a.only)
        df = pd.concat([old[keep], df], ignore_index=True)
    df.to_csv(out, index=False)
    print(f"[chapter-times] wrote {out}")


if __name__ == "__main__":
    main()
