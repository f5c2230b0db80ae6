"""Where does the bias come from? (chapter 11; after Lee et al. 2025a, cited in Lee et al. 2025 §1 and §4.7)

Two probes:

- a protected-group classifier trained on (a) full images, (b) heart crops, (c) images with the heart box
  blanked out. If (c) tells the groups apart, the images carry group information outside the heart; if it
  falls to chance when the synthetic cohort's outside-heart differences are switched off, that information
  is what the spec put there.
- where a segmentation model's errors lie: false-positive and false-negative pixels inside the heart box
  versus outside it, per group.

Subjects, not slices, are split between classifier training and testing, so no subject is on both sides.
The AUC is computed from the Mann–Whitney U statistic (AUC = U / (n₁ n₂)).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib.config import runs_dir
from cmrlib.data.crop import box_for, crop_image, crop_size
from cmrlib.evaluation.stats import mann_whitney
from cmrlib.files import stable_hash
from cmrlib.runs.experiments import stored_metrics
from cmrlib.training.classifier import train_classifier

VIEWS = ("full", "heart", "outside")


def subject_split(subjects: pd.DataFrame, group_col: str, groups, seed: int, test_fraction: float = 0.5,
                  balance: bool = True) -> pd.DataFrame:
    """Subjects of ``groups`` with a ``role`` column (fit / held_out), stratified by group; with ``balance``
    the larger group is subsampled to the smaller one's size."""
    rng = np.random.default_rng(seed)
    parts = [subjects[subjects[group_col] == g] for g in groups]
    n = min(len(p) for p in parts) if balance else None
    out = []
    for p in parts:
        idx = rng.permutation(len(p))[: n or len(p)]
        p = p.iloc[idx].copy()
        k = int(round(len(p) * test_fraction))
        p["role"] = ["held_out"] * k + ["fit"] * (len(p) - k)
        out.append(p)
    return pd.concat(out, ignore_index=True)


def view_slices(cache, subject_ids, view: str, size: tuple[int, int], frame: str = "ED"):
    """Mid-ventricular slices (the slice with most heart) of each subject in one view, with subject ids.
    ``heart``: the fixed-size box around the heart, z-scored on its own pixels as a crop model sees it;
    ``outside``: the full image with that box set to the image minimum; ``full``: the image as it is."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}")
    vols = cache.volumes.reset_index()
    xs, ids = [], []
    for sid in subject_ids:
        r = vols[(vols.subject_id == sid) & (vols.frame == frame)]
        if r.empty:
            continue
        img, lab, _ = cache.volume(int(r["index"].iloc[0]))
        z = int(np.argmax((lab > 0).sum(axis=(1, 2))))
        im = img[z].astype(np.float32)
        box, _ = box_for(lab > 0, size)
        if view == "heart":               # what a crop model sees: the box z-scored on its own
            im = crop_image(im, box, size)
        elif view == "outside":
            im = im.copy()
            im[box.slices] = im.min()
        xs.append(im)
        ids.append(sid)
    return np.stack(xs), ids


def auc(scores, labels) -> float:
    labels = np.asarray(labels, bool)
    pos, neg = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    u, _ = mann_whitney(pos, neg)
    return float(u / (len(pos) * len(neg)))


def classifier_probe(data, groups, size, views=VIEWS, steps: int = 200, seed: int = 0) -> pd.DataFrame:
    """Accuracy and AUC of a group classifier per view on held-out subjects of the test split."""
    gcol = data.group_col
    test = data.subjects[data.subjects.split == "test"]
    split = subject_split(test, gcol, groups, seed)
    grp = split.set_index("subject_id")[gcol]
    rows = []
    for view in views:
        parts = {}
        for role in ("fit", "held_out"):
            x, ids = view_slices(data.cache, split.loc[split.role == role, "subject_id"], view, size)
            parts[role] = (x, (grp.loc[ids] == groups[1]).to_numpy().astype(int))
        clf = train_classifier(*parts["fit"], steps=steps, seed=seed)
        x, y = parts["held_out"]
        p = clf(x)
        rows.append(dict(view=view, n_fit=len(parts["fit"][1]), n_held_out=len(y),
                         accuracy=float(((p > 0.5) == y).mean()), auc=auc(p, y)))
    return pd.DataFrame(rows)


def error_location(pred: np.ndarray, label: np.ndarray, size) -> dict:
    """Wrong pixels of one stack inside and outside its ground-truth heart box."""
    box, _ = box_for(label > 0, size)
    wrong = pred != label
    inside = np.zeros_like(wrong)
    inside[..., box.slices[0], box.slices[1]] = True
    return dict(errors_inside=int((wrong & inside).sum()), errors_outside=int((wrong & ~inside).sum()),
                fp_outside=int(((pred > 0) & ~inside).sum()))


def stored_probe(data, groups=None, size=None, steps: int | None = None, seed: int | None = None) -> pd.DataFrame:
    """:func:`classifier_probe` kept in the run store (``rootcause_probe-<hash>/metrics.csv``), so that the claims
    chapter can read it: defaults are the two training groups, the heart box of chapter 07, the profile's
    ``rootcause.classifier_steps`` and seed."""
    groups = list(groups or (data.advantaged, data.minority))
    size = tuple(size or crop_size(data))
    steps = int(steps or data.params.get("rootcause", {}).get("classifier_steps", 200))
    seed = int(data.params["seed"] if seed is None else seed)
    key = stable_hash(["rootcause_probe", data.cache.path.name, sorted(data.ids("test")), groups, list(size), steps,
                       seed, VIEWS])
    return stored_metrics(runs_dir(data.params) / f"rootcause_probe-{key}",
                          lambda: classifier_probe(data, groups, size, steps=steps, seed=seed))


# the bounds the synthetic cohort is calibrated to (scripts/calibrate_cohort.py; chapter 11)
AUC_BOUNDS = {"full_min": 0.85, "outside_min": 0.85, "heart_max": 0.70, "off_max": 0.60}


def calibration_verdict(on: pd.Series, off: pd.Series) -> str:
    """Whether the probe's AUCs per view (``on``: the cohort's differences on; ``off``: all off) meet
    :data:`AUC_BOUNDS`: the group information lies where the spec put it."""
    b = AUC_BOUNDS
    holds = (on["full"] >= b["full_min"] and on["outside"] >= b["outside_min"] and on["heart"] <= b["heart_max"]
             and off.max() <= b["off_max"])
    return ("the group information lies where the spec put it: outside the heart box" if holds else
            "the probes do not (all) meet the bounds, so the group information is not only where the spec put it")


def crop_test(fg_full: float, fg_crop: float, gain_adv: float, gain_min: float) -> str:
    """The cohort's test of the cropping idea (chapter 07): a crop that keeps at most half of the full-image gap
    and makes neither group worse is what a cause outside the box predicts."""
    idea = abs(fg_crop) <= 0.5 * abs(fg_full) and gain_adv >= 0 and gain_min >= 0
    return ("the crop keeps at most half of the full-image gap and makes neither group worse, as expected when the "
            "cause lies outside the box" if idea else "the crop does not remove most of the gap without cost to a "
            "group, so on this profile the cause is not (only) outside the box")


def cascade_test(fg_full: float, fg_cascade: float) -> str:
    """Chapter 08: does the cascade, like the ground-truth crop, keep at most half of the full-image gap?"""
    return ("keeps at most half of the full-image gap, as the ground-truth crop does" if abs(fg_cascade) <= 0.5 * abs(fg_full)
            else "keeps more than half of the full-image gap: the predicted box loses part of what the ground-truth "
            "box gains")
