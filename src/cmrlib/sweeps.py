"""Sweeps of chapter 10 (Lee et al. 2025 Figs. S1–S3, Table S9): the same experiment over a range of training-set
compositions or oversampling levels. Each point is an ordinary experiment of the run store, so a sweep that
is interrupted or repeated trains only the points it lacks."""
from __future__ import annotations

import pandas as pd

from .experiments import run_experiment
from .methods import METHODS, Method
from .pipeline import prepare_data
from .report import experiment_scores, fairness_summary


def with_training_counts(params: dict, train: dict, advantaged: str | None = None, minority: str | None = None) -> dict:
    """A copy of a profile whose training set has other group counts (the ≤ 1% check is off)."""
    cur = {**params["curation"], "train": dict(train), "max_minority_share": None}
    if advantaged:
        cur["advantaged"] = advantaged
    if minority:
        cur["minority"] = minority
    return {**params, "curation": cur}


def _row(per_structure, group_col, adv, minority, **extra) -> dict:
    sc = experiment_scores(per_structure, "test")
    med = sc.groupby(group_col).dsc.median()
    fs = fairness_summary(sc, group_col, adv, minority)
    return dict(**extra, dsc_advantaged=med.get(adv), dsc_minority=med.get(minority),
                dsc_overall=sc.dsc.median(), fg=fs["fg"], ser=fs["ser"], p=fs["p"])


def minority_count_sweep(params: dict, counts, method: str = "baseline", progress: bool = False) -> pd.DataFrame:
    """Fig. S1: the number of minority subjects in training, the majority count fixed at the profile's."""
    cur = params["curation"]
    adv, minority = cur["advantaged"], cur["minority"]
    rows = []
    for n in counts:
        data = prepare_data(with_training_counts(params, {adv: cur["train"][adv], minority: int(n)}), progress=False)
        rows.append(_row(run_experiment(data, method, METHODS[method], progress), data.group_col, adv, minority,
                         n_minority=int(n), minority_share=n / (n + cur["train"][adv])))
    return pd.DataFrame(rows)


def oversampling_sweep(data, levels, progress: bool = False) -> pd.DataFrame:
    """Figs. S2–S3: the minority's share of every batch. Level 0 is the baseline (uniform sampling)."""
    cur = data.params["curation"]
    rows = []
    for lv in levels:
        if lv == 0:
            name, method = "baseline", METHODS["baseline"]
        elif lv == METHODS["oversampling"].level:     # the run of chapter 03
            name, method = "oversampling", METHODS["oversampling"]
        else:
            name, method = f"oversampling_{lv:g}", Method(sampler="oversampling", level=float(lv))
        rows.append(_row(run_experiment(data, name, method, progress), data.group_col, cur["advantaged"],
                         cur["minority"], level=float(lv)))
    return pd.DataFrame(rows)
