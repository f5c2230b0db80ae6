"""Every claim the book tests, of the main paper (Lee et al. 2025, ``lee2025.*``), the 2021 study (Puyol-Antón et
al. 2021, ``puyol2021.*``), the 2022 study (Lee et al. 2022, ``lee2022.*``) and generative debiasing (Skorupko et
al. 2024, ``skorupko2024.*``), each with the rule of :mod:`cmrlib.claims.rules` that judges it from the run store.

Chapters glue their claims' verdicts from :func:`chapter_claims`; chapter 18 lists them all with
:func:`claims_table`. :func:`register` refuses a claim whose experiments the book does not know.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib import STRUCTURES
from cmrlib.claims.rules import EXTERNAL, INTERNAL, Claim, Context, equivalence_margin, judge, paper_value
from cmrlib.data.spec import load_spec
from cmrlib.data.synthetic import factor_value
from cmrlib.errors import InputError
from cmrlib.evaluation.clinical import ef_relevance_threshold
from cmrlib.evaluation.fairness import GroupMeans, sd, ser
from cmrlib.evaluation.report import experiment_scores
from cmrlib.evaluation.stats import spearman
from cmrlib.evaluation.verdicts import (
    COLOURS,
    STATUSES,
    Verdict,
    all_of,
    by_design,
    direction,
    most_often_best,
    no_effect,
    significant,
)
from cmrlib.runs.evidence import Evidence
from cmrlib.runs.store import NotInStore
from cmrlib.studies.lee2022.study import (
    EXPERIMENTS,
    paper_table,
    point_errors,
    settings,
    share_key,
    structure_evidence,
    sweep,
    sweep_evidence,
    within_sex,
)
from cmrlib.studies.lee2025.rootcause import AUC_BOUNDS, stored_probe
from cmrlib.studies.puyol2021 import study as puyol2021
from cmrlib.studies.puyol2021.study import APPROACHES, approach_runs, groups_present, natural_data, split_counts
from cmrlib.studies.skorupko2024 import synthesis
from cmrlib.studies.skorupko2024.synthesis import downstream_runs, paper_values, synthetic_method
from cmrlib.training.methods import METHODS

REGISTRY: dict[str, Claim] = {}
STUDIES = {"lee2025": "Lee et al. 2025 (main paper)", "puyol2021": "Puyol-Antón et al. 2021",
           "lee2022": "Lee et al. 2022", "skorupko2024": "Skorupko et al. 2024"}
CHAPTER_FILES = {
    "02": "02_baseline", "03": "03_oversampling", "04": "04_reweighting", "05": "05_group_dro",
    "06": "06_combinations", "07": "07_crop_ground_truth", "08": "08_crop_cascade", "09": "09_external_validation",
    "11": "11_root_cause", "13": "13_bias_race_sex", "14": "14_four_strategies", "15": "15_proportion_sweeps", "16": "16_clinical_measures",
    "17": "17_generative_debiasing"}


def known_experiments() -> set[str]:
    """Names a claim may need: the methods, the 2021 study's approaches, the 2022 study's three sweeps, the
    root-cause probe and the generative experiments."""
    return {*METHODS, *APPROACHES, *(f"lee2022_exp{e}" for e in EXPERIMENTS), "rootcause_probe", "synthetic"}


def register(claim: Claim) -> Claim:
    unknown = [e for e in claim.experiments if e not in known_experiments()]
    if unknown:
        raise InputError(f"claim {claim.id}: unknown experiment(s) {', '.join(unknown)}; known: methods of "
                         "cmrlib.training.methods.METHODS and the studies' approaches (cmrlib.claims.registry.known_experiments)")
    if claim.study not in STUDIES:
        raise InputError(f"claim {claim.id}: unknown study {claim.study!r} (expected one of {', '.join(STUDIES)})")
    if claim.chapter not in CHAPTER_FILES:
        raise InputError(f"claim {claim.id}: chapter {claim.chapter!r} tests no claims (cmrlib.claims.registry.CHAPTER_FILES)")
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


def _claim(id, chapter, text, where, experiments, rule, paper=None, measure="", unit="DSC"):
    return register(Claim(id, chapter, text, where, tuple(experiments), rule, paper, measure, unit))


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
def _unseen_groups(c: Context) -> Verdict:
    """Oversampling against the baseline for every test group that trained neither model (direction rule)."""
    data = c.data
    test = data.subjects[data.subjects.split == "test"]
    others = [g for g in dict.fromkeys(test[data.group_col]) if g not in (data.advantaged, data.minority)]
    if not others:
        raise NotInStore("the test split holds no group besides the two trained on")
    return all_of([direction(c.evidence("test", (g,)).change("oversampling", "baseline", 0), +1, f"{g}'s change")
                   for g in others])


_claim("lee2025.oversampling_raises_unseen", "03", "Oversampling also raises the median DSC of the ethnic groups "
       "that neither model trained on.", "Fig. 2, §5.1", ["baseline", "oversampling"], _unseen_groups,
       measure="Δ median DSC (first untrained group)")
_claim("lee2025.reweighting_lowers_minority", "04", "Reweighting lowers the minority's median DSC.", "Table 4, §5.1",
       ["baseline", "reweighting"],
       lambda c: direction(c.evidence().change("reweighting", "baseline"), -1, "the minority's change"),
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

_claim("lee2025.combinations_shift", "06", "Every combination lowers the majority's median DSC and raises the "
       "minority's against the baseline.", "Table 5, §5.1", ["baseline", *COMBINATIONS],
       lambda c: all_of([direction(c.evidence().change(m, "baseline", g), sign, f"{m}: {c.evidence().groups[g]}'s change")
                         for m in COMBINATIONS for g, sign in ((0, -1), (1, +1))]),
       _paper(INTERNAL, "5", COMBINATIONS[0], "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC (first combination)")

def _min_gap(b, d):
    import numpy as np
    return np.minimum(b[..., 0] - b[..., 1], d[..., 0] - d[..., 1])


def _both_groups(c, name, reference, split="test", what="", rule=significant):
    """Both groups' median DSC higher with ``name`` than with ``reference``, each by ``rule``."""
    ev = c.evidence(split)
    return all_of([rule(ev.change(name, reference, g), +1, f"{what}{ev.groups[g]}'s change") for g in (1, 0)])


_claim("lee2025.crop_improves_both", "07", "Cropping to the ground-truth heart box raises both groups' median DSC.",
       "Tables 4 and 6, §5.1", ["baseline", "baseline_crop_gt"],
       lambda c: _both_groups(c, "baseline_crop_gt", "baseline", rule=direction),
       _paper(INTERNAL, "6", "baseline_crop_gt", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
_claim("lee2025.crop_narrows_gap", "07", "Cropping to the ground-truth heart box narrows the baseline's gap.",
       "Tables 4 and 6", ["baseline", "baseline_crop_gt"],
       lambda c: direction(c.evidence().gap_change("baseline_crop_gt", "baseline"), -1, "the change of the gap"),
       _paper(INTERNAL, "6", "baseline_crop_gt", "Fairness gap", "all", (INTERNAL, "4", "baseline", "Fairness gap", "all")),
       "ΔFG")
_claim("lee2025.crop_oversampling_above", "07", "With ground-truth crops, oversampling raises the minority's "
       "median DSC significantly over the cropped baseline, to above the majority's.", "Table 6, §5.1",
       ["baseline_crop_gt", "oversampling_crop_gt"],
       lambda c: all_of([significant(c.evidence().change("oversampling_crop_gt", "baseline_crop_gt"), +1,
                                     "the minority's change"),
                         direction(c.evidence().gap("oversampling_crop_gt"), -1, "the gap")]),
       _paper(INTERNAL, "6", "oversampling_crop_gt", "Median DSC", B,
              (INTERNAL, "6", "baseline_crop_gt", "Median DSC", B)), "Δ minority median DSC")
PAPER4 = ["baseline", "oversampling", "reweighting", "group_dro"]
_claim("lee2025.cascade_beats_crop", "08", "The cascade (a predicted box) is more accurate than the ground-truth "
       "crop, for every method and both groups.", "Tables 6 and 7, §5.1",
       [*(f"{m}_cascade" for m in PAPER4), *(f"{m}_crop_gt" for m in PAPER4)],
       lambda c: all_of([_both_groups(c, f"{m}_cascade", f"{m}_crop_gt", what=f"{m}: ") for m in PAPER4]),
       _paper(INTERNAL, "7", "baseline_cascade", "Median DSC", B, (INTERNAL, "6", "baseline_crop_gt", "Median DSC", B)),
       "Δ minority median DSC (baseline)")
_claim("lee2025.cascade_oversampling_narrows", "08", "In the cascade, oversampling narrows the gap against the "
       "baseline cascade.", "Table 7, §5.1", ["baseline_cascade", "oversampling_cascade"],
       lambda c: direction(c.evidence().gap_change("oversampling_cascade", "baseline_cascade"), -1,
                           "the change of the gap"),
       _paper(INTERNAL, "7", "oversampling_cascade", "Fairness gap", "all", (INTERNAL, "7", "baseline_cascade", "Fairness gap", "all")),
       "ΔFG")
_claim("lee2025.cascade_no_tradeoff", "08", "The oversampling cascade, the paper's best method, is more accurate "
       "than the full-image baseline for both groups and has a smaller gap: no fairness–accuracy trade-off.",
       "Tables 4 and 7, §6.2", ["baseline", "oversampling_cascade"],
       lambda c: all_of([_both_groups(c, "oversampling_cascade", "baseline", rule=direction),
                         direction(c.evidence().gap_change("oversampling_cascade", "baseline"), -1,
                                   "the change of the gap")]),
       _paper(INTERNAL, "7", "oversampling_cascade", "Median DSC", B, (INTERNAL, "4", "baseline", "Median DSC", B)),
       "Δ minority median DSC")
EXTERNAL_BY_DESIGN = ("The cohort's specification gives the external site's groups the same differences as the "
                      "internal site's (its factors are per group, not per site: data_manifest/synthetic_cohort.yaml), "
                      "so the cohort has no cause by which the external gap could vanish; the claim is not tested here.")
_claim("lee2025.external_no_bias", "09", "On the external site the baseline shows no gap.", "Table 8, §6.2",
       ["baseline"],
       lambda c: by_design(EXTERNAL_BY_DESIGN,
                           no_effect(c.evidence("external").gap("baseline"), equivalence_margin(), "the external gap")),
       _paper(EXTERNAL, "8", "baseline", "Fairness gap"), "FG (external)")
_claim("lee2025.external_oversampling_no_help", "09", "On the external site, oversampling does not narrow the gap.",
       "Table 8, §6.2", ["baseline", "oversampling"],
       lambda c: direction(c.evidence("external").gap_change("oversampling", "baseline"), +1, "the change of the gap"),
       _paper(EXTERNAL, "8", "oversampling", "Fairness gap", "all", (EXTERNAL, "8", "baseline", "Fairness gap", "all")),
       "ΔFG (external)")
_claim("lee2025.external_crop_improves", "09", "On the external site, the ground-truth crop raises both groups' "
       "median DSC significantly over full images, and the cascade raises both.", "Tables 8 and 9, §5.2, §6.2",
       ["baseline", "baseline_crop_gt", "baseline_cascade"],
       lambda c: all_of([_both_groups(c, "baseline_crop_gt", "baseline", "external", "baseline_crop_gt: "),
                         _both_groups(c, "baseline_cascade", "baseline", "external", "baseline_cascade: ",
                                      rule=direction)]),
       _paper(EXTERNAL, "9", "baseline_cascade", "Median DSC", B, (EXTERNAL, "8", "baseline", "Median DSC", B)),
       "Δ minority median DSC (cascade)")
_claim("lee2025.external_cascade_oversampling", "09", "On the external site, oversampling in the cascade raises "
       "both groups' median DSC over the baseline cascade.", "Table 9, §6.2",
       ["baseline_cascade", "oversampling_cascade"],
       lambda c: _both_groups(c, "oversampling_cascade", "baseline_cascade", "external", rule=direction),
       _paper(EXTERNAL, "9", "oversampling_cascade", "Median DSC", B,
              (EXTERNAL, "9", "baseline_cascade", "Median DSC", B)), "Δ minority median DSC")


def _root_cause(c: Context) -> Verdict:
    probe = c.memo("probe", lambda: stored_probe(c.data))
    auc = probe.set_index("view").auc
    out, heart = float(auc["outside"]), float(auc["heart"])
    detail = f"AUC {out:.2f} with the heart box blanked out against {heart:.2f} from the box alone"
    status = ("reproduced" if out >= AUC_BOUNDS["outside_min"] and heart <= AUC_BOUNDS["heart_max"] else
              "partly reproduced" if out > heart else "not reproduced")
    return Verdict(status, detail, out - heart, seeds=1)


_claim("lee2025.root_cause_outside", "11", "The information that tells the groups apart lies outside the heart "
       "(a classifier finds it with the heart blanked out, not in the heart box).", "§6.2, after Lee et al. 2025a",
       ["rootcause_probe"], _root_cause, None, "AUC outside − AUC heart box", "AUC")


# ---- the 2021 study (Puyol-Antón et al. 2021), chapters 13-14 ---------------------------------------------
def _natural2021(c: Context):
    """The 2021 study's own split of the cohort and the groups present in its training set, made once per context
    for chapters 13 and 14's claims."""
    def make():
        data = natural_data(c.data)
        return data, groups_present(data)[0]
    return c.memo("natural2021", make)


def _means2021(c: Context, group_col: str | None = None, approaches=("baseline",)):
    """:class:`cmrlib.evaluation.fairness.GroupMeans` of the study's approaches on its own split, by race (default) or sex."""
    def make():
        data, groups = _natural2021(c)
        col = group_col or data.group_col
        scores = {n: {k: experiment_scores(r, "test") for k, r in
                      c.memo(("approach2021", n), lambda n=n: approach_runs(data, n)).items()} for n in approaches}
        return GroupMeans(scores, col, groups if col == data.group_col else ["M", "F"], n_boot=c.n_boot)
    return c.memo(("means2021", group_col, tuple(approaches)), make)


def _race_bias2021(c: Context) -> Verdict:
    """White above the mean of the group means, Black and Mixed below it (the groups the study's text names)."""
    gm = _means2021(c)
    parts = []
    for g, sign in (("White", +1), ("Black", -1), ("Mixed", -1)):
        if g in gm.groups:
            i = gm.index(g)
            parts.append(significant(gm.estimate(lambda m, i=i: m[..., i] - m.mean(-1), "baseline"), sign,
                                     f"{g}'s mean DSC − the mean of the group means"))
    return all_of(parts)


def _share2021(c: Context) -> Verdict:
    data, _ = _natural2021(c)
    gm = _means2021(c)
    counts = split_counts(data).loc[gm.groups, "train"]
    rho, p = spearman(counts, gm.point["baseline"])
    measured = Verdict("not testable", f"Spearman's ρ between training count and mean DSC over {len(counts)} groups "
                       f"is {rho:.2f} (p = {p:.2g}; group means: the median over seeds)", rho,
                       seeds=len(gm.seeds("baseline")))
    return by_design(f"The profile sets the groups' training shares ({counts.nunique()} distinct counts over "
                     f"{len(counts)} groups) and the cohort's specification sets how far each group's images differ "
                     "from the majority's, independently of its share, so the order the claim asks for is fixed "
                     "before any training.", measured)


def _puyol(row: str, measure: str) -> float:
    return float(puyol2021.paper_table("1").loc[row, measure])


_claim("puyol2021.race_bias", "13", "A baseline blind to race and sex shows a clear racial bias: White subjects are "
       "segmented significantly better than the average of the groups, Black and Mixed subjects significantly "
       "worse.", "Table 1, §4", ["baseline"], _race_bias2021,
       lambda: (_puyol("White", "Avg") - _puyol("Total", "Avg")) / 100, "White − Total, mean DSC")
_claim("puyol2021.no_sex_bias", "13", "Men and women are segmented equally well (no significant sex bias).",
       "Table 1, §4", ["baseline"],
       lambda c: no_effect(_means2021(c, "sex").estimate(lambda m: m[..., 0] - m[..., 1], "baseline"),
                           equivalence_margin(), "men − women, mean DSC"),
       lambda: (_puyol("Male", "Avg") - _puyol("Female", "Avg")) / 100, "men − women, mean DSC")
_claim("puyol2021.share", "13", "A group's accuracy follows its share of the training set.", "Table 1, §4",
       ["baseline"], _share2021, None, "Spearman's ρ, training count vs mean DSC", "ρ")

_APPROACHES = ["baseline", "stratified", "fair_meta_learning", "protected_group_models", "balanced_database"]
_MITIGATIONS = ["stratified", "fair_meta_learning", "protected_group_models"]


def _t2(c: Context):
    return _means2021(c, approaches=tuple(_APPROACHES))


def _lower(c: Context, stat, name: str, m: str, others, what: str) -> Verdict:
    """``stat`` of approach ``m`` minus the smallest of ``others``' (direction rule: below zero)."""
    return direction(_t2(c).estimate(lambda a, *o: stat(a) - np.min([stat(x) for x in o], axis=0), m, *others), -1,
                     f"{what}: {name} of {m} − the lowest other")


def _all_reduce(c: Context) -> Verdict:
    ev = _t2(c)
    return all_of([direction(ev.estimate(lambda a, b, f=f: f(a) - f(b), m, "baseline"), -1, f"{m}: Δ{name}")
                   for m in _MITIGATIONS for f, name in ((sd, "SD"), (ser, "SER"))])


def _balanced(c: Context) -> Verdict:
    others = [m for m in _APPROACHES if m != "balanced_database"]
    return all_of([_lower(c, sd, "SD", "balanced_database", others, "fairest"),
                   _lower(c, ser, "SER", "balanced_database", others, "fairest"),
                   significant(_t2(c).estimate(lambda a, b: a.mean(-1) - b.mean(-1), "balanced_database", "baseline"),
                               -1, "less accurate: Avg − the baseline's Avg")])


def _sd_ser_lowest(m: str, others):
    def rule(c: Context) -> Verdict:
        return all_of([_lower(c, sd, "SD", m, others, "fairer"), _lower(c, ser, "SER", m, others, "fairer")])
    return rule


def _paper_t2(method: str, measure: str, minus: str | None = None, scale: float = 1.0):
    def value():
        t = puyol2021.paper_table("2")
        return (float(t.loc[method, measure]) - (float(t.loc[minus, measure]) if minus else 0.0)) * scale
    return value


_claim("puyol2021.all_reduce", "14", "All three approaches lower both SD and SER against the baseline.",
       "Table 2, §4", _APPROACHES, _all_reduce, _paper_t2("stratified", "SD", "baseline", 0.01),
       "ΔSD of stratified batches (DSC)")
_claim("puyol2021.group_models_fairest", "14", "Protected-group models have the lowest SD and SER of the three.",
       "Table 2, §4", _APPROACHES, _sd_ser_lowest("protected_group_models", ["stratified", "fair_meta_learning"]),
       _paper_t2("protected_group_models", "SD", "stratified", 0.01), "SD − the lowest other's (DSC)")
_claim("puyol2021.stratified_best_blind", "14", "Of the approaches that need no group at inference, stratified "
       "batches are the fairer.", "Table 2, §4", _APPROACHES,
       _sd_ser_lowest("stratified", ["fair_meta_learning"]),
       _paper_t2("stratified", "SD", "fair_meta_learning", 0.01), "SD − fair meta-learning's (DSC)")
_claim("puyol2021.balanced", "14", "A balanced database gives the lowest SD and SER, at a significant loss of "
       "accuracy.", "Table 2, §4", _APPROACHES, _balanced,
       _paper_t2("balanced_database", "SD", "protected_group_models", 0.01), "SD − the lowest other's (DSC)")


# ---- the 2022 study (Lee et al. 2022), chapter 15 -----------------------------------------------------------
L22 = "data_manifest/paper_tables/lee2022.csv"


def _p22(exp: int, share: int, group: str, minus: tuple | None = None, table: str = "2", within: str = ""):
    """The 2022 study's number: one cell of its Table 2 (or 3), or the difference of two (``minus``: share, group
    and, for Table 3, within)."""
    def cell(sh, g, w=""):
        t = paper_table(table)
        t = t[(t.exp == exp) & (t.share.astype(float) == sh) & (t.group == g)]
        if table == "3":
            t = t[t.within == w]
        return float(t.value.iloc[0])
    return lambda: cell(share, group, within) - (cell(*minus) if minus else 0.0)


def _sweep2022(c: Context):
    return c.memo("sweep2022", lambda: sweep(c.data))


def _ev22(c: Context, exp: int, col: str, groups: tuple, within: tuple | None = None):
    return c.memo(("ev2022", exp, col, groups, within),
                  lambda: sweep_evidence(_sweep2022(c), exp, col, groups, within, seed=c.data.params["seed"],
                                         n_boot=c.n_boot))


def _share22(c: Context, share: float) -> str:
    """The name of a share of the sweeps; a share the profile does not train leaves the claim not run."""
    if not any(abs(x - share) < 1e-9 for x in settings(c.data.params)["shares"]):
        raise NotInStore(f"the profile's study2022.shares lack {100 * share:g} %")
    return share_key(share)


def _race(exp: int) -> str:
    return EXPERIMENTS[exp]["pair"][0]


def _race_ev(c: Context, exp: int):
    """Experiment 2 or 3's evidence with White as group 0 and the minority race as group 1 (gap: White − it)."""
    return _ev22(c, exp, "ethnicity", ("White", _race(exp)))


def differing_factors(spec: dict, group: str) -> list[str]:
    """The cohort factors in which ``group`` differs from the reference group (data_manifest/synthetic_cohort.yaml)."""
    ref = spec["reference_group"]
    return [f for f in spec["factors"] if factor_value(spec, f, group) != factor_value(spec, f, ref)]


def _asian_by_design(c: Context, measured: Verdict) -> Verdict:
    spec = load_spec(c.data.params["cohort"]["spec"])
    diff = differing_factors(spec, "Asian")
    return by_design(f"The cohort's specification gives the Asian group {len(diff)} of its {len(spec['factors'])} "
                     f"differences from the White group ({', '.join(diff) or 'none'}), against "
                     f"{len(differing_factors(spec, 'Black'))} for the Black group, so a small Asian gap is built in "
                     "before any training.", measured)


def _no_sex_bias(c: Context) -> Verdict:
    ev = _ev22(c, 1, "sex", ("F", "M"))
    return all_of([no_effect(ev.gap(share_key(x)), equivalence_margin(), f"{100 * x:g} % women: women − men")
                   for x in settings(c.data.params)["shares"]])


_claim("lee2022.no_sex_bias", "15", "Women and men are segmented equally well at every share of women in training.",
       "Experiment 1, Table 2, §4.1", ["lee2022_exp1"], _no_sex_bias, _p22(1, 0, "Female", (0, "Male")),
       "women − men, median DSC (first share)")
_claim("lee2022.black_above_white_within_sex", "15", "Black subjects are segmented better than White subjects within "
       "each sex at the balanced split.", "Experiment 1, Table 3, §4.1", ["lee2022_exp1"],
       lambda c: all_of([significant(est, +1, f"{sex}: Black − White") for sex, est in
                         _within_sex(c, 1, 0.5)]),
       _p22(1, 50, "Black", (50, "White", "F"), "3", "F"), "Black − White, median DSC (women)")


def _within_sex(c: Context, exp: int, share: float):
    _share22(c, share)
    return c.memo(("within_sex", exp, share), lambda: within_sex(_sweep2022(c), exp, share, c.data.params["seed"], c.n_boot))


def _structures_rule(c: Context, exp: int) -> Verdict:
    """The LV myocardium's mean absolute White − minority gap over the shares, minus the larger of the other two
    structures' (direction rule: positive in every seed)."""
    ev = c.memo(("structures2022", exp), lambda: structure_evidence(_sweep2022(c), exp, "ethnicity",
                                                                      ("White", _race(exp)), c.data.params["seed"], c.n_boot))
    keys = [share_key(x) for x in settings(c.data.params)["shares"]]
    names = [f"{k}:{sh}" for k in STRUCTURES for sh in keys]

    def fn(*m):
        gaps = [np.mean([np.abs(m[i * len(keys) + j][..., 0] - m[i * len(keys) + j][..., 1])
                         for j in range(len(keys))], axis=0) for i in range(len(STRUCTURES))]
        lvm = STRUCTURES.index("LVM")
        return gaps[lvm] - np.max([g for i, g in enumerate(gaps) if i != lvm], axis=0)
    return direction(ev.estimate(fn, *names), +1, f"experiment {exp}: LVM's mean |gap| minus the next structure's")


for _e in (2, 3):
    _g = _race(_e)
    _claim(f"lee2022.race_bias_{_e}", "15", f"Trained without {_g} subjects, the model segments them significantly "
           "worse than White subjects (race bias).", f"Experiment {_e}, Table 2, abstract", [f"lee2022_exp{_e}"],
           (lambda e: lambda c: (lambda v: _asian_by_design(c, v) if e == 3 else v)(
               significant(_race_ev(c, e).gap(_share22(c, 0.0)), +1, "White − " + _race(e))))(_e),
           _p22(_e, 0, "White", (0, _g)), f"White − {_g} at 0 %, median DSC")
    _claim(f"lee2022.first_quarter_{_e}", "15", f"Raising the {_g} share from 0 % to 25 % raises the {_g} median "
           "significantly while the White median stays the same.", f"Experiment {_e}, Table 2, §4.2–4.3",
           [f"lee2022_exp{_e}"],
           (lambda e: lambda c: all_of([
               significant(_race_ev(c, e).change(_share22(c, 0.25), _share22(c, 0.0), 1), +1, f"{_race(e)}'s change"),
               no_effect(_race_ev(c, e).change(_share22(c, 0.25), _share22(c, 0.0), 0), equivalence_margin(),
                         "White's change")]))(_e),
           _p22(_e, 25, _g, (0, _g)), f"Δ {_g} median DSC, 0 → 25 %")
    _claim(f"lee2022.parity_{_e}", "15", f"At 25 % {_g}, the two groups are segmented equally well (accuracy parity).",
           f"Experiment {_e}, Table 2, §4.2–4.3", [f"lee2022_exp{_e}"],
           (lambda e: lambda c: no_effect(_race_ev(c, e).gap(_share22(c, 0.25)), equivalence_margin(),
                                          "White − " + _race(e)))(_e),
           _p22(_e, 25, "White", (25, _g)), f"White − {_g} at 25 %")
    _claim(f"lee2022.balanced_above_{_e}", "15", f"At a 50/50 split, {_g} subjects are segmented better than White "
           "subjects.", f"Experiment {_e}, Table 2, §5", [f"lee2022_exp{_e}"],
           (lambda e: lambda c: direction(_race_ev(c, e).gap(_share22(c, 0.5)), -1, "White − " + _race(e)))(_e),
           _p22(_e, 50, "White", (50, _g)), f"White − {_g} at 50 %")
    _claim(f"lee2022.rises_{_e}", "15", f"The {_g} group's accuracy rises with its share of training.",
           f"Experiment {_e}, Table 2, §4.2", [f"lee2022_exp{_e}"],
           (lambda e: lambda c: direction(_rise(c, e), +1, f"{_race(e)}'s median, last share − first"))(_e),
           _p22(_e, 100, _g, (0, _g)), f"Δ {_g} median DSC, 0 → 100 %")
    _claim(f"lee2022.best_{_e}", "15", f"The best overall accuracy is at 75 % {_g}, not at an even split.",
           f"Experiment {_e}, Table 2, §4.2–4.3", [f"lee2022_exp{_e}"],
           (lambda e: lambda c: _best_share(c, e))(_e), None, f"share of bootstrap draws with 75 % {_g} best",
           "share of draws")
_claim("lee2022.lvm_largest", "15", "In both race experiments the largest differences between the groups are in the "
       "LV myocardium.", "Fig. 3, §4.3", ["lee2022_exp2", "lee2022_exp3"],
       lambda c: all_of([_structures_rule(c, e) for e in (2, 3)]), None, "LVM's mean |gap| − the next structure's")


def _rise(c: Context, exp: int):
    shares = settings(c.data.params)["shares"]
    first, last = share_key(min(shares)), share_key(max(shares))
    return _race_ev(c, exp).estimate(lambda a, b: a[..., 1] - b[..., 1], last, first)


def _best_share(c: Context, exp: int) -> Verdict:
    _share22(c, 0.75)
    keys = [share_key(x) for x in settings(c.data.params)["shares"]]
    ev = _race_ev(c, exp)
    freq = ev.best_frequency(keys)
    return most_often_best({f"{k} %": v for k, v in freq.items()}, "75 %", "the share", len(ev.runs(keys[0])))


# ---- the 2022 study's clinical measures, chapter 16 ------------------------------------------------------------
def _errors22(c: Context, exp: int, measure: str, col: str, groups: tuple):
    """:class:`cmrlib.evaluation.fairness.GroupMeans` of one measure's error (predicted − true) per share of one experiment
    (approaches named by share, e.g. ``"25"``), by ``col``, over the seeds of ``study2022.seeds``."""
    def make():
        s = settings(c.data.params)
        err = c.memo(("errors2022", exp), lambda: pd.concat(
            [point_errors(c.data, exp, sh, k) for sh in s["shares"] for k in s["seeds"]], ignore_index=True))
        d = err[err.measure == measure]
        by = {share_key(sh): {int(k): g for k, g in per.groupby("seed")} for sh, per in d.groupby("share")}
        return GroupMeans(by, col, list(groups), value="error", n_boot=c.n_boot)
    return c.memo(("errors2022", exp, measure, col, groups), make)


def _clinical_no_bias(c: Context) -> Verdict:
    """Black − White mean LVEF error at every share of Experiment 2, by the no-effect rule with the book's EF
    relevance threshold as the margin."""
    gm = _errors22(c, 2, "LVEF", "ethnicity", ("Black", "White"))
    return all_of([no_effect(gm.estimate(lambda m: m[..., 0] - m[..., 1], k), ef_relevance_threshold(),
                             f"{k} % Black: Black − White mean LVEF error (points)") for k in gm.point])


def _rvesv_women(c: Context) -> Verdict:
    gm = _errors22(c, 1, "RVESV", "sex", ("F", "M"))
    return all_of([direction(gm.estimate(lambda m: m[..., 0], k), -1, f"{k} % women: women's mean RVESV error (ml)")
                   for k in gm.point])


def _lvesv_representation(c: Context) -> Verdict:
    gm = _errors22(c, 2, "LVESV", "ethnicity", ("Black", "White"))
    parts = []
    for share, sign, who in ((0.0, +1, "no Black"), (1.0, -1, "no White")):
        _share22(c, share)
        for i, g in enumerate(gm.groups):
            parts.append(direction(gm.estimate(lambda m, i=i: m[..., i], share_key(share)), sign,
                                   f"{who} subjects in training: {g}'s mean LVESV error (ml)"))
    return all_of(parts)


def _lvef_lowest_balanced(c: Context) -> Verdict:
    """The balanced share gives the smallest absolute mean LVEF error, for each group (most often best)."""
    gm = _errors22(c, 2, "LVEF", "ethnicity", ("Black", "White"))
    half = share_key(0.5)
    if half not in gm.point:
        raise NotInStore("the profile's study2022.shares lack 50 %")
    keys = list(gm.point)
    parts = []
    for i, g in enumerate(gm.groups):
        best = np.argmin(np.stack([np.abs(gm.draws(k)[:, i]) for k in keys], axis=1), axis=1)
        freq = {f"{k} %": float(np.mean(best == j)) for j, k in enumerate(keys)}
        parts.append(most_often_best(freq, f"{half} %", f"{g}: the share", len(gm.seeds(*keys))))
    return all_of(parts)


_claim("lee2022.clinical_no_bias", "16", "The clinical measures show no clear race bias: the two races' LVEF errors "
       "do not differ at any training share.", "Experiment 2, Fig. 4, §4.2", ["lee2022_exp2"], _clinical_no_bias,
       None, "Black − White mean LVEF error, first share (EF points)", "EF points")
_claim("lee2022.rvesv_women", "16", "RVESV is under-estimated for women at every training share.",
       "Experiment 1, Fig. 4, §4.1", ["lee2022_exp1"], _rvesv_women, None,
       "women's mean RVESV error, first share (ml)", "ml")
_claim("lee2022.lvesv_representation", "16", "LVESV is over-estimated for both races when Black subjects are "
       "missing from training, and under-estimated when White subjects are.", "Experiment 2, Fig. 4, §4.2",
       ["lee2022_exp2"], _lvesv_representation, None, "Black's mean LVESV error at 0 % Black (ml)", "ml")
_claim("lee2022.lvef_lowest_balanced", "16", "The lowest LVEF errors for both races come with the balanced training "
       "set.", "Experiment 2, Fig. 4h, §5", ["lee2022_exp2"], _lvef_lowest_balanced, None,
       "share of bootstrap draws with 50 % best (Black)", "share of draws")


# ---- generative debiasing (Skorupko et al. 2024), chapter 17 ----------------------------------------------
def _ev2024(c: Context):
    """Evidence over chapter 17's experiments: the baseline, oversampling and every synthetic experiment of the
    profile, over ``generative.seeds``."""
    def make():
        res = downstream_runs(c.data, progress=False)
        runs = {n: {k: experiment_scores(r, "test") for k, r in per.items()} for n, per in res.items()}
        test = c.data.subjects[c.data.subjects.split == "test"]
        return Evidence.from_scores(runs, test, c.data.group_col, [c.data.advantaged, c.data.minority], n_boot=c.n_boot)
    return c.memo("ev2024", make)


def _synthetic(c: Context, mix: str, source: str = "generated") -> str:
    """The name of the synthetic experiment with ``mix`` at the profile's largest count; a mix the profile does
    not train leaves the claim not run."""
    s = synthesis.settings(c.data.params)
    if mix not in s["mix"]:
        raise NotInStore(f"the profile's generative.mix lacks {mix!r}")
    return synthetic_method(c.data, max(s["counts"]), mix, source)[0]


def _relative_reduction(c: Context):
    """100 · (1 − FG(synthetic, uniform) / FG(baseline)): the disparity reduction in percent, the study's unit."""
    def reduction(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100 * (1 - (a[..., 0] - a[..., 1]) / (b[..., 0] - b[..., 1]))
    return _ev2024(c).estimate(reduction, _synthetic(c, "uniform"), "baseline")


def _skorupko(claim: str) -> float:
    return float(paper_values().loc[claim, "value"])


_claim("skorupko2024.minority_gain", "17", "Adding synthetic minority images to the training set (the study's "
       "rebalancing, without oversampling) raises the minority's accuracy.", "abstract (unverified summary); the "
       "study measures classification accuracy", ["baseline", "synthetic"],
       lambda c: significant(_ev2024(c).change(_synthetic(c, "uniform"), "baseline"), +1, "the minority's change"),
       None, "Δ minority median DSC (synthetic slices, uniform sampling, vs the baseline)")
_claim("skorupko2024.disparity_reduction", "17", "Adding synthetic minority images to the training set reduces the "
       "disparity between groups.", "abstract (unverified summary); the study: a classification task",
       ["baseline", "synthetic"], lambda c: direction(_relative_reduction(c), +1, "the gap's relative reduction (%)"),
       lambda: _skorupko("disparity_reduction"), "% less disparity (the study: accuracy; ours: median DSC gap)",
       "%")
_claim("skorupko2024.adds_to_oversampling", "17", "The generated minority slices add to what oversampling alone "
       "does: oversampling over real and generated slices raises the minority above oversampling over real ones.",
       "the study's premise, tested against chapter 03", ["oversampling", "synthetic"],
       lambda c: significant(_ev2024(c).change(_synthetic(c, "pool"), "oversampling"), +1, "the minority's change"),
       None, "Δ minority median DSC vs oversampling alone")
_claim("skorupko2024.beyond_real_slices", "17", "The generator adds more than its conditioning masks: its slices "
       "raise the minority above the real slices of the same masks (the control).",
       "the study's premise, tested with a control", ["synthetic"],
       lambda c: significant(_ev2024(c).change(_synthetic(c, "pool"), _synthetic(c, "pool", "real")), +1,
                             "the minority's change"),
       None, "Δ minority median DSC vs the real-slice control")


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
                     "where": c.where, "measure": c.measure, "unit": c.unit, "paper": paper, "ours": v.ours, "low": v.low,
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


def _cell(x: float, digits: int = 3) -> str:
    return "—" if pd.isna(x) else f"{x:.{digits}f}"


def overview_html(table: pd.DataFrame):
    """:func:`claims_table` as one readable row per claim, for a page: the claim (statement, id, where the study
    shows it and the measure), the study's number, ours with its 95 % interval, the seeds and the verdict as a
    coloured badge. A fixed layout that fits the page's width (class ``claims-table``, which the browser check
    of the rendered book measures)."""
    from html import escape

    from IPython.display import HTML

    rows = []
    for _, r in table.iterrows():
        badge = (f'<span style="background:{COLOURS[r.verdict]};color:white;padding:1px 6px;border-radius:8px;'
                 f'display:inline-block;font-size:85%">{escape(r.verdict)}</span>')
        ours = _cell(r.ours) + ("" if pd.isna(r.low) else f"<br><small>{interval_text(r.low, r.high)}</small>")
        rows.append(f"<tr><td>{escape(r.statement)}<br><small><code>{escape(r.claim)}</code> · ch. {r.chapter} · "
                    f"{escape(r['where'])} · {escape(r.measure)}</small></td><td>{_cell(r.paper)}</td>"
                    f"<td>{ours}</td><td>{r.seeds}</td><td>{badge}</td></tr>")
    head = ("<colgroup><col style='width:54%'><col style='width:8%'><col style='width:15%'><col style='width:7%'>"
            "<col style='width:16%'></colgroup><thead><tr><th>claim</th><th>paper</th><th>ours [95 %]</th>"
            "<th>seeds</th><th>verdict</th></tr></thead>")
    return HTML(f"<table class='claims-table' style='table-layout:fixed;width:100%;font-size:90%'>{head}<tbody>"
                + "".join(rows) + "</tbody></table>")


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Claims per study and verdict (every status a column, zeros kept)."""
    return pd.crosstab(table.study, table.verdict).reindex(columns=list(STATUSES), fill_value=0)
