"""Models trained on the synthetic cohort, evaluated on real scans (chapter 12).

:func:`on_real` segments every volume of a real-data :class:`~cmrlib.data.pipeline.Data` with one model and counts
where each true label's pixels went; :func:`transfer_comparison` puts the plain synthetic model, the plain one
trained as long as the randomised one, and the randomised one side by side, on the synthetic test set (majority,
minority and their gap, the groups named by the profile) and on the real scans (per structure);
:func:`mid_slices` and :func:`prediction_grid` are the chapter's figures.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from cmrlib.data.adapters import acdc
from cmrlib.data.pipeline import Data, prepare_data, real_data_params, transfer_data, with_training
from cmrlib.errors import InputError
from cmrlib.evaluation.fairness import fairness_summary
from cmrlib.evaluation.metrics import label_confusion
from cmrlib.evaluation.report import experiment_scores
from cmrlib.evaluation.verdicts import significant
from cmrlib.files import run_lock
from cmrlib.runs.evidence import Evidence
from cmrlib.runs.experiments import evaluate, run_experiment, segment, trained_model
from cmrlib.training.methods import training_steps

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


def transfer_sets(syn: Data) -> dict[str, Data]:
    """The training data of chapter 12's three synthetic-only models: ``plain`` (the profile's baseline),
    ``plain, as long`` (the same, for as many steps as the randomised one) and ``randomised`` (the profile's
    ``transfer`` settings, :func:`cmrlib.data.pipeline.transfer_data`)."""
    syn_dr = transfer_data(syn)
    return {"plain": syn, "plain, as long": with_training(syn, {"steps": training_steps(syn_dr.params)}),
            "randomised": syn_dr}


def transfer_models(syn: Data) -> dict[str, tuple[Data, object]]:
    """The three synthetic-only models of chapter 12 (:func:`transfer_sets`), each with the data it was trained on."""
    return {name: (d, trained_model(d, "baseline", progress=False)[0]) for name, d in transfer_sets(syn).items()}


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
    root = acdc.find_root(acdc_dir or None)
    if root is None:
        return None
    from pathlib import Path

    manifest = f"{params['data_root']}/acdc/manifest.csv"
    with run_lock(Path(params["data_root"]) / "acdc.lock"):    # chapters run side by side write it once
        acdc.build_manifest(root, manifest)
    rp = real_data_params(params, manifest, "obesity", "not obese", "obese", train={"not obese": 60, "obese": 2},
                          name="acdc")
    return prepare_data(rp, progress=progress)


# ---- chapter 12: the obesity gap over repeated subject-level splits ------------------------------------------
CV_DEFAULTS = {"folds": 5, "repeats": 1, "methods": ["baseline", "oversampling"], "train": {"not obese": 60, "obese": 2}}


def cv_settings(params: dict) -> dict:
    """The profile's ``realdata`` section with defaults (:data:`CV_DEFAULTS`)."""
    return {**CV_DEFAULTS, **(params.get("realdata") or {})}


def cv_folds(data: Data, folds: int, repeat: int, train: dict, seed: int) -> list[pd.DataFrame]:
    """The subject tables of one repeat of ``folds``-fold cross-validation: every patient is in the test split of
    exactly one fold (folds stratified by the protected attribute); each fold's training set takes ``train``
    (attribute value → count) patients at random from the other folds, the rest of them ``unused``, so the
    training sets keep chapter 12's imbalance."""
    gcol = data.group_col
    subj = data.subjects[data.subjects.split != "external"].copy()
    sizes = subj.groupby(gcol).size()
    if folds > sizes.min():
        raise InputError(f"realdata.folds: {folds} folds, but {gcol}={sizes.idxmin()} has {sizes.min()} patients; "
                         f"some test folds would hold none of them (at most {sizes.min()} folds here)")
    rng = np.random.default_rng([seed, repeat])
    fold_of = pd.Series(-1, index=subj.subject_id)
    for _, ids in subj.groupby(gcol).subject_id:
        ids = rng.permutation(ids.to_numpy())
        fold_of[ids] = np.arange(len(ids)) % folds
    out = []
    for k in range(folds):
        t = subj.assign(split=np.where(fold_of[subj.subject_id].to_numpy() == k, "test", "unused"))
        for g, n in train.items():
            pool = t.loc[(t.split == "unused") & (t[gcol] == g), "subject_id"].to_numpy()
            if len(pool) < n:
                raise InputError(f"realdata.train: {n} {gcol}={g} training patients asked for in fold {k}, "
                                 f"{len(pool)} outside its test split")
            t.loc[t.subject_id.isin(rng.choice(pool, n, replace=False)), "split"] = "train"
        out.append(t.reset_index(drop=True))
    return out


def cv_scores(data: Data, progress: bool = False) -> pd.DataFrame:
    """Per repeat, method and test patient, the overall DSC from the fold that tested the patient (every patient
    once per repeat), for the profile's ``realdata`` methods; each fold's model is an ordinary run of the store."""
    s = cv_settings(data.params)
    rows = []
    for r in range(int(s["repeats"])):
        for k, subj in enumerate(cv_folds(data, int(s["folds"]), r, s["train"], int(data.params["seed"]))):
            d = Data(data.cache, subj, data.params)
            for name in s["methods"]:
                sc = experiment_scores(run_experiment(d, name, progress=progress), "test")
                rows.append(sc.assign(repeat=r, fold=k, method=name))
    return pd.concat(rows, ignore_index=True)


def cv_evidence(scores: pd.DataFrame, data: Data, seed: int = 0):
    """:class:`cmrlib.runs.evidence.Evidence` over the cross-validated scores, repeats in the place of seeds: each
    repeat's gap is computed on every patient once, and one subject bootstrap is shared by repeats and methods."""
    runs = {m: {int(r): d for r, d in g.groupby("repeat")} for m, g in scores.groupby("method")}
    subjects = scores.drop_duplicates("subject_id")[["subject_id", data.group_col]].assign(split="test")
    return Evidence.from_scores(runs, subjects, data.group_col, (data.advantaged, data.minority), seed=seed)


def cv_table(ev, methods) -> pd.DataFrame:
    """Per method: the gap over the repeats (median, pooled 95 % interval, range over repeats) and, against the
    first method, the paired change of the gap with its interval."""
    rows = []
    for m in methods:
        g = ev.gap(m)
        row = {"method": m, "repeats": g.seeds, "FG": g.point, "FG low": g.low, "FG high": g.high,
               "FG min": min(g.per_seed.values()), "FG max": max(g.per_seed.values())}
        if m != methods[0]:
            c = ev.gap_change(m, methods[0])
            row.update({f"ΔFG vs {methods[0]}": c.point, "ΔFG low": c.low, "ΔFG high": c.high})
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def cv_verdicts(ev, methods) -> dict:
    """Chapter 12's verdicts over the repeated splits, by the rules of :mod:`cmrlib.claims.rules` with repeats in the
    place of seeds: is the first method's obesity gap above zero, and does each other method narrow it?"""
    out = {"gap": significant(ev.gap(methods[0]), +1, "the obesity gap")}
    for m in methods[1:]:
        out[m] = significant(ev.gap_change(m, methods[0]), -1, "the change of the gap")
    return out
