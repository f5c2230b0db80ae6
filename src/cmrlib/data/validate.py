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
    elif affines is not None and not np.allclose(affines[0][:3, 3], affines[1][:3, 3], atol=0.5):
        problems.append(f"{where}: image {image} origin {np.round(affines[0][:3, 3], 2).tolist()} != label "
                        f"origin {np.round(affines[1][:3, 3], 2).tolist()} ({label}): the two grids differ")
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
