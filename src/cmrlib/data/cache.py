"""The preprocessed cache: every slice resampled to one in-plane spacing, intensity-normalised, padded or
cropped to one size, stored with a slice → volume → subject index.

A cache lives in ``<root>/<key>/`` where the key hashes everything that produced it (the manifest and its
files' sizes and times, or the synthetic cohort's spec and config, plus the preprocessing settings). It is
written into a temporary folder and renamed into place, so an interruption never leaves a half cache, and a
change to any input gives a new key and a rebuild.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cmrlib.data.io import SPACING_DECIMALS, ImageReadError, read_pair
from cmrlib.data.manifest import ManifestError, parse_label_map, row_name
from cmrlib.data.validate import pair_problems
from cmrlib.errors import InputError
from cmrlib.files import folder_atomic, run_lock, stable_hash


@dataclass(frozen=True)
class Preprocessing:
    size: int = 64            # output slices are size × size pixels
    spacing: float = 5.4      # output in-plane spacing, mm

    def key(self) -> dict:
        return asdict(self)


def _center_fit(t: torch.Tensor, size: int, value: float = 0.0) -> torch.Tensor:
    """Centre-pad or centre-crop the last two dims of t to size × size."""
    H, W = t.shape[-2:]
    for dim, n in ((-2, H), (-1, W)):
        if n >= size:
            s = (n - size) // 2
            t = t.narrow(dim, s, size)
        else:
            before = (size - n) // 2
            pad = [0, 0, 0, 0]
            idx = 0 if dim == -1 else 2
            pad[idx], pad[idx + 1] = before, size - n - before
            t = F.pad(t, pad, value=value)
    return t


def preprocess_volume(img: np.ndarray, lab: np.ndarray, spacing, prep: Preprocessing):
    """Resample a (Z, Y, X) volume in-plane to ``prep.spacing``, z-score its intensities (after clipping at the
    0.5th/99.5th percentiles, as nnU-Net does for MR), and fit it to ``prep.size``. Returns float16 image,
    uint8 label and the new spacing (z, y, x)."""
    sz, sy, sx = (round(float(s), SPACING_DECIMALS) for s in spacing)
    ti = torch.as_tensor(np.asarray(img, dtype=np.float32)).unsqueeze(1)      # (Z,1,Y,X)
    tl = torch.as_tensor(np.asarray(lab).astype(np.uint8)).unsqueeze(1)
    t = prep.spacing
    if abs(sy - t) > 1e-6 or abs(sx - t) > 1e-6:
        shape = (max(1, round(ti.shape[-2] * sy / t)), max(1, round(ti.shape[-1] * sx / t)))
        ti = F.interpolate(ti, size=shape, mode="bilinear", align_corners=False, antialias=True)
        tl = F.interpolate(tl.float(), size=shape, mode="nearest-exact").to(torch.uint8)
    lo, hi = torch.quantile(ti.flatten()[:: max(1, ti.numel() // 200_000)], torch.tensor([0.005, 0.995]))
    ti = ti.clamp(lo, hi)
    ti = (ti - ti.mean()) / (ti.std() + 1e-6)
    ti = _center_fit(ti, prep.size, value=float(ti.min()))
    tl = _center_fit(tl, prep.size, value=0)
    return ti[:, 0].to(torch.float16).numpy(), tl[:, 0].numpy(), (sz, t, t)


@dataclass
class Cache:
    """Slices in memory plus their index. ``images`` (S, H, W) float16, ``labels`` (S, H, W) uint8,
    ``volumes`` one row per subject × frame (subject_id, frame, start, n_slices, spacing_z/y/x),
    ``subjects`` one row per subject with its group columns."""
    path: Path
    images: np.ndarray
    labels: np.ndarray
    volumes: pd.DataFrame
    subjects: pd.DataFrame

    @property
    def slice_volume(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.volumes)), self.volumes.n_slices.to_numpy())

    def slice_subject(self) -> np.ndarray:
        return self.volumes.subject_id.to_numpy()[self.slice_volume]

    def slices_of(self, subject_ids: Iterable[str]) -> np.ndarray:
        """Indices of every slice (both frames) of the given subjects."""
        ids = set(map(str, subject_ids))
        return np.flatnonzero(np.isin(self.slice_subject(), list(ids)))

    def volume(self, i: int) -> tuple[np.ndarray, np.ndarray, tuple]:
        r = self.volumes.iloc[i]
        s = slice(int(r.start), int(r.start + r.n_slices))
        return self.images[s], self.labels[s], (r.spacing_z, r.spacing_y, r.spacing_x)


def load_cache(path: str | Path) -> Cache:
    path = Path(path)
    with np.load(path / "slices.npz") as z:
        images, labels = z["images"], z["labels"]
    return Cache(path, images, labels, pd.read_csv(path / "volumes.csv", dtype={"subject_id": str}),
                 pd.read_csv(path / "subjects.csv", dtype={"subject_id": str}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_partials(root: str | Path) -> list[Path]:
    """Remove the temporary folders of cache builds whose process is gone (killed or failed); a build still
    running in another process keeps its own. Returns what was removed."""
    removed = []
    for p in Path(root).glob(".*.partial-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if p.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def build_cache(volumes: Iterable, subjects: pd.DataFrame, key: str, root: str | Path,
                prep: Preprocessing, total: int | None = None, progress: bool = True) -> Cache:
    """Build (or reuse) the cache ``root/key`` from an iterable of (subject row, frame, image, label, spacing).

    Both the NIfTI route (:func:`volumes_from_manifest`) and the synthetic fast path
    (:func:`cmrlib.data.synthetic.iter_volumes`) feed this function, which is why they give the same cache."""
    root = Path(root)
    final = root / key
    if (final / "slices.npz").exists():
        return load_cache(final)
    root.mkdir(parents=True, exist_ok=True)
    lock = root / f".lock-{key}"
    try:
        with run_lock(lock):     # chapters run side by side build each cache once
            if (final / "slices.npz").exists():
                return load_cache(final)
            return _build_cache(volumes, subjects, key, root, final, prep, total, progress)
    finally:                     # built or failed, the lock's folder goes (a builder still waiting holds its own)
        shutil.rmtree(lock, ignore_errors=True)


def _build_cache(volumes, subjects, key, root, final, prep, total, progress) -> Cache:
    clean_partials(root)
    from tqdm import tqdm
    imgs, labs, rows = [], [], []
    start = 0
    for row, frame, img, lab, spacing in tqdm(volumes, total=total, desc="cache", disable=not progress,
                                              mininterval=5):
        pi, pl, sp = preprocess_volume(img, lab, spacing, prep)
        imgs.append(pi)
        labs.append(pl)
        rows.append(dict(subject_id=str(row["subject_id"]), frame=frame, start=start, n_slices=len(pi),
                         spacing_z=sp[0], spacing_y=sp[1], spacing_x=sp[2]))
        start += len(pi)
    if not rows:
        raise InputError("no volumes to cache: the manifest or cohort is empty")
    with folder_atomic(final) as tmp:                # written whole, then renamed into place
        np.savez(tmp / "slices.npz", images=np.concatenate(imgs), labels=np.concatenate(labs))
        pd.DataFrame(rows).to_csv(tmp / "volumes.csv", index=False)
        subjects.to_csv(tmp / "subjects.csv", index=False)
        (tmp / "key.json").write_text(json.dumps({"key": key, "preprocessing": prep.key()}, indent=1))
    return load_cache(final)


def volumes_from_manifest(manifest: pd.DataFrame):
    """Read each manifest row's image and label (a time point of a 4D file where ``frame_index`` is set,
    relabelled where ``label_map`` is set), checked as every route is (:mod:`cmrlib.data.validate`); errors
    name the manifest, the row (and subject, unless it is a pseudonym), the frame and the file."""
    source = manifest.attrs.get("source", "manifest")
    for i, (_, row) in enumerate(manifest.iterrows()):
        fi = row.get("frame_index")
        fi = None if fi is None or pd.isna(fi) else int(fi)
        where = row_name(row, i)
        try:
            img, isp, lab, lsp, affines = read_pair(row["image"], row["label"], fi)
        except ImageReadError as exc:
            raise ManifestError(source, [f"{where}: {exc}"]) from None
        lm = row.get("label_map")
        mapping = parse_label_map(lm) if isinstance(lm, str) and lm else None
        problems, lab = pair_problems(img, isp, lab, lsp, where, row["image"], row["label"], mapping, affines)
        if problems:
            raise ManifestError(source, problems)
        yield row.to_dict(), row["frame"], img, lab, isp


def manifest_key(manifest: pd.DataFrame, prep: Preprocessing) -> str:
    """Hash of the manifest's content, its files' sizes and modification times, and the preprocessing."""
    stats = []
    for p in pd.concat([manifest.image, manifest.label]):
        st = os.stat(p)
        stats.append((p, st.st_size, st.st_mtime_ns))
    return "m-" + stable_hash([manifest.to_csv(index=False), stats, prep.key()])
