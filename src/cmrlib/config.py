"""Parameter profiles (``params/*.yaml``): loading, validation and the paths they imply.

A profile is checked whole at load time, before any cohort or cache is built: every key must be known (a
misspelt key is an error with a "did you mean" suggestion, never silently ignored), every value of the
right type and range. ``extends:`` names a base profile whose fields the variant replaces; a cycle of
``extends`` is named. The schema below is the one list of what a profile may hold. Hand-written rather than a
JSON Schema so that each message names the file and the dotted field and suggests the closest key.
"""
from __future__ import annotations

import os
from pathlib import Path

from cmrlib.errors import InputError, did_you_mean, read_yaml

REQUIRED = ("profile", "seed", "cohort", "cache", "curation", "training")


class ParamsError(InputError):
    pass


# --------------------------------------------------------------------------------------------- the schema
# Each leaf is a check: a function (value) -> error text or None.
def _int(lo=None, hi=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be a whole number, got {v!r}"
        if lo is not None and v < lo:
            return f"must be at least {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be at most {hi}, got {v}"
    return check


def _num(lo=None, hi=None, lo_open=False, none=False):
    def check(v):
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            return f"must be a number, got {v!r}"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'greater than' if lo_open else 'at least'} {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be at most {hi}, got {v}"
    return check


def _str(v):
    return None if isinstance(v, str) and v else f"must be a non-empty text, got {v!r}"


def _bool(v):
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _choice(*options):
    def check(v):
        return None if v in options else f"is {v!r}, not one of: {', '.join(map(str, options))}" + (
            did_you_mean(v, options) if isinstance(v, str) else "")
    return check


def _list(item, min_len=1):
    def check(v):
        if not isinstance(v, (list, tuple)) or len(v) < min_len:
            return f"must be a list of at least {min_len} value(s), got {v!r}"
        for i, x in enumerate(v):
            err = item(x)
            if err:
                return f"item {i + 1} {err}"
    return check


def _pair(item):
    def check(v):
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            return f"must be a [low, high] pair, got {v!r}"
        err = item(v[0]) or item(v[1])
        if err:
            return err
        if v[0] > v[1]:
            return f"low {v[0]} is above high {v[1]}"
    return check


def _counts(v):
    """Subjects per group: a mapping of group name to a count ≥ 0."""
    if not isinstance(v, dict):
        return f"must be a mapping of group to count, got {v!r}"
    for g, n in v.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return f"count for {g!r} must be a whole number ≥ 0, got {n!r}"


# seeds feed numpy (below 2^32) and torch generators, some as seed + k: bounded with room to spare
MAX_SEED = 2**31 - 1001

AUGMENT = {"rotate_deg": _num(0, 180), "scale": _pair(_num(0, lo_open=True)), "shift": _num(0, 1),
           "noise": lambda v: _num(0)(v) if not isinstance(v, (list, tuple)) else _pair(_num(0))(v),
           "gamma": _pair(_num(0, lo_open=True)), "contrast": _num(0), "bias_field": _num(0),
           "elastic": _num(0, 0.25), "fov": _num(0, 0.9), "blur": _num(0, 4), "tissue": _num(0, 1)}


def _augment(v):
    if isinstance(v, bool):
        return None
    if not isinstance(v, dict):
        return f"must be true, false or a mapping of ranges, got {v!r}"
    return None      # keys checked as a section (see _section_of)


# a job's resources (the cluster section; each kind of unit of cmrlib.book.work may have its own subsection)
JOB = {"partition": _str, "cpus_per_task": _int(1), "gpus_per_node": _int(0), "mem_gb": _int(1), "timeout_min": _int(1)}

TRAINING = {
    "network": _choice("unet", "dynunet"), "optimizer": _choice("sgd", "adam"), "channels": _list(_int(1), 2),
    "steps": _int(1), "batch_size": _int(1), "lr": _num(0, lo_open=True), "momentum": _num(0, 1),
    "weight_decay": _num(0), "poly_power": _num(0), "loss": _choice("dice_ce", "ce"), "augment": _augment,
    "checkpoint_every": _int(1), "seed": _int(0, MAX_SEED), "amp": _choice("auto", "bf16", "off"), "dro_loss": _choice("dice_ce", "ce"),
    "compile": _bool, "graphs": _bool,
}
SCHEMA = {
    "profile": _str, "meaningful": _bool, "seed": _int(0, MAX_SEED), "seeds": _int(1, 1000), "extends": _str, "data_root": _str, "runs_root": _str,
    "cohort": {
        "source": _str, "spec": _str, "route": _choice("nifti", "direct"), "internal": _counts, "external": _counts,
        "size": _int(16), "spacing_mm": _num(0, lo_open=True), "n_slices": _int(1),
        "outside_heart_differences": _bool, "inside_heart_differences": _bool,
    },
    "cache": {"size": _int(16), "spacing_mm": _num(0, lo_open=True)},
    "curation": {"train": _counts, "max_minority_share": _num(0, 1, none=True), "group_col": _str,
                 "advantaged": _str, "minority": _str, "site": _str},
    "training": TRAINING,
    "transfer": TRAINING,
    "evaluation": {"batch_size": _int(1), "postprocess": _choice("largest_component", "none")},
    "sweeps": {"minority_counts": _list(_int(0)), "oversampling_levels": _list(_num(0, 1)),
               "second_minority": _str, "second_minority_train": _int(0)},
    "rootcause": {"classifier_steps": _int(1)},
    "convergence": {"steps_factor": _int(1)},
    "realdata": {"folds": _int(2), "repeats": _int(1), "methods": _list(_str), "train": _counts,
                 "ablation": _list(_str), "ablation_steps": _int(1),
                 "finetune": {"patients": _list(_int(1)), "draws": _int(1), "steps": _int(1), "scratch_steps": _int(1)}},
    "crop": {"buffer_mm": _num(0, lo_open=True), "fill": _choice("pad", "grow")},
    "study2021": {"split": {"train": _num(0, 1), "val": _num(0, 1), "test": _num(0, 1, lo_open=True)},
                  "finetune_steps": _int(1), "classifier_steps": _int(1), "joint_steps": _int(1),
                  "meta_weight": _num(0), "classifier_lr": _num(0, lo_open=True), "seeds": _list(_int(0, MAX_SEED))},
    "study2022": {"n_train": _int(4), "n_test": _int(4), "shares": _list(_num(0, 1)), "seeds": _list(_int(0, MAX_SEED)),
                  "folds": _int(1), "compare_folds": _int(2), "min_cell": _int(1)},
    "generative": {"size": _int(4), "channels": _list(_int(8), 2), "attention": _bool, "steps": _int(1),
                   "base_steps": _int(0), "batch_size": _int(1), "lr": _num(0, lo_open=True), "timesteps": _int(2),
                   "schedule": _choice("linear_beta", "scaled_linear_beta", "cosine"),
                   "prediction": _choice("epsilon", "v_prediction", "sample"), "sample_steps": _int(1), "guidance": _num(0), "p_uncond": _num(0, 1), "checkpoint_every": _int(1),
                   "seed": _int(0, MAX_SEED), "counts": _list(_int(1)), "minority_masks": _num(0, 1),
                   "mix": _list(_choice("pool", "uniform")), "classifier_steps": _int(1), "pairs": _int(1),
                   "seeds": _list(_int(0, MAX_SEED))},
    "cluster": {**JOB, **{kind: JOB for kind in ("segmenter", "classifier", "generator", "synthesis", "export")}},
}
NESTED = {("training", "augment"): AUGMENT, ("transfer", "augment"): AUGMENT}


def validate_params(p: dict, source: str) -> list[str]:
    """Every problem of a profile (merged with its base), each naming the file and the dotted field."""
    problems: list[str] = []

    def walk(node, schema, path):
        for k, v in node.items():
            here = ".".join(path + (str(k),))
            if k not in schema:
                problems.append(f"{source}: unknown field '{here}'{did_you_mean(k, schema)}")
                continue
            check = schema[k]
            if isinstance(check, dict):
                if not isinstance(v, dict):
                    problems.append(f"{source}: field '{here}' must be a section (a mapping), got {v!r}")
                else:
                    walk(v, check, path + (str(k),))
                continue
            err = check(v)
            if err:
                problems.append(f"{source}: field '{here}' {err}")
            elif isinstance(v, dict) and (path + (str(k),)) in NESTED:
                walk(v, NESTED[path + (str(k),)], path + (str(k),))
    if not isinstance(p, dict):
        return [f"{source}: the top level must be a mapping of fields, got {type(p).__name__}"]
    walk(p, SCHEMA, ())
    for key in REQUIRED:
        if key not in p:
            problems.append(f"{source}: missing field '{key}'")
    return problems


def _read_yaml(path: Path) -> dict:
    p = read_yaml(path, ParamsError)
    if p is None:
        return {}
    if not isinstance(p, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of fields, got {type(p).__name__}")
    return p


def _load_raw(path: Path, chain: tuple = ()) -> dict:
    path = Path(path)
    if not path.exists():
        via = f" (extended by {chain[-1]})" if chain else ""
        raise ParamsError(f"parameter file not found: {path}{via}; profiles live in params/, e.g. params/smoke.yaml")
    if path.is_dir():
        raise ParamsError(f"{path}: is a folder; give a profile file such as params/smoke.yaml")
    here = path.resolve()
    if here in chain:
        cycle = " -> ".join(str(c) for c in chain[chain.index(here):] + (here,))
        raise ParamsError(f"{path}: 'extends' forms a cycle: {cycle}")
    p = _read_yaml(path)
    if "extends" in p:                 # a variant: the base profile with some fields replaced
        if not isinstance(p["extends"], str):
            raise ParamsError(f"{path}: field 'extends' must name a profile file, got {p['extends']!r}")
        base = _load_raw(path.parent / p.pop("extends"), chain + (here,))
        for k in ("_path", "data_root", "runs_root"):
            base.pop(k, None)
        p = merge_params(base, p)
    return p


def refuse(path, problems: list[str]) -> None:
    """Raise :class:`ParamsError` for a profile's problems, each already naming the file and field: one line for
    one, a list for several; nothing for none."""
    if len(problems) == 1:
        raise ParamsError(problems[0])
    if problems:
        raise ParamsError(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  - {x}" for x in problems))


def load_params(path: str | Path) -> dict:
    """Read and validate a profile; relative paths inside it are taken from the current directory (the
    repository root). ``CMRLIB_DATA`` and ``CMRLIB_RUNS`` override where data and runs go."""
    path = Path(path)
    p = _load_raw(path)
    refuse(path, validate_params(p, str(path)))
    p.setdefault("meaningful", True)
    p["data_root"] = os.environ.get("CMRLIB_DATA", p.get("data_root", "data"))
    p["runs_root"] = os.environ.get("CMRLIB_RUNS", p.get("runs_root", "runs"))
    p["_path"] = str(path)
    return p


def merge_params(base: dict, over: dict) -> dict:
    """``base`` with the fields of ``over`` put in, nested sections merged field by field."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_params(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def runs_dir(params: dict) -> Path:
    return Path(params["runs_root"]) / params["profile"]
