"""The 2021 study's settings (the profile's ``study2021`` section), read by its study module and by fair
meta-learning."""
from __future__ import annotations

from cmrlib.errors import InputError
from cmrlib.runs.evidence import training_seeds
from cmrlib.training.methods import training_steps

# training steps of the extra phases default to shares of the profile's training.steps
DEFAULTS = {"split": {"train": 0.8, "val": 0.1, "test": 0.1}, "finetune_steps": None, "classifier_steps": None,
            "joint_steps": None, "meta_weight": 0.1, "classifier_lr": 1e-3, "seeds": None}


def settings(params: dict) -> dict:
    """The profile's ``study2021`` section with defaults: fine-tuning and joint training take half the
    profile's training steps (the first phase the other half, so every approach trains its segmenter for the
    same number of steps, as the study's 500 + 500 epochs against 1,000), the classifier's own phase as many.
    ``seeds`` (the training seeds of every approach, whose claims are judged over them) defaults to the profile's
    (:func:`cmrlib.runs.evidence.training_seeds`)."""
    s = {**DEFAULTS, **(params.get("study2021") or {})}
    steps = training_steps(params)
    for k, share in (("finetune_steps", 0.5), ("classifier_steps", 1.0), ("joint_steps", 0.5)):
        s[k] = int(s[k]) if s[k] is not None else max(1, int(steps * share))
    s["seeds"] = training_seeds(params) if s["seeds"] is None else [int(x) for x in s["seeds"]]
    if not s["seeds"]:
        raise InputError("study2021.seeds: an empty list; give at least one training seed")
    return s
