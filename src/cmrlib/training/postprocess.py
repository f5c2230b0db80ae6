"""Post-processing of predicted label maps, as nnU-Net's: for each structure, keep only its largest connected
component in the stack (26-connectivity in 3D), so that stray islands far from the heart neither count in the
Hausdorff distance nor move a cascade's crop box.

MONAI's ``KeepLargestConnectedComponent`` does the same but needs scikit-image, which the project does not
otherwise use; scipy's labelling is enough here.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

POSTPROCESSING = ("none", "largest_component")


def largest_components(labels: np.ndarray, classes=(1, 2, 3)) -> np.ndarray:
    """A copy of a (Z, H, W) or (H, W) label map in which each class keeps only its largest component
    (the rest becomes background)."""
    out = np.array(labels, copy=True)
    structure = ndimage.generate_binary_structure(out.ndim, out.ndim)
    for k in classes:
        comp, n = ndimage.label(out == k, structure=structure)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            out[(comp > 0) & (comp != 1 + int(np.argmax(sizes)))] = 0
    return out


def postprocess(labels: np.ndarray, method: str = "largest_component") -> np.ndarray:
    if method == "none":
        return labels
    if method == "largest_component":
        return largest_components(labels)
    raise ValueError(f"unknown post-processing {method!r} (one of {', '.join(POSTPROCESSING)})")


def postprocessing(params: dict) -> str:
    """The profile's post-processing of predictions (``evaluation.postprocess``; nnU-Net's largest connected
    component per structure by default)."""
    return params.get("evaluation", {}).get("postprocess", "largest_component")
