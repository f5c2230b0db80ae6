"""Calibration of the synthetic cohort (issue: the cause of bias lies outside the heart box).

Trains, on one profile (course by default) and its outside-heart-off variant, the baseline at the profile's
budget and at four times it, the ground-truth crop and the cascade, and probes the group classifier on full
images, heart boxes and heart-blanked images; prints each number with the acceptance bound it is held to.
Everything lands in the run store, so the book's chapters reuse it.

Usage: python scripts/calibrate_cohort.py [params/course.yaml] [--steps-factor 4] [--only baseline,long,...]
"""
import argparse
import time

from cmrlib.config import load_params
from cmrlib.data.crop import crop_size
from cmrlib.data.pipeline import prepare_data, with_training
from cmrlib.evaluation.report import experiment_scores, fairness_summary
from cmrlib.runs.experiments import run_experiment
from cmrlib.studies.lee2025.rootcause import classifier_probe
from cmrlib.training.methods import training_steps

ap = argparse.ArgumentParser()
ap.add_argument("params", nargs="?", default="params/course.yaml")
ap.add_argument("--off", default=None, help="the outside-heart-off profile (default: <profile>_outside_off.yaml)")
ap.add_argument("--steps-factor", type=int, default=4)
ap.add_argument("--only", default="baseline,off,long,crop,cascade,probe,probe_off")
a = ap.parse_args()
todo = a.only.split(",")
params = load_params(a.params)
off_path = a.off or a.params.replace(".yaml", "_outside_off.yaml")


def experiment_scores_of(per, gcol, adv, mino):
    sc = experiment_scores(per, "test")
    med = sc.groupby(gcol).dsc.median()
    return dict(dsc_adv=med[adv], dsc_min=med[mino], **fairness_summary(sc, gcol, adv, mino))


def line(what, s, t0):
    print(f"{what:34s} White {s['dsc_adv']:.3f}  Black {s['dsc_min']:.3f}  FG {s['fg']:+.3f}  p {s['p']:.2g}"
          f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


data = prepare_data(params)
adv, mino = params["curation"]["advantaged"], params["curation"]["minority"]
if "baseline" in todo:
    t0 = time.perf_counter()
    line("baseline", experiment_scores_of(run_experiment(data, "baseline"), data.group_col, adv, mino), t0)
if "long" in todo:
    t0 = time.perf_counter()
    longer = with_training(data, {"steps": a.steps_factor * training_steps(params)})
    line(f"baseline x{a.steps_factor} steps",
         experiment_scores_of(run_experiment(longer, "baseline"), data.group_col, adv, mino), t0)
for name, key in (("baseline_crop_gt", "crop"), ("baseline_cascade", "cascade")):
    if key in todo:
        t0 = time.perf_counter()
        line(name, experiment_scores_of(run_experiment(data, name), data.group_col, adv, mino), t0)
if "probe" in todo:
    t0 = time.perf_counter()
    print(classifier_probe(data, [adv, mino], crop_size(data), steps=params["rootcause"]["classifier_steps"],
                           seed=params["seed"]).round(3).to_string(index=False), f"({time.perf_counter() - t0:.0f} s)")
if "off" in todo:
    off = prepare_data(load_params(off_path))
    t0 = time.perf_counter()
    line("baseline, outside-heart off", experiment_scores_of(run_experiment(off, "baseline"), off.group_col, adv, mino), t0)
if "probe_off" in todo:                # every difference off, as chapter 11
    all_off = {**params, "profile": params["profile"] + "_all_off",
               "cohort": {**params["cohort"], "outside_heart_differences": False, "inside_heart_differences": False}}
    off = prepare_data(all_off)
    t0 = time.perf_counter()
    print("every difference off:")
    print(classifier_probe(off, [adv, mino], crop_size(off), steps=params["rootcause"]["classifier_steps"],
                           seed=params["seed"]).round(3).to_string(index=False), f"({time.perf_counter() - t0:.0f} s)")
