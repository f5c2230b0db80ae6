"""The synthetic cohort's spec (``data_manifest/synthetic_cohort.yaml``): loading and validation.

Every key is checked at load, before anything is rendered: a misspelt key is an error with a "did you mean"
suggestion (``outside_heart_diferences`` would otherwise leave the outside-heart differences on), each value
of the right type. Kept apart from the renderer (:mod:`cmrlib.data.synthetic`), whose code is part of every
cohort key, so that a change of validation does not re-render cohorts.
"""
from __future__ import annotations

from pathlib import Path

from cmrlib import ETHNICITIES
from cmrlib.errors import InputError, did_you_mean, read_yaml

FACTOR_FIELDS = ("location", "default")

# Shared appearance (the same for every group, so no source of bias): what makes a slice look like a scan
# rather than a diagram. Defaults when a spec leaves them out.
APPEARANCE = dict(
    tissue_jitter=0.0,     # SD of each subject's log change of each background tissue's and the myocardium's signal
    texture=0.0,           # amplitude of a smooth multiplicative field over the body outside the heart (organ texture)
    texture_mm=25.0,       # its correlation length
    clutter=0.0,           # fraction of the body (outside heart and lungs) covered by blobs of random signal
    clutter_mm=20.0,       # blob size (bowel, stomach, vessels, intermuscular fat)
    lung_vessels=0.0,      # fraction of lung pixels that hold a bright vessel cross-section
)


class SpecError(InputError):
    """A malformed cohort spec; the message names the file and the field."""


# The keys a spec may hold (a misspelt key is an error, never silently ignored)
SPEC_FIELDS = ("outside_heart_differences", "inside_heart_differences", "reference_group", "demographics",
               "factors", "sites", "anatomy", "appearance")
DEMOGRAPHIC_FIELDS = ("age", "height", "weight", "male_fraction", "hypertension")
FACTOR_KEYS = ("location", "what", "default", "groups")
SITE_FIELDS = ("noise", "blur_px", "shading", "contrast", "ghost_amplitude")
ANATOMY_FIELDS = ("lv_endo_radius_ed", "rv_radius_ratio", "lv_length_ed", "lv_wall_ed", "lvef", "rvef",
                  "lean_half_width_male", "lean_half_width_female", "fat_mm_at_bmi22", "fat_mm_per_bmi",
                  "slice_spacing_mm", "artefact_rate_per_bmi", "heart_centre_mm",
                  "ghost_shift_mm", "body_depth_ratio")


def load_spec(path: str | Path) -> dict:
    """Read and validate a cohort spec; errors name the file and the offending field."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"cohort spec not found: {path}")
    return validate_spec(read_yaml(path, SpecError), str(path))


def _unknown(keys, allowed, where: str) -> None:
    for k in keys:
        if k not in allowed:
            raise SpecError(f"{where}: unknown field '{k}'{did_you_mean(k, allowed)}")


def validate_spec(spec: dict, source: str = "spec") -> dict:
    if not isinstance(spec, dict):
        raise SpecError(f"{source}: top level must be a mapping")
    _unknown(spec, SPEC_FIELDS, source)
    for sec in ("demographics", "factors", "sites", "anatomy"):
        if sec in spec and not isinstance(spec[sec], dict):
            raise SpecError(f"{source}: field '{sec}' must be a mapping")
    _unknown(spec.get("anatomy") or {}, ANATOMY_FIELDS, f"{source}: anatomy")
    for key in ("demographics", "factors", "sites", "anatomy", "reference_group"):
        if key not in spec:
            raise SpecError(f"{source}: missing field '{key}'")
    for key in ("outside_heart_differences", "inside_heart_differences"):
        if not isinstance(spec.get(key, True), bool):
            raise SpecError(f"{source}: field '{key}' must be true or false")
    for cohort, groups in spec["demographics"].items():
        for g, d in groups.items():
            where = f"{source}: demographics.{cohort}.{g}"
            if g not in ETHNICITIES:
                raise SpecError(f"{where}: unknown group{did_you_mean(g, ETHNICITIES)}")
            if not isinstance(d, dict):
                raise SpecError(f"{where}: must be a mapping of {', '.join(DEMOGRAPHIC_FIELDS)}")
            _unknown(d, DEMOGRAPHIC_FIELDS, where)
            for f in ("age", "height", "weight"):
                v = d.get(f)
                if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
                    raise SpecError(f"{where}.{f}: expected [mean, sd], got {v!r}")
                if v[1] < 0:
                    raise SpecError(f"{where}.{f}: negative SD {v[1]}")
            for f in ("male_fraction", "hypertension"):
                v = d.get(f)
                if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                    raise SpecError(f"{where}.{f}: expected a probability in [0, 1], got {v!r}")
    for name, fac in spec["factors"].items():
        where = f"{source}: factors.{name}"
        if not isinstance(fac, dict):
            raise SpecError(f"{where}: must be a mapping of {', '.join(FACTOR_KEYS)}")
        _unknown(fac, FACTOR_KEYS, where)
        if not isinstance(fac.get("default"), (int, float)) or isinstance(fac.get("default"), bool):
            if "default" in fac:
                raise SpecError(f"{where}.default: expected a number, got {fac['default']!r}")
        if not isinstance(fac.get("groups") or {}, dict):
            raise SpecError(f"{where}.groups: expected a mapping of group to value, got {fac['groups']!r}")
        for f in FACTOR_FIELDS:
            if f not in fac:
                raise SpecError(f"{where}: missing field '{f}'")
        if fac["location"] not in ("outside_heart", "inside_heart"):
            raise SpecError(f"{where}.location: must be outside_heart or inside_heart, got {fac['location']!r}")
        for g, v in (fac.get("groups") or {}).items():
            if g not in ETHNICITIES:
                raise SpecError(f"{where}.groups.{g}: unknown group{did_you_mean(g, ETHNICITIES)}")
            if not isinstance(v, (int, float)):
                raise SpecError(f"{where}.groups.{g}: expected a number, got {v!r}")
    for req in ("subcutaneous_fat_thickness", "fat_signal", "ghosting_rate", "banding_rate", "myocardial_wall"):
        if req not in spec["factors"]:
            raise SpecError(f"{source}: missing field 'factors.{req}'")
    for k, v in (spec.get("appearance") or {}).items():
        if k not in APPEARANCE:
            raise SpecError(f"{source}: appearance.{k}: unknown field (expected one of {', '.join(APPEARANCE)})")
        if not isinstance(v, (int, float)) or v < 0:
            raise SpecError(f"{source}: appearance.{k}: expected a non-negative number, got {v!r}")
    if spec["reference_group"] not in ETHNICITIES:
        raise SpecError(f"{source}: reference_group {spec['reference_group']!r} is not a group"
                        f"{did_you_mean(spec['reference_group'], ETHNICITIES)}")
    for site, s in spec["sites"].items():
        _unknown(s, SITE_FIELDS, f"{source}: sites.{site}")
        for f in SITE_FIELDS:
            if f not in s:
                raise SpecError(f"{source}: missing field 'sites.{site}.{f}'")
    return spec
