"""Every claim the book tests, of the main paper (Lee et al. 2025, ``lee2025.*``), the 2021 study (Puyol-Antón et
al. 2021, ``puyol2021.*``), the 2022 study (Lee et al. 2022, ``lee2022.*``) and generative debiasing (Skorupko et
al. 2024, ``skorupko2024.*``), each with the rule of :mod:`cmrlib.claims` that judges it from the run store.

Chapters glue their claims' verdicts from :func:`chapter_claims`; chapter 18 lists them all with
:func:`claims_table`. :func:`register` refuses a claim whose experiments the book does not know.
"""
from __future__ import annotations

import pandas as pd

from .claims import (EXTERNAL, INTERNAL, Claim, Context, Verdict, all_of, direction, equivalence_margin,
                     from_sentence, judge, no_effect, paper_value, significant)
from .errors import InputError
from .methods import METHODS
from .runstore import NotInStore

REGISTRY: dict[str, Claim] = {}
STUDIES = {"lee2025": "Lee et al. 2025 (main paper)", "puyol2021": "Puyol-Antón et al. 2021",
           "lee2022": "Lee et al. 2022", "skorupko2024": "Skorupko et al. 2024"}
CHAPTER_FILES = {
    "02": "02_baseline", "03": "03_oversampling", "04": "04_reweighting", "05": "05_group_dro",
    "06": "06_combinations", "07": "07_crop_ground_truth", "08": "08_crop_cascade", "09": "09_external_validation",
    "11": "11_root_cause", "13": "13_bias_race_sex", "14": "14_four_strategies", "15": "15_proportion_sweeps",
    "17": "17_generative_debiasing"}


def known_experiments() -> set[str]:
    """Names a claim may need: the methods, the 2021 study's approaches, the 2022 study's three sweeps, the
    root-cause probe and the generative experiments."""
    from .study2021 import APPROACHES
    from .study2022 import EXPERIMENTS
    return {*METHODS, *APPROACHES, *(f"lee2022_exp{e}" for e in EXPERIMENTS), "rootcause_probe", "synthetic"}


def register(claim: Claim) -> Claim:
    unknown = [e for e in claim.experiments if e not in known_experiments()]
    if unknown:
        raise InputError(f"claim {claim.id}: unknown experiment(s) {', '.join(unknown)}; known: methods of "
                         "cmrlib.methods.METHODS and the studies' approaches (cmrlib.registry.known_experiments)")
    if claim.study not in STUDIES:
        raise InputError(f"claim {claim.id}: unknown study {claim.study!r} (expected one of {', '.join(STUDIES)})")
    if claim.chapter not in CHAPTER_FILES:
        raise InputError(f"claim {claim.id}: chapter {claim.chapter!r} tests no claims (cmrlib.registry.CHAPTER_FILES)")
    if claim.id in REGISTRY:
        raise InputError(f"claim {claim.id} registered twice")
    REGISTRY[claim.id] = claim
    return claim


def _paper(csv, table, method, measure, group="all", minus=None):
    """The study's number: a value of its table, or the difference of two (``minus``: the same arguments)."""
    def value():
        v = paper_value(csv, table, method, measure, group)
        return v - paper_value(*minus) if minus else v
    return value


def _claim(id, chapter, text, where, experiments, rule, paper=None, measure=""):
    return register(Claim(id, chapter, text, where, tuple(experiments), rule, paper, measure))


# ---- the main paper (Lee et al. 2025) ---------------------------------------------------------------------
B, W = "Black", "White"   # the paper's groups, for its tables; our groups come from the profile (Evidence.groups)
_claim("lee2025.baseline_bias", "02", "Trained on the imbalanced set, the baseline segments the minority worse "
       "than the majority (a significant gap).", "Table 4", ["baseline"],
       lambda c: significant(c.evidence().gap("baseline"), +1, "the gap"),
       _paper(INTERNAL, "4", "baseline", "Fairness gap"), "FG")
_claim("lee2025.oversampling_no_gap", "03", "With oversampling the two groups no longer differ.", "Table 4",
       ["oversampling"], lambda c: no_effect(c.evidence().gap("oversampling"), equivalence_margin(), "the gap"),
       _paper(INTERNAL, "4", "oversampling", "Fairness gap"), "FG")
_claim("lee2025.oversampling_raises_minority", "03", "Oversampling raises the minority's median DSC.",
       "Table 4, §5.1", ["baseline", "oversampling"],
       lambda c: significant(c.evidence().change("oversampling", "baseline"), +1, "the minority's change"),
       _paper(INTERNAL, "4", "oversampling", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
_claim("lee2025.oversampling_spares_majority", "03", "Oversampling costs the majority no accuracy.", "Table 4, §5.1",
       ["baseline", "oversampling"],
       lambda c: no_effect(c.evidence().change("oversampling", "baseline", 0), equivalence_margin(),
                           "the majority's change"),
       _paper(INTERNAL, "4", "oversampling", "Median DSC", W, (INTERNAL, "4", "baseline", "Median DSC", W)),
       "Δ majority median DSC")
_claim("lee2025.reweighting_lowers_minority", "04", "Reweighting lowers the minority's median DSC.", "Table 4, §5.1",
       ["baseline", "reweighting"],
       lambda c: significant(c.evidence().change("reweighting", "baseline"), -1, "the minority's change"),
       _paper(INTERNAL, "4", "reweighting", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
_claim("lee2025.reweighting_lowers_majority", "04", "Reweighting lowers the majority's median DSC significantly.",
       "§5.1", ["baseline", "reweighting"],
       lambda c: significant(c.evidence().change("reweighting", "baseline", 0), -1, "the majority's change"),
       _paper(INTERNAL, "4", "reweighting", "Median DSC", W, (INTERNAL, "4", "baseline", "Median DSC", W)),
       "Δ majority median DSC")
_claim("lee2025.group_dro_raises_minority", "05", "Group DRO raises the minority's median DSC.", "Table 4, §5.1",
       ["baseline", "group_dro"],
       lambda c: direction(c.evidence().change("group_dro", "baseline"), +1, "the minority's change"),
       _paper(INTERNAL, "4", "group_dro", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
_claim("lee2025.group_dro_gap_remains", "05", "With Group DRO a significant gap remains.", "Table 4", ["group_dro"],
       lambda c: significant(c.evidence().gap("group_dro"), +1, "the gap"),
       _paper(INTERNAL, "4", "group_dro", "Fairness gap"), "FG")
COMBINATIONS = ["oversampling_group_dro", "group_dro_reweighting", "oversampling_reweighting"]
_claim("lee2025.combinations_gap_remains", "06", "Each combination of two mitigations leaves a significant gap.",
       "Table 5", COMBINATIONS,
       lambda c: all_of([significant(c.evidence().gap(m), +1, f"{m}: the gap") for m in COMBINATIONS]),
       _paper(INTERNAL, "5", COMBINATIONS[0], "Fairness gap"), "FG (first combination)")
_claim("lee2025.best_combination", "06", "Oversampling with Group DRO has the smallest gap of the combinations.",
       "Table 5, §5.1", COMBINATIONS,
       lambda c: direction(c.evidence().estimate(lambda a, b, d: (a[..., 0] - a[..., 1]) - _min_gap(b, d),
                                                 *COMBINATIONS), -1,
                           "its gap minus the smaller of the other two"),
       lambda: paper_value(INTERNAL, "5", COMBINATIONS[0], "Fairness gap")
       - min(paper_value(INTERNAL, "5", m, "Fairness gap") for m in COMBINATIONS[1:]), "ΔFG")


def _min_gap(b, d):
    import numpy as np
    return np.minimum(b[..., 0] - b[..., 1], d[..., 0] - d[..., 1])


def _both_groups(c, name, reference, split="test", what=""):
    ev = c.evidence(split)
    return all_of([significant(ev.change(name, reference, g), +1, f"{what}{ev.groups[g]}'s change")
                   for g in (1, 0)])


_claim("lee2025.crop_improves_both", "07", "Cropping to the ground-truth heart box raises both groups' median DSC.",
       "Tables 4 and 6, §5.1", ["baseline", "baseline_crop_gt"],
       lambda c: _both_groups(c, "baseline_crop_gt", "baseline"),
       _paper(INTERNAL, "6", "baseline_crop_gt", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
_claim("lee2025.crop_narrows_gap", "07", "Cropping to the ground-truth heart box narrows the baseline's gap.",
       "Tables 4 and 6", ["baseline", "baseline_crop_gt"],
       lambda c: significant(c.evidence().gap_change("baseline_crop_gt", "baseline"), -1, "the change of the gap"),
       _paper(INTERNAL, "6", "baseline_crop_gt", "Fairness gap", "all", (INTERNAL, "4", "baseline", "Fairness gap", "all")),
       "ΔFG")
PAPER4 = ["baseline", "oversampling", "reweighting", "group_dro"]
_claim("lee2025.cascade_beats_crop", "08", "The cascade (a predicted box) is more accurate than the ground-truth "
       "crop, for every method and both groups.", "Tables 6 and 7, §5.1",
       [*(f"{m}_cascade" for m in PAPER4), *(f"{m}_crop_gt" for m in PAPER4)],
       lambda c: all_of([_both_groups(c, f"{m}_cascade", f"{m}_crop_gt", what=f"{m}: ") for m in PAPER4]),
       _paper(INTERNAL, "7", "baseline_cascade", "Median DSC", B, (INTERNAL, "6", "baseline_crop_gt", "Median DSC", B)),
       "Δ minority median DSC (baseline)")
_claim("lee2025.cascade_oversampling_narrows", "08", "In the cascade, oversampling narrows the gap against the "
       "baseline cascade.", "Table 7, §5.1", ["baseline_cascade", "oversampling_cascade"],
       lambda c: significant(c.evidence().gap_change("oversampling_cascade", "baseline_cascade"), -1,
                             "the change of the gap"),
       _paper(INTERNAL, "7", "oversampling_cascade", "Fairness gap", "all", (INTERNAL, "7", "baseline_cascade", "Fairness gap", "all")),
       "ΔFG")
_claim("lee2025.external_no_bias", "09", "On the external site the baseline shows no gap.", "Table 8, §6.2",
       ["baseline"],
       lambda c: no_effect(c.evidence("external").gap("baseline"), equivalence_margin(), "the external gap"),
       _paper(EXTERNAL, "8", "baseline", "Fairness gap"), "FG (external)")
_claim("lee2025.external_oversampling_no_help", "09", "On the external site, oversampling does not narrow the gap.",
       "Table 8, §6.2", ["baseline", "oversampling"],
       lambda c: direction(c.evidence("external").gap_change("oversampling", "baseline"), +1, "the change of the gap"),
       _paper(EXTERNAL, "8", "oversampling", "Fairness gap", "all", (EXTERNAL, "8", "baseline", "Fairness gap", "all")),
       "ΔFG (external)")
_claim("lee2025.external_crop_improves", "09", "On the external site, the ground-truth crop and the cascade both "
       "raise both groups' median DSC over full images.", "Tables 8 and 9, §6.2",
       ["baseline", "baseline_crop_gt", "baseline_cascade"],
       lambda c: all_of([_both_groups(c, m, "baseline", "external", f"{m}: ")
                         for m in ("baseline_crop_gt", "baseline_cascade")]),
       _paper(EXTERNAL, "9", "baseline_cascade", "Median DSC", B, (EXTERNAL, "8", "baseline", "Median DSC", B)),
       "Δ minority median DSC (cascade)")
_claim("lee2025.external_cascade_oversampling", "09", "On the external site, oversampling in the cascade raises "
       "both groups' median DSC over the baseline cascade.", "Table 9, §6.2",
       ["baseline_cascade", "oversampling_cascade"],
       lambda c: _both_groups(c, "oversampling_cascade", "baseline_cascade", "external"),
       _paper(EXTERNAL, "9", "oversampling_cascade", "Median DSC", B,
              (EXTERNAL, "9", "baseline_cascade", "Median DSC", B)), "Δ minority median DSC")


def _root_cause(c: Context) -> Verdict:
    from .rootcause import AUC_BOUNDS, stored_probe
    probe = c.memo("probe", lambda: stored_probe(c.data))
    auc = probe.set_index("view").auc
    out, heart = float(auc["outside"]), float(auc["heart"])
    detail = f"AUC {out:.2f} with the heart box blanked out against {heart:.2f} from the box alone"
    status = ("reproduced" if out >= AUC_BOUNDS["outside_min"] and heart <= AUC_BOUNDS["heart_max"] else
              "partly reproduced" if out > heart else "not reproduced")
    return Verdict(status, detail, out - heart, seeds=1)


_claim("lee2025.root_cause_outside", "11", "The information that tells the groups apart lies outside the heart "
       "(a classifier finds it with the heart blanked out, not in the heart box).", "§6.2, after Lee et al. 2025a",
       ["rootcause_probe"], _root_cause, None, "AUC outside − AUC heart box")


# ---- the 2021 study (Puyol-Antón et al. 2021), chapters 13-14 ---------------------------------------------
def _natural2021(c: Context):
    """The 2021 study's own split of the cohort and the groups present in its training set, made once per context
    for chapters 13 and 14's claims."""
    def make():
        from .study2021 import groups_present, natural_data
        data = natural_data(c.data)
        return data, groups_present(data)[0]
    return c.memo("natural2021", make)


def _study2021(c: Context) -> dict:
    """Chapter 13's claims on the baseline of the study's own split."""
    def make():
        from .report import experiment_scores
        from .study2021 import (dice_table, racial_bias_verdict, run_approach, settings, sex_difference,
                                sex_verdict, share_verdict, share_vs_accuracy, split_counts)
        data, groups = _natural2021(c)
        base = run_approach(data, "baseline")
        t1 = dice_table(base, data.group_col, groups)
        sx = sex_difference(experiment_scores(base, "test"), seed=c.data.params["seed"])
        return {"race_bias": from_sentence(racial_bias_verdict(t1, groups)),
                "no_sex_bias": from_sentence(sex_verdict(sx, settings(c.data.params)["sex_margin"]), sx["diff"],
                                             sx["low"], sx["high"]),
                "share": from_sentence(share_verdict(share_vs_accuracy(t1, split_counts(data)))[0])}
    return c.memo("study2021", make)


def _study2021_table2(c: Context) -> dict:
    """Chapter 14's claims on Table 2 (every approach)."""
    def make():
        from .report import experiment_scores
        from .study2021 import APPROACHES, run_approach, table2, table2_verdicts
        data, groups = _natural2021(c)
        scores = {n: experiment_scores(run_approach(data, n), "test") for n in APPROACHES}
        t2 = table2(scores, data.group_col, groups, seed=c.data.params["seed"])
        return {k: from_sentence(v) for k, v in table2_verdicts(t2).items()}
    return c.memo("study2021_table2", make)


def _part(make, key):
    def rule(c: Context) -> Verdict:
        verdicts = make(c)
        if key not in verdicts:
            raise NotInStore(f"{key}: the chapter's verdicts do not include this claim on this profile")
        return verdicts[key]
    return rule


_claim("puyol2021.race_bias", "13", "A baseline blind to race and sex segments every group differently from the "
       "test set as a whole.", "Table 1", ["baseline"], _part(_study2021, "race_bias"))
_claim("puyol2021.no_sex_bias", "13", "Men and women are segmented equally well.", "Table 1", ["baseline"],
       _part(_study2021, "no_sex_bias"), measure="men − women, mean DSC")
_claim("puyol2021.share", "13", "A group's accuracy follows its share of the training set.", "Table 1, §4",
       ["baseline"], _part(_study2021, "share"))
_APPROACHES = ["baseline", "stratified", "fair_meta_learning", "protected_group_models", "balanced_database"]
_claim("puyol2021.all_reduce", "14", "All three approaches lower both SD and SER against the baseline.", "Table 2",
       _APPROACHES, _part(_study2021_table2, "all_reduce"))
_claim("puyol2021.group_models_fairest", "14", "Protected-group models are the fairest of the three.", "Table 2",
       _APPROACHES, _part(_study2021_table2, "group_models_fairest"))
_claim("puyol2021.stratified_best_blind", "14", "Of the approaches that need no group at inference, stratified "
       "batches are the fairer.", "Table 2, §4", _APPROACHES, _part(_study2021_table2, "stratified_best_blind"))
_claim("puyol2021.balanced", "14", "A balanced database is the fairest and the least accurate.", "Table 2",
       _APPROACHES, _part(_study2021_table2, "balanced"))


# ---- the 2022 study (Lee et al. 2022), chapter 15 -----------------------------------------------------------
def _study2022(c: Context) -> dict:
    def make():
        from .study2022 import sweep, table2, verdicts
        scores = sweep(c.data)
        return {k: from_sentence(v) for k, v in verdicts(table2(scores), scores).items()}
    return c.memo("study2022", make)


_claim("lee2022.no_sex_bias", "15", "Women and men do not differ at any share of women in training.",
       "Experiment 1, Table 2", ["lee2022_exp1"], _part(_study2022, "no_sex_bias"))
for _e, _g in ((2, "Black"), (3, "Asian")):
    _claim(f"lee2022.rises_{_e}", "15", f"The {_g} group's accuracy rises with its share of training.",
           f"Experiment {_e}, Table 2", [f"lee2022_exp{_e}"], _part(_study2022, f"rises_{_e}"))
    _claim(f"lee2022.best_{_e}", "15", f"The best overall accuracy ({_g}/White) is not at a 50/50 split.",
           f"Experiment {_e}, Table 2", [f"lee2022_exp{_e}"], _part(_study2022, f"best_{_e}"))


# ---- generative debiasing (Skorupko et al. 2024), chapter 17 ----------------------------------------------
def _study2024(c: Context) -> dict:
    def make():
        from .report import experiment_scores
        from .synthesis import comparison, downstream, headline, verdicts
        res = downstream(c.data, progress=False)
        table = comparison({n: experiment_scores(r, "test") for n, r in res.items()}, c.data,
                           seed=c.data.params["seed"])
        row, mi = table.loc[headline(c.data)], c.data.minority
        v = verdicts(table, c.data)
        return {"minority_gain": from_sentence(v["minority_gain"], row[f"Δ{mi} vs baseline"],
                                               row[f"Δ{mi} vs baseline low"], row[f"Δ{mi} vs baseline high"]),
                "disparity_reduction": from_sentence(v["disparity_reduction"], row["ΔFG vs baseline"],
                                                     row["ΔFG vs baseline low"], row["ΔFG vs baseline high"])}
    return c.memo("study2024", make)


def _skorupko(claim: str) -> float:
    from .synthesis import paper_values
    return float(paper_values().loc[claim, "value"])


_claim("skorupko2024.minority_gain", "17", "Synthetic minority images raise the minority's accuracy.",
       "abstract (unverified summary)", ["baseline", "synthetic"], _part(_study2024, "minority_gain"),
       lambda: _skorupko("minority_gain"), "Δ minority median DSC (the study: accuracy points)")
_claim("skorupko2024.disparity_reduction", "17", "Synthetic minority images reduce the disparity between groups.",
       "abstract (unverified summary)", ["baseline", "synthetic"], _part(_study2024, "disparity_reduction"),
       lambda: _skorupko("disparity_reduction"), "ΔFG (the study: % less disparity)")


# ---- using the registry --------------------------------------------------------------------------------------
def claims_of(chapter: str) -> list[Claim]:
    key = str(chapter).zfill(2)
    return [c for c in REGISTRY.values() if c.chapter == key]


def claims_table(data, train: bool = False, chapter: str | None = None) -> pd.DataFrame:
    """Every claim (or one chapter's): study, chapter, the claim, where the study shows it, the study's number,
    ours with its 95 % interval and the number of seeds, and the verdict (read from the run store only by
    default)."""
    ctx = Context(data, train=train)
    rows = []
    for c in (claims_of(chapter) if chapter is not None else REGISTRY.values()):
        v = judge(c, ctx)
        try:
            paper = c.paper() if c.paper else float("nan")
        except KeyError:
            paper = float("nan")
        rows.append({"claim": c.id, "study": STUDIES[c.study], "chapter": c.chapter, "statement": c.text,
                     "where": c.where, "measure": c.measure, "paper": paper, "ours": v.ours, "low": v.low,
                     "high": v.high, "seeds": v.seeds, "verdict": v.status, "detail": v.detail})
    return pd.DataFrame(rows)


def interval_text(low: float, high: float, digits: int = 3) -> str:
    return "—" if pd.isna(low) or pd.isna(high) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def chapter_claims(chapter: str, data, train: bool = True) -> pd.DataFrame:
    """The claims one chapter tests, for its page: per short id, the claim, where the paper shows it, the
    measure, the paper's number, ours with its 95 % interval, the seeds, the verdict, and ``sentence`` (the claim
    and its verdict in words, for glue). ``train=True`` trains the seeds the store lacks."""
    t = claims_table(data, train=train, chapter=chapter)
    out = pd.DataFrame({"claim": t.statement, "where": t["where"], "measure": t.measure, "paper": t.paper,
                        "ours": t.ours, "95 % interval": [interval_text(a, b) for a, b in zip(t.low, t.high)],
                        "seeds": t.seeds, "verdict": t.verdict})
    out["sentence"] = [f"{c} Verdict: {v} ({d})." for c, v, d in zip(t.statement, t.verdict, t.detail)]
    out.index = [c.split(".", 1)[1] for c in t.claim]
    return out


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`claims_table` for reading: chapter, claim id, the claim, the study's number, ours with its 95 %
    interval, seeds and verdict, one row per claim in registry order."""
    chapters = [CHAPTER_FILES[c].replace("_", " ") for c in table.chapter]
    return pd.DataFrame({"chapter": chapters, "claim": table.claim, "statement": table.statement,
                         "measure": table.measure, "paper": table.paper.round(3), "ours": table.ours.round(3),
                         "95 % interval": [interval_text(a, b) for a, b in zip(table.low, table.high)],
                         "seeds": table.seeds, "verdict": table.verdict}).set_index("claim")


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Claims per study and verdict (every status a column, zeros kept)."""
    from .claims import STATUSES
    return pd.crosstab(table.study, table.verdict).reindex(columns=list(STATUSES), fill_value=0)
