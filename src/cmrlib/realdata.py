"""Models trained on the synthetic cohort, evaluated on real scans (chapter 12).

:func:`on_real` segments every volume of a real-data :class:`~cmrlib.pipeline.Data` with one model and counts
where each true label's pixels went; :func:`transfer_comparison` puts the plain synthetic model, the plain one
trained as long as the randomised one, and the randomised one side by side, on the synthetic test set (majority,
minority and their gap, the groups named by the profile) and on the real scans (per structure);
:func:`mid_slices` and :func:`prediction_grid` are the chapter's figures.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from .experiments import evaluate, run_experiment, segment, trained_model
from .fairness import fairness_summary
from .metrics import label_confusion
from .pipeline import Data, transfer_data, with_training
from .report import experiment_scores

STRUCTURE_COLOURS = {1: "red", 2: "lime", 3: "deepskyblue"}   # LVBP, LVM, RVBP


def on_real(model, real: Data, params: dict, splits=("train", "test")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every real volume of ``splits`` segmented by ``model`` (post-processed as ``params`` says): the
    per-structure scores, and the label confusion counts (rows: true label, columns: predicted) summed over the
    volumes."""
    confusion = []

    def predict_and_count(img, lab):
        pred = segment(model, img, params)
        confusion.append(label_confusion(pred, lab))
        return pred, True

    scores = evaluate(predict_and_count, real, progress=False, splits=splits)
    return scores, sum(confusion)


def overall_dsc(per_structure: pd.DataFrame) -> float:
    """The median over volumes' subjects of the overall DSC (mean over structures and frames), every split
    pooled."""
    return float(experiment_scores(per_structure.assign(split="all"), "all").dsc.median())


def row_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Confusion counts as shares of each true label (each row sums to one)."""
    return counts.div(counts.sum(axis=1), axis=0)


def transfer_models(syn: Data) -> dict[str, tuple[Data, object]]:
    """The three synthetic-only models of chapter 12, each with the data it was trained on: ``plain`` (the
    profile's baseline), ``plain, as long`` (the same, for as many steps as the randomised one) and
    ``randomised`` (the profile's ``transfer`` settings, :func:`cmrlib.pipeline.transfer_data`)."""
    syn_dr = transfer_data(syn)
    syn_long = with_training(syn, {"steps": syn_dr.params["training"]["steps"]})
    return {name: (d, trained_model(d, "baseline", progress=False)[0])
            for name, d in (("plain", syn), ("plain, as long", syn_long), ("randomised", syn_dr))}


def transfer_comparison(models: dict[str, tuple[Data, object]], real: Data, params: dict,
                        evaluated: dict[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None):
    """One row per model: median DSC of the profile's majority and minority on the synthetic test set, their
    fairness gap, and the median DSC on the real scans, overall and per structure. Returns the table and each
    model's confusion counts on the real scans. ``evaluated``: models already run through :func:`on_real`
    (name → its scores and counts), which are not segmented again."""
    rows, counts = {}, {}
    evaluated = evaluated or {}
    for name, (d, model) in models.items():
        real_scores, counts[name] = evaluated[name] if name in evaluated else on_real(model, real, params)
        sy = experiment_scores(run_experiment(d, "baseline", progress=False), "test")
        med = sy.groupby(d.group_col).dsc.median()
        rows[name] = {f"synthetic test, {d.advantaged}": med.get(d.advantaged, np.nan),
                      f"synthetic test, {d.minority}": med.get(d.minority, np.nan),
                      "synthetic test, gap": fairness_summary(sy, d.group_col, d.advantaged, d.minority)["fg"],
                      "real, all": overall_dsc(real_scores),
                      **{f"real, {k}": v for k, v in real_scores.groupby("structure").dsc.median().items()}}
    return pd.DataFrame(rows).T.rename_axis("median DSC"), counts


def _mid_slice(lab: np.ndarray) -> int:
    return int(np.argmax((lab > 0).sum(axis=(1, 2))))


def mid_slices(named: dict[str, Data], per_set: int = 2):
    """For each dataset, the mid-ventricular end-diastolic slice of its first ``per_set`` volumes and the
    intensity histogram of each volume (after the cache's preprocessing)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(named), 2 * per_set, figsize=(2.75 * 2 * per_set, 2.75 * len(named)), squeeze=False)
    for k, (name, d) in enumerate(named.items()):
        for j, vi in enumerate(d.cache.volumes[d.cache.volumes.frame == "ED"].index[:per_set]):
            img, lab, _ = d.cache.volume(int(vi))
            axes[k, j].imshow(img[_mid_slice(lab)].astype(np.float32), cmap="gray")
            axes[k, j].axis("off")
            axes[k, j].set_title(f"{name}: {d.cache.volumes.subject_id[vi]}", fontsize=8)
            axes[k, per_set + j].hist(img.astype(np.float32).ravel(), bins=80, color="#1f3b5c")
            axes[k, per_set + j].set_title(f"{name} intensities (z-scored)", fontsize=8)
    fig.tight_layout()
    return fig


def prediction_grid(real: Data, models: dict[str, object], params: dict, n: int = 6, every: int = 17):
    """One column per real ED volume (every ``every``-th, at most ``n``), one row per model: the prediction as
    coloured areas over the mid-ventricular slice and the true contours dashed, in the same colours (red LV
    blood pool, green myocardium, blue RV blood pool)."""
    import matplotlib.pyplot as plt
    shown = real.cache.volumes[real.cache.volumes.frame == "ED"].index[::every][:n]
    fig, axes = plt.subplots(len(models), len(shown), figsize=(2.3 * len(shown), 2.5 * len(models)), squeeze=False)
    cmap = ListedColormap(list(STRUCTURE_COLOURS.values()))
    for j, vi in enumerate(shown):
        img, lab, _ = real.cache.volume(int(vi))
        z = _mid_slice(lab)
        for r, (name, model) in enumerate(models.items()):
            pred = segment(model, img, params)
            ax = axes[r, j]
            ax.imshow(img[z].astype(np.float32), cmap="gray")
            ax.imshow(np.ma.masked_equal(pred[z], 0), cmap=cmap, vmin=1, vmax=3, alpha=0.4, interpolation="nearest")
            for k, colour in STRUCTURE_COLOURS.items():
                if (lab[z] == k).any():
                    ax.contour(lab[z] == k, levels=[0.5], colors=[colour], linewidths=0.7, linestyles="dashed")
            ax.axis("off")
            ax.set_title(f"{real.cache.volumes.subject_id[vi]}, {name}", fontsize=7)
    fig.tight_layout()
    return fig


def acdc_data(params: dict, acdc_dir: str | None = None, progress: bool = False) -> Data | None:
    """Chapter 12's real-data split of ACDC (obesity the protected attribute: 60 non-obese and 2 obese training
    patients), or None where no ACDC folder is found (:func:`cmrlib.data.adapters.acdc.find_root`)."""
    from .data.adapters import acdc
    from .pipeline import prepare_data, real_data_params
    root = acdc.find_root(acdc_dir or None)
    if root is None:
        return None
    from pathlib import Path

    from .cluster import run_lock
    manifest = f"{params['data_root']}/acdc/manifest.csv"
    with run_lock(Path(params["data_root"]) / "acdc.lock"):    # chapters run side by side write it once
        acdc.build_manifest(root, manifest)
    rp = real_data_params(params, manifest, "obesity", "not obese", "obese", train={"not obese": 60, "obese": 2},
                          name="acdc")
    return prepare_data(rp, progress=progress)
