"""From a parameter profile to data ready for training: cohort → manifest → cache → train/test split.

Used by the CLI and the first cells of every chapter, so each chapter starts from the same data.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmrlib.config import merge_params
from cmrlib.data import synthetic
from cmrlib.data.cache import Cache, Preprocessing, build_cache, manifest_key, volumes_from_manifest
from cmrlib.data.curation import split_train_test
from cmrlib.data.manifest import load_manifest, subjects_from_manifest
from cmrlib.files import run_lock, stable_hash, storage_error


@dataclass
class Data:
    """A cache plus the subject table with its ``split`` column (train / test / external)."""
    cache: Cache
    subjects: pd.DataFrame
    params: dict

    @property
    def group_col(self) -> str:
        return self.params["curation"].get("group_col", "ethnicity")

    @property
    def advantaged(self) -> str:
        """The majority group of the training set (the fairness gap's first group)."""
        return self.params["curation"].get("advantaged", "White")

    @property
    def minority(self) -> str:
        """The under-represented training group (oversampled, and the fairness gap's second group)."""
        return self.params["curation"].get("minority", "Black")

    def ids(self, split: str) -> list[str]:
        return self.subjects.loc[self.subjects.split == split, "subject_id"].tolist()

    def train_groups(self) -> np.ndarray:
        """Each training slice's group, in the order of :meth:`train_arrays` (without reading the slices)."""
        idx = self.cache.slices_of(self.ids("train"))
        grp = self.subjects.set_index("subject_id")[self.group_col]
        return grp.reindex(self.cache.slice_subject()[idx]).to_numpy()

    def train_arrays(self):
        """Training slices, labels and each slice's group."""
        idx = self.cache.slices_of(self.ids("train"))
        return self.cache.images[idx], self.cache.labels[idx], self.train_groups()


# The order in which subjects are drawn, group by group (the order every profile lists them in).
DRAW_ORDER = ("White", "Black", "Mixed", "Asian", "Chinese", "Other")


def in_group_order(counts: dict) -> dict:
    """Counts per group in one fixed order (:data:`DRAW_ORDER`, then any other group alphabetically), whatever
    order a profile wrote them in. Subjects are drawn group by group, so the order decides who is drawn; without
    this a profile re-saved with sorted keys would get another cohort and another training set under the same
    keys (the keys sort the counts)."""
    rank = {g: i for i, g in enumerate(DRAW_ORDER)}
    return {g: counts[g] for g in sorted(counts, key=lambda g: (rank.get(g, len(rank)), str(g)))}


def cohort_config(params: dict) -> synthetic.CohortConfig:
    c = params["cohort"]
    return synthetic.CohortConfig(internal=in_group_order(c["internal"]), external=in_group_order(c.get("external") or {}),
                                  grid=synthetic.Grid(c["size"], float(c["spacing_mm"]), c.get("n_slices", 10)),
                                  seed=params["seed"])


def load_spec(params: dict) -> dict:
    spec = synthetic.load_spec(params["cohort"]["spec"])
    for k in ("outside_heart_differences", "inside_heart_differences"):
        if k in params["cohort"]:
            spec[k] = bool(params["cohort"][k])
    return spec


def synthetic_key(params: dict) -> str:
    cfg = cohort_config(params)
    spec = load_spec(params)
    # the factors' descriptions (``what``) do not change a pixel, so editing them re-renders nothing
    factors = {k: {f: v for f, v in fac.items() if f != "what"} for k, fac in spec["factors"].items()}
    return "s-" + stable_hash([{**spec, "factors": factors}, synthetic.appearance(spec), cfg.internal, cfg.external,
                               cfg.grid.__dict__, cfg.seed, synthetic.RENDERER_ID])


def prepare_cohort(params: dict, progress: bool = True) -> Path:
    """Write the synthetic cohort as NIfTI + manifest (once) or return the manifest given in the profile."""
    src = params["cohort"].get("source", "synthetic")
    if src != "synthetic":
        return Path(src)
    out = Path(params["data_root"]) / "synthetic" / synthetic_key(params)
    if (out / "manifest.csv").exists():
        return out / "manifest.csv"
    lock, partial = out.with_name(out.name + ".lock"), out.with_name(out.name + ".partial")
    try:
        with run_lock(lock):     # chapters run side by side write the cohort once
            try:
                return synthetic.write_cohort(load_spec(params), cohort_config(params), out, progress=progress)
            except BaseException as exc:        # the writer's temporary folder goes with the failure
                shutil.rmtree(partial, ignore_errors=True)
                err = storage_error(exc, partial / "manifest.csv")
                if err is exc:
                    raise
                raise err from None
    finally:
        shutil.rmtree(lock, ignore_errors=True)


def prepare_data(params: dict, progress: bool = True) -> Data:
    """Cohort, cache and split for a profile. ``cohort.route``: ``nifti`` reads the written NIfTI files (the
    path real data takes), ``direct`` renders the synthetic cohort straight into the cache."""
    c = params["cohort"]
    prep = Preprocessing(size=int(params["cache"]["size"]), spacing=float(params["cache"]["spacing_mm"]))
    root = Path(params["data_root"]) / "cache"
    if c.get("source", "synthetic") == "synthetic" and c.get("route", "nifti") == "direct":
        spec, cfg = load_spec(params), cohort_config(params)
        subjects = synthetic.subjects_table(spec, cfg)
        key = "d-" + stable_hash([synthetic_key(params), prep.key()])
        cache = build_cache(synthetic.iter_volumes(spec, subjects, cfg), subjects[synthetic.PUBLIC_COLUMNS],
                            key, root, prep, total=2 * len(subjects), progress=progress)
    else:
        manifest = load_manifest(prepare_cohort(params, progress))
        cache = build_cache(volumes_from_manifest(manifest), subjects_from_manifest(manifest),
                            manifest_key(manifest, prep), root, prep, total=len(manifest), progress=progress)
    cur = params["curation"]
    site = cur.get("site", "internal")   # train/test come from this site; other sites are external
    if "site" not in cache.subjects or not (cache.subjects["site"] == site).any():
        site = None
    subjects = split_train_test(cache.subjects, in_group_order(cur["train"]), params["seed"], cur.get("group_col", "ethnicity"),
                                site=site, max_minority_share=cur.get("max_minority_share"))
    return Data(cache, subjects, params)


def volume_indices(data: Data, splits=("test", "external")) -> np.ndarray:
    ids = set(data.subjects.loc[data.subjects.split.isin(splits), "subject_id"])
    return np.flatnonzero(data.cache.volumes.subject_id.isin(ids).to_numpy())


def real_data_params(params: dict, manifest: str, group_col: str, advantaged: str, minority: str,
                     train: dict, name: str) -> dict:
    """A copy of a profile that reads a real-data manifest and splits by another protected attribute
    (chapter 12). Preprocessing and training settings stay those of the profile."""
    p = {**params, "profile": f"{params['profile']}_{name}"}
    p["cohort"] = {**params["cohort"], "source": str(manifest)}
    p["curation"] = {**params["curation"], "group_col": group_col, "advantaged": advantaged, "minority": minority,
                     "train": train, "max_minority_share": None}
    return p


def with_training(data: Data, over: dict) -> Data:
    """The same cache and split with fields of the profile's ``training`` section replaced by ``over``: a model
    trained from it gets its own run (the training settings are part of the run key)."""
    return Data(data.cache, data.subjects, {**data.params, "training": merge_params(data.params["training"], over)})


def with_crop(data: Data, buffer_mm: float | None = None, fill: str | None = None) -> Data:
    """The same cache and split with the crop buffer (profile key ``crop.buffer_mm``) set to ``buffer_mm``, or
    the way the box meets the network's stride (``crop.fill``: ``pad`` or ``grow``) set to ``fill``: the crop
    experiments trained from it get their own runs (the box size is part of a crop run's key)."""
    crop = dict(data.params.get("crop", {}))
    if buffer_mm is not None:
        crop["buffer_mm"] = float(buffer_mm)
    if fill is not None:
        crop["fill"] = str(fill)
    return Data(data.cache, data.subjects, {**data.params, "crop": crop})


def transfer_data(data: Data) -> Data:
    """The synthetic data with the training settings of the model meant for real scans (chapter 12): the
    profile's ``transfer`` section replaces fields of its ``training`` section (typically appearance
    randomisation, see :mod:`cmrlib.training.augment`, and more steps). A profile without a ``transfer`` section gives
    the data back unchanged."""
    over = data.params.get("transfer") or {}
    return with_training(data, over) if over else data
