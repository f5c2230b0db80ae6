"""Command line: ``cmrlib cohort | manifest | run | book``.

A refused input (:class:`cmrlib.errors.InputError`) is printed as ``cmrlib <command>: error: ...`` naming the
input and the fix, with exit status 2 and no traceback; ``--debug`` shows the traceback too."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from cmrlib.book.audit_report import render_report
from cmrlib.book.build import build, chapter_numbers
from cmrlib.book.profile import load_profile
from cmrlib.book.work import cache_ready, chapter_key, describe, plan, run_here, submit_units
from cmrlib.config import runs_dir
from cmrlib.data.adapters import acdc, check_out, mnms, read_key, ukbb
from cmrlib.data.pipeline import prepare_cohort, prepare_data
from cmrlib.errors import InputError
from cmrlib.evaluation.audit import AuditSettings, run_audit
from cmrlib.evaluation.report import write_summary
from cmrlib.runs.evidence import seed_runs
from cmrlib.training.methods import CHAPTERS


def _cohort(a):
    params = load_profile(a.params)
    t0 = time.perf_counter()
    if params["cohort"].get("route", "nifti") == "nifti" or a.nifti:
        print(f"manifest: {prepare_cohort(params)}")
    data = prepare_data(params)
    print(f"cache: {data.cache.path} ({len(data.cache.volumes)} volumes, {len(data.cache.images)} slices)")
    print(data.subjects.groupby(["split", data.group_col]).size().unstack(fill_value=0).to_string())
    print(f"took {time.perf_counter() - t0:.1f} s")


def _manifest(a):
    out = Path(a.out)
    check_out(out, a.dataset)
    if a.dataset == "acdc":
        df = acdc.build_manifest(a.root, out)
    elif a.dataset == "mnms":
        df = mnms.build_manifest(a.root, out, info_csv=a.info)
    else:
        if not a.demographics:
            raise InputError("ukbb needs --demographics CSV (the UK Biobank fields: eid, 21000-0.0, 31-0.0, ...)")
        key = read_key(a.key_file, outputs=[out])
        df = ukbb.build_manifest(a.root, a.demographics, out, image_pattern=a.image_pattern,
                                 label_pattern=a.label_pattern, key=key)
        print(f"left out {len(df.attrs['excluded'])} subjects without a stated ethnic background")
    print(f"{a.out}: {df.subject_id.nunique()} subjects, {len(df)} rows")


def _run(a):
    params = load_profile(a.params)
    chapters = [chapter_key(c) for c in a.only] if a.only else None    # refused before any data is built
    units = plan(params, chapters)
    if a.dry_run:
        print(describe(params, units, check_store=cache_ready(params)))
        return
    t0 = time.perf_counter()
    if a.executor == "sequential":
        run_here(a.params, units)
    else:                                         # the units as jobs; results land in the same store
        submit_units(a.params, units, a.executor)
    print(f"[run] {len(units)} unit(s) done after {time.perf_counter() - t0:.1f} s")
    names = [n for c in (chapters or CHAPTERS) if c in CHAPTERS for n in CHAPTERS[c]]
    if not names:
        return
    data = prepare_data(params, progress=False)
    results = {n: seed_runs(data, n)[params["seed"]] for n in dict.fromkeys(names)}   # from the store now
    path = runs_dir(params) / "summary.csv"
    df = write_summary(results, params, path)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"summary: {path}")


def _audit(a):
    s = AuditSettings(groups=a.group, reference=a.reference, intersect=tuple(a.intersect) if a.intersect else None,
                      label_map=a.label_map, min_n=a.min_n, n_boot=a.n_boot, seed=a.seed)
    t0 = time.perf_counter()
    out = run_audit(a.manifest, a.out, a.predictions, s, progress=True, workers=a.workers)
    print(f"audit: {out} ({time.perf_counter() - t0:.1f} s)")
    for g in a.group:
        print(f"\n{g}:\n" + pd.read_csv(out / f"fairness_{g}.csv").to_string(
            index=False, float_format=lambda v: f"{v:.4g}"))
    if not a.no_report:
        print(f"report: {render_report(out)}")


def _book(a):
    only = [chapter_numbers(Path(a.root), o) for o in a.only] if a.only else None
    build(a.params, a.root, only=only)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cmrlib", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of a refused input")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cohort", parents=[common],
                       help="generate the synthetic cohort (or read the manifest) and build the cache")
    c.add_argument("--params", required=True)
    c.add_argument("--nifti", action="store_true", help="also write NIfTI + manifest for a direct-route profile")
    c.set_defaults(func=_cohort)
    m = sub.add_parser("manifest", parents=[common],
                       help="build a validated manifest from a dataset as distributed")
    m.add_argument("--dataset", required=True, choices=["acdc", "ukbb", "mnms"])
    m.add_argument("--root", required=True, help="the dataset's folder")
    m.add_argument("--out", required=True, help="manifest CSV to write")
    m.add_argument("--demographics", help="ukbb: CSV with field codes (eid, 21000-0.0, 31-0.0, ...)")
    m.add_argument("--image-pattern", default="{eid}/sa_{frame}.nii.gz")
    m.add_argument("--label-pattern", default="{eid}/label_sa_{frame}.nii.gz")
    m.add_argument("--key-file", help="ukbb: file holding the secret key of the pseudonyms (at least 16 "
                   "characters, kept outside the repository and outputs; or set CMRLIB_PSEUDONYM_KEY_FILE)")
    m.add_argument("--info", help="mnms: the information CSV (found under --root when omitted)")
    m.set_defaults(func=_manifest)
    r = sub.add_parser("run", parents=[common],
                       help="train every model the chapters need (cmrlib.book.work); writes runs/<profile>/summary.csv")
    r.add_argument("--params", required=True)
    r.add_argument("--only", nargs="*", help="chapters, e.g. 02 15 audit (default: every chapter that trains)")
    r.add_argument("--executor", choices=("sequential", "local", "slurm"), default="sequential",
                   help="sequential (default): every unit in this process; local or slurm: the units as submitit "
                   "jobs in waves, as processes here or on a Slurm cluster (profile section 'cluster')")
    r.add_argument("--dry-run", action="store_true", help="print the plan (units, waves, resources, what the "
                   "store holds) and submit nothing")
    r.set_defaults(func=_run)
    u = sub.add_parser("audit", parents=[common],
                       help="audit any model's predicted label maps by group: the papers' fairness report, with intervals")
    u.add_argument("--manifest", required=True, help="CSV, one row per subject × frame: subject_id, frame, label, "
                   "group columns (optional: image, case, prediction)")
    u.add_argument("--predictions", help="folder of predicted label maps named <case>.nii.gz (nnU-Net's convention; "
                   "case: the manifest's case column or <subject_id>_<frame>)")
    u.add_argument("--group", required=True, action="append", help="a group column (repeat for more; the first is "
                   "the main one)")
    u.add_argument("--reference", help="the reference group of the first column (default: its largest)")
    u.add_argument("--intersect", nargs=2, metavar=("A", "B"), help="two group columns to cross")
    u.add_argument("--label-map", help="source:target pairs for another label convention, e.g. 1:3,3:1")
    u.add_argument("--out", required=True, help="folder for the tables and the report")
    u.add_argument("--min-n", type=int, default=5, help="groups smaller than this get no interval (default 5)")
    u.add_argument("--n-boot", type=int, default=2000)
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--workers", type=int, default=1, help="processes reading and scoring the cases")
    u.add_argument("--no-report", action="store_true", help="write the tables only")
    u.set_defaults(func=_audit)
    b = sub.add_parser("book", parents=[common],
                       help="execute every chapter with papermill and render the HTML book")
    b.add_argument("--params", required=True)
    b.add_argument("--root", default=".")
    b.add_argument("--only", nargs="*", help="chapter numbers to execute (default: all)")
    b.set_defaults(func=_book)
    a = ap.parse_args(argv)
    try:
        a.func(a)
    except InputError as exc:
        if a.debug:
            raise
        print(f"cmrlib {a.cmd}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
