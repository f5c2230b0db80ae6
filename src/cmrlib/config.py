"""Parameter profiles (params/*.yaml): loading, validation and the paths they imply."""
from __future__ import annotations

import os
from pathlib import Path

import yaml

REQUIRED = {
    "profile": str, "seed": int, "cohort": dict, "cache": dict, "curation": dict, "training": dict,
}


class ParamsError(ValueError):
    pass


def load_params(path: str | Path) -> dict:
    """Read a profile; relative paths inside it are taken from the current directory (the repository root).
    ``CMRLIB_DATA`` and ``CMRLIB_RUNS`` override where data and runs go."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"parameter file not found: {path}")
    p = yaml.safe_load(path.read_text()) or {}
    if "extends" in p:                 # a variant: the base profile with some fields replaced
        base = load_params(path.parent / p.pop("extends"))
        for k in ("_path", "data_root", "runs_root"):
            base.pop(k, None)
        p = merge_params(base, p)
    for key, typ in REQUIRED.items():
        if key not in p:
            raise ParamsError(f"{path}: missing field '{key}'")
        if not isinstance(p[key], typ):
            raise ParamsError(f"{path}: field '{key}' must be a {typ.__name__}")
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
