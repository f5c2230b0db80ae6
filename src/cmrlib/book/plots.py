"""Figures of the book: example slices with label overlays, DSC per group (the paper's Fig. 2), distributions."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap

from cmrlib.evaluation.verdicts import COLOURS

LABEL_COLOURS = ListedColormap([(0, 0, 0, 0), (0.9, 0.2, 0.2, 0.45), (0.2, 0.8, 0.3, 0.45), (0.2, 0.4, 0.95, 0.45)])


def overlay(ax, image: np.ndarray, label: np.ndarray | None = None, title: str = ""):
    ax.imshow(image, cmap="gray", interpolation="nearest")
    if label is not None:
        ax.imshow(label, cmap=LABEL_COLOURS, vmin=0, vmax=3, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def examples_by_group(cache, subjects: pd.DataFrame, group_col: str, groups, per_group: int = 2,
                      frame: str = "ED", seed: int = 0, with_labels: bool = True):
    """A mid-ventricular slice of ``per_group`` random subjects of each group, labels overlaid
    (red LVBP, green LVM, blue RVBP)."""
    rng = np.random.default_rng(seed)
    groups = [g for g in groups if (subjects[group_col] == g).any()]
    fig, axes = plt.subplots(per_group, len(groups), figsize=(2.1 * len(groups), 2.2 * per_group), squeeze=False)
    vols = cache.volumes.reset_index()
    for j, g in enumerate(groups):
        ids = subjects.loc[subjects[group_col] == g, "subject_id"].to_numpy()
        pick = rng.choice(ids, size=min(per_group, len(ids)), replace=False)
        for i in range(per_group):
            ax = axes[i, j]
            if i >= len(pick):
                ax.axis("off")
                continue
            row = vols[(vols.subject_id == pick[i]) & (vols.frame == frame)].iloc[0]
            img, lab, _ = cache.volume(int(row["index"]))
            z = int(np.argmax((lab > 0).sum(axis=(1, 2)))) if lab.any() else len(img) // 2
            overlay(ax, img[z].astype(np.float32), lab[z] if with_labels else None, f"{g}\n{pick[i]}")
    fig.tight_layout()
    return fig


def dsc_by_group(scores: pd.DataFrame, group_col: str, order, reference: str = "White", title: str = "",
                 ax=None):
    """Overall DSC per group as box and points; dashed line at the reference group's median (Fig. 2)."""
    order = [g for g in order if (scores[group_col] == g).any()]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(order) + 2, 3.4))
    sns.boxplot(data=scores, x=group_col, y="dsc", order=order, ax=ax, color="#cfd8e3", fliersize=0, width=0.6)
    sns.stripplot(data=scores, x=group_col, y="dsc", order=order, ax=ax, size=2.5, alpha=0.6, color="#1f3b5c")
    if (scores[group_col] == reference).any():
        ax.axhline(scores.loc[scores[group_col] == reference, "dsc"].median(), ls="--", color="k", lw=1,
                   label=f"median DSC, {reference}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel("")
    ax.set_ylabel("overall DSC")
    ax.set_title(title)
    return ax


def distributions(df: pd.DataFrame, columns, group_col: str, order):
    """Kernel densities of subject characteristics per group."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.3 * len(columns), 2.8))
    order = [g for g in order if (df[group_col] == g).any()]
    for ax, col in zip(np.atleast_1d(axes), columns):
        sns.kdeplot(data=df, x=col, hue=group_col, hue_order=order, common_norm=False, ax=ax, warn_singular=False)
    fig.tight_layout()
    return fig


def dsc_by_group_panels(scores_by_method: dict[str, pd.DataFrame], group_col: str, order, reference: str = "White"):
    """One Fig. 2-style panel per method, sharing the y axis."""
    n = len(scores_by_method)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), sharey=True, squeeze=False)
    for ax, (name, sc) in zip(axes[0], scores_by_method.items()):
        dsc_by_group(sc, group_col, order, reference, title=name.replace("_", " "), ax=ax)
        ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return fig


def share_vs_dsc(table: pd.DataFrame, paper: pd.DataFrame | None = None):
    """Each group's mean DSC (%) against its share (%) of the training set, labelled by group (the 2021 study's
    claim that accuracy tracks representation); ``paper``: the study's Avg per group, drawn at our shares."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    x, y = table["train share (%)"], table["Avg DSC (%)"]
    ax.scatter(x, y, color="#1f3b5c", label="ours", zorder=3)
    for g in table.index:
        ax.annotate(g, (x[g], y[g]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    if paper is not None:
        p = paper.reindex(table.index)
        ax.scatter(x, p, marker="x", color="#b5502d", label="the study's Avg (at our shares)", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("share of the training subjects (%)")
    ax.set_ylabel("mean DSC (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def approach_means(table: pd.DataFrame, groups, labels: dict | None = None):
    """Each approach's mean DSC per group (one line per approach), the 2021 study's Table 2 as a figure:
    a flat line is a fair model, a high one an accurate model."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    groups = [g for g in groups if g in table.columns]
    for m, row in table.iterrows():
        ax.plot(groups, row[groups].astype(float), marker="o", label=(labels or {}).get(m, m))
    ax.set_ylabel("mean DSC")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def bland_altman_panels(err: pd.DataFrame, group_col: str, groups, measure: str, methods, unit: str = ""):
    """One Bland–Altman panel per method for one measure: error (predicted − true) against the mean of the two,
    points and bias line coloured by group, dashed limits of agreement (bias ± 1.96 SD) per group."""
    methods = list(methods)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3.2), sharey=True, squeeze=False)
    colours = dict(zip(groups, sns.color_palette("deep", len(groups))))
    for ax, m in zip(axes[0], methods):
        d = err[(err.method == m) & (err.measure == measure)]
        for g in groups:
            e = d[d[group_col] == g]
            if e.empty:
                continue
            ax.scatter(e["mean"], e.error, s=9, alpha=0.6, color=colours[g], label=str(g))
            bias, sd = e.error.mean(), e.error.std(ddof=1)
            ax.axhline(bias, color=colours[g], lw=1.2)
            for s in (-1.96, 1.96):
                ax.axhline(bias + s * (sd if sd == sd else 0), color=colours[g], lw=0.8, ls="--")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(m.replace("_", " "), fontsize=9)
        ax.set_xlabel(f"mean of predicted and true {measure} {unit}".strip())
    axes[0, 0].set_ylabel(f"predicted − true {measure} {unit}".strip())
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sweep_lines(table: pd.DataFrame, names, title: str = "", ax=None):
    """Median DSC against the first group's training share, one line per group and one for all test subjects,
    with the seed range as a band where there are several seeds (the 2022 study's Fig. 2)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    for col in [*names, "All"]:
        ax.plot(table["share (%)"], table[col], marker="o", label=col, ls="--" if col == "All" else "-")
        rng = table.get(f"{col} seed range")
        if rng is not None and rng.notna().any():
            ax.fill_between(table["share (%)"], table[col] - rng / 2, table[col] + rng / 2, alpha=0.2)
    ax.set_xlabel(f"{list(names)[0]} share of training (%)")
    ax.set_ylabel("median DSC")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return ax


def structure_sweeps(table: pd.DataFrame):
    """A grid of median DSC against training share: one row per structure, one column per experiment, one line
    per protected group (the 2022 study's Fig. 3)."""
    exps, structs = sorted(table.exp.unique()), list(dict.fromkeys(table.structure))
    fig, axes = plt.subplots(len(structs), len(exps), figsize=(3.3 * len(exps), 2.4 * len(structs)), squeeze=False,
                             sharex=True)
    for j, exp in enumerate(exps):
        for i, s in enumerate(structs):
            d = table[(table.exp == exp) & (table.structure == s)]
            sns.lineplot(data=d, x=100 * d.share, y="dsc", hue="group", marker="o", ax=axes[i, j], legend=i == 0)
            axes[i, j].set_title(f"Experiment {exp}, {s}", fontsize=8)
            axes[i, j].set_xlabel("first group's training share (%)" if i == len(structs) - 1 else "")
            axes[i, j].set_ylabel("median DSC" if j == 0 else "")
    fig.tight_layout()
    return fig


def slice_rows(rows: dict[str, np.ndarray], per_row: int = 6, masks: np.ndarray | None = None, mask_row: str = ""):
    """A grid of slices, one named row per set (the first ``per_row`` slices of each); with ``masks``, a first
    row shows them (``mask_row`` names it). Every row shares one grey scale, so brightness compares across rows."""
    names = ([mask_row] if masks is not None else []) + list(rows)
    fig, axes = plt.subplots(len(names), per_row, figsize=(1.6 * per_row, 1.7 * len(names)), squeeze=False)
    lo, hi = np.percentile(np.concatenate([np.asarray(v[:per_row], np.float32).ravel() for v in rows.values()]), [1, 99])
    for i, name in enumerate(names):
        for j in range(per_row):
            ax = axes[i, j]
            ax.axis("off")
            if name == mask_row and masks is not None:
                if j < len(masks):
                    ax.imshow(masks[j], cmap=LABEL_COLOURS, vmin=0, vmax=3, interpolation="nearest")
            elif j < len(rows[name]):
                ax.imshow(np.asarray(rows[name][j], np.float32), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            if j == 0:
                ax.set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def training_loss(log: pd.DataFrame, window: int = 50, title: str = ""):
    """A training log's loss per step with its running median over ``window`` steps."""
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.plot(log.step, log.loss, lw=0.5, alpha=0.4, label="per step")
    ax.plot(log.step, log.loss.rolling(window, min_periods=1).median(), lw=1.5, label=f"running median ({window})")
    ax.set(xlabel="step", ylabel="loss", title=title, yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def interval_lines(table: pd.DataFrame, columns, xlabel: str = "", title: str = ""):
    """One panel per column of ``table`` (x: its index), each point with the interval of ``<column> low`` and
    ``<column> high`` where the table has them."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 2.8), squeeze=False)
    for ax, col in zip(axes[0], columns):
        y = table[col].to_numpy(float)
        if f"{col} low" in table:
            err = np.vstack([y - table[f"{col} low"].to_numpy(float), table[f"{col} high"].to_numpy(float) - y])
            ax.errorbar(table.index, y, yerr=err, marker="o", capsize=3)
        else:
            ax.plot(table.index, y, marker="o")
        ax.set(xlabel=xlabel, ylabel=col, title=title)
    fig.tight_layout()
    return fig


def verdict_bars(counts: pd.DataFrame):
    """Chapter 18: claims per study (rows) and verdict (columns, :func:`cmrlib.claims.registry.verdict_counts`) as
    stacked horizontal bars."""
    colours = [COLOURS[c] for c in counts.columns]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.5 * len(counts)))
    counts.plot.barh(stacked=True, color=colours, ax=ax, width=0.7)
    ax.set_xlabel("claims")
    ax.set_ylabel("")
    ax.invert_yaxis()
    ax.legend(ncol=counts.shape[1], loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def claims_forest(table: pd.DataFrame, margin: float):
    """Chapter 18's forest plot: every claim measured in DSC (:func:`cmrlib.claims.registry.claims_table`, ``unit ==
    "DSC"``) as our number with its 95 % interval, coloured by verdict, the study's number as a black cross, zero
    and ± the no-effect ``margin`` as lines; one panel per study, sharing the axis."""
    d = table[(table.unit == "DSC") & table.ours.notna()]
    studies = list(dict.fromkeys(d.study))
    sizes = [max(1, (d.study == s).sum()) for s in studies]
    fig, axes = plt.subplots(len(studies), 1, figsize=(9, 0.9 + 0.28 * sum(sizes) + 0.5 * len(studies)), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": sizes})
    for ax, study in zip(axes[:, 0], studies):
        s = d[d.study == study].reset_index(drop=True)
        y = np.arange(len(s))[::-1]
        for yi, (_, r) in zip(y, s.iterrows()):
            lo, hi = (r.low, r.high) if pd.notna(r.low) else (r.ours, r.ours)
            ax.plot([lo, hi], [yi, yi], color=COLOURS[r.verdict], lw=2)
            ax.plot(r.ours, yi, "o", color=COLOURS[r.verdict], ms=5)
            if pd.notna(r.paper):
                ax.plot(r.paper, yi, "x", color="black", ms=6)
        for x, ls in ((0, "-"), (margin, ":"), (-margin, ":")):
            ax.axvline(x, color="grey", lw=0.8, ls=ls)
        ax.set_yticks(y, [c.split(".", 1)[1] for c in s.claim], fontsize=7)
        ax.set_title(study, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("DSC (our number with its 95 % interval; ×: the study's; dotted: ± the no-effect margin)")
    handles = [plt.Line2D([], [], color=COLOURS[v], marker="o", lw=2, label=v) for v in COLOURS if (d.verdict == v).any()]
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    return fig


def weight_panels(weights: dict[str, pd.DataFrame], titles: dict | None = None):
    """Group DRO's weights q per step, one panel per run (chapter 05: one panel per η)."""
    fig, axes = plt.subplots(1, len(weights), figsize=(5 * len(weights), 3), sharey=True, squeeze=False)
    for ax, (name, q) in zip(axes[0], weights.items()):
        q.plot(ax=ax, xlabel="step", ylabel="q", title=(titles or {}).get(name, name))
    fig.tight_layout()
    return fig


def oversampling_levels(sweep: pd.DataFrame, advantaged: str, minority: str):
    """Figs. S2–S3 of Lee et al. 2025 (:func:`cmrlib.studies.lee2025.sweeps.oversampling_sweep`, full images and cascade): each
    group's median DSC against the level of oversampling, and the overall median DSC against the fairness gap
    (with its bootstrap 95 % interval) with each point labelled by its level."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for cascade, d in sweep.groupby("cascade"):
        kind, ls = ("cascade", "--") if cascade else ("full image", "-")
        ax[0].plot(d.level, d.dsc_advantaged, "o" + ls, label=f"{advantaged}, {kind}")
        ax[0].plot(d.level, d.dsc_minority, "s" + ls, label=f"{minority}, {kind}")
        ax[1].errorbar(d.fg, d.dsc_overall, xerr=[d.fg - d.fg_low, d.fg_high - d.fg], fmt="o" if not cascade else "^",
                       capsize=3, label=kind)
        for r in d.itertuples():
            ax[1].annotate(f"{r.level:g}", (r.fg, r.dsc_overall), textcoords="offset points", xytext=(4, 4))
    ax[0].set(xlabel="oversampling level", ylabel="median DSC", title="Fig. S2")
    ax[0].legend(fontsize=7)
    ax[1].set(xlabel="fairness gap", ylabel="median DSC, all test subjects", title="Fig. S3")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def intersection_heatmap(cells: pd.DataFrame, a: str, b: str, ax=None):
    """Median DSC of each ``a`` × ``b`` cell with its n; cells too small for an interval (``small``) hatched."""
    med = cells.pivot(index=a, columns=b, values="median")
    n = cells.pivot(index=a, columns=b, values="n")
    small = cells.pivot(index=a, columns=b, values="small").fillna(True).astype(bool)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * med.shape[1] + 2.5, 0.6 * med.shape[0] + 1.5))
    annot = med.map(lambda v: "" if v != v else f"{v:.3f}") + n.map(lambda v: "" if v != v else f"\nn={v:.0f}")
    sns.heatmap(med, annot=annot, fmt="", cmap="viridis", ax=ax, cbar_kws={"label": "median DSC"})
    for i, row in enumerate(small.index):
        for j, col in enumerate(small.columns):
            if small.loc[row, col]:
                ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="w", lw=0))
    ax.set_title("hatched: too few subjects for an interval", fontsize=8)
    return ax

