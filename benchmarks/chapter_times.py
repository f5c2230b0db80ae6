"""Time every chapter of the book for a profile, from an empty run store and again from the filled one.

Runs each notebook with papermill (as ``cmrlib book`` does, without rendering) twice: first with empty data and
run folders (the cohort, cache and every model are made; each chapter is timed given what the chapters before
it left), then again on what the first pass left (every experiment comes from the run store). Writes one row per
chapter and pass to ``benchmarks/results/chapter_times.csv`` after every chapter (replacing that profile's rows
of the passes timed; a failed chapter is recorded with its error and the next one runs), which the teachers'
page reads, and prints each chapter's time against the course budget of 15 minutes per chapter and the whole
book's against 120 minutes (ratios > 1 meet them).

    python benchmarks/chapter_times.py params/course.yaml        # about two hours on 2 cores
    python benchmarks/chapter_times.py params/smoke.yaml
    python benchmarks/chapter_times.py params/course.yaml --only 13 14   # some chapters; their rows replaced
    python benchmarks/chapter_times.py params/course.yaml --passes empty --store S   # keep the store in S ...
    python benchmarks/chapter_times.py params/course.yaml --passes filled --store S  # ... and time it later
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "chapter_times.csv"
CHAPTER_BUDGET_S, BOOK_BUDGET_S = 15 * 60, 120 * 60


def chapters(only) -> list[str]:
    """The book's notebooks (stems) in order, those of ``only`` (number prefixes) when given."""
    from cmrlib.book.build import toc_notebooks
    names = [Path(nb).name for nb in toc_notebooks(ROOT)]
    return [n for n in names if not only or any(n.startswith(o) for o in only)]


def save(rows: list[dict], out: Path, profile: str, only, passes) -> None:
    """Write the rows so far (called after every chapter, so an interrupted timing keeps what it measured).
    Rows of this profile and of the passes timed are replaced (only the timed chapters' with ``only``)."""
    df = pd.DataFrame(rows).assign(cores=os.cpu_count(), machine=platform.machine(),
                                   date=datetime.date.today().isoformat())
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        old = pd.read_csv(out)
        keep = (old.profile != profile) | ~old.store.isin(passes)
        if only:
            keep |= ~old.chapter.str[:2].isin(only)
        df = pd.concat([old[keep], df], ignore_index=True)
    df.to_csv(out, index=False)


def main(argv=None) -> None:
    from cmrlib.book.build import execute
    from cmrlib.config import load_params
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", help="profile, e.g. params/course.yaml")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", nargs="*", help="chapter numbers to time (default: all); the first pass still starts "
                                              "from an empty store, so each listed chapter makes what it needs")
    ap.add_argument("--store", help="an empty or new folder to keep the data and runs in (default: a temporary "
                                    "one, deleted afterwards)")
    ap.add_argument("--passes", nargs="+", default=["empty", "filled"], choices=["empty", "filled"],
                    help="which passes to time (default both; a GPU machine's short lease: empty)")
    ap.add_argument("--deadline", type=float, help="seconds after which no further chapter is started (the rows "
                                                   "measured so far are written after every chapter)")
    ap.add_argument("--executed", help="keep the executed notebooks in this folder (default: with the store)")
    a = ap.parse_args(argv)
    profile = load_params(ROOT / a.params)["profile"]
    out, rows, t_start = Path(a.out), [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chapter-times-") as tmp:
        if a.store:
            if "empty" in a.passes and Path(a.store).exists() and any(Path(a.store).iterdir()):
                raise SystemExit(f"--store {a.store}: not empty; the empty pass must start from an empty store "
                                 "(--passes filled times a store an earlier run filled)")
            tmp = a.store
        os.environ["CMRLIB_DATA"], os.environ["CMRLIB_RUNS"] = f"{tmp}/data", f"{tmp}/runs"
        for store in a.passes:
            for name in chapters(a.only):
                if a.deadline and time.perf_counter() - t_start > a.deadline:
                    print(f"[chapter-times] deadline: {name} and later not started", flush=True)
                    break
                t0, status = time.perf_counter(), "ok"
                try:
                    execute(ROOT, a.params, Path(a.executed or tmp) / f"executed-{store}", only=[name])
                except Exception as exc:     # a failing chapter is recorded; later chapters make what they need
                    status = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ''}"
                seconds = time.perf_counter() - t0
                rows.append(dict(profile=profile, store=store, chapter=name, seconds=round(seconds, 1),
                                 **({} if status == "ok" else {"status": status})))
                save(rows, out, profile, a.only, a.passes)
                print(f"[chapter-times] {store:6s} {name}: {seconds:7.1f} s "
                      f"(budget ratio {CHAPTER_BUDGET_S / seconds:.2f}) {status}", flush=True)
    df = pd.DataFrame(rows, columns=["store", "seconds"])
    for store, d in df.groupby("store", sort=False):
        total = d.seconds.sum()
        what = f"chapters {', '.join(a.only)}" if a.only else f"{len(d)} chapters"
        print(f"[chapter-times] {store} store: {what} {total / 60:.1f} min (budget ratio {BOOK_BUDGET_S / total:.2f})")
    print(f"[chapter-times] wrote {out}")


if __name__ == "__main__":
    main()
