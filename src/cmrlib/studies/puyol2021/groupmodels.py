"""Protected-group models (Puyol-Antón et al. 2021, §3, approach 3): one segmentation model per group.

A model pre-trained on every training subject is fine-tuned on each group's training subjects alone, and each
test subject is segmented by its own group's model. This is the one strategy of the study that needs the
protected attribute at inference time: a subject whose group is unknown, or has no model, cannot be segmented.
Each fine-tuned model is an ordinary run of the store (its key names the pre-trained run it starts from).
"""
from __future__ import annotations

import pandas as pd
import torch

from cmrlib.config import runs_dir
from cmrlib.data.pipeline import Data, with_training
from cmrlib.errors import InputError
from cmrlib.files import stable_hash
from cmrlib.runs.experiments import evaluate, pretrained, segment, stored_metrics, trained_model
from cmrlib.runs.store import run_dir_for
from cmrlib.training.methods import Method


def only_group(data: Data, group, splits=("train",)) -> Data:
    """The same data with the subjects of ``splits`` outside ``group`` set aside (split ``other``)."""
    s = data.subjects
    off = s.split.isin(splits) & (s[data.group_col] != group)
    return Data(data.cache, s.assign(split=s.split.where(~off, "other")), data.params)


def route(subjects: pd.DataFrame, group_col: str, models: dict) -> dict:
    """Which subjects each group's model segments: group → subject IDs. A subject whose group has no model
    (or no recorded group) is refused with its group and the groups that have models."""
    missing = subjects[~subjects[group_col].isin(list(models))]
    if len(missing):
        first = missing.iloc[0]
        raise InputError(f"protected-group models: {len(missing)} subject(s) have no model for their group, e.g. "
                         f"subject {first.subject_id} ({group_col}={first[group_col]!r}); groups with models: "
                         f"{', '.join(map(str, models))}")
    return {g: subjects.loc[subjects[group_col] == g, "subject_id"].tolist() for g in models
            if (subjects[group_col] == g).any()}


def group_models(data: Data, groups, steps: int, pretrain_steps: int, progress: bool = False) -> dict:
    """Pre-train on every training subject for ``pretrain_steps`` steps (:func:`cmrlib.runs.experiments.pretrained`),
    then fine-tune on each group's training subjects for ``steps`` steps: group → (model, run folder). A group
    without training subjects is refused with its count."""
    for g in groups:
        n = int(((data.subjects.split == "train") & (data.subjects[data.group_col] == g)).sum())
        if n == 0:
            raise InputError(f"protected-group models: {data.group_col}={g} has 0 training subjects to fine-tune on")
    base, start = pretrained(data, pretrain_steps, progress)
    init = {k: v.detach().clone() for k, v in base.state_dict().items()}
    tuned = with_training(data, {"steps": int(steps)})
    out = {}
    for g in groups:
        d = only_group(tuned, g)
        method = Method(options={"init": start})
        name = f"group_model_{g}"
        model, _ = trained_model(d, name, method, progress=progress, init_state=init)
        out[g] = (model, run_dir_for(d, name, method))
    return out


def run_group_models(data: Data, groups, steps: int, pretrain_steps: int, progress: bool = False,
                     splits=("test", "external")) -> pd.DataFrame:
    """Per-structure metrics of the protected-group models (:func:`group_models`), each subject of ``splits``
    routed to its group's model; stored in the run folder ``protected_group_models-<hash of the group models'
    runs and the subjects>``."""
    models = group_models(data, groups, steps, pretrain_steps, progress)
    evaluated = sorted(data.subjects.loc[data.subjects.split.isin(splits), "subject_id"])
    rd = runs_dir(data.params) / f"protected_group_models-{stable_hash([[r.name for _, r in models.values()], evaluated])}"

    def compute():
        routed = route(data.subjects[data.subjects.split.isin(splits)], data.group_col,
                       {g: m for g, (m, _) in models.items()})
        parts = []
        for g, ids in routed.items():
            model = models[g][0]
            sub = data.subjects.assign(split=data.subjects.split.where(data.subjects.subject_id.isin(ids), "other"))
            with torch.no_grad():
                parts.append(evaluate(lambda img, lab, m=model: (segment(m, img, data.params), True),
                                      Data(data.cache, sub, data.params), progress, splits))
        df = pd.concat(parts, ignore_index=True)
        df["experiment"] = "protected_group_models"
        return df
    return stored_metrics(rd, compute)
