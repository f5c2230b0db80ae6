"""Experiments and the run store.

An experiment is a named method (sampler + objective + loss) trained on a :class:`~cmrlib.pipeline.Data`.
Its results live in ``runs/<profile>/<name>-<hash>/`` (config, checkpoint, training log, per-structure
metrics). The hash covers everything that determines the result, so asking again for an experiment that has
finished returns the stored metrics without training, and an interrupted one resumes from its checkpoint.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import runs_dir
from .crop import box_for, cascade_predict, crop_box_size, crop_image, crop_to_box, network_size, paste
from .data.cache import stable_hash
from .metrics import volume_metrics
from .pipeline import Data, volume_indices
from .postprocess import postprocess
from .sampling import oversampling_sampler, stratified_sampler, uniform_sampler
from .train import TrainConfig, predict, train_model


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
    # seed 001 Table 4
    "baseline": Method(),
    "oversampling": Method(sampler="oversampling"),
    "reweighting": Method(objective="reweight", options=dict(normalise="paper")),
    "group_dro": Method(objective="group_dro", loss="ce", options=DRO),
    # seed 001 Table 5 (Group DRO always with CE, §4.6)
    "oversampling_group_dro": Method(sampler="oversampling", objective="group_dro", loss="ce", options=DRO),
    "group_dro_reweighting": Method(objective="group_dro_reweight", loss="ce", options=dict(DRO, normalise="paper")),
    "oversampling_reweighting": Method(sampler="oversampling", objective="reweight", options=dict(normalise="paper")),
    # an implementation choice measured in chapter 04: weights as a weighted mean instead of Eq. 2's scale
    "reweighting_weighted_mean": Method(objective="reweight", options=dict(normalise="batch")),
}

# seed 001 Tables 6 (ground-truth crops) and 7 (cascade) for every mitigation
for _name in list(METHODS):
    if _name == "reweighting_weighted_mean":
        continue
    _m = METHODS[_name]
    METHODS[f"{_name}_crop_gt"] = Method(**{**_m.__dict__, "crop": "gt"})
    METHODS[f"{_name}_cascade"] = Method(crop="cascade", first_stage=_name, second_stage=f"{_name}_crop_gt")
PAPER_METHODS = ["baseline", "oversampling", "reweighting", "group_dro"]

# which experiments each chapter needs (for `cmrlib run --only NN`)
CHAPTERS = {
    "02": ["baseline"],
    "03": ["baseline", "oversampling"],
    "04": ["baseline", "reweighting", "reweighting_weighted_mean"],
    "05": ["baseline", "group_dro"],
    "06": ["baseline", "oversampling_group_dro", "group_dro_reweighting", "oversampling_reweighting"],
    "07": [f"{m}_crop_gt" for m in PAPER_METHODS],
    "08": [f"{m}_cascade" for m in PAPER_METHODS],
}
# chapter 10's sweeps vary the training set itself; `cmrlib book` runs them (cmrlib.sweeps)


def train_config(params: dict, method: Method) -> TrainConfig:
    """Training settings of a profile for a method. ``training.dro_loss`` overrides the loss of the Group DRO
    methods (the paper's CE by default; the CPU profiles use per-sample Dice+CE, see chapter 05)."""
    t = dict(params["training"])
    dro_loss = t.pop("dro_loss", None)
    t["channels"] = tuple(t.get("channels", (8, 16, 32, 64)))
    t.setdefault("seed", params["seed"])
    t["loss"] = dro_loss if dro_loss and method.objective.startswith("group_dro") else method.loss
    return TrainConfig(**t)


def make_sampler(method: Method, groups, minority: str):
    if method.sampler == "uniform":
        return uniform_sampler(groups)
    if method.sampler == "oversampling":
        return oversampling_sampler(groups, minority, method.level)
    if method.sampler == "stratified":
        return stratified_sampler(groups)
    raise ValueError(f"unknown sampler {method.sampler!r}")


def make_objective(method: Method, groups):
    """The objective for a method; group weights are computed from the training slices' group counts."""
    import torch

    from .losses import GroupDROObjective, MeanObjective, ReweightedObjective, group_weights
    from .train import group_order
    names = group_order(groups)
    counts = {g: int((np.asarray(groups) == g).sum()) for g in names}
    o = method.options
    if method.objective == "mean":
        return MeanObjective()
    weights = torch.tensor([group_weights(counts)[g] for g in names])
    if method.objective == "reweight":
        return ReweightedObjective(weights, o.get("normalise", "paper"))
    if method.objective in ("group_dro", "group_dro_reweight"):
        dro = GroupDROObjective(len(names), o.get("eta", 0.01), [counts[g] for g in names], o.get("adjustment", 0.0))
        if method.objective == "group_dro":
            return dro
        return ReweightedGroupDRO(dro, ReweightedObjective(weights, o.get("normalise", "paper")))
    raise ValueError(f"unknown objective {method.objective!r}")


class ReweightedGroupDRO:
    """Group DRO on reweighted losses (seed 001 Table 5, "Group DRO + reweighting"): each sample's loss is
    multiplied by its group's weight ŵ_g (Eq. 1–2) before Group DRO forms group means and updates q."""

    def __init__(self, dro, reweight):
        self.dro, self.reweight = dro, reweight

    def __call__(self, per_sample, group_ids, n_groups):
        return self.dro(per_sample * self.reweight.w.to(per_sample.device)[group_ids], group_ids, n_groups)

    def state_dict(self):
        return self.dro.state_dict()

    def load_state_dict(self, state):
        self.dro.load_state_dict(state)


def postprocessing(params: dict) -> str:
    """The profile's post-processing of predictions (``evaluation.postprocess``; nnU-Net's largest connected
    component per structure by default)."""
    return params.get("evaluation", {}).get("postprocess", "largest_component")


def eval_batch_size(params: dict) -> int:
    return params.get("evaluation", {}).get("batch_size", 64)


def segment(model, images: np.ndarray, params: dict) -> np.ndarray:
    """A model's label map for a (Z, H, W) stack, post-processed as the profile says."""
    return postprocess(predict(model, images, eval_batch_size(params)), postprocessing(params))


def run_dir_for(data: Data, name: str, method: Method) -> Path:
    cfg = train_config(data.params, method)
    key = stable_hash([name, method.__dict__, cfg.to_dict(), data.cache.path.name, sorted(data.ids("train")),
                       postprocessing(data.params)])
    return runs_dir(data.params) / f"{name}-{key}"


def crop_size(data: Data) -> tuple[int, int]:
    """Seed 001 §4.7's box: the largest training heart plus the buffer (9 mm, the paper's 5 px at 1.8 mm;
    :func:`cmrlib.crop.buffer_px`) on each side, capped at the image size."""
    train = set(data.ids("train"))
    vols = [int(i) for i in np.flatnonzero(data.cache.volumes.subject_id.isin(train).to_numpy())]
    return crop_box_size((data.cache.volume(i)[1] for i in vols), data.cache.volumes.spacing_y.iloc[0],
                         data.cache.images.shape)


def crop_input_size(data: Data, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The crop model's input: the box padded up to a multiple of the profile network's total stride,
    2^(levels − 1)."""
    return network_size(size or crop_size(data), 2 ** (len(data.params["training"]["channels"]) - 1))


def training_arrays(data: Data, size: tuple[int, int] | None = None):
    """Training slices, labels and groups; with ``size``, each training stack is cropped to its
    ground-truth heart box of that size first (as :func:`cmrlib.crop.crop_image`: z-scored, padded)."""
    images, labels, groups = data.train_arrays()
    if size is None:
        return images, labels, groups
    train = set(data.ids("train"))
    grp = data.subjects.set_index("subject_id")[data.group_col]
    net = crop_input_size(data, size)
    ims, labs, gs = [], [], []
    for vi in np.flatnonzero(data.cache.volumes.subject_id.isin(train).to_numpy()):
        img, lab, _ = data.cache.volume(int(vi))
        box, _ = box_for(lab > 0, size)
        ims.append(crop_image(img, box, net).astype(img.dtype))
        labs.append(crop_to_box(lab, box, net, value=0))
        gs += [grp[data.cache.volumes.subject_id.iloc[int(vi)]]] * len(img)
    return np.concatenate(ims), np.concatenate(labs), np.asarray(gs)


def trained_model(data: Data, name: str, method: Method | None = None, progress: bool = True):
    """The model of an experiment: trained (or resumed) in its run folder, or loaded when finished."""
    method = method or METHODS[name]
    rd = run_dir_for(data, name, method)
    rd.mkdir(parents=True, exist_ok=True)
    cfg = train_config(data.params, method)
    size = crop_size(data) if method.crop == "gt" else None
    (rd / "config.json").write_text(json.dumps({"name": name, "method": method.__dict__, "training": cfg.to_dict(),
                                                "cache": data.cache.path.name, "crop_size": size,
                                                "crop_input": crop_input_size(data, size) if size else None},
                                               indent=1, default=str))
    images, labels, groups = training_arrays(data, size)
    minority = data.params["curation"].get("minority", "Black")
    model = train_model(images, labels, cfg, rd, slice_groups=groups, sampler=make_sampler(method, groups, minority),
                        objective=make_objective(method, groups), progress=progress, desc=name)
    return model, size


def evaluate(predict_volume, data: Data, progress: bool = True, splits=("test", "external")) -> pd.DataFrame:
    """Per subject × frame × structure DSC and HD on the test and external subjects, with group columns.

    ``predict_volume(image, label)`` returns the full-size label map (the label is used only by
    ground-truth cropping, to place the box). A ``box_found`` column records whether a cascade's first stage
    found the heart."""
    from tqdm import tqdm
    rows = []
    for vi in tqdm(volume_indices(data, splits), desc="evaluate", disable=not progress, mininterval=2):
        img, lab, spacing = data.cache.volume(int(vi))
        pred, found = predict_volume(img, lab)
        v = data.cache.volumes.iloc[int(vi)]
        for r in volume_metrics(pred, lab, spacing):
            rows.append(dict(subject_id=v.subject_id, frame=v.frame, box_found=found, **r))
    return pd.DataFrame(rows).merge(data.subjects, on="subject_id", how="left")


def run_experiment(data: Data, name: str, method: Method | None = None, progress: bool = True) -> pd.DataFrame:
    """Train (or resume, or reuse) one experiment and return its per-structure metrics.

    ``crop=None``: full images. ``crop="gt"``: trained and tested on ground-truth heart crops, predictions
    pasted back. ``crop="cascade"``: no training of its own; the full-image model ``first_stage`` places the
    box and the ground-truth-crop model ``second_stage`` segments it (seed 001 Fig. 1)."""
    method = method or METHODS[name]
    rd = run_dir_for(data, name, method)
    out = rd / "metrics.csv"
    if out.exists():
        return _read_metrics(out)
    bs = eval_batch_size(data.params)
    pp = postprocessing(data.params)
    if method.crop == "cascade":
        full, _ = trained_model(data, method.first_stage, progress=progress)
        second, size = trained_model(data, method.second_stage, progress=progress)
        rd.mkdir(parents=True, exist_ok=True)

        def predict_volume(img, lab):   # the first stage is post-processed too: its mask places the box
            pred, _, found = cascade_predict(lambda x: segment(full, x, data.params), lambda x: predict(second, x, bs),
                                             img, size, crop_input_size(data, size))
            return postprocess(pred, pp), found
    else:
        model, size = trained_model(data, name, method, progress)
        if method.crop == "gt":
            def predict_volume(img, lab):
                box, found = box_for(lab > 0, size)
                pred = predict(model, crop_image(img, box, crop_input_size(data, size)), bs)[..., : box.h, : box.w]
                return postprocess(paste(pred, box, img.shape), pp), found
        else:
            def predict_volume(img, lab):
                return segment(model, img, data.params), True
    df = evaluate(predict_volume, data, progress)
    df["experiment"] = name
    tmp = out.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return _read_metrics(out)


def _read_metrics(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"subject_id": str})


def chapter_experiments(only: str | None = None) -> list[str]:
    """The experiments of one chapter (``"02"`` or ``"2"``), or of every chapter."""
    if only is None:
        return list(dict.fromkeys(n for names in CHAPTERS.values() for n in names))
    key = str(only).strip()
    key = key.zfill(2) if key.isdigit() else key
    if key not in CHAPTERS:
        from .errors import InputError
        raise InputError(f"--only {only}: no experiments to run for chapter {only!r}; chapters with experiments: "
                         f"{', '.join(CHAPTERS)} (chapter 10's sweeps and the others run with `cmrlib book`)")
    return CHAPTERS[key]


def stored_results(params: dict) -> dict[str, pd.DataFrame]:
    """Every finished experiment of a profile (name → metrics); where an experiment ran under several
    configurations, the most recent result."""
    res = {}
    for f in sorted(runs_dir(params).glob("*/metrics.csv"), key=lambda f: f.stat().st_mtime):
        df = _read_metrics(f)
        res[str(df.experiment.iloc[0])] = df
    return res


def box_offsets(data: Data, first_stage: str = "baseline", split: str = "test") -> pd.DataFrame:
    """Chapter 08, Table S4: per volume, the offset (pixels) between the box placed by the first-stage
    model's prediction and the ground-truth box, and whether the first stage found a heart at all."""
    model, _ = trained_model(data, first_stage, progress=False)
    size = crop_size(data)
    grp = data.subjects.set_index("subject_id")[data.group_col]
    rows = []
    for vi in volume_indices(data, (split,)):
        img, lab, _ = data.cache.volume(int(vi))
        gt_box, _ = box_for(lab > 0, size)
        pr_box, found = box_for(segment(model, img, data.params) > 0, size)
        sid = data.cache.volumes.subject_id.iloc[int(vi)]
        rows.append({data.group_col: grp[sid], "subject_id": sid, "found": found,
                     "offset_px": float(np.hypot(pr_box.y0 - gt_box.y0, pr_box.x0 - gt_box.x0))})
    return pd.DataFrame(rows)
