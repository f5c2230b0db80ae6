"""NIfTI reading and writing with physical spacing.

SimpleITK is the reader (imported lazily: it is large and optional); where it is absent, nibabel reads the
same files. Arrays are (Z, Y, X); spacing is (z, y, x) in millimetres, rounded to 1e-4 mm so that values
stored as float32 in the NIfTI header compare equal to the float64 values that produced them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SPACING_DECIMALS = 4


class ImageReadError(OSError):
    """A NIfTI file that cannot be read; the message names the file."""


def _sitk():
    try:
        import SimpleITK as sitk  # noqa: N813
        sitk.ProcessObject.SetGlobalWarningDisplay(False)   # e.g. ACDC's "unexpected scales in sform"
        return sitk
    except ImportError:
        return None


def read_nifti(path: str | Path, frame_index: int | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI volume, or time point ``frame_index`` of a 4D one (cine series such as M&Ms):
    returns (array (Z, Y, X), spacing (z, y, x) mm)."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    sitk = _sitk()
    try:
        if sitk is not None:
            img = sitk.ReadImage(str(path))
            arr = sitk.GetArrayFromImage(img)
            sp = img.GetSpacing()[::-1]
        else:
            import nibabel as nib
            img = nib.load(str(path))
            arr = np.asarray(img.dataobj).T
            sp = tuple(float(z) for z in img.header.get_zooms()[:3])[::-1]
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ImageReadError(f"{path}: cannot read NIfTI ({exc})") from exc
    if arr.ndim == 4:
        if frame_index is None and arr.shape[0] != 1:
            raise ImageReadError(f"{path}: 4D series with {arr.shape[0]} time points and no frame index")
        if frame_index is not None and not 0 <= frame_index < arr.shape[0]:
            raise ImageReadError(f"{path}: frame index {frame_index} outside 0..{arr.shape[0] - 1}")
        arr = arr[frame_index or 0]
    if arr.ndim != 3:
        raise ImageReadError(f"{path}: expected a 3D volume, got shape {arr.shape}")
    spacing = tuple(round(float(s), SPACING_DECIMALS) for s in sp[-3:])
    if any(s <= 0 for s in spacing):
        raise ImageReadError(f"{path}: non-positive spacing {spacing}")
    return arr, spacing


def write_nifti(arr: np.ndarray, spacing: tuple[float, float, float], path: str | Path) -> None:
    """Write a (Z, Y, X) array, or a (T, Z, Y, X) cine series, with spacing (z, y, x) mm as NIfTI."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    sitk = _sitk()
    if sitk is not None:
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(tuple(float(s) for s in spacing[::-1]) + ((1.0,) if arr.ndim == 4 else ()))
        sitk.WriteImage(img, str(path), True)
    else:
        import nibabel as nib
        affine = np.diag([float(spacing[2]), float(spacing[1]), float(spacing[0]), 1.0])
        nib.save(nib.Nifti1Image(arr.T, affine), str(path))
