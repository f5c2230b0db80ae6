"""A profile checked as a whole before any work: :func:`cmrlib.config.load_params` checks each field alone
(type, range, spelling); :func:`load_profile` adds the checks that need the library's own lists and settings,
which would otherwise fail only when a chapter reaches them, after minutes of work: a misspelt
``realdata.methods`` entry, and a ``generative`` section its network or sampler cannot take (a size the UNet
cannot halve, ``base_steps`` ≥ ``steps``, ``sample_steps`` above the scheduler's ``timesteps``, channels that
group normalisation cannot split). The command line and every chapter load profiles through it.
"""
from __future__ import annotations

from pathlib import Path

from cmrlib.config import load_params, refuse
from cmrlib.errors import InputError, did_you_mean
from cmrlib.studies.lee2025.realdata import cv_settings
from cmrlib.studies.lee2025.transfer import OPTIONS as RANDOMISATIONS
from cmrlib.studies.skorupko2024.generative import config_from_params
from cmrlib.training.methods import METHODS


def profile_problems(params: dict) -> list[str]:
    """Every problem of a loaded profile that needs more than its own fields to see, each naming the file
    and the field."""
    source = params.get("_path", "profile")
    out = []
    if "realdata" in params:
        for i, m in enumerate(cv_settings(params)["methods"]):
            if m not in METHODS:
                out.append(f"{source}: field 'realdata.methods' item {i + 1} {m!r} is not a method"
                           f"{did_you_mean(m, METHODS)}")
        for i, k in enumerate(params["realdata"].get("ablation") or ()):
            if k not in RANDOMISATIONS:
                out.append(f"{source}: field 'realdata.ablation' item {i + 1} {k!r} is not a kind of randomisation "
                           f"({', '.join(RANDOMISATIONS)}){did_you_mean(k, RANDOMISATIONS)}")
    if "generative" in params:
        try:
            config_from_params(params)
        except InputError as exc:
            out.append(f"{source}: {exc}")
    return out


def load_profile(path: str | Path) -> dict:
    """:func:`cmrlib.config.load_params` and :func:`profile_problems`: a profile refused with every problem
    named, or returned whole."""
    params = load_params(path)
    refuse(path, profile_problems(params))
    return params
