"""One check of an image/label pair for every route into the cache (adapters, manifests, the synthetic NIfTI
cohort): the same grid (shape, spacing, position), a plausible spacing, label values that are whole numbers
among the project's labels (after the manifest's ``label_map``), and a label that is not empty."""
from __future__ import annotations

import numpy as np

from cmrlib.data.manifest import apply_label_map

# plausible voxel spacing for short-axis cine CMR, mm: in-plane (UK Biobank 1.8, ACDC 0.7-1.9, the synthetic
# smoke cohort 5.4) and between slices (ACDC 5-10, UK Biobank 10)
IN_PLANE_MM = (0.1, 10.0)
THROUGH_PLANE_MM = (0.5, 40.0)
LABELS = (0, 1, 2, 3)


AFFINE_MM = 0.5           # origins further apart than this, in mm, are different grids
AFFINE_COSINE = 1e-3      # direction cosines that differ by more than this are different orientations


def affine_problems(ia: np.ndarray, la: np.ndarray, where: str, image: str, label: str) -> list[str]:
    """Whether an image and its label lie on one grid: the same direction cosines (each axis's unit vector,
    within :data:`AFFINE_COSINE`) and the same origin (within :data:`AFFINE_MM` mm); the spacing is compared
    by the caller. A label whose axes are swapped but stored with a matching affine has the image's shape,
    spacing and origin, and only its direction cosines tell it apart."""
    out = []
    ic = ia[:3, :3] / np.linalg.norm(ia[:3, :3], axis=0).clip(1e-12)
    lc = la[:3, :3] / np.linalg.norm(la[:3, :3], axis=0).clip(1e-12)
    if not np.allclose(ic, lc, atol=AFFINE_COSINE):
        out.append(f"{where}: image {image} and label {label} point their axes in different directions (direction "
                   f"cosines {np.round(ic, 3).tolist()} against {np.round(lc, 3).tolist()}): the label is "
                   "transposed, flipped or rotated against the image")
    if not np.allclose(ia[:3, 3], la[:3, 3], atol=AFFINE_MM):
        out.append(f"{where}: image {image} origin {np.round(ia[:3, 3], 2).tolist()} != label "
                   f"origin {np.round(la[:3, 3], 2).tolist()} ({label}): the two grids differ")
    return out


def pair_problems(img: np.ndarray, isp, lab: np.ndarray, lsp, where: str, image: str, label: str,
                  label_map: dict[int, int] | None = None, affines=None) -> tuple[list[str], np.ndarray | None]:
    """Problems of one image/label pair, each naming ``where`` (subject and frame) and the file; and the label
    as uint8 in the project's values (None when it cannot be). ``affines``: (image, label) voxel-to-world
    matrices, compared when given."""
    problems = []
    if img.shape != lab.shape:
        problems.append(f"{where}: image {image} shape {img.shape} != label {label} shape {lab.shape}")
    if not np.allclose(isp, lsp, atol=1e-3):
        problems.append(f"{where}: image spacing {isp} != label spacing {lsp} ({label})")
    elif affines is not None:
        problems += affine_problems(np.asarray(affines[0], float), np.asarray(affines[1], float), where, image, label)
    if np.size(img) and np.ptp(np.asarray(img)) == 0:
        problems.append(f"{where}: image {image} is constant (every voxel {np.asarray(img).flat[0]:g}): it holds no "
                        "picture; was a mask or a blank export saved in its place?")
    z, y, x = isp
    if not (IN_PLANE_MM[0] <= y <= IN_PLANE_MM[1] and IN_PLANE_MM[0] <= x <= IN_PLANE_MM[1]
            and THROUGH_PLANE_MM[0] <= z <= THROUGH_PLANE_MM[1]):
        problems.append(f"{where}: implausible spacing {isp} mm in {image} (expected in-plane "
                        f"{IN_PLANE_MM[0]}-{IN_PLANE_MM[1]} mm, between slices {THROUGH_PLANE_MM[0]}-"
                        f"{THROUGH_PLANE_MM[1]} mm)")
    lab = np.asarray(lab)
    if np.issubdtype(lab.dtype, np.floating):
        if not np.isfinite(lab).all() or not np.array_equal(lab, np.round(lab)):
            bad = np.unique(lab[~np.isfinite(lab) | (lab != np.round(lab))])[:5]
            problems.append(f"{where}: label {label} holds values that are not whole numbers ({bad.tolist()})")
            return problems, None
    vals = set(np.unique(lab).astype(np.int64).tolist())
    known = ({0} | set(label_map)) if label_map else set(LABELS)
    if not vals <= known:
        hint = "" if label_map else "; set the manifest's label_map"
        problems.append(f"{where}: unexpected label values {sorted(vals - known)} in {label} "
                        f"(expected {sorted(known)}{hint})")
        return problems, None
    out = (apply_label_map(lab, label_map) if label_map else lab).astype(np.uint8)
    if not out.any():
        problems.append(f"{where}: label {label} is empty (no structure labelled)")
    return problems, out
