"""Where each difference between groups is visible: the footprint of a cohort factor relative to the heart box.

A factor labelled ``outside_heart`` must change no pixel inside the ground-truth heart box that cropping uses
(chapter 07: the largest heart plus a 9 mm buffer on each side); an
``inside_heart`` factor does change pixels there. :func:`footprint` renders the same subjects twice, with the
factor at its two extremes for every group and everything else (every random draw) the same, and measures the
largest change inside and outside each subject's box, relative to the blood-pool signal. Used by the tests
and by chapter 11.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from cmrlib.data import synthetic
from cmrlib.data.crop import box_for, crop_box_size

BLOOD_SIGNAL = 1000.0          # the renderer's blood-pool signal before noise (synthetic.render scales by 1000)
TOLERANCE = 0.01               # largest change inside the box an outside_heart factor may make (1% of blood)
INSIDE_LABEL_FACTORS = ("myocardial_wall",)      # factors that change the anatomy, hence the labels


def with_factor(spec: dict, name: str, value: float) -> dict:
    """A copy of ``spec`` in which factor ``name`` takes ``value`` for every group (switches on)."""
    s = copy.deepcopy(spec)
    s["factors"][name] = {**s["factors"][name], "default": float(value), "groups": {}}
    s["outside_heart_differences"] = s["inside_heart_differences"] = True
    return s


def factor_extremes(spec: dict, name: str) -> tuple[float, float]:
    """The two values a factor is compared at: 0 and 1 for a probability (``*_rate``), else the smallest and
    largest value the spec gives any group."""
    if name.endswith("_rate"):
        return 0.0, 1.0
    fac = spec["factors"][name]
    vals = [float(fac["default"]), *map(float, (fac.get("groups") or {}).values())]
    return min(vals), max(vals)


def footprint(spec: dict, cfg: "synthetic.CohortConfig", name: str, values=None) -> pd.DataFrame:
    """Per subject and frame: the largest change the factor makes inside and outside the heart box
    (``inside``, ``outside``, relative to the blood signal), and the box size used."""
    lo, hi = values if values is not None else factor_extremes(spec, name)
    s_lo, s_hi = with_factor(spec, name, lo), with_factor(spec, name, hi)
    sub_lo, sub_hi = synthetic.subjects_table(s_lo, cfg), synthetic.subjects_table(s_hi, cfg)
    pairs = list(zip(synthetic.iter_volumes(s_lo, sub_lo, cfg), synthetic.iter_volumes(s_hi, sub_hi, cfg)))
    labels = [a[3] for a, _ in pairs]
    size = crop_box_size(labels, cfg.grid.spacing, labels[0].shape)      # chapter 07's box
    rows = []
    for (row, frame, a, lab, _), (_, _, b, lab_b, _) in pairs:
        assert np.array_equal(lab, lab_b) or name in INSIDE_LABEL_FACTORS, f"{name} changed the labels"
        box, _ = box_for(lab > 0, size)
        d = np.abs(b.astype(np.float64) - a) / BLOOD_SIGNAL
        inside = np.zeros(d.shape[-2:], bool)
        inside[box.slices] = True
        rows.append(dict(subject_id=row["subject_id"], ethnicity=row["ethnicity"], frame=frame, factor=name,
                         inside=float(d[:, inside].max()), outside=float(d[:, ~inside].max()),
                         box_h=size[0], box_w=size[1]))
    return pd.DataFrame(rows)

