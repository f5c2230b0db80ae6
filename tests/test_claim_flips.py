"""Every claim of the registry proven able to fail: for each claim, hand-made results where it holds (a world
like the study's) and a change of a few numbers where it does not, and the verdict flips. A registered claim
without a case here fails :func:`test_every_claim_has_a_flip_case`.

The results are given to each rule through the context's cache (the evidence objects a rule would otherwise build
from the run store), so every rule runs as it does in the book, on numbers chosen here."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cmrlib import STRUCTURES
from cmrlib.claims import registry
from cmrlib.claims.rules import Context, judge
from cmrlib.evaluation.fairness import GroupMeans
from cmrlib.runs.evidence import Evidence

SEEDS = (0, 1, 2)
N = 10                      # test subjects per group (or per cell)
BOOT = 400                  # bootstrap draws: the hand-made worlds are far from the rules' edges


def subject_scores(ids, groups, value_of, seed, extra=None):
    """Subject DSC: the group's value, a fixed offset per subject (the same in every experiment, so changes are
    paired; centred within each group) and a little noise per run."""
    rng = np.random.default_rng(seed)
    offset = pd.Series(np.random.default_rng(99).normal(0, 0.004, len(ids)))
    offset = (offset - offset.groupby([str(g) for g in groups]).transform("mean")).to_numpy()   # centred per group
    dsc = [value_of(g) + o + rng.normal(0, 0.0005) for g, o in zip(groups, offset)]
    return pd.DataFrame({"subject_id": ids, "dsc": dsc, **(extra or {})})


# ---- the main paper: one world where every claim holds, one change per claim that breaks it -----------------
GROUPS = ("White", "Black", "Mixed")
PAPER_WORLD = {   # experiment → (White, Black, Mixed) median DSC on the internal test split
    "baseline": (0.90, 0.85, 0.86), "oversampling": (0.90, 0.90, 0.87), "reweighting": (0.88, 0.84, 0.85),
    "group_dro": (0.90, 0.86, 0.86), "oversampling_group_dro": (0.89, 0.87, 0.86),
    "group_dro_reweighting": (0.89, 0.86, 0.86), "oversampling_reweighting": (0.89, 0.86, 0.86),
    "baseline_crop_gt": (0.92, 0.89, 0.89), "oversampling_crop_gt": (0.91, 0.92, 0.9),
    "reweighting_crop_gt": (0.915, 0.88, 0.88), "group_dro_crop_gt": (0.92, 0.90, 0.9),
    "baseline_cascade": (0.95, 0.92, 0.92), "oversampling_cascade": (0.95, 0.935, 0.93),
    "reweighting_cascade": (0.945, 0.91, 0.91), "group_dro_cascade": (0.95, 0.93, 0.93),
}
EXTERNAL_WORLD = {"baseline": (0.88, 0.88), "oversampling": (0.88, 0.87), "baseline_crop_gt": (0.93, 0.92),
                  "baseline_cascade": (0.92, 0.91), "oversampling_cascade": (0.93, 0.92)}
PROBE = {"outside": 0.95, "heart": 0.55}
PAPER_BREAKS = {   # claim → what changes (split, experiment) → values, or ("probe", view) → AUC
    "baseline_bias": {("test", "baseline"): (0.90, 0.93, 0.86)},
    "oversampling_no_gap": {("test", "oversampling"): (0.90, 0.85, 0.87)},
    "oversampling_raises_minority": {("test", "oversampling"): (0.90, 0.83, 0.87)},
    "oversampling_spares_majority": {("test", "oversampling"): (0.85, 0.85, 0.87)},
    "oversampling_raises_unseen": {("test", "oversampling"): (0.90, 0.90, 0.84)},
    "reweighting_lowers_minority": {("test", "reweighting"): (0.88, 0.87, 0.85)},
    "reweighting_lowers_majority": {("test", "reweighting"): (0.92, 0.84, 0.85)},
    "group_dro_raises_minority": {("test", "group_dro"): (0.90, 0.84, 0.86)},
    "group_dro_gap_remains": {("test", "group_dro"): (0.86, 0.90, 0.86)},
    "combinations_gap_remains": {("test", m): (0.86, 0.89, 0.86) for m in registry.COMBINATIONS},
    "best_combination": {("test", "oversampling_group_dro"): (0.89, 0.83, 0.86)},
    "combinations_shift": {("test", m): (0.91, 0.84, 0.86) for m in registry.COMBINATIONS},
    "crop_improves_both": {("test", "baseline_crop_gt"): (0.88, 0.83, 0.89)},
    "crop_narrows_gap": {("test", "baseline_crop_gt"): (0.92, 0.85, 0.89)},
    "crop_oversampling_above": {("test", "oversampling_crop_gt"): (0.93, 0.87, 0.9)},
    "cascade_beats_crop": {("test", f"{m}_cascade"): (0.85, 0.80, 0.8) for m in registry.PAPER4},
    "cascade_oversampling_narrows": {("test", "oversampling_cascade"): (0.95, 0.90, 0.93)},
    "cascade_no_tradeoff": {("test", "oversampling_cascade"): (0.88, 0.80, 0.93)},
    "external_no_bias": {("external", "baseline"): (0.92, 0.84)},
    "external_oversampling_no_help": {("external", "oversampling"): (0.88, 0.89)},
    "external_crop_improves": {("external", "baseline_crop_gt"): (0.86, 0.85),
                               ("external", "baseline_cascade"): (0.86, 0.85)},
    "external_cascade_oversampling": {("external", "oversampling_cascade"): (0.90, 0.89)},
    "root_cause_outside": {("probe", "outside"): 0.55, ("probe", "heart"): 0.95},
}


def paper_context(breaks: dict) -> Context:
    ids = [f"s{i}" for i in range(N * len(GROUPS))]
    groups = [g for g in GROUPS for _ in range(N)]
    subjects = pd.DataFrame({"subject_id": ids, "split": "test", "ethnicity": groups})
    data = SimpleNamespace(subjects=subjects, group_col="ethnicity", advantaged="White", minority="Black",
                           params={"seed": 0, "seeds": len(SEEDS)})
    ctx = Context(data, n_boot=BOOT)
    for split, world, names in (("test", PAPER_WORLD, GROUPS), ("external", EXTERNAL_WORLD, GROUPS[:2])):
        runs = {}
        for exp, values in world.items():
            values = breaks.get((split, exp), values)
            table = dict(zip(names, values))
            runs[exp] = {s: subject_scores(ids, groups, lambda g: table.get(g, np.nan), s) for s in SEEDS}
        ctx.cache[("evidence", split, None)] = Evidence.from_scores(runs, subjects, "ethnicity", ["White", "Black"], n_boot=BOOT)
        if split == "test":
            for g in GROUPS[2:]:
                ctx.cache[("evidence", split, (g,))] = Evidence.from_scores(runs, subjects, "ethnicity", [g], n_boot=BOOT)
    probe = {**PROBE, **{view: v for (kind, view), v in breaks.items() if kind == "probe"}}
    ctx.cache["probe"] = pd.DataFrame({"view": list(probe), "auc": list(probe.values())})
    return ctx


# ---- the 2021 study --------------------------------------------------------------------------------------
RACES = ("White", "Black", "Mixed", "Asian", "Chinese", "Other")
WORLD_2021 = {   # approach → mean DSC per race (the study's Table 2 in shape)
    "baseline": (0.93, 0.85, 0.84, 0.89, 0.88, 0.86),
    "stratified": (0.91, 0.88, 0.87, 0.89, 0.885, 0.875),
    "fair_meta_learning": (0.915, 0.87, 0.865, 0.89, 0.885, 0.87),
    "protected_group_models": (0.90, 0.885, 0.88, 0.89, 0.885, 0.88),
    "balanced_database": (0.87, 0.865, 0.862, 0.868, 0.866, 0.864),
}
SEX_2021 = {"M": 0.88, "F": 0.88}
BREAKS_2021 = {
    "race_bias": {"baseline": (0.86, 0.90, 0.91, 0.89, 0.88, 0.86)},
    "no_sex_bias": {"sex": {"M": 0.90, "F": 0.84}},
    "all_reduce": {"stratified": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86),
                   "fair_meta_learning": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86),
                   "protected_group_models": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86)},
    "group_models_fairest": {"protected_group_models": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86)},
    "stratified_best_blind": {"stratified": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86)},
    "balanced": {"balanced_database": (0.95, 0.82, 0.81, 0.89, 0.88, 0.86)},
}


def context_2021(breaks: dict) -> Context:
    ids = [f"p{i}" for i in range(N * len(RACES))]
    races = [g for g in RACES for _ in range(N)]
    sexes = ["M" if i % 2 else "F" for i in range(len(ids))]
    world = {**WORLD_2021, **{k: v for k, v in breaks.items() if k != "sex"}}
    sex_world = breaks.get("sex", SEX_2021)
    scores = {a: subject_scores(ids, races, lambda g, t=dict(zip(RACES, v)): t[g], 0,
                                {"ethnicity": races, "sex": sexes}) for a, v in world.items()}
    by_sex = {"baseline": subject_scores(ids, sexes, lambda s: sex_world[s], 0, {"sex": sexes})}
    ctx = Context(SimpleNamespace(params={"seed": 0}), n_boot=BOOT)
    ctx.cache[("means2021", None, ("baseline",))] = GroupMeans({"baseline": scores["baseline"]}, "ethnicity", RACES, n_boot=BOOT)
    ctx.cache[("means2021", None, tuple(registry._APPROACHES))] = GroupMeans(scores, "ethnicity", RACES, n_boot=BOOT)
    ctx.cache[("means2021", "sex", ("baseline",))] = GroupMeans(by_sex, "sex", ["M", "F"], n_boot=BOOT)
    return ctx


# ---- the 2022 study --------------------------------------------------------------------------------------
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
MINORITY_2022 = {0.0: 0.92, 0.25: 0.953, 0.5: 0.965, 0.75: 0.97, 1.0: 0.97}   # Black (or Asian) by its share
WHITE_2022 = {0.0: 0.953, 0.25: 0.953, 0.5: 0.952, 0.75: 0.951, 1.0: 0.93}
BREAKS_2022 = {   # claim → a change of the world: {"exp1": {...}} or {(exp, share): (minority, White)}
    "no_sex_bias": {"women": -0.05},
    "black_above_white_within_sex": {"exp1": (0.95, 0.96)},
    "race_bias_2": {(2, 0.0): (0.96, 0.95)},
    "first_quarter_2": {(2, 0.25): (0.90, 0.99)},
    "parity_2": {(2, 0.25): (0.90, 0.953)},
    "balanced_above_2": {(2, 0.5): (0.94, 0.952)},
    "rises_2": {(2, 1.0): (0.90, 0.93)},
    "best_2": {(2, 0.25): (0.99, 0.99)},
    "race_bias_3": {(3, 0.0): (0.96, 0.95)},
    "first_quarter_3": {(3, 0.25): (0.90, 0.99)},
    "parity_3": {(3, 0.25): (0.90, 0.953)},
    "balanced_above_3": {(3, 0.5): (0.94, 0.952)},
    "rises_3": {(3, 1.0): (0.90, 0.93)},
    "best_3": {(3, 0.25): (0.99, 0.99)},
    "lvm_largest": {"lvm": 0.2},
}


def sweep_scores(breaks: dict) -> pd.DataFrame:
    """Hand-made sweep results in the shape of :func:`cmrlib.studies.lee2022.study.sweep`: per experiment, share and seed,
    every test subject's DSC, and per structure (the LV myocardium carries the race difference twice over)."""
    lvm = breaks.get("lvm", 2.0)
    rows, per = [], []
    for exp, race in ((1, "Black"), (2, "Black"), (3, "Asian")):
        cells = [(r, s) for r in (race, "White") for s in ("F", "M")]
        ids = [f"e{exp}{r}{s}{i}" for r, s in cells for i in range(N)]
        eth = [r for r, s in cells for _ in range(N)]
        sex = [s for r, s in cells for _ in range(N)]
        for share in SHARES:
            if exp == 1:
                mi, wh = breaks.get("exp1", (0.96, 0.95))
            else:
                mi, wh = breaks.get((exp, share), (MINORITY_2022[share], WHITE_2022[share]))
            women = breaks.get("women", 0.0) if exp == 1 else 0.0
            for seed in SEEDS[:1]:
                base = subject_scores(ids, list(zip(eth, sex)), lambda g: (mi if g[0] != "White" else wh)
                                      + (women if g[1] == "F" else 0.0), seed + int(100 * share) + 7 * exp,
                                      {"sex": sex, "ethnicity": eth})
                rows.append(base.assign(exp=exp, share=share, seed=seed))
                for k in STRUCTURES:
                    scale = lvm if k == "LVM" else 1.0
                    mean = wh if exp > 1 else (mi + wh) / 2
                    per.append(base.assign(dsc=mean + scale * (base.dsc - mean), structure=k, frame="ED", hd=1.0, empty=False,
                                           split="test", exp=exp, share=share, seed=seed))
    scores = pd.concat(rows, ignore_index=True)
    scores.attrs["per_structure"] = pd.concat(per, ignore_index=True)
    return scores


def context_2022(breaks: dict) -> Context:
    params = {"seed": 0, "study2022": {"shares": list(SHARES), "seeds": [0]},
              "cohort": {"spec": "data_manifest/synthetic_cohort.yaml"}}
    ctx = Context(SimpleNamespace(params=params), n_boot=BOOT)
    ctx.cache["sweep2022"] = sweep_scores(breaks)
    return ctx


# ---- the 2022 study's clinical measures ------------------------------------------------------------------------
def _errors(col, groups, value_of):
    """GroupMeans of a measure's error per share: ``value_of(share, group)`` the group's mean error."""
    from cmrlib.studies.lee2022.study import share_key
    ids = [f"c{i}" for i in range(N * len(groups))]
    labels = [g for g in groups for _ in range(N)]
    by = {share_key(sh): subject_scores(ids, labels, lambda g, sh=sh: value_of(sh, g), 0, {col: labels})
          .rename(columns={"dsc": "error"}) for sh in SHARES}
    return GroupMeans(by, col, list(groups), value="error", n_boot=BOOT)


BREAKS_CLINICAL = {"clinical_no_bias": {"lvef_gap": 8.0}, "rvesv_women": {"rvesv_women": 3.0},
                   "lvesv_representation": {"lvesv_flip": -1}, "lvef_lowest_balanced": {"lvef_half": 3.0}}


def context_clinical(breaks: dict) -> Context:
    gap, women, flip, half = (breaks.get(k, d) for k, d in (("lvef_gap", 0.0), ("rvesv_women", -3.0),
                                                            ("lvesv_flip", 1), ("lvef_half", 0.1)))
    ctx = Context(SimpleNamespace(params={"seed": 0, "study2022": {"shares": list(SHARES), "seeds": [0]}}), n_boot=BOOT)
    race = ("Black", "White")
    ctx.cache[("errors2022", 2, "LVEF", "ethnicity", race)] = _errors(
        "ethnicity", race, lambda sh, g: (half if sh == 0.5 else 2.0) + (gap if g == "Black" else 0.0))
    ctx.cache[("errors2022", 1, "RVESV", "sex", ("F", "M"))] = _errors(
        "sex", ("F", "M"), lambda sh, g: women if g == "F" else 0.0)
    ctx.cache[("errors2022", 2, "LVESV", "ethnicity", race)] = _errors(
        "ethnicity", race, lambda sh, g: flip * (5.0 if sh == 0.0 else -5.0 if sh == 1.0 else 0.0))
    return ctx


# ---- generative debiasing ----------------------------------------------------------------------------------
WORLD_2024 = {"baseline": (0.90, 0.85), "oversampling": (0.90, 0.88), "synthetic_uniform": (0.90, 0.87),
              "synthetic_pool": (0.90, 0.90), "lowres_real_pool": (0.90, 0.88)}
BREAKS_2024 = {"minority_gain": {"synthetic_uniform": (0.90, 0.83)},
               "disparity_reduction": {"synthetic_uniform": (0.90, 0.83)},
               "adds_to_oversampling": {"synthetic_pool": (0.90, 0.86)},
               "beyond_real_slices": {"synthetic_pool": (0.90, 0.86)}}


def context_2024(breaks: dict, monkeypatch) -> Context:
    monkeypatch.setattr(registry, "_synthetic", lambda c, mix, source="generated":
                        f"{'synthetic' if source == 'generated' else 'lowres_real'}_{mix}")
    ids = [f"g{i}" for i in range(2 * N)]
    groups = ["White"] * N + ["Black"] * N
    subjects = pd.DataFrame({"subject_id": ids, "ethnicity": groups})
    runs = {n: {0: subject_scores(ids, groups, lambda g, t=dict(zip(("White", "Black"), breaks.get(n, v))): t[g], 0)}
            for n, v in WORLD_2024.items()}
    ctx = Context(SimpleNamespace(params={"seed": 0}), n_boot=BOOT)
    ctx.cache["ev2024"] = Evidence.from_scores(runs, subjects, "ethnicity", ["White", "Black"], n_boot=BOOT)
    return ctx


# ---- the tests -------------------------------------------------------------------------------------------------
CASES = {**{f"lee2025.{k}": ("paper", v) for k, v in PAPER_BREAKS.items()},
         **{f"puyol2021.{k}": ("2021", v) for k, v in BREAKS_2021.items()},
         **{f"lee2022.{k}": ("2022", v) for k, v in BREAKS_2022.items()},
         **{f"lee2022.{k}": ("clinical", v) for k, v in BREAKS_CLINICAL.items()},
         **{f"skorupko2024.{k}": ("2024", v) for k, v in BREAKS_2024.items()}}
# claims the cohort's design decides: their status never flips, the measurement they carry does (tested below)
BY_DESIGN = {"lee2025.external_no_bias", "lee2022.race_bias_3", "puyol2021.share"}


def verdict(claim_id: str, world: str, breaks: dict, monkeypatch):
    make = {"paper": paper_context, "2021": context_2021, "2022": context_2022, "clinical": context_clinical,
            "2024": lambda b: context_2024(b, monkeypatch)}[world]
    return judge(registry.REGISTRY[claim_id], make(breaks))


def test_every_claim_has_a_flip_case():
    missing = set(registry.REGISTRY) - set(CASES) - {"puyol2021.share"}
    assert not missing, f"claims without a case where they hold and one where they fail: {sorted(missing)}"


@pytest.mark.parametrize("claim_id", sorted(CASES))
def test_the_verdict_flips(claim_id, monkeypatch):
    world, breaks = CASES[claim_id]
    holds = verdict(claim_id, world, {}, monkeypatch)
    fails = verdict(claim_id, world, breaks, monkeypatch)
    if claim_id in BY_DESIGN:
        assert holds.status == fails.status == "decided by design"
        assert "(reproduced by its rule)" in holds.detail, holds.detail
        assert "(reproduced by its rule)" not in fails.detail, fails.detail
    else:
        assert holds.status == "reproduced", f"{claim_id} where it should hold: {holds}"
        assert fails.status in ("not reproduced", "partly reproduced", "not testable"), f"{claim_id}: {fails}"
        assert np.isfinite(holds.ours) and holds.seeds >= 1
