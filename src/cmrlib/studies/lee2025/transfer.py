"""Chapter 12's synthetic-to-real transfer, looked into: what each randomisation contributes, where on the heart
the remaining errors lie, and what a few real patients add.

- :func:`ablation_sets` / :func:`ablation_table`: the randomised synthetic-only model against copies trained with
  one kind of randomisation set back to the plain training's (and with none), each scored on every ACDC patient,
  with paired patient-bootstrap intervals of the change;
- :func:`slice_scores` / :func:`by_position`: per slice and structure, the DSC by where the slice lies between
  base and apex, and :func:`position_figure`;
- :func:`finetune_sets` / :func:`finetune_scores` / :func:`finetune_curve`: models trained on 1, 2, 5, 10 ACDC
  patients (profile key ``realdata.finetune``), from scratch and from the synthetic-pretrained weights, over
  repeated draws of the patients, each tested on the chapter's ACDC test patients.

The settings live in the profile's ``realdata`` section (:data:`DEFAULTS`): ``ablation`` (the kinds of
randomisation to take out one at a time; default: every kind the transfer model uses), ``ablation_steps`` (default:
the transfer model's steps; fewer make the rows cheaper but compare undertrained models: on the course profile at a
quarter of the steps the model without the field-of-view randomisation scored well above the one with every kind,
while at full length that randomisation is among those that help most) and ``finetune``
(``patients``, ``draws``, ``steps`` for the fine-tuned models, ``scratch_steps`` for those trained from scratch;
defaults: ``training.steps`` for both, so that a from-scratch model trains as the chapter's real-data models do).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib.data.pipeline import Data, transfer_data, with_training
from cmrlib.errors import InputError
from cmrlib.evaluation.metrics import dice
from cmrlib.evaluation.report import experiment_scores
from cmrlib.runs.experiments import run_experiment, segment, trained_model
from cmrlib.runs.store import run_dir_for
from cmrlib.training.augment import DEFAULTS as AUGMENT_DEFAULTS
from cmrlib.training.methods import METHODS, Method, train_config, training_steps

# what a scanner or a patient varies → the augmentation options (cmrlib.training.augment) that randomise it
OPTIONS = {
    "field of view": ("fov",),
    "scale and position": ("scale", "shift"),
    "shape": ("elastic",),
    "tissue signals": ("tissue",),
    "intensity curve": ("contrast",),
    "coil shading": ("bias_field",),
    "noise level": ("noise",),
    "blur": ("blur",),
}
DEFAULTS = {"ablation": None, "ablation_steps": None,
            "finetune": {"patients": [1, 2, 5, 10], "draws": 3, "steps": None, "scratch_steps": None}}
STRUCTURES = {1: "LVBP", 2: "LVM", 3: "RVBP"}
BANDS = ("basal", "mid", "apical")


def settings(params: dict) -> dict:
    """Chapter 12's transfer settings: ``ablation``, ``ablation_steps`` and ``finetune`` with their defaults
    filled in; a kind of randomisation that is not one of :data:`OPTIONS` is refused, named."""
    rd = params.get("realdata") or {}
    ft = {**DEFAULTS["finetune"], **(rd.get("finetune") or {})}
    ft["steps"] = int(ft["steps"] or training_steps(params))
    ft["scratch_steps"] = int(ft["scratch_steps"] or training_steps(params))
    kinds = rd.get("ablation")
    for k in kinds or ():
        if k not in OPTIONS:
            raise InputError(f"realdata.ablation: {k!r} is not a kind of randomisation ({', '.join(OPTIONS)})")
    steps = rd.get("ablation_steps") or training_steps(transfer_data_params(params))
    return {"ablation": list(kinds) if kinds is not None else None, "ablation_steps": int(steps), "finetune": ft}


def transfer_data_params(params: dict) -> dict:
    """The profile with its ``transfer`` section put into ``training`` (the randomised model's settings)."""
    over = params.get("transfer") or {}
    t = dict(params["training"])
    for k, v in over.items():
        t[k] = {**(t[k] if isinstance(t.get(k), dict) else {}), **v} if isinstance(v, dict) else v
    return {**params, "training": t}


def _augment(params: dict) -> dict:
    aug = train_config(params, METHODS["baseline"]).augment
    return dict(aug) if isinstance(aug, dict) else dict(AUGMENT_DEFAULTS)


def randomised(params: dict) -> list[str]:
    """The kinds of randomisation (:data:`OPTIONS`) the profile's transfer model sets apart from the plain
    training."""
    plain, full = _augment(params), _augment(transfer_data_params(params))
    return [name for name, keys in OPTIONS.items() if any(full.get(k) != plain.get(k) for k in keys)]


def ablated(params: dict) -> list[str]:
    """The kinds the ablation takes out one at a time: ``realdata.ablation`` (default: all of :func:`randomised`)
    among those the transfer model uses."""
    chosen = settings(params)["ablation"]
    return [k for k in randomised(params) if chosen is None or k in chosen]


def ablation_sets(syn: Data) -> dict[str, Data]:
    """``all`` (every randomisation of the profile's ``transfer`` section), ``without <kind>`` for each kind of
    :func:`ablated` (its options set back to the plain training's values), and ``none`` (the plain
    augmentation), all trained for ``realdata.ablation_steps``. At the transfer model's own step count ``all``
    is chapter 12's randomised model and ``none`` its plain model trained as long (the same runs)."""
    steps = settings(syn.params)["ablation_steps"]
    full = transfer_data(syn)
    plain, aug = _augment(syn.params), _augment(full.params)
    out = {"all": with_training(full, {"steps": steps})}
    for name in ablated(syn.params):
        back = {k: plain[k] for k in OPTIONS[name]}
        out[f"without {name}"] = with_training(full, {"steps": steps, "augment": {**aug, **back}})
    out["none"] = with_training(syn, {"steps": steps})
    return out


def patient_dsc(per_structure: pd.DataFrame) -> pd.Series:
    """Per patient, the overall DSC (mean over structures and frames), every split pooled."""
    return experiment_scores(per_structure.assign(split="all"), "all").set_index("subject_id").dsc


def median_interval(values, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """The median of ``values`` and its 95 % percentile-bootstrap interval (patients resampled)."""
    v = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    boot = np.median(v[rng.integers(0, len(v), (n_boot, len(v)))], axis=1)
    return float(np.median(v)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def paired_change(a: pd.Series, b: pd.Series, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """median(a) − median(b) over the patients both score, with the 95 % interval of a paired bootstrap (the same
    patients resampled for both)."""
    ids = a.index.intersection(b.index)
    x, y = a[ids].to_numpy(float), b[ids].to_numpy(float)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(ids), (n_boot, len(ids)))
    boot = np.median(x[i], axis=1) - np.median(y[i], axis=1)
    return float(np.median(x) - np.median(y)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def ablation_table(scores: dict[str, pd.DataFrame], seed: int = 0) -> pd.DataFrame:
    """One row per ablation model (name → its per-structure scores on the real scans, :func:`ablation_sets`'s
    names): median overall DSC with its interval, per structure, and the change against ``all`` with its paired
    interval (negative: the randomisation removed was helping)."""
    full = patient_dsc(scores["all"])
    rows = {}
    for name, sc in scores.items():
        p = patient_dsc(sc)
        med, lo, hi = median_interval(p, seed=seed)
        row = {"DSC": med, "DSC low": lo, "DSC high": hi,
               **sc.groupby("structure").dsc.median().to_dict()}
        if name != "all":
            d, dlo, dhi = paired_change(p, full, seed=seed)
            row.update({"Δ vs all": d, "Δ low": dlo, "Δ high": dhi})
        rows[name] = row
    return pd.DataFrame(rows).T.rename_axis("randomisation")


# ---- where the errors lie ---------------------------------------------------------------------------------------
def slice_positions(lab: np.ndarray) -> np.ndarray:
    """For each slice of a (Z, H, W) label stack, where it lies between the base (0) and the apex (1) among the
    slices that hold a label (NaN for the others). The base is the end whose outermost labelled slice holds the
    larger heart area."""
    area = (lab > 0).sum(axis=(1, 2))
    z = np.flatnonzero(area)
    pos = np.full(len(lab), np.nan)
    if len(z) == 0:
        return pos
    rel = (np.arange(len(lab)) - z[0]) / max(1, z[-1] - z[0])
    if area[z[-1]] > area[z[0]]:
        rel = 1 - rel
    pos[z[0]: z[-1] + 1] = rel[z[0]: z[-1] + 1]
    return pos


def slice_scores(model, real: Data, params: dict, splits=("train", "test")) -> pd.DataFrame:
    """Per real volume, labelled slice and structure (present in the truth or the prediction): the DSC, the
    slice's position from base to apex (:func:`slice_positions`) and its band (thirds: basal, mid, apical)."""
    vols = real.cache.volumes
    keep = set(real.subjects.loc[real.subjects.split.isin(splits), "subject_id"])
    rows = []
    for vi in vols.index[vols.subject_id.isin(keep)]:
        img, lab, _ = real.cache.volume(int(vi))
        pred = segment(model, img, params)
        for z, p in enumerate(slice_positions(lab)):
            if np.isnan(p):
                continue
            for k, s in STRUCTURES.items():
                t, q = lab[z] == k, pred[z] == k
                if t.any() or q.any():
                    rows.append({"subject_id": vols.subject_id[vi], "frame": vols.frame[vi], "slice": z,
                                 "position": p, "band": BANDS[min(2, int(p * 3))], "structure": s,
                                 "dsc": dice(q, t), "true_px": int(t.sum())})
    return pd.DataFrame(rows)


def by_position(slices: pd.DataFrame) -> pd.DataFrame:
    """Median slice DSC by band (basal, mid, apical) and frame, one column per structure, with the number of
    slice-structure pairs."""
    g = slices.groupby(["band", "frame", "structure"], observed=True).dsc
    out = g.median().unstack("structure")
    out["pairs"] = g.size().unstack("structure").sum(axis=1)
    return out.reindex(BANDS, level=0)


def anatomy_by_position(named: dict[str, Data]) -> pd.DataFrame:
    """What each dataset's labels hold by band (basal, mid, apical thirds of the labelled slices) and frame: the
    share of slices holding an RV blood pool, and the mean pixels of each structure per slice; one column block per
    dataset (name → data, every volume of its cache). Set beside :func:`by_position`, it tells errors of the model
    from structures the training data seldom shows there."""
    out = {}
    for name, d in named.items():
        rows = []
        for vi in d.cache.volumes.index:
            _, lab, _ = d.cache.volume(int(vi))
            for z, p in enumerate(slice_positions(lab)):
                if not np.isnan(p):
                    rows.append({"band": BANDS[min(2, int(p * 3))], "frame": d.cache.volumes.frame[vi],
                                 "RV present": bool((lab[z] == 3).any()),
                                 **{f"{s} px": int((lab[z] == k).sum()) for k, s in STRUCTURES.items()}})
        g = pd.DataFrame(rows).groupby(["band", "frame"]).mean()
        out[name] = g.reindex(BANDS, level=0)
    return pd.concat(out, axis=1)


def position_figure(slices: pd.DataFrame, bins: int = 10):
    """Median slice DSC against the slice's position from base to apex, one line per structure, one panel per
    frame."""
    import matplotlib.pyplot as plt
    frames = sorted(slices.frame.unique())
    fig, axes = plt.subplots(1, len(frames), figsize=(4.5 * len(frames), 3.2), sharey=True, squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    for ax, f in zip(axes[0], frames):
        d = slices[slices.frame == f].assign(bin=lambda x: np.clip(np.digitize(x.position, edges) - 1, 0, bins - 1))
        for s, colour in zip(STRUCTURES.values(), ("red", "green", "deepskyblue")):
            m = d[d.structure == s].groupby("bin").dsc.median()
            ax.plot((edges[m.index] + edges[m.index + 1]) / 2, m.to_numpy(), "o-", color=colour, label=s, ms=3)
        ax.set_title(f"{f}")
        ax.set_xlabel("slice position (0 base, 1 apex)")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("median slice DSC")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- a few real patients ----------------------------------------------------------------------------------------
def finetune_sets(real: Data, n: int, draw: int, start: str = "synthetic") -> Data:
    """The chapter's ACDC split with ``n`` of its training patients, drawn at random (draw ``draw``), as the
    training set and the rest of them unused; the test patients stay; trained for ``realdata.finetune.steps``
    (``start="scratch"``: ``scratch_steps``). Both starts of one draw train on the same patients."""
    ft = settings(real.params)["finetune"]
    pool = np.sort(real.subjects.loc[real.subjects.split == "train", "subject_id"].to_numpy())
    if n > len(pool):
        raise InputError(f"realdata.finetune.patients: {n} training patients asked for, the split holds {len(pool)}")
    rng = np.random.default_rng([int(real.params["seed"]), n, draw])
    chosen = set(rng.choice(pool, n, replace=False))
    subj = real.subjects.assign(split=np.where(real.subjects.subject_id.isin(chosen), "train",
                                               np.where(real.subjects.split == "train", "unused", real.subjects.split)))
    steps = ft["scratch_steps"] if start == "scratch" else ft["steps"]
    return with_training(Data(real.cache, subj, real.params), {"steps": steps})


def pretrained_weights(syn: Data) -> tuple[dict, str]:
    """The randomised synthetic-only model's weights and its run folder's name (which keys the fine-tuned runs)."""
    d = transfer_data(syn)
    model, _ = trained_model(d, "baseline", progress=False)
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            run_dir_for(d, "baseline", METHODS["baseline"]).name)


def finetune_run(real: Data, syn: Data, n: int, draw: int, start: str) -> pd.DataFrame:
    """The test scores of one model of the curve: ``start`` is ``scratch`` or ``synthetic`` (from the randomised
    synthetic-only model's weights)."""
    if start not in ("scratch", "synthetic"):
        raise InputError(f"start {start!r}: scratch or synthetic")
    d = finetune_sets(real, n, draw, start)
    if start == "scratch":
        return run_experiment(d, "few_patients", METHODS["baseline"], progress=False)
    weights, name = pretrained_weights(syn)
    return run_experiment(d, "few_patients", Method(options={"init": name}), progress=False, init_state=weights)


def finetune_scores(real: Data, syn: Data) -> pd.DataFrame:
    """Every model of the curve (``realdata.finetune``: patients × draws × start): per test patient its overall
    DSC, with columns ``patients``, ``draw`` and ``start``."""
    ft = settings(real.params)["finetune"]
    rows = []
    for n in ft["patients"]:
        for r in range(int(ft["draws"])):
            for start in ("scratch", "synthetic"):
                sc = experiment_scores(finetune_run(real, syn, int(n), r, start), "test")
                rows.append(sc[["subject_id", "dsc"]].assign(patients=int(n), draw=r, start=start))
    return pd.concat(rows, ignore_index=True)


def finetune_curve(scores: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per number of training patients and start: the mean over draws of the median test DSC, and its 95 %
    interval from a bootstrap that resamples the draws and the test patients (both sources of variation); and
    the synthetic start's gain over scratch with the interval of the same paired bootstrap."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, g in scores.groupby("patients"):
        wide = g.pivot_table(index="subject_id", columns=["start", "draw"], values="dsc")
        draws = sorted(g.draw.unique())
        pi = rng.integers(0, len(wide), (n_boot, len(wide)))
        di = rng.integers(0, len(draws), (n_boot, len(draws)))
        stat = {}
        for start in ("scratch", "synthetic"):
            m = np.stack([wide[(start, d)].to_numpy() for d in draws], 1)       # (patients, draws)
            point = np.median(m, axis=0).mean()
            boot = np.stack([np.median(m[pi][:, :, j], axis=1) for j in range(len(draws))], 1)   # (n_boot, draws)
            stat[start] = (point, np.take_along_axis(boot, di, 1).mean(1))
        gain = stat["synthetic"][1] - stat["scratch"][1]
        for start in ("scratch", "synthetic"):
            rows.append({"patients": int(n), "start": start, "DSC": stat[start][0],
                         "low": np.percentile(stat[start][1], 2.5), "high": np.percentile(stat[start][1], 97.5)})
        rows.append({"patients": int(n), "start": "gain", "DSC": stat["synthetic"][0] - stat["scratch"][0],
                     "low": np.percentile(gain, 2.5), "high": np.percentile(gain, 97.5)})
    return pd.DataFrame(rows)


def finetune_figure(curve: pd.DataFrame):
    """The curve: median test DSC against the number of real training patients, from scratch and from the
    synthetic-pretrained weights, with their intervals."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for start, colour in (("scratch", "#888888"), ("synthetic", "#1f3b5c")):
        c = curve[curve.start == start]
        ax.errorbar(c.patients, c.DSC, yerr=[c.DSC - c.low, c.high - c.DSC], fmt="o-", color=colour, capsize=3,
                    label={"scratch": "from scratch", "synthetic": "from the synthetic model"}[start])
    ax.set_xscale("log")
    ax.set_xticks(sorted(curve.patients.unique()), [str(n) for n in sorted(curve.patients.unique())])
    ax.set_xlabel("real training patients")
    ax.set_ylabel("median test DSC")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

