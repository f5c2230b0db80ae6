"""The 2022 study (chapters 15–16): exact training shares, a fixed test set, clinical measures by hand, folds
that keep subjects whole, ensembles, Holm's correction."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from cmrlib.data.curation import CurationError, proportion_split
from cmrlib.evaluation.clinical import cardiac_measures, errors, measures_table
from cmrlib.studies.lee2022.study import EXPERIMENTS, holm


def cohort(n_cell: int = 40) -> pd.DataFrame:
    rows = []
    for g in ("White", "Black", "Asian"):
        for sex in ("F", "M"):
            rows += [dict(subject_id=f"{g}{sex}{i}", ethnicity=g, sex=sex, site="internal") for i in range(n_cell)]
    rows += [dict(subject_id=f"X{i}", ethnicity="Black", sex="F", site="external") for i in range(3)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("exp", [1, 2, 3])
def test_shares_are_exact_and_the_test_set_is_fixed(exp):
    e = EXPERIMENTS[exp]
    subjects = cohort()
    tests = []
    for share in (0, 0.25, 0.5, 0.75, 1.0):
        df = proportion_split(subjects, e["attr"], e["pair"], share, e["control"], e["control_pair"], 24, 16, seed=3)
        tr, te = df[df.split == "train"], df[df.split == "test"]
        assert len(tr) == 24 and len(te) == 16
        n_first = int((tr[e["attr"]] == e["pair"][0]).sum())
        assert n_first == round(share * 24)
        for a in e["pair"]:
            sub = tr[tr[e["attr"]] == a]
            counts = sub[e["control"]].value_counts()
            assert abs(counts.get(e["control_pair"][0], 0) - counts.get(e["control_pair"][1], 0)) <= 1
        cells = te.groupby([e["attr"], e["control"]]).size()
        assert len(cells) == 4 and (cells == 4).all()
        assert not set(tr.subject_id) & set(te.subject_id)
        assert (df[df.site == "external"].split == "external").all()
        tests.append(sorted(te.subject_id))
    assert all(t == tests[0] for t in tests)


@pytest.mark.parametrize("n_test", [16, 18])
def test_experiments_1_and_2_share_one_test_set(n_test):
    """The study tests Experiments 1 and 2 on one set: the same four race × sex cells, whichever is swept."""
    subjects = cohort()
    sets = []
    for exp in (1, 2):
        e = EXPERIMENTS[exp]
        df = proportion_split(subjects, e["attr"], e["pair"], 0.5, e["control"], e["control_pair"], 24, n_test, seed=3)
        sets.append(sorted(df[df.split == "test"].subject_id))
    assert sets[0] == sets[1] and len(sets[0]) == n_test


def sweep_scores(seeds=(0,)) -> pd.DataFrame:
    """Hand-made sweep results of Experiment 1 at one share: Black above White by 0.02 within each sex."""
    rows = []
    for seed in seeds:
        for race, base in (("Black", 0.95), ("White", 0.93)):
            for sex in ("F", "M"):
                for i in range(6):
                    rows.append(dict(subject_id=f"{race}{sex}{i}", ethnicity=race, sex=sex, exp=1, share=0.5,
                                     seed=seed, dsc=base + 0.003 * i))
    return pd.DataFrame(rows)


def test_table3_compares_the_races_within_each_sex_and_counts_a_subject_once():
    from cmrlib.studies.lee2022.study import intersectional
    one, three = intersectional(sweep_scores()), intersectional(sweep_scores((0, 1, 2)))
    assert list(one.within) == ["F", "M"] and set(one["group 1"]) == {"Black"} and set(one["group 2"]) == {"White"}
    assert one.difference.tolist() == pytest.approx([0.02, 0.02])
    assert (one.low > 0).all() and (one["n 1"] == 6).all()
    # three identical seeds are the same subjects three times: the same p and n, not three times the evidence
    assert three.p.tolist() == pytest.approx(one.p.tolist()) and (three["n 1"] == 6).all()
    assert (three.seeds == 3).all()


def test_a_cell_too_small_is_named():
    subjects = cohort(n_cell=10)
    e = EXPERIMENTS[3]
    with pytest.raises(CurationError, match=r"ethnicity=Asian, sex=F: 10 subjects, 4 test and 12 training"):
        proportion_split(subjects, e["attr"], e["pair"], 1.0, e["control"], e["control_pair"], 24, 16, seed=0)


def test_clinical_measures_by_hand_with_anisotropic_spacing():
    ed = np.zeros((4, 10, 10), np.uint8)
    es = np.zeros_like(ed)
    ed[1:3, 2:6, 2:6] = 1          # 2 × 4 × 4 = 32 voxels of LV blood pool
    ed[1:3, 6:8, 2:6] = 2          # 16 voxels of myocardium
    ed[0:4, 0:2, 0:5] = 3          # 40 voxels of RV blood pool
    es[1:3, 3:5, 3:5] = 1          # 8 voxels
    es[0:4, 0:1, 0:5] = 3          # 20 voxels
    spacing = (8.0, 1.5, 2.0)      # slice spacing 8 mm, pixels 1.5 × 2 mm: one voxel is 0.024 ml
    m = cardiac_measures(ed, es, spacing)
    v = 8.0 * 1.5 * 2.0 / 1000
    assert m["LVEDV"] == pytest.approx(32 * v) and m["LVESV"] == pytest.approx(8 * v)
    assert m["LVEF"] == pytest.approx(75.0) and m["RVEF"] == pytest.approx(50.0)
    assert m["LVM"] == pytest.approx(16 * v * 1.05)
    assert m["RVEDV"] == pytest.approx(40 * v) and m["note"] == ""


def test_ef_of_an_empty_ed_mask_is_nan_with_a_reason():
    ed = np.zeros((2, 5, 5), np.uint8)
    es = ed.copy()
    es[0, 1, 1] = 1
    m = cardiac_measures(ed, es, (1, 1, 1))
    assert math.isnan(m["LVEF"]) and math.isnan(m["RVEF"])
    assert "LVEF undefined: no LV blood pool at ED" in m["note"] and "RVEF" in m["note"]
    assert not any(math.isinf(v) for k, v in m.items() if k != "note")


def test_errors_are_predicted_minus_true():
    ed = np.zeros((2, 6, 6), np.uint8)
    ed[:, 1:4, 1:4] = 1
    es = np.zeros_like(ed)
    es[:, 2:3, 2:4] = 1
    true = measures_table([("a", ed, es, (1, 1, 1))])
    pred = measures_table([("a", ed, np.zeros_like(es), (1, 1, 1))])
    err = errors(pred, true).set_index("measure")
    assert err.loc["LVESV", "error"] == pytest.approx(-4 / 1000)
    assert "RVEF" not in err.index          # undefined in both: left out, not a zero error


def test_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    q = holm(p)
    # sorted 0.01, 0.03, 0.04, 0.2 with m = 4: 0.04, 0.09, max(0.09, 0.08) = 0.09, max(0.09, 0.2) = 0.2
    assert q[0] == pytest.approx(0.04) and q[2] == pytest.approx(0.09) and q[1] == pytest.approx(0.09)
    assert q[4] == pytest.approx(0.2) and np.isnan(q[3])


def test_folds_keep_subjects_whole(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.studies.lee2022.ensemble import fold_data, fold_of
    data = prepare_data(tiny_params, progress=False)
    train = data.ids("train")
    folds = fold_of(train, 3, seed=0)
    sizes = pd.Series(folds).value_counts()
    assert sizes.max() - sizes.min() <= 1 and set(folds) == set(train)
    held = set()
    for f in range(3):
        d = fold_data(data, 3, f)
        out = set(d.subjects.subject_id[d.subjects.split == "held_out"])
        assert out == {s for s, k in folds.items() if k == f}
        assert not out & set(d.ids("train")) and not out & held
        held |= out
        # every slice of a held-out subject (ED and ES) leaves training together
        images, _, _ = d.train_arrays()
        assert len(images) == len(data.cache.slices_of(d.ids("train")))
    assert held == set(train)


def test_an_ensemble_of_identical_models_equals_one_model():
    from cmrlib.runs.experiments import segment
    from cmrlib.studies.lee2022.ensemble import segment_ensemble
    from cmrlib.training.models import build_network
    torch.manual_seed(0)
    m = build_network("unet", (4, 8)).eval()
    x = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    params = {"evaluation": {"batch_size": 2}}
    assert np.array_equal(segment_ensemble([m, m, m], x, params), segment(m, x, params))


def test_a_shared_ef_error_is_not_a_group_difference():
    from cmrlib.evaluation.clinical import gap_and_error
    rows = []
    for m, (w, b) in {"same": (-5.0, -5.0), "apart": (-1.0, -6.0)}.items():
        for g, e in (("White", w), ("Black", b)):
            for meas in ("LVEF", "RVEF"):
                rows.append(dict(method=m, measure=meas, ethnicity=g, error=e))
    t = gap_and_error(pd.DataFrame(rows), {"same": 0.0, "apart": 0.05}, "ethnicity", "White", "Black", 2.5)
    assert not t.loc["same", "relevant EF difference"] and t.loc["apart", "relevant EF difference"]
    assert t.loc["apart", "LVEF difference"] == pytest.approx(-5.0)
    # constant errors: the bootstrap interval of the difference collapses onto it
    assert t.loc["apart", "LVEF difference low"] == pytest.approx(-5.0) == t.loc["apart", "LVEF difference high"]


def test_mean_difference_interval_covers_the_difference_and_excludes_zero_when_apart():
    from cmrlib.evaluation.stats import bootstrap_gap
    rng = np.random.default_rng(0)
    a, b = rng.normal(2.0, 1.0, 60), rng.normal(0.0, 1.0, 60)
    lo, hi = bootstrap_gap(a, b, stat=np.mean)
    assert lo < a.mean() - b.mean() < hi and lo > 0
    assert np.isnan(bootstrap_gap([], b, stat=np.mean)[0])
