"""Training and evaluating one experiment: a method of :mod:`cmrlib.training.methods` trained on a
:class:`~cmrlib.data.pipeline.Data`, on full images or on crops of the heart, its results kept in the run store
(:mod:`cmrlib.runs.store`).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cmrlib.data.crop import box_for, cascade_predict, crop_image, crop_input_size, crop_size, crop_to_box, paste
from cmrlib.data.pipeline import Data, volume_indices, with_training
from cmrlib.errors import InputError
from cmrlib.evaluation.metrics import volume_metrics
from cmrlib.files import run_lock, write_atomic
from cmrlib.runs.store import read_metrics, require_stored, require_trained, run_dir_for, write_metrics
from cmrlib.training.losses import make_objective
from cmrlib.training.methods import METHODS, Method, make_sampler, train_config
from cmrlib.training.postprocess import postprocess, postprocessing
from cmrlib.training.train import predict, train_model


def eval_batch_size(params: dict) -> int:
    return params.get("evaluation", {}).get("batch_size", 64)


def segment(model, images: np.ndarray, params: dict) -> np.ndarray:
    """A model's label map for a (Z, H, W) stack, post-processed as the profile says."""
    return postprocess(predict(model, images, eval_batch_size(params)), postprocessing(params))


def training_arrays(data: Data, size: tuple[int, int] | None = None):
    """Training slices, labels and groups; with ``size``, each training stack is cropped to its
    ground-truth heart box of that size first (as :func:`cmrlib.data.crop.crop_image`: z-scored, padded)."""
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


# options of a method that change its training slices; only the study that names them can supply them
PREPARED_OPTIONS = ("synthetic", "at_resolution")


def trained_model(data: Data, name: str, method: Method | None = None, progress: bool = True,
                  init_state: dict | None = None, prepare=None):
    """The model of an experiment: trained (or resumed) in its run folder, or loaded when finished.
    ``init_state``: pre-trained weights a new run starts from (name them in ``method.options`` so that the
    run key tells fine-tuned runs apart). ``prepare(data, method, images, labels, groups)`` returns the training
    slices a method with one of :data:`PREPARED_OPTIONS` trains on (chapter 17's study passes it in,
    :func:`cmrlib.studies.skorupko2024.synthesis.prepare_training`); such a method refuses to start without it,
    so its run folder never holds a model trained on other slices."""
    method = method or METHODS[name]
    rd = run_dir_for(data, name, method)
    rd.mkdir(parents=True, exist_ok=True)
    cfg = train_config(data.params, method)
    size = crop_size(data) if method.crop == "gt" else None
    require_trained(rd, cfg.steps, f"the model of {name}")
    with run_lock(rd):          # one process trains a run folder at a time (cluster jobs, parallel chapters)
        write_atomic(rd / "config.json", json.dumps({"name": name, "method": method.__dict__, "training": cfg.to_dict(),
                                                     "cache": data.cache.path.name, "crop_size": size,
                                                     "crop_input": crop_input_size(data, size) if size else None},
                                                    indent=1, default=str))
        images, labels, groups = training_arrays(data, size)
        if any(method.options.get(k) for k in PREPARED_OPTIONS):
            if prepare is None:
                raise InputError(f"{name}: its method's options ({', '.join(k for k in PREPARED_OPTIONS if k in method.options)}) "
                                 "change its training slices; train it through the study that makes them "
                                 "(cmrlib.studies.skorupko2024.synthesis), which passes them in")
            if method.crop:
                raise InputError(f"{name}: synthetic slices are whole slices; a crop method cannot take them")
            images, labels, groups = prepare(data, method, images, labels, groups)
        model = train_model(images, labels, cfg, rd, slice_groups=groups,
                            sampler=make_sampler(method, groups, data.minority),
                            objective=make_objective(method, groups), progress=progress, desc=name,
                            init_state=init_state)
    return model, size


def pretrained(data: Data, steps: int, progress: bool = True):
    """The baseline trained for ``steps`` steps, the first phase of a two-phase strategy (the 2021 study trains
    every network for the same total: half on everyone, half in the strategy's own way): (model, run folder
    name). A two-phase strategy whose phases sum to the profile's ``training.steps`` costs what the baseline does."""
    d = with_training(data, {"steps": int(steps)})
    model, _ = trained_model(d, "pretrained", METHODS["baseline"], progress)
    return model, run_dir_for(d, "pretrained", METHODS["baseline"]).name


def evaluate(predict_volume, data: Data, progress: bool = True, splits=("test", "external"),
             chunk: int = 32) -> pd.DataFrame:
    """Per subject × frame × structure DSC and HD on the test and external subjects, with group columns.

    ``predict_volume(image, label)`` returns the full-size label map (the label is used only by
    ground-truth cropping, to place the box). A ``box_found`` column records whether a cascade's first stage
    found the heart. Where ``predict_volume`` has a ``many`` attribute (full-image models), ``chunk`` volumes
    at a time go through the network together (the same labels, fewer and larger batches)."""
    from tqdm import tqdm
    rows = []
    many = getattr(predict_volume, "many", None)
    vis = [int(v) for v in volume_indices(data, splits)]
    with tqdm(total=len(vis), desc="evaluate", disable=not progress, mininterval=2) as bar:
        for start in range(0, len(vis), chunk):
            part = vis[start:start + chunk]
            vols = [data.cache.volume(vi) for vi in part]
            preds = many([img for img, _, _ in vols]) if many else [predict_volume(img, lab) for img, lab, _ in vols]
            for vi, (img, lab, spacing), (pred, found) in zip(part, vols, preds):
                v = data.cache.volumes.iloc[vi]
                for r in volume_metrics(pred, lab, spacing):
                    rows.append(dict(subject_id=v.subject_id, frame=v.frame, box_found=found, **r))
            bar.update(len(part))
    return pd.DataFrame(rows).merge(data.subjects, on="subject_id", how="left")


def run_experiment(data: Data, name: str, method: Method | None = None, progress: bool = True,
                   prepare=None, init_state: dict | None = None) -> pd.DataFrame:
    """Train (or resume, or reuse) one experiment and return its per-structure metrics (``prepare`` and
    ``init_state``: as :func:`trained_model`).

    ``crop=None``: full images. ``crop="gt"``: trained and tested on ground-truth heart crops, predictions
    pasted back. ``crop="cascade"``: no training of its own; the full-image model ``first_stage`` places the
    box and the ground-truth-crop model ``second_stage`` segments it (Lee et al. 2025, Fig. 1)."""
    method = method or METHODS[name]
    rd = run_dir_for(data, name, method)
    return stored_metrics(rd, lambda: _train_and_evaluate(data, name, method, progress, prepare, init_state))


def stored_metrics(rd, compute) -> pd.DataFrame:
    """The ``metrics.csv`` of run folder ``rd``; made by ``compute()`` (a per-structure metrics table) and
    written atomically when absent, one process at a time."""
    out = rd / "metrics.csv"
    if out.exists():
        return read_metrics(out)
    require_stored(out, f"the metrics of {rd.name}")
    rd.mkdir(parents=True, exist_ok=True)
    with run_lock(rd):
        if out.exists():        # another process finished it while this one waited for the lock
            return read_metrics(out)
        df = compute()
        write_metrics(rd, df)
        return read_metrics(out)


def _train_and_evaluate(data: Data, name: str, method: Method, progress: bool, prepare=None,
                        init_state=None) -> pd.DataFrame:
    df = evaluate(predictor(data, name, method, progress, prepare, init_state), data, progress)
    df["experiment"] = name
    return df


def predictor(data: Data, name: str, method: Method | None = None, progress: bool = True, prepare=None,
              init_state: dict | None = None):
    """``predict_volume(image, label) → (label map, box found)`` of an experiment, its models trained or loaded:
    full images, ground-truth crops pasted back, or the cascade (see :func:`run_experiment`)."""
    method = method or METHODS[name]
    bs = eval_batch_size(data.params)
    pp = postprocessing(data.params)
    if method.crop == "cascade":
        full, _ = trained_model(data, method.first_stage, progress=progress)
        second, size = trained_model(data, method.second_stage, progress=progress)

        def predict_volume(img, lab):   # the first stage is post-processed too: its mask places the box
            pred, _, found = cascade_predict(lambda x: segment(full, x, data.params), lambda x: predict(second, x, bs),
                                             img, size, crop_input_size(data, size))
            return postprocess(pred, pp), found
    else:
        model, size = trained_model(data, name, method, progress, init_state=init_state, prepare=prepare)
        if method.crop == "gt":
            def predict_volume(img, lab):
                box, found = box_for(lab > 0, size)
                pred = predict(model, crop_image(img, box, crop_input_size(data, size)), bs)[..., : box.h, : box.w]
                return postprocess(paste(pred, box, img.shape), pp), found
        else:
            def predict_volume(img, lab):
                return segment(model, img, data.params), True

            def many(images):    # several stacks through the network at once (evaluate's chunks)
                labels = predict(model, np.concatenate(images), bs)
                parts = np.split(labels, np.cumsum([len(i) for i in images])[:-1])
                return [(postprocess(p, pp), True) for p in parts]
            predict_volume.many = many
    return predict_volume


def box_offsets(data: Data, first_stage: str = "baseline", split: str = "test") -> pd.DataFrame:
    """Chapter 08, Table S4 of Lee et al. 2025: per volume, the offset (pixels) between the box placed by the first-stage
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
