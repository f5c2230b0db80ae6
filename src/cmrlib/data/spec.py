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


# Every number of the spec, with the range a renderer can use: (kind, low, high, required). Kinds: "scalar";
# "pair" ([mean, SD], the SD ≥ 0, the range for the mean); "xy" (two numbers, each in the range). A NaN, an
# infinity, a text or a value out of range is refused at load: rendered, it would give a NaN cache or a body
# of no size without a word.
ANATOMY_RULES = {
    "lv_endo_radius_ed": ("pair", 1, 100, True), "lv_length_ed": ("pair", 1, 250, True),
    "lv_wall_ed": ("pair", 0.5, 40, True), "lvef": ("pair", 0.05, 0.95, True), "rvef": ("pair", 0.05, 0.95, True),
    "rv_radius_ratio": ("scalar", 0.1, 5, False), "lean_half_width_male": ("scalar", 10, 500, True),
    "lean_half_width_female": ("scalar", 10, 500, True), "body_depth_ratio": ("scalar", 0.1, 2, False),
    "heart_centre_mm": ("xy", -250, 250, False), "ghost_shift_mm": ("scalar", 0, 250, False),
    "fat_mm_at_bmi22": ("scalar", 0, 200, True), "fat_mm_per_bmi": ("scalar", 0, 20, True),
    "slice_spacing_mm": ("scalar", 0.5, 50, True), "artefact_rate_per_bmi": ("scalar", 0, 1, False),
}
SITE_RULES = {"noise": ("scalar", 0, 1), "blur_px": ("scalar", 0, 20), "shading": ("scalar", 0, 1),
              "contrast": ("scalar", 0.01, 10), "ghost_amplitude": ("range", 0, 5)}


def _number(v, where: str, lo: float | None = None, hi: float | None = None) -> float:
    """``v`` as a finite number within [lo, hi], or a :class:`SpecError` naming ``where``."""
    import math
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"{where}: expected a number, got {v!r}")
    if not math.isfinite(v):
        raise SpecError(f"{where}: {v!r} is not a finite number")
    if lo is not None and v < lo:
        raise SpecError(f"{where}: {v!r} is outside [{lo:g}, {'∞' if hi is None else f'{hi:g}'}]")
    if hi is not None and v > hi:
        raise SpecError(f"{where}: {v!r} is outside [{'-∞' if lo is None else f'{lo:g}'}, {hi:g}]")
    return float(v)


def _rule(v, kind: str, lo: float, hi: float, where: str) -> None:
    if kind == "scalar":
        _number(v, where, lo, hi)
        return
    if not (isinstance(v, list) and len(v) == 2):
        shape = {"pair": "[mean, sd]", "xy": "[x, y]", "range": "[low, high]"}[kind]
        raise SpecError(f"{where}: expected {shape}, got {v!r}")
    if kind == "pair":
        _number(v[0], f"{where} (mean)", lo, hi)
        _number(v[1], f"{where} (sd)", 0, None if hi is None else hi)
    else:
        _number(v[0], f"{where}[0]", lo, hi)
        _number(v[1], f"{where}[1]", lo, hi)
        if kind == "range" and v[0] > v[1]:
            raise SpecError(f"{where}: low {v[0]!r} above high {v[1]!r}")


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
            for f, (lo, hi) in (("age", (0, 120)), ("height", (50, 250)), ("weight", (20, 350))):
                v = d.get(f)
                if not (isinstance(v, list) and len(v) == 2):
                    raise SpecError(f"{where}.{f}: expected [mean, sd], got {v!r}")
                _number(v[0], f"{where}.{f} (mean)", lo, hi)
                if _number(v[1], f"{where}.{f} (sd)") < 0:
                    raise SpecError(f"{where}.{f}: negative SD {v[1]}")
            for f in ("male_fraction", "hypertension"):
                v = d.get(f)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                    raise SpecError(f"{where}.{f}: expected a probability in [0, 1], got {v!r}")
    for name, fac in spec["factors"].items():
        where = f"{source}: factors.{name}"
        if not isinstance(fac, dict):
            raise SpecError(f"{where}: must be a mapping of {', '.join(FACTOR_KEYS)}")
        _unknown(fac, FACTOR_KEYS, where)
        if "default" in fac:
            _number(fac["default"], f"{where}.default")
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
            _number(v, f"{where}.groups.{g}")
    for req in ("subcutaneous_fat_thickness", "fat_signal", "ghosting_rate", "banding_rate", "myocardial_wall"):
        if req not in spec["factors"]:
            raise SpecError(f"{source}: missing field 'factors.{req}'")
    for k, v in (spec.get("appearance") or {}).items():
        if k not in APPEARANCE:
            raise SpecError(f"{source}: appearance.{k}: unknown field (expected one of {', '.join(APPEARANCE)})")
        _number(v, f"{source}: appearance.{k}", 0, None if k not in ("texture_mm", "clutter_mm") else 1000)
        if k in ("texture_mm", "clutter_mm") and v <= 0:
            raise SpecError(f"{source}: appearance.{k}: a length must be positive, got {v!r}")
    if spec["reference_group"] not in ETHNICITIES:
        raise SpecError(f"{source}: reference_group {spec['reference_group']!r} is not a group"
                        f"{did_you_mean(spec['reference_group'], ETHNICITIES)}")
    for site, s in spec["sites"].items():
        _unknown(s, SITE_FIELDS, f"{source}: sites.{site}")
        for f in SITE_FIELDS:
            if f not in s:
                raise SpecError(f"{source}: missing field 'sites.{site}.{f}'")
            kind, lo, hi = SITE_RULES[f]
            _rule(s[f], kind, lo, hi, f"{source}: sites.{site}.{f}")
    anatomy = spec["anatomy"]
    for f, (kind, lo, hi, required) in ANATOMY_RULES.items():
        if f not in anatomy:
            if required:
                raise SpecError(f"{source}: missing field 'anatomy.{f}'")
            continue
        _rule(anatomy[f], kind, lo, hi, f"{source}: anatomy.{f}")
    return spec
