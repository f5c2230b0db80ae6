"""Command line: ``cmrlib cohort | run | book``."""
from __future__ import annotations

import argparse
import sys
import time


def _cohort(a):
    from .config import load_params
    from .pipeline import prepare_cohort, prepare_data
    params = load_params(a.params)
    t0 = time.perf_counter()
    if params["cohort"].get("route", "nifti") == "nifti" or a.nifti:
        print(f"manifest: {prepare_cohort(params)}")
    data = prepare_data(params)
    print(f"cache: {data.cache.path} ({len(data.cache.volumes)} volumes, {len(data.cache.images)} slices)")
    print(data.subjects.groupby(["split", data.group_col]).size().unstack(fill_value=0).to_string())
    print(f"took {time.perf_counter() - t0:.1f} s")


def _run(a):
    from .config import load_params, runs_dir
    from .experiments import chapter_experiments, run_experiment
    from .pipeline import prepare_data
    from .report import write_summary
    params = load_params(a.params)
    data = prepare_data(params)
    results = {}
    for name in chapter_experiments(a.only):
        t0 = time.perf_counter()
        results[name] = run_experiment(data, name)
        print(f"{name}: {time.perf_counter() - t0:.1f} s")
    path = runs_dir(params) / "summary.csv"
    df = write_summary(results, params, path)
    print(df.round(4).to_string(index=False))
    print(f"summary: {path}")


def _book(a):
    from .book import build
    build(a.params, a.root, only=a.only)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cmrlib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cohort", help="generate the synthetic cohort (or read the manifest) and build the cache")
    c.add_argument("--params", required=True)
    c.add_argument("--nifti", action="store_true", help="also write NIfTI + manifest for a direct-route profile")
    c.set_defaults(func=_cohort)
    r = sub.add_parser("run", help="train and evaluate experiments; writes runs/<profile>/summary.csv")
    r.add_argument("--params", required=True)
    r.add_argument("--only", help="chapter number, e.g. 02")
    r.set_defaults(func=_run)
    b = sub.add_parser("book", help="execute every chapter with papermill and render the HTML book")
    b.add_argument("--params", required=True)
    b.add_argument("--root", default=".")
    b.add_argument("--only", nargs="*", help="chapter numbers to execute (default: all)")
    b.set_defaults(func=_book)
    a = ap.parse_args(argv)
    a.func(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
