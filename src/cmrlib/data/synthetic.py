"""The embedded synthetic short-axis cine CMR cohort.

Each subject gets demographics drawn per ethnic group (Lee et al. 2025, Tables 2–3), a heart whose size follows body
surface area and sex, and a thorax whose subcutaneous fat follows BMI. Every way the groups differ is a named
factor of the YAML spec (``data_manifest/synthetic_cohort.yaml``) with its location, inside or outside the
heart, so the cause of any segmentation bias is known and can be switched off.

What the groups share makes the slices look like scans rather than diagrams: the spec's ``appearance``
(each subject's tissue signals, a smooth body texture, blobs of random signal for bowel and stomach, vessel
cross-sections in the lungs). Rendering is vectorised in torch over subjects × slices and runs on CPU or GPU.
Partial volume comes from soft edges of width one pixel. Used by chapter 01 (the cohort) and by every chapter
through the cache.

Labels: 0 background, 1 LV blood pool (LVBP), 2 LV myocardium (LVM), 3 RV blood pool (RVBP).
"""
from __future__ import annotations

import ast
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from .. import ETHNICITIES
from .spec import APPEARANCE, SpecError, load_spec, validate_spec  # noqa: F401 - the spec's loader


def code_id(source: str) -> str:
    """A hash of Python code that ignores comments, docstrings and layout (the syntax tree without them)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


# The generator's own code is part of every cohort and cache key (cmrlib.pipeline.synthetic_key): a change to
# how slices are rendered must not reuse a cohort rendered before it; an edit of comments or docstrings does not
# count as one.
RENDERER_ID = code_id(Path(__file__).read_text())

TISSUE = dict(blood=1.0, myocardium=0.22, muscle=0.28, liver=0.36, lung=0.05, spine=0.45, csf=0.75,
              mediastinum=0.30, skin=0.35, pericardial_fat=0.72)


JITTERED = ("myocardium", "muscle", "liver", "lung", "mediastinum", "spine")


def appearance(spec: dict) -> dict:
    """The spec's shared appearance settings, defaults filled in."""
    return {**APPEARANCE, **(spec.get("appearance") or {})}


def factor_table(spec: dict) -> pd.DataFrame:
    """The spec's bias mechanisms as a table: factor, location, what it does, value per group, active."""
    rows = []
    for name, fac in spec["factors"].items():
        row = {"factor": name, "location": fac["location"], "what": fac.get("what", "")}
        active = spec.get(f"{fac['location'].split('_')[0]}_heart_differences", True)
        for g in ETHNICITIES:
            row[g] = factor_value(spec, name, g)
        row["active"] = active
        rows.append(row)
    return pd.DataFrame(rows)


def factor_value(spec: dict, name: str, group: str) -> float:
    """Value of a bias factor for a group, honouring the on/off switches (off → reference group's value)."""
    fac = spec["factors"][name]
    switch = "outside_heart_differences" if fac["location"] == "outside_heart" else "inside_heart_differences"
    if not spec.get(switch, True):
        group = spec["reference_group"]
    return float((fac.get("groups") or {}).get(group, fac["default"]))


# --------------------------------------------------------------------------------------------- subjects
def sample_subjects(spec: dict, counts: dict[str, int], cohort: str, seed: int, prefix: str) -> pd.DataFrame:
    """Draw demographics and per-subject anatomy/acquisition parameters, one row per subject."""
    rng = np.random.default_rng(seed)
    demo = spec["demographics"][cohort]
    rows = []
    for g in ETHNICITIES:
        n = int(counts.get(g, 0))
        if n == 0:
            continue
        if g not in demo:
            raise SpecError(f"demographics.{cohort}.{g}: group requested but not specified")
        d = demo[g]
        male = rng.random(n) < d["male_fraction"]
        # sex explains part of the height SD (about 6.5 cm either side of the mean)
        shift = min(6.5, 0.8 * d["height"][1])
        h = d["height"][0] + np.where(male, shift, -shift) + rng.normal(0, math.sqrt(d["height"][1] ** 2 - shift**2), n)
        z = rng.normal(size=n)
        w = d["weight"][0] + d["weight"][1] * (0.5 * (h - d["height"][0]) / d["height"][1] + math.sqrt(0.75) * z)
        w = np.clip(w, 40, 200)
        age = np.clip(rng.normal(d["age"][0], d["age"][1], n), 18, 90)
        for i in range(n):
            rows.append(dict(ethnicity=g, sex="M" if male[i] else "F", age=round(float(age[i]), 1),
                             height=round(float(h[i]), 1), weight=round(float(w[i]), 1),
                             hypertension=bool(rng.random() < d["hypertension"])))
    df = pd.DataFrame(rows)
    df["bmi"] = (df.weight / (df.height / 100) ** 2).round(2)
    order = rng.permutation(len(df))
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "subject_id", [f"{prefix}{i:05d}" for i in range(len(df))])
    df["site"] = cohort
    return _anatomy(spec, df, rng)


def _anatomy(spec: dict, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Per-subject heart, body and artefact parameters (columns prefixed p_)."""
    a = spec["anatomy"]
    n = len(df)
    male = (df.sex == "M").to_numpy()
    bsa = np.sqrt(df.height.to_numpy() * df.weight.to_numpy() / 3600.0)  # Mosteller
    scale = (bsa / 1.9) ** (1 / 3) * np.where(male, 1.04, 0.95)
    g = df.ethnicity.to_numpy()
    fv = lambda name: np.array([factor_value(spec, name, x) for x in g])  # noqa: E731
    df["p_endo_r"] = scale * rng.normal(*a["lv_endo_radius_ed"], n)
    df["p_len"] = scale * rng.normal(*a["lv_length_ed"], n)
    wall = (rng.normal(*a["lv_wall_ed"], n) + 1.2 * male + 0.02 * (df.age.to_numpy() - 60)
            + 1.0 * df.hypertension.to_numpy() + fv("myocardial_wall"))
    df["p_wall"] = np.clip(wall, 4.0, 16.0)
    df["p_lvef"] = np.clip(rng.normal(*a["lvef"], n), 0.4, 0.78)
    df["p_rvef"] = np.clip(rng.normal(*a["rvef"], n), 0.35, 0.75)
    df["p_ecc"] = rng.uniform(0.0, 0.08, n)
    df["p_rot"] = rng.uniform(0, math.pi, n)
    df["p_rv_size"] = rng.normal(1.0, 0.12, n)
    for k in (2, 3):
        df[f"p_amp{k}"] = rng.uniform(0, 0.05, n)
        df[f"p_phase{k}"] = rng.uniform(0, 2 * math.pi, n)
    hc = a.get("heart_centre_mm", [20.0, -15.0])     # LV centre: mm right of body centre (x), below it (y)
    df["p_heart_dx"] = rng.normal(hc[0], 4.0, n)
    df["p_heart_dy"] = rng.normal(hc[1], 4.0, n)
    body_height, body_bmi = _body_habitus(spec, df)
    lean = np.where(male, a["lean_half_width_male"], a["lean_half_width_female"]) * (body_height / 170.0)
    df["p_body_w"] = lean * rng.normal(1.0, 0.04, n)
    df["p_body_h"] = df.p_body_w * rng.normal(a.get("body_depth_ratio", 0.68), 0.03, n)
    fat = a["fat_mm_at_bmi22"] + a["fat_mm_per_bmi"] * (body_bmi - 22.0)
    df["p_fat"] = np.clip(fat * fv("subcutaneous_fat_thickness") * rng.normal(1.0, 0.15, n), 2.0, 80.0)
    df["p_fat_signal"] = fv("fat_signal") * rng.normal(1.0, 0.03, n)
    df["p_pericardial_fat"] = np.clip(rng.normal(2.5, 1.0, n) + 0.15 * (body_bmi - 26), 0.5, 8)
    df["p_breast_bmi"] = body_bmi
    size_factor = np.clip(1 + a.get("artefact_rate_per_bmi", 0.0) * (body_bmi - 27.0), 0.2, 3.0)
    df["p_ghost"] = rng.random(n) < np.clip(fv("ghosting_rate") * size_factor, 0, 1)
    df["p_band"] = rng.random(n) < np.clip(fv("banding_rate") * size_factor, 0, 1)
    df["p_band_pos"] = rng.uniform(-1, 1, n)
    df["p_band_angle"] = rng.uniform(0, math.pi, n)
    df["p_z0"] = rng.uniform(2.0, 8.0, n)
    jit = appearance(spec)["tissue_jitter"]
    for t in JITTERED:
        df[f"p_tissue_{t}"] = TISSUE[t] * np.exp(rng.normal(0.0, jit, n))
    df["p_rv_angle"] = rng.normal(0.0, 0.25, n)     # where the RV sits around the LV (radians)
    return df


def _body_habitus(spec: dict, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Height and BMI that shape the body outside the heart. With outside-heart differences switched off, each
    subject's height and BMI are moved to the same quantile of the reference group's distribution, so the
    groups' bodies differ no more than the reference group's members do (their hearts, which follow the real
    height and weight, keep their differences)."""
    h, b = df.height.to_numpy(float), df.bmi.to_numpy(float)
    if spec.get("outside_heart_differences", True):
        return h, b
    h, b = h.copy(), b.copy()
    for cohort, groups in spec["demographics"].items():
        ref = groups.get(spec["reference_group"])
        if ref is None:
            continue
        ref_bmi = _bmi_moments(ref)
        for g, d in groups.items():
            m = ((df.site == cohort) & (df.ethnicity == g)).to_numpy()
            gb = _bmi_moments(d)
            h[m] = ref["height"][0] + (h[m] - d["height"][0]) * ref["height"][1] / max(d["height"][1], 1e-6)
            b[m] = ref_bmi[0] + (b[m] - gb[0]) * ref_bmi[1] / max(gb[1], 1e-6)
    return h, b


def _bmi_moments(d: dict) -> tuple[float, float]:
    """Approximate mean and SD of BMI implied by a group's height and weight moments."""
    hm = d["height"][0] / 100
    mean = d["weight"][0] / hm**2
    sd = mean * np.sqrt((d["weight"][1] / d["weight"][0]) ** 2 + (2 * d["height"][1] / d["height"][0]) ** 2 * 0.25)
    return float(mean), float(sd)


# --------------------------------------------------------------------------------------------- rendering
@dataclass
class Grid:
    size: int = 128          # pixels per side
    spacing: float = 2.7     # mm per pixel
    n_slices: int = 10


def _soft(dist: torch.Tensor, px: float) -> torch.Tensor:
    """Partial-volume occupancy from a signed distance (mm, negative inside)."""
    return (0.5 - dist / px).clamp(0.0, 1.0)


def _frame(x, y, cx, cy, rot=None, amps=None):
    """Coordinates (u, v) relative to a centre, optionally rotated, and the angular Fourier wobble factor
    (1 without ``amps``). Concentric ellipses (endo- and epicardium) share one frame."""
    u, v = x - cx, y - cy
    if rot is not None:
        c, s = torch.cos(rot), torch.sin(rot)
        u, v = c * u + s * v, -s * u + c * v
    wob = 1.0
    if amps is not None:
        th = torch.atan2(v, u)
        for amp, k, ph in amps:
            wob = wob + amp * torch.cos(k * th + ph)
    return u, v, wob


def _frame_dist(frame, a, b):
    """Approximate signed distance (mm) to the ellipse with half-axes ``a``, ``b`` in a :func:`_frame`."""
    u, v, wob = frame
    a = a.clamp(min=1e-3)
    b = b.clamp(min=1e-3)
    rho = torch.sqrt((u / a) ** 2 + (v / b) ** 2 + 1e-12) / wob
    return (rho - 1.0) * torch.sqrt(a * b)


def _ellipse_dist(x, y, cx, cy, a, b, rot=None, amps=None):
    """Approximate signed distance (mm) to an ellipse with optional rotation and angular Fourier wobble."""
    return _frame_dist(_frame(x, y, cx, cy, rot, amps), a, b)


def _col(df: pd.DataFrame, name: str, dev) -> torch.Tensor:
    return torch.as_tensor(df[name].to_numpy(np.float64), dtype=torch.float32, device=dev).view(-1, 1, 1, 1)


def render(spec: dict, subjects: pd.DataFrame, frame: str, grid: Grid, seed: int,
           device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Render a chunk of subjects at one frame: images (B, Z, H, W) float32 and labels (B, Z, H, W) uint8."""
    dev = torch.device(device)
    B, Z, N, px = len(subjects), grid.n_slices, grid.size, grid.spacing
    gen = torch.Generator(device="cpu").manual_seed(seed)
    pad = N // 4
    W = N + 2 * pad
    xs = (torch.arange(W, device=dev, dtype=torch.float32) - (W - 1) / 2) * px
    ys = (torch.arange(N, device=dev, dtype=torch.float32) - (N - 1) / 2) * px
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    x = x.view(1, 1, N, W)
    y = y.view(1, 1, N, W)
    c = lambda k: _col(subjects, k, dev)  # noqa: E731
    zpos = c("p_z0") + torch.arange(Z, device=dev, dtype=torch.float32).view(1, Z, 1, 1) * spec["anatomy"]["slice_spacing_mm"]

    # ---- heart geometry at this frame
    r_ed, L_ed, wall = c("p_endo_r"), c("p_len"), c("p_wall")
    if frame == "ED":
        r_endo, L = r_ed, L_ed
        z = zpos
    else:
        L = 0.9 * L_ed                                       # longitudinal shortening
        r_endo = r_ed * torch.sqrt((1 - c("p_lvef")) / 0.9)
        z = zpos - 0.7 * (L_ed - L)                          # base descends towards the apex
    myo_area_ed = (r_ed + wall) ** 2 - r_ed**2
    r_epi = torch.sqrt(r_endo**2 + myo_area_ed * (L_ed / L))
    L_epi = L + (r_epi - r_endo)
    inside = (z > 0).float()
    f_endo = torch.sqrt((1 - (z / L) ** 2).clamp(min=0)) * inside
    f_epi = torch.sqrt((1 - (z / L_epi) ** 2).clamp(min=0)) * inside
    ecc, rot = c("p_ecc"), c("p_rot")
    amps = [(c("p_amp2"), 2, c("p_phase2")), (c("p_amp3"), 3, c("p_phase3"))]
    hx, hy = c("p_heart_dx"), c("p_heart_dy")
    lv = _frame(x, y, hx, hy, rot, amps)
    d_endo = _frame_dist(lv, r_endo * f_endo * (1 + ecc) + 1e-3, r_endo * f_endo * (1 - ecc) + 1e-3)
    d_epi = _frame_dist(lv, r_epi * f_epi * (1 + ecc) + 1e-3, r_epi * f_epi * (1 - ecc) + 1e-3)
    # RV: an ellipse on the patient's right (image left) of the LV, elongated along the septum and cut by the
    # LV epicardium, so that it wraps the septum as a crescent
    rv_r = r_ed * spec["anatomy"].get("rv_radius_ratio", 1.5) * c("p_rv_size")
    if frame == "ES":   # the RV empties partly by shortening (about a fifth), so its cross-section shrinks less
        rv_r = rv_r * torch.sqrt((1 - c("p_rvef")) / 0.8)
    f_rv = torch.sqrt((1 - (z / (0.8 * L)) ** 2).clamp(min=0)) * inside
    a_rv, b_rv = 0.8 * rv_r * f_rv + 1e-3, 1.2 * rv_r * f_rv + 1e-3     # across and along the septum
    ox, oy = -(r_epi * f_epi * 0.45 + 0.55 * a_rv), -0.15 * r_epi       # RV centre relative to the LV's
    phi = c("p_rv_angle")
    cp, sp = torch.cos(phi), torch.sin(phi)
    rv_cx, rv_cy = hx + cp * ox - sp * oy, hy + sp * ox + cp * oy
    d_rv = _ellipse_dist(x, y, rv_cx, rv_cy, a_rv, b_rv, rot * 0.2 + phi, [(c("p_amp2"), 2, c("p_phase3"))])
    lvbp = d_endo < 0
    lvm = (d_epi < 0) & ~lvbp
    rvbp = (d_rv < 0) & (d_epi >= 0)
    lab = torch.zeros((B, Z, N, W), dtype=torch.uint8, device=dev)
    lab[lvbp] = 1
    lab[lvm] = 2
    lab[rvbp] = 3

    # ---- body: air, fat, muscle, thoracic cavity with lungs, spine, aorta, liver; breasts in women
    bw, bh, fat = c("p_body_w"), c("p_body_h"), c("p_fat")
    fat_sig = c("p_fat_signal")
    female = torch.as_tensor((subjects.sex == "F").to_numpy(), device=dev).view(-1, 1, 1, 1).float()
    tissue = {t: (c(f"p_tissue_{t}") if f"p_tissue_{t}" in subjects else v) for t, v in TISSUE.items()}
    img = torch.zeros((B, 1, N, W), device=dev)   # body layers do not vary along the stack: broadcast later

    def paint(dist, value):
        nonlocal img
        img = torch.lerp(img, value if torch.is_tensor(value) else torch.tensor(value), _soft(dist, px))

    body_amps = [(c("p_amp2") * 0.6, 2, c("p_phase2"))]
    paint(_ellipse_dist(x, y, 0, 10.0, bw + fat + 2, bh + 0.8 * fat + 2, None, body_amps), TISSUE["skin"])
    fat_occ = _soft(_ellipse_dist(x, y, 0, 10.0, bw + fat, bh + 0.8 * fat, None, body_amps), px)
    img = torch.lerp(img, fat_sig, fat_occ)
    # breasts: fatty bulges anterior to the chest wall in women, larger with BMI
    br = female * (25 + 1.5 * (c("p_breast_bmi") - 22).clamp(min=0)) + 1e-3
    for side in (-1, 1):
        occ = _soft(_ellipse_dist(x, y, side * 0.45 * bw, 10 - bh - 0.5 * fat, br * 1.2, br * 0.8), px)
        img = torch.lerp(img, fat_sig * 0.95, occ)
        fat_occ = torch.maximum(fat_occ, occ)
    body_occ = _soft(_ellipse_dist(x, y, 0, 10.0, bw, bh, None, body_amps), px)
    img = torch.lerp(img, tissue["muscle"], body_occ)
    fat_occ = fat_occ * (1 - body_occ)          # subcutaneous fat (and breasts): outside the lean body only
    cav_w, cav_h = bw - 14, bh - 12
    paint(_ellipse_dist(x, y, 0, 12.0, cav_w, cav_h), tissue["mediastinum"])
    lung_occ = torch.maximum(*[_soft(_ellipse_dist(x, y, side * 0.5 * cav_w, 18.0, 0.45 * cav_w, 0.85 * cav_h), px)
                               for side in (-1, 1)])
    img = torch.lerp(img, tissue["lung"], lung_occ)
    # liver rises into the lower (apical) slices on the patient's right
    liver_r = (zpos - 30).clamp(min=0) * 1.2
    paint(_ellipse_dist(x, y, -0.35 * cav_w, 20.0, liver_r * 1.3 + 1e-3, liver_r + 1e-3), tissue["liver"])
    spine_y = 10 + bh - 30
    paint(_ellipse_dist(x, y, 0, spine_y, torch.full_like(bw, 20.0), torch.full_like(bw, 17.0)), tissue["spine"])
    paint(_ellipse_dist(x, y, 0, spine_y + 22, torch.full_like(bw, 7.0), torch.full_like(bw, 6.0)), TISSUE["csf"])
    # descending aorta: bright blood outside the heart, next to the spine
    paint(_ellipse_dist(x, y, 22.0, spine_y - 26, torch.full_like(bw, 11.0), torch.full_like(bw, 11.0)), TISSUE["blood"])
    # shared appearance: blobs of random signal (bowel, stomach, vessels, intermuscular fat) in the body away
    # from the heart and lungs, vessel cross-sections in the lungs, a smooth texture over the body
    d_wall = torch.minimum(d_epi, d_rv) - 3.0                 # outer surface of the heart's walls
    d_heart = d_wall - c("p_pericardial_fat")                # and of the pericardial fat around them
    look = appearance(spec)
    if look["clutter"] > 0:
        where = body_occ * (1 - lung_occ) * _soft(6.0 - d_heart, 4 * px)
        f, g = _smooth_noise(gen, (B, Z, N, W), look["clutter_mm"] / px, dev, 2)   # where, and how bright
        t = NormalDist().inv_cdf(1 - min(look["clutter"], 0.999))
        occ = ((f - t) / 0.3).clamp(0, 1) * where
        val = (0.5 + 0.35 * g).clamp(0.05, 1.0)
        img = torch.lerp(img, val, occ)
    if look["lung_vessels"] > 0:
        dots = (torch.rand((B, Z, N, W), generator=gen).to(dev) < look["lung_vessels"]).float()
        img = torch.lerp(img, torch.full_like(img, 0.7), dots * lung_occ)
    if look["texture"] > 0:
        img = img * (1 + look["texture"] * _smooth_noise(gen, (B, Z, N, W), look["texture_mm"] / px, dev)[0])
    # heart: pericardial fat, RV free wall, then chambers and myocardium
    paint(d_heart, TISSUE["pericardial_fat"])
    paint(d_wall, tissue["myocardium"])
    paint(d_rv, TISSUE["blood"])
    paint(d_epi, tissue["myocardium"])
    paint(d_endo, TISSUE["blood"])
    # papillary muscles: two dark dots inside the LV cavity (labelled blood pool, as in UK Biobank)
    for ang in (0.6, 2.2):
        pr = r_endo * f_endo * 0.65
        paint(_ellipse_dist(x, y, hx + pr * math.cos(ang), hy + pr * math.sin(ang),
                            0.15 * r_endo * f_endo + 1e-3, 0.15 * r_endo * f_endo + 1e-3), tissue["myocardium"] + 0.1)

    site = spec["sites"][str(subjects.site.iloc[0])]
    img = img * site["contrast"]
    # ---- artefacts (outside-heart mechanisms), each confined to the subcutaneous fat and what lies beyond it:
    # an SSFP off-resonance band darkening a stretch of the fat layer (off-resonance is largest at the body's
    # surface), respiratory ghosts of the bright fat displaced a little along the phase-encode axis (x, drawn
    # over air and fat only), and fold-over of what lies beyond the field of view
    band = torch.as_tensor(subjects.p_band.to_numpy(), device=dev).view(-1, 1, 1, 1).float()
    ang, pos = c("p_band_angle"), c("p_band_pos") * bw * 0.8
    dline = x * torch.cos(ang) + y * torch.sin(ang) - pos
    profile = -0.85 * torch.exp(-(dline**2) / (2 * 8.0**2)) + 0.25 * torch.exp(-((dline - 14) ** 2) / (2 * 4.0**2))
    img = img * (1 + band * fat_occ * profile)
    ghost = torch.as_tensor(subjects.p_ghost.to_numpy(), device=dev).view(-1, 1, 1, 1).float()
    lo, hi = site["ghost_amplitude"]
    gamp = ghost * (lo + (hi - lo) * torch.rand((B, 1, 1, 1), generator=gen).to(dev))
    fat_img = img * fat_occ
    shift = max(1, int(round(spec["anatomy"].get("ghost_shift_mm", 18.0) / px)))
    ghosts = (torch.roll(fat_img, shift, dims=-1) + torch.roll(fat_img, -shift, dims=-1)) * 0.5
    img = img + gamp * ghosts * (1 - body_occ)     # drawn over air and fat, where they show; not over the lean body
    out = img[..., pad:pad + N].clone()
    out[..., :pad] += img[..., pad + N:]
    out[..., N - pad:] += img[..., :pad]
    lab = lab[..., pad:pad + N].contiguous()
    x, y = x[..., pad:pad + N], y[..., pad:pad + N]
    # coil shading: anterior surface coil, brighter at the front
    sh = site["shading"] * (0.5 + torch.rand((B, 1, 1, 1), generator=gen)).to(dev)
    out = out * (1 + sh * (-y / (N * px / 2)) * 0.5 + 0.1 * sh * x / (N * px / 2))
    # scanner blur (Gaussian), then Rician noise
    out = _blur(out, site["blur_px"])
    sigma = site["noise"]
    n1 = torch.randn(out.shape, generator=gen).to(dev) * sigma
    n2 = torch.randn(out.shape, generator=gen).to(dev) * sigma
    out = torch.sqrt((out + n1) ** 2 + n2**2)
    return (out * 1000.0).float(), lab


def _smooth_noise(gen: torch.Generator, shape, cell_px: float, dev, n: int = 1) -> list[torch.Tensor]:
    """``n`` smooth random fields of unit SD with correlation length about ``cell_px`` pixels: Gaussian noise on
    a coarse grid, upsampled bilinearly (drawn on the CPU generator, so CPU and GPU give the same fields)."""
    B, Z, H, W = shape
    h, w = max(2, round(H / max(cell_px, 1.0))) + 1, max(2, round(W / max(cell_px, 1.0))) + 1
    lo = torch.randn((B * Z, n, h, w), generator=gen)
    f = torch.nn.functional.interpolate(lo.to(dev), size=(H, W), mode="bilinear", align_corners=True)
    f = f / f.std().clamp(min=1e-6)
    return [f[:, k].reshape(B, Z, H, W) for k in range(n)]


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return img
    r = max(1, int(math.ceil(2.5 * sigma)))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32, device=img.device) ** 2) / (2 * sigma**2))
    k = (k / k.sum())
    # separable, replicate-padded; as weighted sums of shifted views, several times faster on the CPU than
    # a one-channel conv2d for kernels this short
    B, Z, H, W = img.shape
    t = torch.nn.functional.pad(img.reshape(B * Z, 1, H, W), (r, r, r, r), mode="replicate")[:, 0]
    t = sum(k[i] * t[..., i:i + W] for i in range(2 * r + 1))
    t = sum(k[i] * t[:, i:i + H, :] for i in range(2 * r + 1))
    return t.reshape(B, Z, H, W)


# --------------------------------------------------------------------------------------------- cohort
@dataclass
class CohortConfig:
    internal: dict
    external: dict
    grid: Grid
    seed: int = 0
    chunk: int = 16


def subjects_table(spec: dict, cfg: CohortConfig) -> pd.DataFrame:
    """All subjects of the internal (UK Biobank-like) and external (hypertension clinic) cohorts."""
    parts = [sample_subjects(spec, cfg.internal, "internal", cfg.seed, "S")]
    if cfg.external and sum(cfg.external.values()):
        parts.append(sample_subjects(spec, cfg.external, "external", cfg.seed + 1, "X"))
    return pd.concat(parts, ignore_index=True)


def iter_volumes(spec: dict, subjects: pd.DataFrame, cfg: CohortConfig, device="cpu"
                 ) -> Iterator[tuple[dict, str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Yield (subject row, frame, image (Z,H,W), label (Z,H,W), spacing (z,y,x) mm) for every subject and frame.

    Subjects are rendered in chunks of one site; the seed of each chunk depends only on the seed, site and
    chunk position, so the same config gives identical arrays."""
    spacing = (float(spec["anatomy"]["slice_spacing_mm"]), cfg.grid.spacing, cfg.grid.spacing)
    for site, sdf in subjects.groupby("site", sort=False):
        for start in range(0, len(sdf), cfg.chunk):
            chunk = sdf.iloc[start:start + cfg.chunk]
            for fi, frame in enumerate(("ED", "ES")):
                seed = (cfg.seed * 1_000_003 + start * 7 + fi + (0 if site == "internal" else 500_009)) % (2**31)
                img, lab = render(spec, chunk, frame, cfg.grid, seed, device)
                img, lab = img.cpu().numpy(), lab.cpu().numpy()
                for i, (_, row) in enumerate(chunk.iterrows()):
                    yield row.to_dict(), frame, img[i], lab[i], spacing


PUBLIC_COLUMNS = ["subject_id", "ethnicity", "sex", "age", "height", "weight", "bmi", "hypertension", "site"]


def write_cohort(spec: dict, cfg: CohortConfig, out_dir: str | Path, progress: bool = True) -> Path:
    """Write the cohort as NIfTI images and labels plus ``manifest.csv`` (the route real data takes).

    Returns the manifest path. Files are written into a temporary folder first and moved into place, so
    an interrupted run leaves no half-written cohort."""
    import os
    import shutil

    from tqdm import tqdm

    from .io import write_nifti
    out_dir = Path(out_dir)
    if (out_dir / "manifest.csv").exists():
        return out_dir / "manifest.csv"
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    subjects = subjects_table(spec, cfg)
    rows = []
    total = 2 * len(subjects)
    for row, frame, img, lab, spacing in tqdm(iter_volumes(spec, subjects, cfg), total=total,
                                              desc="synthetic cohort", disable=not progress, mininterval=5):
        sid = row["subject_id"]
        ip = f"images/{sid}_{frame}.nii.gz"
        lp = f"images/{sid}_{frame}_gt.nii.gz"
        write_nifti(img, spacing, tmp / ip)
        write_nifti(lab, spacing, tmp / lp)
        rows.append({**{k: row[k] for k in PUBLIC_COLUMNS}, "frame": frame, "image": ip, "label": lp})
    man = pd.DataFrame(rows)
    man.to_csv(tmp / "manifest.csv", index=False)
    subjects.to_csv(tmp / "subjects_full.csv", index=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir / "manifest.csv"
