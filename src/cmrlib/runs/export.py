"""A stored experiment's predictions written out as another tool would write them: one label map per subject ×
frame in nnU-Net's output convention (``predictions/<case>.nii.gz``), the true label maps beside them, and a
manifest with the subjects' group columns, so that the book audits its own models exactly as a reader audits
theirs (``cmrlib audit``, :func:`cmrlib.evaluation.audit.run_audit`).

Both maps are the cache's: resampled to the profile's pixel size, on the same grid, so they agree voxel for
voxel; the predictions are post-processed as the experiment's metrics are.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmrlib.config import runs_dir
from cmrlib.data.io import write_nifti
from cmrlib.data.pipeline import Data, volume_indices
from cmrlib.files import folder_atomic
from cmrlib.runs.experiments import predictor
from cmrlib.runs.store import require_stored, run_dir_for
from cmrlib.training.methods import METHODS, Method

PER_FRAME = ("frame", "start", "n_slices", "spacing_z", "spacing_y", "spacing_x")


def export_dir(data: Data, name: str, splits=("test",), method: Method | None = None) -> Path:
    """``runs/<profile>/export-<run folder>-<splits>``: named after the experiment's run folder, so a model
    trained anew gets a new export."""
    rd = run_dir_for(data, name, method or METHODS[name])
    return runs_dir(data.params) / f"export-{rd.name}-{'-'.join(splits)}"


def export_predictions(data: Data, name: str, out: str | Path | None = None, splits=("test",),
                       method: Method | None = None, progress: bool = False) -> tuple[Path, Path]:
    """Write experiment ``name``'s predictions of the ``splits`` subjects into ``out`` (default
    :func:`export_dir`; ``labels/``, ``predictions/``, ``cases.csv``), once: a folder already complete is
    returned as it is. Returns the manifest and the predictions folder."""
    from tqdm import tqdm
    out = Path(out) if out is not None else export_dir(data, name, splits, method)
    if (out / "cases.csv").exists():
        return out / "cases.csv", out / "predictions"
    require_stored(out / "cases.csv", f"the exported predictions of {name}")
    predict_volume = predictor(data, name, method or METHODS.get(name), progress)
    subjects = data.subjects.set_index("subject_id")
    keep = [c for c in subjects.columns if c not in ("split", *PER_FRAME)]
    rows = []
    with folder_atomic(out) as tmp:
        for vi in tqdm(volume_indices(data, splits), desc="export", disable=not progress):
            img, lab, spacing = data.cache.volume(int(vi))
            v = data.cache.volumes.iloc[int(vi)]
            case = f"{v.subject_id}_{v.frame}"
            pred, _ = predict_volume(img, lab)
            write_nifti(lab, spacing, tmp / "labels" / f"{case}.nii.gz")
            write_nifti(pred.astype("uint8"), spacing, tmp / "predictions" / f"{case}.nii.gz")
            rows.append({"subject_id": v.subject_id, "frame": v.frame, "label": f"labels/{case}.nii.gz",
                         **subjects.loc[v.subject_id, keep].to_dict()})
        pd.DataFrame(rows).to_csv(tmp / "cases.csv", index=False)
    return out / "cases.csv", out / "predictions"
