"""The claims registry: the verdict rules on hand-made results, seeds pooled on one bootstrap, the registry's
refusals, and read-only judging."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cmrlib.claims import registry
from cmrlib.claims import rules as claims
from cmrlib.claims.rules import Claim, Context
from cmrlib.errors import InputError
from cmrlib.evaluation.verdicts import (
    Estimate,
    Verdict,
    all_of,
    by_design,
    direction,
    most_often_best,
    no_effect,
    significant,
)
from cmrlib.runs import evidence
from cmrlib.runs.evidence import Evidence
from cmrlib.runs.store import NotInStore, read_only


def est(per_seed, low, high):
    vals = list(per_seed)
    return Estimate(dict(enumerate(vals)), float(np.median(vals)), low, high)


def test_significance_rule_holds_partly_fails():
    assert significant(est([0.05, 0.04, 0.06], 0.02, 0.08), +1, "gap").status == "reproduced"
    assert significant(est([0.05, 0.04, 0.06], -0.01, 0.08), +1, "gap").status == "partly reproduced"
    assert significant(est([0.05, -0.01, 0.06], 0.01, 0.08), +1, "gap").status == "partly reproduced"  # one seed off
    assert significant(est([-0.05, -0.04], -0.08, -0.02), +1, "gap").status == "not reproduced"
    assert significant(est([-0.05, -0.04], -0.08, -0.02), -1, "change").status == "reproduced"


def test_direction_needs_every_seed():
    assert direction(est([0.1, 0.2, 0.3], -1, 1), +1, "x").status == "reproduced"
    assert direction(est([0.1, -0.2, 0.3], -1, 1), +1, "x").status == "partly reproduced"
    assert direction(est([-0.1, -0.2], -1, 1), +1, "x").status == "not reproduced"


def test_no_effect_needs_the_interval_inside_the_margin():
    assert no_effect(est([0.001], -0.01, 0.012), 0.025, "gap").status == "reproduced"
    assert no_effect(est([0.01], -0.01, 0.04), 0.025, "gap").status == "not testable"      # too wide to decide
    assert no_effect(est([0.05], 0.02, 0.08), 0.025, "gap").status == "not reproduced"
    assert no_effect(est([-0.015], -0.023, -0.007), 0.025, "change").status == "not reproduced"  # small, but not zero


def test_combined_claims():
    ok, bad, wide = Verdict("reproduced", "a"), Verdict("not reproduced", "b"), Verdict("not testable", "c")
    assert all_of([ok, ok]).status == "reproduced"
    assert all_of([ok, bad]).status == "partly reproduced"
    assert all_of([bad, bad]).status == "not reproduced"
    assert all_of([wide, wide]).status == "not testable"
    assert all_of([ok, wide]).status == "partly reproduced"
    with pytest.raises(ValueError):
        Verdict("maybe", "x")


def test_most_often_best_needs_the_threshold():
    assert most_often_best({"75 %": 0.6, "50 %": 0.4}, "75 %", "the share", 1).status == "reproduced"
    assert most_often_best({"75 %": 0.4, "50 %": 0.3, "25 %": 0.3}, "75 %", "the share", 1).status == "partly reproduced"
    assert most_often_best({"75 %": 0.2, "50 %": 0.8}, "75 %", "the share", 1).status == "not reproduced"
    assert most_often_best({"75 %": 0.0, "50 %": 1.0}, "75 %", "the share", 1).ours == 0


def test_by_design_keeps_the_measurement():
    v = by_design("set by the spec.", Verdict("reproduced", "gap 0.01", 0.01, 0.0, 0.02, 3))
    assert v.status == "decided by design" and v.seeds == 3 and v.low == 0.0
    assert "set by the spec." in v.detail and "(reproduced by its rule)" in v.detail
    assert by_design("set.").detail == "set."


def test_margin_is_half_the_papers_baseline_gap():
    assert claims.equivalence_margin() == pytest.approx(0.5 * claims.paper_value(claims.INTERNAL, "4", "baseline",
                                                                                   "Fairness gap"))


def test_registry_refuses_unknown_experiments_studies_and_duplicates():
    rule = lambda c: Verdict("reproduced", "x")      # noqa: E731
    with pytest.raises(InputError, match="no_such_method"):
        registry.register(Claim("lee2025.x", "02", "t", "w", ("no_such_method",), rule))
    with pytest.raises(InputError, match="study"):
        registry.register(Claim("nobody2020.x", "02", "t", "w", ("baseline",), rule))
    with pytest.raises(InputError, match="twice"):
        registry.register(Claim("lee2025.baseline_bias", "02", "t", "w", ("baseline",), rule))
    assert all(c.experiments for c in registry.REGISTRY.values())
    assert {c.study for c in registry.REGISTRY.values()} >= {"lee2025", "puyol2021", "lee2022"}


def test_every_claims_paper_value_is_read():
    for c in registry.REGISTRY.values():
        if c.paper is not None:
            assert np.isfinite(c.paper()), c.id


def test_training_seeds_refuse_bad_counts():
    assert evidence.training_seeds({"seed": 4, "seeds": 3}) == [4, 5, 6]
    assert evidence.training_seeds({"seed": 0}) == [0]
    for bad in (0, True, 2.5):
        with pytest.raises(InputError, match="seeds"):
            evidence.training_seeds({"seed": 0, "seeds": bad})


# ---- Evidence on hand-made results -------------------------------------------------------------------------
def fake_data(seeds=3, n=(12, 8)):
    ids = [f"w{i}" for i in range(n[0])] + [f"b{i}" for i in range(n[1])]
    subjects = pd.DataFrame({"subject_id": ids, "split": "test", "ethnicity": ["White"] * n[0] + ["Black"] * n[1]})
    return SimpleNamespace(subjects=subjects, group_col="ethnicity", advantaged="White", minority="Black",
                           params={"seed": 0, "seeds": seeds})


def per_structure(dsc: dict) -> pd.DataFrame:
    rows = [dict(subject_id=s, split="test", frame=f, structure=k, dsc=v, hd=1.0, empty=False)
            for s, v in dsc.items() for f in ("ED", "ES") for k in ("LVBP", "LVM", "RVBP")]
    return pd.DataFrame(rows)


@pytest.fixture
def fake_store(monkeypatch):
    """run_experiment replaced by a table of hand-made DSCs per (experiment, seed); a missing entry acts as a
    result the store lacks (raises NotInStore)."""
    table = {}

    def run(d, name, method, progress):
        key = (name, d[1])
        if key not in table:
            raise NotInStore(f"{name} seed {d[1]}")
        return per_structure(table[key])
    monkeypatch.setattr(evidence, "seeded", lambda data, s: (data, s))
    monkeypatch.setattr(evidence, "run_experiment", run)
    return table


def dsc_of(data, white, black, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    s = data.subjects
    return {sid: (white if g == "White" else black) + noise * rng.standard_normal()
            for sid, g in zip(s.subject_id, s.ethnicity)}


def test_evidence_pools_seeds_and_pairs_changes(fake_store):
    data = fake_data()
    for s, gap in zip((0, 1, 2), (0.10, 0.08, -0.01)):
        fake_store[("baseline", s)] = dsc_of(data, 0.9, 0.9 - gap, 0.01, s)
        fake_store[("oversampling", s)] = dsc_of(data, 0.9, 0.9 - gap, 0.01, s)    # the same model again
    ev = Evidence(data, train=True)
    g = ev.gap("baseline")
    assert g.seeds == 3 and g.per_seed[2] < 0 < g.per_seed[0]
    assert g.point == pytest.approx(np.median(list(g.per_seed.values())))
    assert direction(g, +1, "gap").status == "partly reproduced"       # one seed of three goes the other way
    same = ev.change("oversampling", "baseline")
    assert same.point == 0 and same.low == 0 and same.high == 0       # paired on one draw: identical runs give 0


def test_unseeded_experiments_use_the_profiles_seed_and_missing_seeds_are_skipped(fake_store):
    data = fake_data()
    fake_store[("oversampling_group_dro", 0)] = dsc_of(data, 0.9, 0.85)
    fake_store[("baseline", 0)] = dsc_of(data, 0.9, 0.8)
    fake_store[("baseline", 2)] = dsc_of(data, 0.9, 0.82)
    assert list(evidence.seed_runs(data, "oversampling_group_dro")) == [0]
    assert list(evidence.seed_runs(data, "baseline")) == [0, 2]         # seed 1 not stored
    with pytest.raises(NotInStore):
        evidence.seed_runs(data, "group_dro")


def test_judge_reports_not_run_when_the_store_lacks_an_experiment(fake_store):
    data = fake_data()
    v = claims.judge(registry.REGISTRY["lee2025.baseline_bias"], Context(data))
    assert v.status == "not run" and "baseline" in v.detail
    fake_store[("baseline", 0)] = dsc_of(data, 0.92, 0.80, 0.005)
    v = claims.judge(registry.REGISTRY["lee2025.baseline_bias"], Context(data))
    assert v.status == "reproduced" and v.seeds == 1 and v.low > 0     # judged on the seeds the store holds


def test_read_only_refuses_to_compute(tmp_path):
    from cmrlib.runs.experiments import stored_metrics
    calls = []
    with read_only():
        with pytest.raises(NotInStore, match="metrics"):
            stored_metrics(tmp_path / "run", lambda: calls.append(1))
    assert not calls
    df = stored_metrics(tmp_path / "run", lambda: pd.DataFrame({"subject_id": ["1"], "dsc": [0.5]}))
    with read_only():
        assert stored_metrics(tmp_path / "run", lambda: calls.append(1)).dsc.iloc[0] == 0.5
    assert not calls and len(df) == 1
