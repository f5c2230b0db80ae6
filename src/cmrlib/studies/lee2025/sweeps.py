"""Sweeps of chapter 10 (Lee et al. 2025 Figs. S1–S3, Table S9): the same experiment over a range of training-set
compositions or oversampling levels. Each point is an ordinary experiment of the run store, so a sweep that
is interrupted or repeated trains only the points it lacks."""
from __future__ import annotations

import pandas as pd

from cmrlib.data.pipeline import prepare_data
from cmrlib.evaluation.fairness import gap_interval
from cmrlib.evaluation.report import experiment_scores, fairness_summary
from cmrlib.runs.experiments import run_experiment
from cmrlib.training.methods import METHODS, Method


def with_training_counts(params: dict, train: dict, advantaged: str | None = None, minority: str | None = None) -> dict:
    """A copy of a profile whose training set has other group counts (the ≤ 1% check is off)."""
    cur = {**params["curation"], "train": dict(train), "max_minority_share": None}
    if advantaged:
        cur["advantaged"] = advantaged
    if minority:
        cur["minority"] = minority
    return {**params, "curation": cur}


def _row(per_structure, group_col, adv, minority, **extra) -> dict:
    """One sweep point: each group's median DSC, the overall median, FG with its subject-level bootstrap 95 %
    interval (``fg_low``, ``fg_high``), SER and the Mann–Whitney p."""
    sc = experiment_scores(per_structure, "test")
    med = sc.groupby(group_col).dsc.median()
    fs = fairness_summary(sc, group_col, adv, minority)
    lo, hi = gap_interval(sc, group_col, adv, minority)
    return dict(**extra, dsc_advantaged=med.get(adv), dsc_minority=med.get(minority),
                dsc_overall=sc.dsc.median(), fg=fs["fg"], fg_low=lo, fg_high=hi, ser=fs["ser"], p=fs["p"])


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


def level_method(level: float) -> str:
    """The experiment name of oversampling at ``level`` (the minority's batch share): ``baseline`` at 0,
    ``oversampling`` at the paper's level, else ``oversampling_<level>``, registered in
    :data:`cmrlib.training.methods.METHODS` with its ground-truth-crop and cascade variants, as every method there is."""
    if level == 0:
        return "baseline"
    if level == METHODS["oversampling"].level:     # the run of chapter 03
        return "oversampling"
    name = f"oversampling_{level:g}"
    METHODS.setdefault(name, Method(sampler="oversampling", level=float(level)))
    METHODS.setdefault(f"{name}_crop_gt", Method(sampler="oversampling", level=float(level), crop="gt"))
    METHODS.setdefault(f"{name}_cascade", Method(crop="cascade", first_stage=name, second_stage=f"{name}_crop_gt"))
    return name


def oversampling_sweep(data, levels, progress: bool = False, cascade: bool = False) -> pd.DataFrame:
    """Figs. S2–S3: the minority's share of every batch. Level 0 is the baseline (uniform sampling). With
    ``cascade``, each level's cascade: its full-image model places the box, its ground-truth-crop model segments
    it (the paper's Fig. S2 shows both)."""
    cur = data.params["curation"]
    rows = []
    for lv in levels:
        name = level_method(float(lv)) + ("_cascade" if cascade else "")
        rows.append(_row(run_experiment(data, name, METHODS[name], progress), data.group_col, cur["advantaged"],
                         cur["minority"], level=float(lv), cascade=bool(cascade)))
    return pd.DataFrame(rows)
