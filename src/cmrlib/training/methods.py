"""The book's methods and which chapter trains which.

A method says how training differs from the baseline: the batch sampler, the objective that combines the
per-sample losses, the loss, and whether the network sees full images or crops of the heart. ``METHODS`` holds
every method of the main paper (Lee et al. 2025, Tables 4–7) under the name its run folder carries;
``CHAPTERS`` lists the experiments each chapter needs, so that ``cmrlib run --only NN`` and the chapters read
one list.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cmrlib.errors import InputError
from cmrlib.training.sampling import oversampling_sampler, stratified_sampler, uniform_sampler
from cmrlib.training.train import TrainConfig


@dataclass
class Method:
    """How training differs from the baseline. ``sampler``: uniform | oversampling | stratified;
    ``level``: the minority's batch share for oversampling; ``objective``: mean | reweight | group_dro |
    group_dro_reweight; ``loss``: dice_ce | ce; ``options``: the objective's settings (``normalise`` for
    reweighting; ``eta`` and ``adjustment`` for Group DRO)."""
    sampler: str = "uniform"
    level: float = 0.5
    objective: str = "mean"
    loss: str = "dice_ce"
    options: dict = field(default_factory=dict)
    crop: str | None = None          # None | "gt" | "cascade"
    first_stage: str | None = None   # cascade: the full-image experiment that places the box
    second_stage: str | None = None  # cascade: the ground-truth-crop experiment that segments it


DRO = dict(eta=0.01, adjustment=0.0)
METHODS = {
    # Lee et al. 2025, Table 4
    "baseline": Method(),
    "oversampling": Method(sampler="oversampling"),
    "reweighting": Method(objective="reweight", options=dict(normalise="paper")),
    "group_dro": Method(objective="group_dro", loss="ce", options=DRO),
    # Lee et al. 2025, Table 5 (Group DRO always with CE, §4.6)
    "oversampling_group_dro": Method(sampler="oversampling", objective="group_dro", loss="ce", options=DRO),
    "group_dro_reweighting": Method(objective="group_dro_reweight", loss="ce", options=dict(DRO, normalise="paper")),
    "oversampling_reweighting": Method(sampler="oversampling", objective="reweight", options=dict(normalise="paper")),
    # an implementation choice measured in chapter 04: weights as a weighted mean instead of Eq. 2's scale
    "reweighting_weighted_mean": Method(objective="reweight", options=dict(normalise="batch")),
}

# Lee et al. 2025, Tables 6 (ground-truth crops) and 7 (cascade) for every mitigation
for _name in list(METHODS):
    if _name == "reweighting_weighted_mean":
        continue
    _m = METHODS[_name]
    METHODS[f"{_name}_crop_gt"] = Method(**{**_m.__dict__, "crop": "gt"})
    METHODS[f"{_name}_cascade"] = Method(crop="cascade", first_stage=_name, second_stage=f"{_name}_crop_gt")
PAPER_METHODS = ["baseline", "oversampling", "reweighting", "group_dro"]
# chapter 05: Group DRO with a step size at which q can move within a CPU profile's few hundred steps
METHODS["group_dro_eta1"] = Method(objective="group_dro", loss="ce", options=dict(DRO, eta=1.0))
# Puyol-Antón et al. 2021, approach 1: every group equally often in each batch (chapter 14; no crop variants)
METHODS["stratified"] = Method(sampler="stratified")

# which experiments each chapter needs (for `cmrlib run --only NN`)
CHAPTERS = {
    "02": ["baseline"],
    "03": ["baseline", "oversampling"],
    "04": ["baseline", "reweighting", "reweighting_weighted_mean"],
    "05": ["baseline", "group_dro", "group_dro_eta1"],
    "06": ["baseline", "oversampling_group_dro", "group_dro_reweighting", "oversampling_reweighting"],
    "07": ["baseline", *(f"{m}_crop_gt" for m in PAPER_METHODS)],
    "08": ["baseline", *(f"{m}_cascade" for m in PAPER_METHODS)],
}
# chapter 10's sweeps vary the training set itself; `cmrlib book` runs them (cmrlib.studies.lee2025.sweeps)


def train_config(params: dict, method: Method) -> TrainConfig:
    """Training settings of a profile for a method. ``training.dro_loss`` overrides the loss of the Group DRO
    methods (the paper's CE by default; the CPU profiles use per-sample Dice+CE, see chapter 05)."""
    t = dict(params["training"])
    dro_loss = t.pop("dro_loss", None)
    t["channels"] = tuple(t.get("channels", (8, 16, 32, 64)))
    t.setdefault("seed", params["seed"])
    t["loss"] = dro_loss if dro_loss and method.objective.startswith("group_dro") else method.loss
    return TrainConfig(**t)


def training_steps(params: dict) -> int:
    """The profile's ``training.steps``, read and checked through :class:`~cmrlib.training.train.TrainConfig`
    (every reader of the step budget goes through here)."""
    return train_config(params, METHODS["baseline"]).steps


def make_sampler(method: Method, groups, minority: str):
    if method.sampler == "uniform":
        return uniform_sampler(groups)
    if method.sampler == "oversampling":
        return oversampling_sampler(groups, minority, method.level)
    if method.sampler == "stratified":
        return stratified_sampler(groups)
    raise ValueError(f"unknown sampler {method.sampler!r}")



def chapter_experiments(only: str | None = None) -> list[str]:
    """The experiments of one chapter (``"02"`` or ``"2"``), or of every chapter."""
    if only is None:
        return list(dict.fromkeys(n for names in CHAPTERS.values() for n in names))
    key = str(only).strip()
    key = key.zfill(2) if key.isdigit() else key
    if key not in CHAPTERS:
        raise InputError(f"--only {only}: no experiments to run for chapter {only!r}; chapters with experiments: "
                         f"{', '.join(CHAPTERS)} (chapter 10's sweeps and the others run with `cmrlib book`)")
    return CHAPTERS[key]
