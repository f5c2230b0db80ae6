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

import pandas as pd

from .config import runs_dir
from .data.cache import stable_hash
from .metrics import volume_metrics
from .pipeline import Data, volume_indices
from .sampling import oversampling_sampler, stratified_sampler, uniform_sampler
from .train import TrainConfig, predict, train_model


@dataclass
class Method:
    """How training differs from the baseline. ``sampler``: uniform | oversampling | stratified;
    ``level``: the minority's batch share for oversampling; ``loss``: dice_ce | ce."""
    sampler: str = "uniform"
    level: float = 0.5
    objective: str = "mean"
    loss: str = "dice_ce"
    options: dict = field(default_factory=dict)


METHODS = {
    "baseline": Method(),
    "oversampling": Method(sampler="oversampling"),
}

# which experiments each chapter needs (for `cmrlib run --only NN`)
CHAPTERS = {"02": ["baseline"]}


def train_config(params: dict, method: Method) -> TrainConfig:
    t = dict(params["training"])
    t["channels"] = tuple(t.get("channels", (8, 16, 32, 64)))
    t.setdefault("seed", params["seed"])
    t["loss"] = method.loss
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
    from .losses import MeanObjective
    if method.objective == "mean":
        return MeanObjective()
    raise ValueError(f"unknown objective {method.objective!r}")


def run_dir_for(data: Data, name: str, method: Method) -> Path:
    cfg = train_config(data.params, method)
    key = stable_hash([name, method.__dict__, cfg.to_dict(), data.cache.path.name, sorted(data.ids("train"))])
    return runs_dir(data.params) / f"{name}-{key}"


def evaluate(model, data: Data, batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
    """Per subject × frame × structure DSC and HD on the test and external subjects, with group columns."""
    from tqdm.auto import tqdm
    vols = volume_indices(data)
    rows = []
    for vi in tqdm(vols, desc="evaluate", disable=not progress, mininterval=2):
        img, lab, spacing = data.cache.volume(int(vi))
        pred = predict(model, img, batch_size)
        v = data.cache.volumes.iloc[int(vi)]
        for r in volume_metrics(pred, lab, spacing):
            rows.append(dict(subject_id=v.subject_id, frame=v.frame, **r))
    df = pd.DataFrame(rows)
    return df.merge(data.subjects, on="subject_id", how="left")


def run_experiment(data: Data, name: str, method: Method | None = None, progress: bool = True) -> pd.DataFrame:
    """Train (or resume, or reuse) one experiment and return its per-structure metrics."""
    method = method or METHODS[name]
    rd = run_dir_for(data, name, method)
    out = rd / "metrics.csv"
    if out.exists():
        return _read_metrics(out)
    rd.mkdir(parents=True, exist_ok=True)
    cfg = train_config(data.params, method)
    (rd / "config.json").write_text(json.dumps({"name": name, "method": method.__dict__, "training": cfg.to_dict(),
                                                "cache": data.cache.path.name}, indent=1, default=str))
    images, labels, groups = data.train_arrays()
    minority = data.params["curation"].get("minority", "Black")
    model = train_model(images, labels, cfg, rd, slice_groups=groups, sampler=make_sampler(method, groups, minority),
                        objective=make_objective(method, groups), progress=progress, desc=name)
    df = evaluate(model, data, data.params.get("evaluation", {}).get("batch_size", 64), progress)
    df["experiment"] = name
    tmp = out.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return _read_metrics(out)


def _read_metrics(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"subject_id": str})


def chapter_experiments(only: str | None = None) -> list[str]:
    if only is None:
        return list(dict.fromkeys(n for names in CHAPTERS.values() for n in names))
    if only not in CHAPTERS:
        raise KeyError(f"no experiments for chapter {only!r} (chapters: {', '.join(CHAPTERS)})")
    return CHAPTERS[only]


def stored_results(params: dict) -> dict[str, pd.DataFrame]:
    """Every finished experiment of a profile (name → metrics)."""
    res = {}
    for f in sorted(runs_dir(params).glob("*/metrics.csv")):
        df = _read_metrics(f)
        res[str(df.experiment.iloc[0])] = df
    return res
