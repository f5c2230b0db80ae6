"""Command line: ``cmrlib cohort | manifest | run | book``."""
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


def _manifest(a):
    from .data.adapters import AdapterError, acdc, mnms, ukbb
    try:
        if a.dataset == "acdc":
            df = acdc.build_manifest(a.root, a.out)
        elif a.dataset == "mnms":
            df = mnms.build_manifest(a.root, a.out, info_csv=a.info)
        else:
            if not a.demographics:
                raise SystemExit("ukbb needs --demographics CSV")
            df = ukbb.build_manifest(a.root, a.demographics, a.out, image_pattern=a.image_pattern,
                                     label_pattern=a.label_pattern, salt=a.salt)
            print(f"left out {len(df.attrs['excluded'])} subjects without a known ethnic background")
    except AdapterError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{a.out}: {df.subject_id.nunique()} subjects, {len(df)} rows")


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
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
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
    m = sub.add_parser("manifest", help="build a validated manifest from a dataset as distributed")
    m.add_argument("--dataset", required=True, choices=["acdc", "ukbb", "mnms"])
    m.add_argument("--root", required=True, help="the dataset's folder")
    m.add_argument("--out", required=True, help="manifest CSV to write")
    m.add_argument("--demographics", help="ukbb: CSV with field codes (eid, 21000-0.0, 31-0.0, ...)")
    m.add_argument("--image-pattern", default="{eid}/sa_{frame}.nii.gz")
    m.add_argument("--label-pattern", default="{eid}/label_sa_{frame}.nii.gz")
    m.add_argument("--salt", default="cmrlib", help="ukbb: secret that keys the pseudonyms")
    m.add_argument("--info", help="mnms: the information CSV (found under --root when omitted)")
    m.set_defaults(func=_manifest)
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
