"""Clinical measures from the label maps of stored models: the true and the predicted volumes, EF and mass of
every test subject, and their errors per experiment (chapter 16; the measures themselves are
:mod:`cmrlib.evaluation.clinical`)."""
from __future__ import annotations

import pandas as pd

from cmrlib.data.pipeline import volume_indices
from cmrlib.evaluation.clinical import errors, measures_table
from cmrlib.files import write_atomic
from cmrlib.runs.experiments import predictor
from cmrlib.runs.store import run_dir_for
from cmrlib.training.methods import METHODS


def subject_stacks(data, splits=("test", "external")):
    """Per subject of ``splits`` with both frames: (subject ID, ED volume index, ES volume index)."""
    vols = data.cache.volumes
    idx = {}
    for vi in volume_indices(data, splits):
        idx.setdefault(vols.subject_id.iloc[int(vi)], {})[vols.frame.iloc[int(vi)]] = int(vi)
    return [(sid, f["ED"], f["ES"]) for sid, f in idx.items() if "ED" in f and "ES" in f]


def true_measures(data, splits=("test", "external")) -> pd.DataFrame:
    """The measures of the ground-truth labels of every subject of ``splits``."""
    def pairs():
        for sid, ed, es in subject_stacks(data, splits):
            _, led, sp = data.cache.volume(ed)
            yield sid, led, data.cache.volume(es)[1], sp
    return measures_table(pairs())


def predicted_measures(data, name: str, method=None, splits=("test", "external"), progress: bool = False) -> pd.DataFrame:
    """The measures of an experiment's predicted labels on the subjects of ``splits`` (its models trained or
    loaded as :func:`cmrlib.runs.experiments.run_experiment` uses them), kept as ``clinical-<splits>.csv`` in its run
    folder. ``method``: the experiment's method where ``name`` is not one of :data:`cmrlib.training.methods.METHODS`."""
    method = method or METHODS[name]
    out = run_dir_for(data, name, method) / f"clinical-{'-'.join(splits)}.csv"
    if out.exists():
        return pd.read_csv(out, dtype={"subject_id": str})
    predict_volume = predictor(data, name, method, progress)

    def pairs():
        for sid, ed, es in subject_stacks(data, splits):
            (img_ed, lab_ed, sp), (img_es, lab_es, _) = data.cache.volume(ed), data.cache.volume(es)
            yield sid, predict_volume(img_ed, lab_ed)[0], predict_volume(img_es, lab_es)[0], sp
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, measures_table(pairs()).to_csv(index=False))
    return pd.read_csv(out, dtype={"subject_id": str})


def method_errors(data, names, progress: bool = False, splits=("test",), method=None) -> pd.DataFrame:
    """Errors (predicted − true) per subject and measure for each experiment of ``names`` (column ``method``)
    on the subjects of ``splits``, with the subjects' columns; ``method`` as :func:`predicted_measures`."""
    true = true_measures(data, splits)
    keep = data.subjects[data.subjects.split.isin(splits)]
    parts = []
    for n in names:
        pred = predicted_measures(data, n, method, splits, progress)
        parts.append(errors(pred[pred.subject_id.isin(keep.subject_id)], true, keep).assign(method=n))
    return pd.concat(parts, ignore_index=True)
