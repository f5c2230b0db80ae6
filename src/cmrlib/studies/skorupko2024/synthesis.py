"""Synthetic minority slices and what they do to the fairness gap (chapter 17; after Skorupko et al. 2024).

The generator (:mod:`cmrlib.studies.skorupko2024.generative`) trains on the training split only. Synthetic slices are planned from
training masks: a share ``minority_masks`` from the minority's own slices, the rest majority masks re-used with
the minority's attributes (its group, the mask's own sex). Each generated slice is paired with the mask that
conditioned it. The largest count of the profile's ``generative.counts`` is generated once and stored in the run
store; a smaller count takes the first rows of the same plan.

Synthetic slices enter training through one switch only: a method whose ``options`` name a synthetic set
(``synthetic``) and a count (``n``) (:func:`synthetic_method`). :func:`cmrlib.runs.experiments.trained_model` then adds
them to the training slices as members of the minority; nothing else reads them, and evaluation reads the cache,
which never holds them. Two ways to add them (``generative.mix``):

- ``pool``: oversampling's sampler (the minority is half of each batch) draws from real and synthetic minority
  slices: the same exposure as oversampling, more distinct images;
- ``uniform``: the baseline's uniform sampler over real and synthetic slices: more minority data, no reweighting.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cmrlib.config import runs_dir
from cmrlib.data.pipeline import Data
from cmrlib.errors import InputError
from cmrlib.evaluation.fairness import median_table
from cmrlib.files import run_lock, stable_hash, write_atomic
from cmrlib.runs.evidence import seeded, training_seeds
from cmrlib.runs.experiments import run_experiment, trained_model
from cmrlib.runs.store import NotInStore, require_stored, require_trained
from cmrlib.studies.skorupko2024.fidelity import shows_heart
from cmrlib.studies.skorupko2024.generative import (
    Generator,
    at_resolution,
    config_from_params,
    load_generator,
    sample,
    train_generator,
)
from cmrlib.training.methods import Method

DEFAULTS = dict(counts=[480], minority_masks=0.5, mix=["pool"], classifier_steps=300, pairs=32, seeds=None)


def settings(params: dict) -> dict:
    """The profile's synthesis settings (``generative.counts``, ``minority_masks``, ``mix``,
    ``classifier_steps``, ``pairs``, and ``seeds``: the training seeds of the downstream segmenters, the
    profile's by default, :func:`cmrlib.runs.evidence.training_seeds`) over :data:`DEFAULTS`. The generator and
    its synthetic set are made once, under the generator's own seed."""
    g = params.get("generative", {})
    s = {k: g.get(k, v) for k, v in DEFAULTS.items()}
    s["seeds"] = training_seeds(params) if s["seeds"] is None else [int(x) for x in s["seeds"]]
    if not s["seeds"]:
        raise InputError("generative.seeds: an empty list; give at least one training seed")
    return s


def _train_slices(data: Data):
    """Index of every training slice in the cache, its subject and whether it shows the heart."""
    idx = data.cache.slices_of(data.ids("train"))
    sids = data.cache.slice_subject()[idx]
    return idx, sids, shows_heart(data.cache, idx)


def generator_dir(data: Data) -> Path:
    """``runs/<profile>/generator-<hash>``: the hash covers the generator's settings, the cache and the
    training subjects."""
    cfg = config_from_params(data.params)
    key = stable_hash(["generator", cfg.to_dict(), data.cache.path.name, sorted(data.ids("train")), data.group_col])
    return runs_dir(data.params) / f"generator-{key}"


def slice_attributes(data: Data, sids) -> list[tuple[str, str]]:
    """(group, sex) of each slice's subject: the generator's attribute classes."""
    s = data.subjects.set_index("subject_id")
    return list(zip(s[data.group_col].reindex(sids).astype(str), s["sex"].reindex(sids).astype(str)))


def training_composition(data: Data) -> pd.DataFrame:
    """Subjects and slices of the generator's training set per group × sex (its attribute classes)."""
    idx, sids, heart = _train_slices(data)
    df = pd.DataFrame(slice_attributes(data, sids), columns=[data.group_col, "sex"])
    df["subject_id"], df["heart"] = sids, heart
    return df.groupby([data.group_col, "sex"]).agg(subjects=("subject_id", "nunique"), slices=("heart", "size"),
                                                    slices_with_heart=("heart", "sum"))


def generator_log(data: Data) -> pd.DataFrame:
    """The generator's training log (step, lr, loss)."""
    return pd.read_csv(generator_dir(data) / "train_log.csv")[["step", "lr", "loss"]]


def generator(data: Data, progress: bool = True) -> Generator:
    """The profile's generator, trained on the training split's slices (or resumed, or loaded when finished)."""
    rd = generator_dir(data)
    rd.mkdir(parents=True, exist_ok=True)
    cfg = config_from_params(data.params)
    with run_lock(rd):
        write_atomic(rd / "config.json", json.dumps({"generative": cfg.to_dict(), "cache": data.cache.path.name},
                                                    indent=1))
        ckpt = rd / "checkpoint.pt"
        if ckpt.exists():
            try:
                return load_generator(rd)
            except InputError:
                pass                      # unfinished: resume below
        require_trained(rd, cfg.steps, "the generator")     # read-only (the claims chapter): never train
        idx, sids, _ = _train_slices(data)
        return train_generator(np.asarray(data.cache.images[idx]), np.asarray(data.cache.labels[idx]),
                               slice_attributes(data, sids), cfg, rd, progress=progress)


def synthesis_plan(data: Data, n: int, minority_masks: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic minority slices to make: for each, the training slice whose mask conditions it, where that
    mask comes from (``minority``/``majority``) and the attributes asked for (the minority group, the mask's sex;
    :func:`synthetic_set` records the sex actually used where the minority has no training subject of that sex).
    Minority and majority masks alternate in the set proportion, so the first k rows keep it too; masks are
    drawn without replacement until a pool is used up, then again."""
    if n < 1:
        raise InputError(f"generative.counts: a synthetic set needs at least one slice, got {n}")
    idx, sids, heart = _train_slices(data)
    grp = data.subjects.set_index("subject_id")[data.group_col].reindex(sids).to_numpy()
    rng = np.random.default_rng(seed)
    pools = {}
    for src, sel in (("minority", grp == data.minority), ("majority", grp == data.advantaged)):
        where = np.flatnonzero(sel & heart)
        pools[src] = where
    need_min = int(np.floor(n * minority_masks))
    if need_min and not len(pools["minority"]):
        raise InputError(f"generative.minority_masks is {minority_masks} but the training split has no "
                         f"{data.group_col}={data.minority} slice with a heart mask")
    if need_min < n and not len(pools["majority"]):
        raise InputError(f"the training split has no {data.group_col}={data.advantaged} slice with a heart mask")
    draws = {k: [] for k in pools}
    rows = []
    for k in range(n):
        src = "minority" if np.floor((k + 1) * minority_masks) > np.floor(k * minority_masks) else "majority"
        if not draws[src]:
            draws[src] = list(rng.permutation(pools[src]))
        j = int(draws[src].pop())
        rows.append(dict(train_slice=j, cache_slice=int(idx[j]), subject_id=str(sids[j]), mask_from=src,
                         source_group=str(grp[j]), group=data.minority))
    plan = pd.DataFrame(rows)
    plan["sex"] = data.subjects.set_index("subject_id")["sex"].reindex(plan.subject_id).astype(str).to_numpy()
    return plan


def synthetic_dir(data: Data) -> Path:
    """``runs/<profile>/synthetic-<hash>``: the set of the profile's largest count, from its generator."""
    s = settings(data.params)
    cfg = config_from_params(data.params)
    key = stable_hash(["synthetic", generator_dir(data).name, max(s["counts"]), s["minority_masks"], cfg.seed,
                       cfg.sample_steps, cfg.guidance])
    return runs_dir(data.params) / f"synthetic-{key}"


def synthetic_set(data: Data, progress: bool = True) -> dict:
    """The profile's synthetic slices (images at the cache's size, float16), their masks, and the plan that
    made them; generated once, stored (``samples.npz``, ``plan.csv``), then read back."""
    rd = synthetic_dir(data)
    require_stored(rd / "samples.npz", "the synthetic set")
    rd.mkdir(parents=True, exist_ok=True)
    with run_lock(rd):
        if not (rd / "samples.npz").exists():
            s = settings(data.params)
            g = generator(data, progress)
            plan = synthesis_plan(data, max(s["counts"]), s["minority_masks"], g.cfg.seed)
            chosen = [g.class_for(a, b) for a, b in zip(plan.group, plan.sex)]
            plan["class"], plan["attribute_sex"] = [c for c, _ in chosen], [x for _, x in chosen]
            labels = np.asarray(data.cache.labels[plan.cache_slice.to_numpy()])
            images = sample(g, labels, plan["class"].to_numpy(), seed=g.cfg.seed, progress=progress)
            tmp = rd / f".samples.{os.getpid()}.npz"
            np.savez(tmp, images=images.astype(np.float16), labels=labels.astype(np.uint8))
            write_atomic(rd / "plan.csv", plan.to_csv(index=False))
            os.replace(tmp, rd / "samples.npz")
    with np.load(rd / "samples.npz") as z:
        out = {"images": z["images"], "labels": z["labels"]}
    out["plan"] = pd.read_csv(rd / "plan.csv", dtype={"subject_id": str})
    return out


def fidelity_segmenter(data: Data, progress: bool = True):
    """The judge of mask fidelity: the baseline's method trained on the real training slices taken to the
    generator's resolution and back, so that it knows slices as blurred as the generated ones (a segmenter that
    has only seen sharp slices fails on any enlarged image)."""
    method = Method(options={"at_resolution": config_from_params(data.params).size})
    model, _ = trained_model(data, "fidelity_segmenter", method, progress, prepare=prepare_training)
    return model


def synthetic_method(data: Data, n: int, mix: str = "pool", source: str = "generated") -> tuple[str, Method]:
    """The experiment that trains with the first ``n`` synthetic slices: (name, method). ``mix`` is ``pool``
    (oversampling's sampler over real and synthetic minority slices) or ``uniform`` (uniform sampling).
    ``source="real"`` is the control: instead of each generated slice, the real slice whose mask conditioned it,
    taken to the generator's resolution and back (same masks, same blur, no generator)."""
    if mix not in ("pool", "uniform"):
        raise InputError(f"generative.mix: {mix!r} is not a way to add synthetic slices (pool or uniform)")
    top = max(settings(data.params)["counts"])
    if not 1 <= n <= top:
        raise InputError(f"generative.counts: {n} synthetic slices asked for, the set holds {top}")
    if source not in ("generated", "real"):
        raise InputError(f"source {source!r}: generated or real")
    options = {"synthetic": synthetic_dir(data).name, "n": int(n)}
    if source == "real":
        options["source"] = "real"
    method = Method(sampler="oversampling" if mix == "pool" else "uniform", options=options)
    return f"{'synthetic' if source == 'generated' else 'lowres_real'}_{mix}_{n}", method


def prepare_training(data: Data, method: Method, images, labels, groups):
    """The training slices of this chapter's methods, handed to :func:`cmrlib.runs.experiments.trained_model`:
    the real slices taken to the generator's resolution and back (``at_resolution``: the judge of mask fidelity),
    and the synthetic slices appended (``synthetic``: :func:`add_synthetic`)."""
    if method.options.get("at_resolution"):
        images = at_resolution(images, int(method.options["at_resolution"])).astype(images.dtype)
    if method.options.get("synthetic"):
        images, labels, groups = add_synthetic(data, method.options, images, labels, groups)
    return images, labels, groups


def add_synthetic(data: Data, options: dict, images, labels, groups):
    """Training slices with the first ``options['n']`` slices of the synthetic set ``options['synthetic']``
    appended as members of the minority (through :func:`prepare_training`, for methods made by
    :func:`synthetic_method`)."""
    path = runs_dir(data.params) / options["synthetic"] / "samples.npz"
    if not path.exists():
        raise InputError(f"{path}: synthetic set not found; make it with cmrlib.studies.skorupko2024.synthesis.synthetic_set")
    with np.load(path) as z:
        n = int(options["n"])
        if n > len(z["images"]):
            raise InputError(f"{path}: holds {len(z['images'])} synthetic slices, {n} asked for")
        syn_i, syn_l = z["images"][:n], z["labels"][:n]
    if options.get("source") == "real":       # the control: each mask's own real slice at the generator's size
        plan = pd.read_csv(path.parent / "plan.csv").iloc[:n]
        syn_i = at_resolution(np.asarray(data.cache.images[plan.cache_slice.to_numpy()], np.float32),
                              config_from_params(data.params).size)
    return (np.concatenate([images, syn_i.astype(images.dtype)]), np.concatenate([labels, syn_l.astype(labels.dtype)]),
            np.concatenate([np.asarray(groups, object), np.full(n, data.minority, object)]))


def run_synthetic(data: Data, n: int, mix: str = "pool", progress: bool = True) -> pd.DataFrame:
    """Per-structure test and external metrics of the segmenter trained with ``n`` synthetic slices."""
    synthetic_set(data, progress)
    name, method = synthetic_method(data, n, mix)
    return run_experiment(data, name, method, progress, prepare=prepare_training)


def experiments(data: Data) -> list[tuple[str, int, str]]:
    """The (mix, count, source) experiments the profile trains: every count with the first mix; the largest
    count with the other mixes, and with the first mix from real slices at the generator's resolution (the
    control)."""
    s = settings(data.params)
    mixes, counts = list(s["mix"]), sorted(s["counts"])
    return ([(mixes[0], n, "generated") for n in counts] + [(m, counts[-1], "generated") for m in mixes[1:]]
            + [(mixes[0], counts[-1], "real")])


def downstream(data: Data, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Metrics of the baseline, oversampling and every synthetic experiment of the profile, by name."""
    out = {m: run_experiment(data, m, progress=progress) for m in ("baseline", "oversampling")}
    synthetic_set(data, progress)
    for mix, n, source in experiments(data):
        name, method = synthetic_method(data, n, mix, source)
        out[name] = run_experiment(data, name, method, progress, prepare=prepare_training)
    return out


def downstream_runs(data: Data, progress: bool = True) -> dict[str, dict[int, pd.DataFrame]]:
    """:func:`downstream` for each training seed of ``generative.seeds``: name → seed → metrics (inside
    :func:`cmrlib.runs.store.read_only`, the seeds the store holds). Every seed trains on the same synthetic set."""
    out: dict = {}
    for k in settings(data.params)["seeds"]:
        try:
            per = downstream(seeded(data, k), progress)
        except NotInStore:
            continue
        for name, r in per.items():
            out.setdefault(name, {})[k] = r
    if not out:
        raise NotInStore("chapter 17's downstream segmenters: no training seed is in the run store; run chapter 17 first")
    return out


PAPER = Path(__file__).resolve().parents[4] / "data_manifest" / "paper_tables" / "skorupko2024.csv"


def paper_values() -> pd.DataFrame:
    """The study's reported numbers (claim → measure, value, unit, note), from ``skorupko2024.csv``."""
    return pd.read_csv(PAPER, comment="#").set_index("claim")


def headline(data: Data) -> str:
    """The experiment the verdicts judge: the first mix at the profile's largest count."""
    mix, n, _ = experiments(data)[len(settings(data.params)["counts"]) - 1]
    return synthetic_method(data, n, mix)[0]


def control(data: Data) -> str:
    """The control experiment: the headline's masks with their own real slices at the generator's resolution."""
    s = settings(data.params)
    return synthetic_method(data, max(s["counts"]), s["mix"][0], "real")[0]


def comparison(scores: dict[str, pd.DataFrame], data: Data, seed: int = 0) -> pd.DataFrame:
    """Table 4 of Lee et al. 2025 for the baseline, oversampling and the synthetic experiments, with bootstrap
    intervals and paired changes against the baseline and oversampling (:func:`cmrlib.evaluation.fairness.median_table`)."""
    return median_table(scores, data.group_col, data.advantaged, data.minority,
                        references=("baseline", "oversampling", control(data)), seed=seed)


def _change(lo: float, hi: float, what: str, lower: str, higher: str, than: str, versus: str) -> str:
    """A verdict on a paired change with its 95 % interval [lo, hi]: lower, higher, or not told from zero."""
    if hi < 0:
        return f"{what} {lower} {than}"
    if lo > 0:
        return f"{what} {higher} {than}"
    return f"no change of {what} {versus} that the 95 % interval can tell from zero"


def verdicts(table: pd.DataFrame, data: Data) -> dict[str, str]:
    """The chapter's descriptions from :func:`comparison`: does the headline experiment (oversampling over real
    and generated slices) narrow the gap against the baseline, against oversampling and against the real-slice
    control, and how the minority's median DSC compares with oversampling's. The study's claims are judged in
    :mod:`cmrlib.claims.registry` (``skorupko2024.*``)."""
    best, mi = headline(data), data.minority
    r = table.loc[best]
    c = control(data)
    out = {}
    same = "the real slices of the same masks at the same resolution"
    for key, ref, than, versus in (("vs_baseline", "baseline", "than the baseline's", "against the baseline"),
                                   ("vs_oversampling", "oversampling", "than with oversampling alone",
                                    "against oversampling alone"),
                                   ("vs_control", c, f"than with {same}", f"against {same}")):
        out[key] = _change(r[f"ΔFG vs {ref} low"], r[f"ΔFG vs {ref} high"], "the gap", "is narrower", "is wider",
                           than, versus)
    out["minority_vs_oversampling"] = _change(r[f"Δ{mi} vs oversampling low"], r[f"Δ{mi} vs oversampling high"],
                                              "the minority's median DSC", "is lower", "is higher",
                                              "than with oversampling alone", "against oversampling alone")
    return out


def count_sweep(table: pd.DataFrame, data: Data) -> pd.DataFrame:
    """The first mix's experiments by number of synthetic slices (0: oversampling alone): the minority's median
    DSC and the fairness gap, with their intervals, from :func:`comparison`."""
    s = settings(data.params)
    names = {0: "oversampling"} if s["mix"][0] == "pool" else {0: "baseline"}
    names.update({n: synthetic_method(data, n, s["mix"][0])[0] for n in sorted(s["counts"])})
    t = table.loc[list(names.values()), ["FG", "FG low", "FG high", data.minority]]
    return t.assign(synthetic_slices=list(names)).reset_index().set_index("synthetic_slices")
