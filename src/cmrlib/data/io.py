"""NIfTI reading and writing with physical spacing.

Reading is strict, because a file that reads "almost" right becomes a wrong number further on: the whole
stream is decompressed and must hold as many bytes as its header describes (a truncated ``.nii.gz`` is
refused, not read with zeros for the missing slices), spacings must be finite and positive, and image values
finite. nibabel is the reader: it exposes the raw header and voxel values, whereas SimpleITK reads a truncated
gzip stream with zeros for what is missing, replaces NaN voxels by 0 and a NaN pixel spacing by 1 mm, so
none of those faults could be seen through it. SimpleITK (optional, imported lazily) writes when present;
files it writes read back identically (tested). Arrays are (Z, Y, X); spacing is (z, y, x) in millimetres,
rounded to 1e-4 mm so that values stored as float32 in the NIfTI header compare equal to the float64 values
that produced them.
"""
from __future__ import annotations

import errno
import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from cmrlib.errors import InputError

SPACING_DECIMALS = 4


class ImageReadError(InputError, OSError):
    """A NIfTI file that cannot be read, or holds what no scan can (the message names the file and field)."""


def _sitk():
    try:
        import SimpleITK as sitk  # noqa: N813
        sitk.ProcessObject.SetGlobalWarningDisplay(False)   # e.g. ACDC's "unexpected scales in sform"
        return sitk
    except ImportError:
        return None


def _nifti_header(raw: bytes) -> bool:
    """Whether ``raw`` begins with a NIfTI-1 (348-byte header, magic ``n+1``/``ni1`` at byte 344) or NIfTI-2
    (540 bytes, magic ``n+2``/``ni2`` at byte 4) header, in either byte order."""
    import struct
    if len(raw) < 348:
        return False
    for order in "<>":
        size = struct.unpack(order + "i", raw[:4])[0]
        if size == 348 and raw[344:347] in (b"n+1", b"ni1"):
            return True
        if size == 540 and raw[4:7] in (b"n+2", b"ni2"):
            return True
    return False


def _load(path: Path):
    """The nibabel image of a whole, intact NIfTI-1/2 file (its bytes held in memory), and its voxel
    spacing (x, y, z) as stored: nibabel's header check replaces a zero spacing by 1, which must be seen."""
    import nibabel as nib
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ImageReadError(f"{path}: truncated or corrupt gzip stream ({exc}); copy the file again") from exc
    if not _nifti_header(raw):
        raise ImageReadError(f"{path}: not a NIfTI file (no NIfTI-1 or NIfTI-2 header; it begins with "
                             f"{raw[:16]!r})")
    img, last = None, None
    quiet = logging.getLogger("nibabel.global")
    level, quiet.level = quiet.level, logging.CRITICAL      # nibabel's own notes on a header it fixes
    try:
        for cls in (nib.Nifti1Image, nib.Nifti2Image):
            try:
                img = cls.from_bytes(raw)
                break
            except Exception as exc:  # noqa: BLE001 - the other NIfTI version may fit
                last = exc
    finally:
        quiet.level = level
    if img is None:
        raise ImageReadError(f"{path}: not a NIfTI file ({last})")
    hdr = img.header
    need = int(hdr["vox_offset"]) + int(np.prod(img.shape)) * hdr.get_data_dtype().itemsize
    if len(raw) < need:
        raise ImageReadError(f"{path}: holds {len(raw)} bytes of image data where its header describes {need} "
                             "(truncated file); copy the file again")
    stored = type(hdr)(raw[: hdr.sizeof_hdr], endianness=hdr.endianness, check=False)
    return img, [float(z) for z in stored["pixdim"][1:4]]


def read_nifti(path: str | Path, frame_index: int | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI volume, or time point ``frame_index`` of a 4D one (cine series such as M&Ms):
    returns (array (Z, Y, X), spacing (z, y, x) mm). Raises :class:`ImageReadError` naming the file for a
    missing, truncated or corrupt file, a non-finite or non-positive spacing, or non-finite voxels."""
    arr, spacing, _ = read_volume(path, frame_index)
    return arr, spacing


def missing_reason(path: Path) -> str:
    """Why ``path`` cannot be opened: not found, or a symbolic link that leads nowhere or in a loop."""
    if not path.is_symlink():
        return "file not found"
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == errno.ELOOP:
            return "a symbolic link in a loop of links (it leads back to itself); point it at the file"
    return f"a symbolic link to {os.readlink(path)}, which does not exist; point it at the file"


def read_pair(image: str | Path, label: str | Path, frame_index: int | None = None):
    """An image and its label, each read by :func:`read_volume`: (image, spacing, label, spacing, (image
    affine, label affine))."""
    img, isp, ia = read_volume(image, frame_index)
    lab, lsp, la = read_volume(label, frame_index)
    return img, isp, lab, lsp, (ia, la)


def read_volume(path: str | Path, frame_index: int | None = None):
    """:func:`read_nifti` plus the file's voxel-to-world affine, from the same read."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: {missing_reason(path)}")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not a NIfTI file")
    try:
        img, zooms = _load(path)
        arr = np.asarray(img.dataobj).T
    except ImageReadError:
        raise
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
    if len(zooms) < 3 or not all(np.isfinite(zooms)) or any(z <= 0 for z in zooms):
        raise ImageReadError(f"{path}: header field pixdim gives spacing {tuple(zooms[::-1])} mm; every spacing "
                             "must be a finite positive number")
    spacing = tuple(round(z, SPACING_DECIMALS) for z in zooms[::-1])
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        raise ImageReadError(f"{path}: {len(bad)} voxel(s) are NaN or infinite (first at z, y, x = "
                             f"{tuple(int(i) for i in bad[0])}); a scan holds finite values only")
    return arr, spacing, np.asarray(img.affine, dtype=float)


def write_nifti(arr: np.ndarray, spacing: tuple[float, float, float], path: str | Path) -> None:
    """Write a (Z, Y, X) array, or a (T, Z, Y, X) cine series, with spacing (z, y, x) mm as NIfTI."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    sitk = _sitk()
    if sitk is not None:
        img = sitk.GetImageFromArray(arr, isVector=False)
        img.SetSpacing(tuple(float(s) for s in spacing[::-1]) + ((1.0,) if arr.ndim == 4 else ()))
        sitk.WriteImage(img, str(path), True)
    else:
        import nibabel as nib
        affine = np.diag([float(spacing[2]), float(spacing[1]), float(spacing[0]), 1.0])
        nib.save(nib.Nifti1Image(arr.T, affine), str(path))
