"""The book's list of work: every model the chapters need, as units that run anywhere.

A chapter trains by calling library functions (:func:`~cmrlib.runs.experiments.run_experiment`, the 2021 study's
:func:`~cmrlib.studies.puyol2021.study.approach_runs`, the 2022 study's :func:`~cmrlib.studies.lee2022.study.run_point`,
the generator of chapter 17, ...); each returns what the run store holds or trains what it lacks. A :class:`Unit`
is one such call, with the arguments a chapter passes: ``cmrlib run --executor local|slurm`` runs the units of
the chapters asked for as jobs (:func:`cmrlib.runs.cluster.submit_units`), each in its own process, and the
chapters then find every model in the store and train nothing. A unit that depends on others (a cascade on its two
stages, a downstream segmenter on the generator's slices, the audit's export on chapter 12's model) waits for
them: units are grouped into waves by their dependencies, a wave starting when the one before has finished.

:func:`plan` lists the units of chapters; :func:`run_unit` runs one (a job does exactly this). The test that the
list and the chapters agree is behavioural: after the units of every chapter have run, executing the book starts
no training (``tests/test_work.py``, reading every run folder's ``events.log``).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from cmrlib.book.profile import load_profile
from cmrlib.config import runs_dir
from cmrlib.data.cache import Preprocessing
from cmrlib.data.crop import crop_size
from cmrlib.data.pipeline import Data, prepare_data, synthetic_key, with_crop, with_training
from cmrlib.errors import InputError
from cmrlib.files import stable_hash
from cmrlib.runs.cluster import DEFAULTS as JOB_DEFAULTS
from cmrlib.runs.cluster import cancelled_when_stopped, executor_for
from cmrlib.runs.evidence import SEEDED, seeded, training_seeds
from cmrlib.runs.experiments import run_experiment, trained_model
from cmrlib.runs.export import export_predictions
from cmrlib.runs.store import NotInStore, read_only
from cmrlib.studies.lee2022 import study as s2022
from cmrlib.studies.lee2022.ensemble import run_ensemble
from cmrlib.studies.lee2025 import realdata, transfer
from cmrlib.studies.lee2025.rootcause import stored_probe
from cmrlib.studies.lee2025.sweeps import level_method, with_training_counts
from cmrlib.studies.puyol2021 import settings as s2021
from cmrlib.studies.puyol2021.study import APPROACHES, natural_data, run_approach
from cmrlib.studies.skorupko2024 import fidelity, synthesis
from cmrlib.training.methods import CHAPTERS, METHODS, training_steps

KINDS = ("segmenter", "classifier", "generator", "synthesis", "export")   # resources per kind: profile's cluster


@dataclass(frozen=True)
class Unit:
    """One call of a chapter's: ``task`` (a name of :data:`TASKS`) with ``args``; ``key`` names it in the plan
    and in job names, ``kind`` picks its resources, ``after`` names the units it needs first."""
    chapter: str
    key: str
    kind: str
    task: str
    args: tuple = ()
    after: tuple = field(default_factory=tuple)


TASKS: dict = {}


def task(name: str):
    def deco(fn):
        TASKS[name] = fn
        return fn
    return deco


# ---------------------------------------------------------------------------------------------- the tasks
_DATA: dict = {}


def _data(params: dict, which: str = "cohort") -> Data | None:
    """The data a task trains on, built once per process: the profile's cohort, the 2021 study's split, or
    ACDC (None without an ACDC folder)."""
    key = (which, json.dumps(params, sort_keys=True, default=str))
    if key not in _DATA:
        if which == "cohort":
            _DATA[key] = prepare_data(params, progress=False)
        elif which == "natural2021":
            _DATA[key] = natural_data(_data(params))
        elif which == "acdc":
            _DATA[key] = realdata.acdc_data(params)
        else:
            raise InputError(f"unknown data {which!r}")
    return _DATA[key]


def _variant(data: Data, variant: str) -> Data:
    """``data`` as a chapter varies it: ``steps*k`` (training k times longer), ``weight_decay=0``, ``grow``
    (crop boxes grown to the network's stride), or one of chapter 12's synthetic-only training sets
    (:func:`cmrlib.studies.lee2025.realdata.transfer_sets`: ``plain, as long``, ``randomised``; ``ablation:<name>``,
    :func:`cmrlib.studies.lee2025.transfer.ablation_sets`)."""
    if not variant:
        return data
    if variant.startswith("steps*"):
        return with_training(data, {"steps": int(variant[6:]) * training_steps(data.params)})
    if variant == "weight_decay=0":
        return with_training(data, {"weight_decay": 0.0})
    if variant == "grow":
        return with_crop(data, fill="grow")
    if variant in ("plain, as long", "randomised"):       # chapter 12's synthetic-only models
        return realdata.transfer_sets(data)[variant]
    if variant.startswith("ablation:"):                   # chapter 12's ablation of the randomisation
        return transfer.ablation_sets(data)[variant[9:]]
    raise InputError(f"unknown variant {variant!r}")


@task("experiment")
def _experiment(params: dict, name: str, seed: int, variant: str = "", data: str = "cohort"):
    d = _data(params, data)
    if d is None:
        return None
    return run_experiment(seeded(_variant(d, variant), seed), name, METHODS[level_method_name(name)], progress=False)


def level_method_name(name: str) -> str:
    """``name``, registering the oversampling levels of chapter 10's sweep on first use."""
    if name.startswith("oversampling_") and name.split("_")[1][:1].isdigit():
        level_method(float(name.split("_")[1]))
    return name


@task("model")
def _model(params: dict, name: str, variant: str = "", seed: int | None = None, data: str = "cohort"):
    """A model the chapter loads rather than evaluates (chapter 12's synthetic-only models, a cascade's stages)."""
    d = _data(params, data)
    if d is None:
        return None
    d = _variant(d, variant)
    return trained_model(d if seed is None else seeded(d, seed), name, METHODS[level_method_name(name)],
                         progress=False)[0]


@task("counts")
def _counts(params: dict, n_minority: int, name: str = "baseline", second: bool = False, model_only: bool = False):
    """Chapter 10: a training set with ``n_minority`` subjects of the minority (or of the second minority);
    ``model_only``: the model alone (a cascade's stage), not evaluated."""
    cur, sw = params["curation"], params["sweeps"]
    adv = cur["advantaged"]
    minority = sw["second_minority"] if second else cur["minority"]
    p = with_training_counts(params, {adv: cur["train"][adv], minority: int(n_minority)},
                             advantaged=adv if second else None, minority=minority if second else None)
    d = prepare_data(p, progress=False)
    if model_only:
        return trained_model(d, name, METHODS[name], progress=False)[0]
    return run_experiment(d, name, METHODS[name], progress=False)


@task("probe")
def _probe(params: dict, off: bool = False):
    """Chapter 11's classifier probe, with the cohort's differences on or every one of them off."""
    data = _data(params)
    if off:
        p = {**params, "profile": params["profile"] + "_all_off",
             "cohort": {**params["cohort"], "outside_heart_differences": False, "inside_heart_differences": False}}
        d = prepare_data(p, progress=False)
    else:
        d = data
    return stored_probe(d, [data.advantaged, data.minority], crop_size(data), params["rootcause"]["classifier_steps"])


@task("acdc_cv")
def _acdc_cv(params: dict, repeat: int, fold: int, name: str):
    data = _data(params, "acdc")
    if data is None:
        return None
    s = realdata.cv_settings(params)
    subj = realdata.cv_folds(data, int(s["folds"]), repeat, s["train"], int(params["seed"]))[fold]
    return run_experiment(Data(data.cache, subj, data.params), name, progress=False)


@task("finetune")
def _finetune(params: dict, n: int, draw: int, start: str):
    """Chapter 12's fine-tuning curve: one model on ``n`` ACDC patients (draw ``draw``) from ``start``."""
    real = _data(params, "acdc")
    if real is None:
        return None
    return transfer.finetune_run(real, _data(params), n, draw, start)


@task("export")
def _export(params: dict, name: str, data: str = "acdc"):
    d = _data(params, data) or _data(params)
    return export_predictions(d, name)


@task("approach2021")
def _approach(params: dict, name: str, seed: int):
    return run_approach(seeded(_data(params, "natural2021"), seed), name)


@task("point2022")
def _point(params: dict, exp: int, share: float, seed: int):
    return s2022.run_point(_data(params), exp, share, seed)


@task("single2022")
def _single(params: dict, exp: int, share: float, seed: int):
    return s2022.point_errors(_data(params), exp, share, seed)


@task("ensemble2022")
def _ensemble(params: dict, exp: int, share: float, seed: int, k: int):
    d = with_training(s2022.point_data(_data(params), exp, share), {"seed": int(seed)})
    return run_ensemble(d, s2022.point_name(exp, share), k)


@task("generator")
def _generator(params: dict):
    return synthesis.generator(_data(params), progress=False)


@task("synthetic_set")
def _synthetic_set(params: dict):
    return synthesis.synthetic_set(_data(params), progress=False)


@task("fidelity_segmenter")
def _fidelity_segmenter(params: dict):
    return synthesis.fidelity_segmenter(_data(params), progress=False)


@task("group_encoder")
def _group_encoder(params: dict):
    s = synthesis.settings(params)
    return fidelity.group_encoder(_data(params), synthesis.config_from_params(params).size, s["classifier_steps"],
                                  seed=params["seed"])


@task("downstream")
def _downstream(params: dict, mix: str, n: int, source: str, seed: int):
    data = seeded(_data(params), seed)
    name, method = synthesis.synthetic_method(data, n, mix, source)
    return run_experiment(data, name, method, progress=False, prepare=synthesis.prepare_training)


def run_unit(params: dict, unit: Unit):
    """Run one unit (what a job does): its task with its arguments; the result lands in the run store."""
    if unit.task not in TASKS:
        raise InputError(f"{unit.key}: unknown task {unit.task!r}")
    return TASKS[unit.task](params, *unit.args)


# ---------------------------------------------------------------------------------------------- the plan
def ablation_names(params: dict) -> list[str]:
    """Chapter 12's ablation models that are not already its transfer models: ``all`` and ``none`` are those
    (the randomised model and the plain one as long) when the ablation trains as many steps."""
    names = [f"without {k}" for k in transfer.ablated(params)]
    if transfer.settings(params)["ablation_steps"] != _transfer_steps(params):
        names = ["all", *names, "none"]
    return names


def _experiments(chapter: str, names, params: dict, variant: str = "", data: str = "cohort") -> list[Unit]:
    """Units of experiments under every seed they need (SEEDED ones under the profile's seeds); a cascade
    after its two stages of the same seed, which are models only (trained, not evaluated) unless the chapter
    evaluates them too."""
    seeds = training_seeds(params)
    out = []
    for n in names:
        for s in (seeds if n in SEEDED and not variant and data == "cohort" else seeds[:1]):
            m = METHODS[level_method_name(n)]
            tag = f"{chapter}:{data}:{variant}:{n}@{s}"
            after = tuple(f"{chapter}:{data}:{variant}:{st}@{s}" for st in (m.first_stage, m.second_stage)) \
                if m.crop == "cascade" else ()
            out.append(Unit(chapter, tag, "segmenter", "experiment", (n, s, variant, data), after))
            for st in (m.first_stage, m.second_stage) if m.crop == "cascade" else ():
                if not any(u.key == f"{chapter}:{data}:{variant}:{st}@{s}" for u in out):
                    out.append(Unit(chapter, f"{chapter}:{data}:{variant}:{st}@{s}", "segmenter", "model",
                                    (st, variant, s, data)))
    return out


def _chapter_units(ch: str, params: dict) -> list[Unit]:
    seed = int(params["seed"])
    if "02" <= ch <= "09":
        units = _experiments(ch, CHAPTERS.get(ch, []), params)
        if ch == "02":
            factor = int((params.get("convergence") or {}).get("steps_factor", 4))
            units += _experiments(ch, ["baseline"], params, f"steps*{factor}")
        if ch == "04":
            units += _experiments(ch, ["reweighting"], params, "weight_decay=0")
            units += _experiments(ch, ["oversampling_reweighting"], params)
        if ch == "07":
            units += _experiments(ch, ["baseline_crop_gt"], params, "grow")
        if ch == "09":
            units += _experiments(ch, ["baseline", "oversampling", "baseline_crop_gt", "oversampling_crop_gt",
                                       "baseline_cascade", "oversampling_cascade"], params)
        return units
    if ch == "10":
        sw = params["sweeps"]
        units = [Unit(ch, f"10:count:{n}", "segmenter", "counts", (int(n),)) for n in sw["minority_counts"]]
        names = [level_method_name(level_method(float(lv))) for lv in sw["oversampling_levels"]]
        units += _experiments(ch, names + [f"{n}_cascade" for n in names], params)
        units += [Unit(ch, f"10:second:{n}", "segmenter", "counts", (int(sw["second_minority_train"]), n, True))
                  for n in ("baseline", "oversampling", "reweighting", "group_dro")]
        units += [Unit(ch, f"10:second:{n}", "segmenter", "counts", (int(sw["second_minority_train"]), n, True, True))
                  for n in ("baseline_crop_gt", "oversampling_crop_gt")]
        units += [Unit(ch, f"10:second:{c}", "segmenter", "counts", (int(sw["second_minority_train"]), c, True),
                       (f"10:second:{a}", f"10:second:{b}"))
                  for c, a, b in (("baseline_cascade", "baseline", "baseline_crop_gt"),
                                  ("oversampling_cascade", "oversampling", "oversampling_crop_gt"))]
        return units
    if ch == "11":
        return [Unit(ch, "11:probe:on", "classifier", "probe", (False,)),
                Unit(ch, "11:probe:off", "classifier", "probe", (True,)),
                *_experiments(ch, ["baseline"], params)]
    if ch == "12":
        units = _experiments(ch, ["baseline", "oversampling", "baseline_crop_gt"], params, data="acdc")
        s = realdata.cv_settings(params)
        units += [Unit(ch, f"12:cv:{r}:{k}:{m}", "segmenter", "acdc_cv", (r, k, m))
                  for r in range(int(s["repeats"])) for k in range(int(s["folds"])) for m in s["methods"]]
        units += [Unit(ch, f"12:transfer:{v or 'plain'}", "segmenter", "model", ("baseline", v, seed))
                  for v in ("", "plain, as long", "randomised")]
        units += [Unit(ch, f"12:ablation:{a}", "segmenter", "model", ("baseline", f"ablation:{a}", seed))
                  for a in ablation_names(params)]
        ft = transfer.settings(params)["finetune"]
        units += [Unit(ch, f"12:finetune:{n}:{r}:{start}", "segmenter", "finetune", (int(n), r, start),
                       ("12:transfer:randomised",) if start == "synthetic" else ())
                  for n in ft["patients"] for r in range(int(ft["draws"])) for start in ("scratch", "synthetic")]
        return units
    if ch == "audit":
        return [Unit(ch, "audit:export", "export", "export", ("baseline",), ("12:acdc::baseline@" + str(seed),))]
    if ch == "13":
        return [Unit(ch, f"13:baseline@{seed}", "segmenter", "approach2021", ("baseline", seed))]
    if ch == "14":
        return [Unit(ch, f"14:{a}@{k}", "segmenter", "approach2021", (a, k))
                for a in APPROACHES for k in s2021.settings(params)["seeds"]]
    if ch == "15":
        s = s2022.settings(params)
        units = [Unit(ch, f"15:exp{e}:{sh:g}@{k}", "segmenter", "point2022", (e, sh, k))
                 for e in s2022.EXPERIMENTS for sh in s["shares"] for k in s["seeds"]]
        mid = s["shares"][len(s["shares"]) // 2]
        units.append(Unit(ch, f"15:ensemble:{mid:g}", "segmenter", "ensemble2022", (2, mid, s["seeds"][0],
                                                                                     int(s["compare_folds"]))))
        return units
    if ch == "16":         # predictions of the models of chapters 02-08, 12 and 15; with k-fold ensembles in
        s = s2022.settings(params)       # chapter 15, the single models its clinical measures read
        if s["folds"] == 1:
            return []
        return [Unit(ch, f"16:single:exp{e}:{sh:g}@{k}", "segmenter", "single2022", (e, sh, k))
                for e in (1, 2) for sh in s["shares"] for k in s["seeds"]]
    if ch == "17":
        s = synthesis.settings(params)
        units = [Unit(ch, "17:generator", "generator", "generator"),
                 Unit(ch, "17:synthetic_set", "synthesis", "synthetic_set", (), ("17:generator",)),
                 Unit(ch, "17:fidelity_segmenter", "segmenter", "fidelity_segmenter"),
                 Unit(ch, "17:group_encoder", "classifier", "group_encoder")]
        units += _experiments(ch, ["baseline", "oversampling"], params)
        units += [Unit(ch, f"17:{mix}:{n}:{src}@{k}", "segmenter", "downstream", (mix, n, src, k), ("17:synthetic_set",))
                  for mix, n, src in synthesis.experiments(SimpleNamespace(params=params)) for k in s["seeds"]]
        return units
    return []


CHAPTER_KEYS = ("02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "audit", "13", "14", "15", "16",
                "17")


def plan(params: dict, chapters=None) -> list[Unit]:
    """Every unit of ``chapters`` (default: all), each once (a model several chapters need is one unit, under
    the first chapter that needs it), dependencies included."""
    chapters = list(chapters or CHAPTER_KEYS)
    unknown = [c for c in chapters if c not in CHAPTER_KEYS]
    if unknown:
        raise InputError(f"--only {', '.join(unknown)}: chapters with units are {', '.join(CHAPTER_KEYS)}")
    if "audit" in chapters and "12" not in chapters:
        chapters.insert(chapters.index("audit"), "12")
    every = [u for ch in chapters for u in _chapter_units(ch, params)]
    evaluated: dict = {}          # run → the first experiment unit that makes and evaluates it
    for u in every:
        if u.task == "experiment":
            evaluated.setdefault(_run_of(u), u)
    out, seen, alias = [], {}, {}
    for u in every:
        # a model unit whose run some chapter evaluates is that chapter's experiment unit
        run = _run_of(u) if u.task in ("experiment", "model") else None
        keep = evaluated.get(run, u)
        ident = ("run", run) if keep is not u or u.task == "experiment" else (u.task, u.args)
        if ident not in seen:
            seen[ident] = keep.key
            out.append(keep)
        alias[u.key] = seen[ident]
    return [Unit(u.chapter, u.key, u.kind, u.task, u.args, tuple(alias.get(a, a) for a in u.after)) for u in out]


def _run_of(u: Unit) -> tuple:
    """The run an experiment or model unit makes: (name, seed, variant, data)."""
    if u.task == "experiment":
        return tuple(u.args)
    name, variant, seed, data = (*u.args, "cohort")[:4]
    return (name, seed, variant, data)


def waves(units: list[Unit]) -> list[list[Unit]]:
    """The units in waves: a unit's wave is one more than the latest of the units it needs (within ``units``)."""
    by_key = {u.key: u for u in units}
    depth: dict = {}

    def d(u: Unit) -> int:
        if u.key not in depth:
            depth[u.key] = 1 + max((d(by_key[a]) for a in u.after if a in by_key), default=-1)
        return depth[u.key]
    for u in units:
        d(u)
    out = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for u in units:
        out[depth[u.key]].append(u)
    return out


def stored(params: dict, unit: Unit) -> bool:
    """Whether the run store already holds what the unit makes (a finished run of it, read-only)."""
    try:
        with read_only():
            run_unit(params, unit)
        return True
    except NotInStore:
        return False


def describe(params: dict, units: list[Unit], check_store: bool = True) -> str:
    """The plan as text: per wave and chapter, the units of each kind with the training steps of a segmenter,
    which of them the store holds (``check_store``), then each kind's job resources."""
    lines = []
    for i, wave in enumerate(waves(units)):
        lines.append(f"wave {i + 1}: {len(wave)} unit(s)")
        for ch in dict.fromkeys(u.chapter for u in wave):
            kinds: dict = {}
            for u in wave:
                if u.chapter == ch:
                    kinds.setdefault(u.kind, []).append(u)
            for k, ks in kinds.items():
                held = f", {sum(stored(params, u) for u in ks)} in the store" if check_store else ""
                lines.append(f"  chapter {ch}: {len(ks)} {k} unit(s){held}")
    for k in dict.fromkeys(u.kind for u in units):
        r = resources_for(params, k)
        lines.append(f"{k}: " + ", ".join(f"{a}={b}" for a, b in r.items() if b is not None))
    store = "" if check_store else " (the cache is not built yet: nothing is stored)"
    lines.append(f"{len(units)} unit(s) in {len(waves(units))} wave(s); a segmenter trains "
                 f"{training_steps(params)} steps; results land in {runs_dir(params)}{store}")
    return "\n".join(lines)


def chapter_key(text: str) -> str:
    """A chapter as ``cmrlib run --only`` takes it: ``2``, ``02`` or ``audit``."""
    key = str(text).strip()
    key = key.zfill(2) if key.isdigit() else key
    if key not in CHAPTER_KEYS:
        raise InputError(f"--only {text}: no chapter {text!r} with models to train; chapters: {', '.join(CHAPTER_KEYS)}")
    return key


def resources_for(params: dict, kind: str) -> dict:
    """A kind's job resources: the profile's ``cluster`` section, with its ``<kind>`` subsection on top (a
    generator may need more memory or time than a segmenter)."""
    c = dict(params.get("cluster") or {})
    own = {k: c.pop(k) for k in list(c) if k in KINDS}
    return {**JOB_DEFAULTS, **c, **(own.get(kind) or {})}


def run_units(params_path: str, units: list, threads: int = 1, env: dict | None = None) -> list[str]:
    """A job: the units one after the other, with ``threads`` torch threads; returns their keys. A unit that
    fails stops the job with its key in the message (its run folder keeps the last checkpoint)."""
    os.environ.update(env or {})
    import torch
    torch.set_num_threads(int(threads))
    params = load_profile(params_path)
    done = []
    for u in units:
        t0 = time.perf_counter()
        try:
            run_unit(params, u)
        except Exception as exc:
            raise RuntimeError(f"unit {u.key} (chapter {u.chapter}) failed: {type(exc).__name__}: {exc}") from exc
        print(f"[unit] {u.key}: {time.perf_counter() - t0:.1f} s", flush=True)
        done.append(u.key)
    return done


def run_here(params_path: str, units: list[Unit]) -> list[str]:
    """Every unit in this process, wave after wave (``--executor sequential``)."""
    return run_units(params_path, [u for w in waves(units) for u in w], threads=_threads())


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def _chunks(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


def submit_units(params_path: str, units: list[Unit], kind: str = "slurm", wait: bool = True) -> dict[str, list]:
    """Run ``units`` as submitit jobs: each wave as job arrays (one per kind of unit, with that kind's resources);
    on Slurm one unit per job, each wave after the one before (``afterok``); locally as many jobs as the cores
    hold at ``cpus_per_task`` threads, each running its share of the wave, the next wave after them. A job that
    fails is reported with the units it held; submitting again resumes every unfinished unit from its checkpoint.
    Returns job id → unit keys."""
    params = load_profile(params_path)
    prepare_data(params, progress=True)          # cohort and caches made once, before any job reads them
    if any(u.task in ("acdc_cv", "export", "finetune") or (u.task == "experiment" and u.args[3] == "acdc") for u in units):
        realdata.acdc_data(params)
    env = {k: v for k, v in os.environ.items() if k.startswith("CMRLIB_")}
    params_abs = str(Path(params_path).resolve())
    folder = runs_dir(params) / "_jobs"
    submitted, names, previous = [], {}, []
    with cancelled_when_stopped(submitted) if wait else contextlib.nullcontext():
        for i, wave in enumerate(waves(units)):
            now = []
            # on Slurm an array per kind of unit, with its resources; here one array sharing the cores
            groups = [(k, [u for u in wave if u.kind == k]) for k in dict.fromkeys(u.kind for u in wave)] \
                if kind == "slurm" else [("any", wave)]
            for k, mine in groups:
                res = resources_for(params, k if kind == "slurm" else "segmenter")
                ex = executor_for(kind, folder, res)
                if kind == "slurm" and previous:
                    ex.update_parameters(slurm_additional_parameters={
                        "dependency": "afterok:" + ":".join(str(j.job_id) for j in previous)})
                n = len(mine) if kind == "slurm" else max(1, (os.cpu_count() or 1) // int(res["cpus_per_task"]))
                chunks = _chunks(mine, n)
                jobs = ex.map_array(run_units, [params_abs] * len(chunks), chunks,
                                    [int(res["cpus_per_task"])] * len(chunks), [env] * len(chunks))
                for j, c in zip(jobs, chunks):
                    names[str(j.job_id)] = [u.key for u in c]
                submitted += jobs
                now += jobs
                print(f"[jobs] {kind}: wave {i + 1}, {len(mine)} {'' if k == 'any' else k + ' '}unit(s) in {len(jobs)} job(s): "
                      f"{', '.join(str(j.job_id) for j in jobs)}", flush=True)
            if kind != "slurm" and wait:
                _wait(now, names)
            previous = now
        if wait:
            _wait(submitted, names)
    return names


def _wait(jobs: list, names: dict) -> None:
    failed = []
    for j in jobs:
        try:
            j.result()
        except Exception as exc:      # noqa: BLE001 - reported with the job's units, then raised together
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            failed.append(f"job {j.job_id} ({', '.join(names.get(str(j.job_id), []))}): {last}")
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed; submit again to resume them from their checkpoints:\n"
                           + "\n".join(f"  - {f}" for f in failed))


def cache_ready(params: dict) -> bool:
    """Whether the profile's cache is built (the dry run reads the store only then; building a paper-scale
    cohort to print a plan would take hours)."""
    c = params["cohort"]
    if c.get("source", "synthetic") != "synthetic" or c.get("route", "nifti") != "direct":
        return False
    prep = Preprocessing(size=int(params["cache"]["size"]), spacing=float(params["cache"]["spacing_mm"]))
    key = "d-" + stable_hash([synthetic_key(params), prep.key()])
    return (Path(params["data_root"]) / "cache" / key / "slices.npz").exists()


# ---------------------------------------------------------------------------------------------- the plan as a page
STEP_RESULT = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "gpu_h100.txt"


def unit_steps(params: dict, u: Unit) -> int | None:
    """Training steps of a unit's models (None for a generator, whose step time is not measured, and 0 for
    a unit that only samples or exports)."""
    steps = training_steps(params)
    if u.task == "experiment":
        variant = u.args[2]
        if variant.startswith("steps*"):
            return int(variant[6:]) * steps
        if variant in ("plain, as long", "randomised"):
            return _transfer_steps(params)
        return 0 if METHODS[level_method_name(u.args[0])].crop == "cascade" else steps
    if u.task == "model":
        if u.args[1].startswith("ablation:"):
            return transfer.settings(params)["ablation_steps"]
        return _transfer_steps(params) if u.args[1] else steps
    if u.task == "counts":
        return 0 if len(u.args) > 1 and u.args[1].endswith("_cascade") else steps
    if u.task == "approach2021":
        extra = s2021.settings(params)
        return steps + (extra["classifier_steps"] if u.args[0] == "fair_meta_learning" else 0)
    if u.task == "ensemble2022":
        return u.args[3] * steps
    if u.task in ("point2022", "single2022", "acdc_cv", "downstream", "fidelity_segmenter"):
        return steps
    if u.task == "finetune":
        return transfer.settings(params)["finetune"]["scratch_steps" if u.args[2] == "scratch" else "steps"]
    if u.task == "probe":
        return params["rootcause"]["classifier_steps"]
    if u.task == "group_encoder":
        return synthesis.settings(params)["classifier_steps"]
    if u.task == "generator":
        return None
    return 0


def _transfer_steps(params: dict) -> int:
    return training_steps({**params, "training": {**params["training"], **(params.get("transfer") or {})}})


def measured_step_ms(path: Path = STEP_RESULT) -> float | None:
    """The gpu profile network's measured step time on one H100 (``benchmarks/results/gpu_h100.txt``)."""
    import re
    if not path.exists():
        return None
    m = re.search(r"params/gpu\.yaml network .*?per step ([0-9.]+) ms", path.read_text())
    return float(m.group(1)) if m else None


def plan_page(params: dict) -> str:
    """The plan of a profile as a markdown table for the book: units and waves per chapter, the training steps
    they hold and the hours they take at the step time measured on one GPU."""
    units = plan(params)
    ms = measured_step_ms()
    wave_of = {u.key: i + 1 for i, w in enumerate(waves(units)) for u in w}
    rows = ["| chapter | units | kinds | waves | training steps | GPU hours at the measured step time |",
            "|---|---|---|---|---|---|"]
    total, gen = 0, []
    for ch in dict.fromkeys(u.chapter for u in units):
        us = [u for u in units if u.chapter == ch]
        steps = [unit_steps(params, u) for u in us]
        known = sum(s for s in steps if s)
        total += known
        gen += [u.key for u, s in zip(us, steps) if s is None]
        kinds = ", ".join(f"{sum(u.kind == k for u in us)} {k}" for k in dict.fromkeys(u.kind for u in us))
        ws = ", ".join(str(w) for w in sorted({wave_of[u.key] for u in us}))
        hours = f"{known * ms / 3.6e6:.1f}" if ms else "not measured"
        rows.append(f"| {ch} | {len(us)} | {kinds} | {ws} | {known:,} | {hours}{' + the generator' if None in steps else ''} |")
    hours = f"{total * ms / 3.6e6:.0f}" if ms else "not measured"
    head = (f"Profile `{params['profile']}`: {len(units)} units in {len(waves(units))} waves; a segmenter trains "
            f"{training_steps(params):,} steps. Hours assume {ms} ms per step, the gpu profile's network measured on "
            f"one H100 (`benchmarks/results/gpu_h100.txt`; the paper profile's larger images will be slower); the "
            f"generator's steps ({', '.join(gen) or 'none'}) are not measured. In all, {total:,} segmenter and "
            f"classifier steps, about {hours} GPU hours. Generated by `python -m cmrlib.book.work "
            f"{params['_path']}`.")
    return head + "\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys
    print(plan_page(load_profile(sys.argv[1] if len(sys.argv) > 1 else "params/paper.yaml")), end="")
