"""The 2021 study (chapters 13–14): its split, balanced database, six-group batches, fair meta-learning,
protected-group models, Table 1's tests and Table 2's SD and SER."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from cmrlib import ETHNICITIES
from cmrlib.data.curation import CurationError, balanced_train, present_groups, split_natural
from cmrlib.errors import InputError
from cmrlib.evaluation.fairness import group_sd, group_table
from cmrlib.evaluation.stats import scheffe_vs_total
from cmrlib.training.sampling import stratified_sampler

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def cohort(counts: dict, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, n in counts.items():
        for i in range(n):
            rows.append(dict(subject_id=f"{g}{i:03d}", ethnicity=g, sex="M" if rng.random() < 0.5 else "F",
                             site="internal"))
    rows += [dict(subject_id=f"X{i}", ethnicity="Black", sex="F", site="external") for i in range(3)]
    return pd.DataFrame(rows)


def test_natural_split_keeps_each_cell_in_its_fractions():
    subjects = cohort({"White": 200, "Black": 30, "Mixed": 11, "Chinese": 7})
    df = split_natural(subjects, FRACTIONS, seed=1)
    assert (df[df.site == "external"].split == "external").all()
    for (_, _), cell in df[df.site == "internal"].groupby(["ethnicity", "sex"]):
        n = len(cell)
        counts = cell.split.value_counts()
        assert counts.get("test", 0) == (math.ceil(n * 0.1) if n > 1 else 0)
        assert counts.get("val", 0) == math.floor(n * 0.1)
        assert counts.get("train", 0) == n - counts.get("test", 0) - counts.get("val", 0)
    # every group with two or more subjects has test subjects, and the split is seeded
    assert set(df[df.split == "test"].ethnicity) == {"White", "Black", "Mixed", "Chinese"}
    assert df.split.tolist() == split_natural(subjects, FRACTIONS, seed=1).split.tolist()
    with pytest.raises(CurationError, match="sum to 1"):
        split_natural(subjects, {"train": 0.8, "val": 0.1, "test": 0.2}, seed=1)


def test_balanced_database_counts_per_group_and_sex():
    subjects = split_natural(cohort({"White": 300, "Black": 40, "Mixed": 25, "Asian": 30}), FRACTIONS, seed=0)
    bal = balanced_train(subjects, seed=0)
    train = bal[bal.split == "train"]
    cells = subjects[subjects.split == "train"].groupby(["ethnicity", "sex"]).size()
    per_cell = train.groupby(["ethnicity", "sex"]).size()
    assert (per_cell == cells.min()).all() and len(per_cell) == len(cells)
    assert (bal.split == "unused").sum() == (subjects.split == "train").sum() - len(train)
    assert bal[bal.split == "test"].subject_id.tolist() == subjects[subjects.split == "test"].subject_id.tolist()


def test_balanced_database_names_a_group_too_small():
    subjects = split_natural(cohort({"White": 50, "Black": 20}), FRACTIONS, seed=0)
    subjects.loc[(subjects.ethnicity == "Black") & (subjects.sex == "F"), "split"] = "test"
    with pytest.raises(CurationError, match=r"ethnicity=Black, sex=F: 0"):
        balanced_train(subjects, seed=0)
    assert isinstance(CurationError("x"), InputError)


def test_missing_groups_are_named_and_the_rest_go_on():
    subjects = cohort({"White": 40, "Black": 10, "Asian": 10})
    present, missing = present_groups(subjects, "ethnicity", ETHNICITIES)
    assert present == ["White", "Asian", "Black"] and missing == ["Mixed", "Chinese", "Other"]
    df = split_natural(subjects, FRACTIONS, seed=0)
    assert set(df.ethnicity[df.split == "train"]) == set(present)


def test_six_group_stratified_batches_are_exact():
    groups = np.repeat(list(ETHNICITIES), [500, 7, 13, 40, 3, 9])
    sampler = stratified_sampler(groups)
    gen = torch.Generator().manual_seed(0)
    n_batches, bs = 3000, 32
    totals = {g: 0 for g in ETHNICITIES}
    for _ in range(n_batches):
        idx = sampler.sample(bs, gen).numpy()
        assert len(idx) == bs
        got = pd.Series(groups[idx]).value_counts()
        for g in ETHNICITIES:
            assert got.get(g, 0) in (5, 6)          # floor or ceil of 32 / 6
            totals[g] += got.get(g, 0)
    for g in ETHNICITIES:
        assert totals[g] / n_batches == pytest.approx(bs / 6, abs=0.05)


def test_scheffe_against_the_total_by_hand():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    groups = ["A"] * 3 + ["B"] * 3 + ["C"] * 3
    p = scheffe_vs_total(values, groups)
    # group A: ψ = 2 − 5 = −3; MSW = 6 / 6 = 1; Σc²/n = (2/3)²/3 + 2·3/81 = 2/9; F = 9 / (2/9) / (k − 1 = 2)
    assert p["A"] == pytest.approx(stats.f.sf(20.25, 2, 6))
    assert p["C"] == pytest.approx(p["A"])
    assert p["B"] == pytest.approx(1.0)


def test_scheffe_against_the_unweighted_mean_by_hand():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    groups = ["A"] * 6 + ["B"] * 3 + ["C"] * 3          # means 3.5, 8, 11: unweighted mean 7.5, weighted 6.5
    p = scheffe_vs_total(values, groups, reference="unweighted")
    msw = (17.5 + 2 + 2) / 9
    # group A: ψ = 3.5 − 7.5 = −4; Σc²/n = (2/3)²/6 + (1/3)²/3 · 2 = 2/27 + 2/27 = 4/27
    assert p["A"] == pytest.approx(stats.f.sf(16 / (msw * 4 / 27) / 2, 2, 9))
    assert p["B"] > 3 * scheffe_vs_total(values, groups)["B"]        # B (8) is near 7.5, farther from 6.5
    with pytest.raises(ValueError, match="reference"):
        scheffe_vs_total(values, groups, reference="median")


def per_structure(avg_by_group: dict, n: int | dict = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, mu in avg_by_group.items():
        for i in range(n if isinstance(n, int) else n[g]):
            sid, sex = f"{g}{i}", "M" if i % 2 else "F"
            for fr in ("ED", "ES"):
                for s in ("LVBP", "LVM", "RVBP"):
                    rows.append(dict(subject_id=sid, frame=fr, structure=s, dsc=mu + rng.normal(0, 0.01), hd=1.0,
                                     empty=False, ethnicity=g, sex=sex, split="test"))
    return pd.DataFrame(rows)


def test_table1_marks_the_group_that_differs():
    from cmrlib.studies.puyol2021.study import dice_table
    ps = per_structure({"White": 0.93, "Black": 0.83, "Mixed": 0.88})     # Mixed sits at the overall mean
    t1 = dice_table(ps, "ethnicity", ["White", "Black", "Mixed"])
    assert t1.loc["Black", "sig"] == "*" and t1.loc["White", "sig"] == "*" and t1.loc["Mixed", "sig"] == ""
    subj = ps.groupby(["subject_id", "ethnicity"], as_index=False).dsc.mean()
    expect = stats.ttest_ind(subj.dsc[subj.ethnicity == "Black"], subj.dsc).pvalue
    assert t1.loc["Black", "t-test p"] == pytest.approx(expect)
    assert t1.loc["All subjects", "Avg"] == pytest.approx(100 * subj.dsc.mean())
    assert t1.loc["Male", "n"] + t1.loc["Female", "n"] == t1.loc["Total", "n"]
    # each row's mean lies inside its bootstrap interval, and the groups that differ do not overlap
    assert (t1["Avg low"] <= t1.Avg).all() and (t1.Avg <= t1["Avg high"]).all()
    assert t1.loc["Black", "Avg high"] < t1.loc["White", "Avg low"]


def test_table1_total_is_the_unweighted_mean_of_the_group_rows():
    """The study's Total equals the mean of its group rows, so the majority does not dominate it."""
    from cmrlib.studies.puyol2021.study import dice_table
    ps = per_structure({"White": 0.93, "Black": 0.83}, n={"White": 30, "Black": 6})
    t1 = dice_table(ps, "ethnicity", ["White", "Black"])
    assert t1.loc["Total", "Avg"] == pytest.approx(t1.loc[["White", "Black"], "Avg"].mean())
    subj = ps.groupby("subject_id").dsc.mean()
    assert t1.loc["All subjects", "Avg"] == pytest.approx(100 * subj.mean())
    assert t1.loc["All subjects", "Avg"] > t1.loc["Total", "Avg"] + 3       # the weighted mean leans to White
    assert t1.loc["Total", "Avg low"] < t1.loc["Total", "Avg"] < t1.loc["Total", "Avg high"]
    assert t1.loc["Total", "n"] == 36


def test_group_table_sd_and_ser_by_hand():
    means = {"White": 0.935, "Mixed": 0.845, "Asian": 0.889, "Black": 0.859, "Chinese": 0.876, "Other": 0.857}
    rows = [dict(subject_id=f"{g}{i}", ethnicity=g, dsc=m + d) for g, m in means.items() for i, d in
            enumerate((-0.01, 0.0, 0.01))]
    base = pd.DataFrame(rows)
    better = base.assign(dsc=base.dsc.where(base.ethnicity == "White", base.dsc + 0.03))
    t2 = group_table({"baseline": base, "other": better}, "ethnicity", ETHNICITIES, reference="baseline", n_boot=500)
    m = np.array(list(means.values()))
    assert t2.loc["baseline", "SD"] == pytest.approx(np.std(m, ddof=1))
    assert t2.loc["baseline", "SER"] == pytest.approx((1 - m).max() / (1 - m).min())
    assert t2.loc["baseline", "Avg"] == pytest.approx(m.mean())
    assert group_sd(base, "ethnicity") == pytest.approx(np.std(m, ddof=1))
    for k in ("SD", "SER"):
        assert t2.loc["baseline", f"{k} low"] <= t2.loc["baseline", k] <= t2.loc["baseline", f"{k} high"]
        assert t2.loc["baseline", f"Δ{k} low"] == t2.loc["baseline", f"Δ{k} high"] == 0
        assert t2.loc["other", f"Δ{k} high"] < 0        # raising every minority group narrows the spread


def test_group_table_over_seeds_takes_the_median_and_pairs_the_seeds():
    from cmrlib.evaluation.fairness import GroupMeans, sd
    rows = [dict(subject_id=f"{g}{i}", ethnicity=g, dsc=0.9 - 0.05 * k + 0.01 * i) for k, g in
            enumerate(("White", "Black", "Asian")) for i in range(5)]
    base = pd.DataFrame(rows)
    seeds = {0: base, 1: base.assign(dsc=base.dsc - 0.02 * (base.ethnicity != "White")),
             2: base.assign(dsc=base.dsc - 0.04 * (base.ethnicity != "White"))}
    gm = GroupMeans({"baseline": seeds, "same": seeds}, "ethnicity", ["White", "Black", "Asian"], n_boot=200)
    e = gm.estimate(sd, "baseline")
    assert sorted(e.per_seed) == [0, 1, 2] and e.seeds == 3
    assert e.point == pytest.approx(np.median([sd(gm.per_seed["baseline"][k][0]) for k in range(3)]))
    assert e.point == pytest.approx(e.per_seed[1])          # the spread grows with the seed: seed 1 is the median
    assert e.low <= e.point <= e.high
    d = gm.estimate(lambda a, b: sd(a) - sd(b), "same", "baseline")
    assert d.low == d.high == 0                             # identical approaches: every draw and seed paired
    one = GroupMeans({"baseline": {0: base}, "later": {1: seeds[1]}}, "ethnicity", ["White", "Black"], n_boot=50)
    with pytest.raises(ValueError, match="no training seed common"):
        one.estimate(lambda a, b: a - b, "baseline", "later")
    t2 = group_table({"baseline": seeds}, "ethnicity", ETHNICITIES, n_boot=200)
    assert t2.loc["baseline", "seeds"] == 3
    assert t2.loc["baseline", "SD"] == pytest.approx(e.point)


def test_group_table_goes_on_without_a_missing_group():
    rows = [dict(subject_id=f"{g}{i}", ethnicity=g, dsc=0.8 + 0.01 * i) for g in ("White", "Black", "Asian")
            for i in range(4)]
    t2 = group_table({"baseline": pd.DataFrame(rows)}, "ethnicity", ETHNICITIES, n_boot=50)
    assert [c for c in ETHNICITIES if c in t2.columns] == ["White", "Asian", "Black"]


def test_joint_loss_composes_and_the_classifier_sees_two_channels():
    from cmrlib.studies.puyol2021.metalearning import classifier_net, joint_loss
    from cmrlib.training.losses import LOSSES
    from cmrlib.training.models import build_network
    torch.manual_seed(0)
    seg, clf = build_network("unet", (4, 8)), classifier_net(3)
    seen = []
    first_conv = next(m for m in clf.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[1]))
    x, y, g = torch.randn(4, 1, 32, 32), torch.randint(0, 4, (4, 32, 32)), torch.tensor([0, 1, 2, 1])
    total, l_seg, l_cls = joint_loss(seg, clf, x, y, g, weight=0.3)
    assert seen == [2]
    assert float(total) == pytest.approx(float(l_seg) + 0.3 * float(l_cls), rel=1e-6)
    assert float(l_seg) == pytest.approx(float(LOSSES["dice_ce"](seg(x), y).mean()), rel=1e-6)
    l_cls.backward()          # the classifier's loss reaches the segmenter through the second channel
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in seg.parameters())


def test_routing_sends_each_subject_to_its_group_model():
    from cmrlib.studies.puyol2021.groupmodels import route
    subjects = pd.DataFrame({"subject_id": ["a", "b", "c", "d"], "ethnicity": ["White", "Black", "White", "Asian"]})
    r = route(subjects[subjects.ethnicity != "Asian"], "ethnicity", {"White": 1, "Black": 2, "Mixed": 3})
    assert r == {"White": ["a", "c"], "Black": ["b"]}
    with pytest.raises(InputError, match=r"subject d \(ethnicity='Asian'\).*White, Black"):
        route(subjects, "ethnicity", {"White": 1, "Black": 2})


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    from cmrlib.training.models import build_network
    from cmrlib.training.train import TrainConfig, train_model
    torch.manual_seed(5)
    init = build_network("unet", (4, 8)).state_dict()
    cfg = TrainConfig(channels=(4, 8), steps=1, batch_size=2, lr=1e-12, optimizer="adam", augment=False)
    x, y = np.random.rand(4, 32, 32).astype(np.float32), np.zeros((4, 32, 32), np.uint8)
    m = train_model(x, y, cfg, tmp_path / "a", progress=False, init_state=init)
    for k, v in m.state_dict().items():
        assert torch.allclose(v, init[k], atol=1e-6), k


@pytest.fixture(scope="module")
def natural(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.studies.puyol2021.study import natural_data
    p = {**tiny_params, "study2021": {"finetune_steps": 2, "classifier_steps": 2, "joint_steps": 2}}
    return natural_data(prepare_data(p, progress=False))


def test_group_models_route_every_test_subject(natural):
    from cmrlib.studies.puyol2021.groupmodels import group_models, run_group_models
    from cmrlib.studies.puyol2021.study import groups_present
    groups = groups_present(natural)[0]
    df = run_group_models(natural, groups, steps=2, pretrain_steps=4)
    want = set(natural.subjects.subject_id[natural.subjects.split.isin(["test", "external"])])
    assert set(df.subject_id) == want and (df.experiment == "protected_group_models").all()
    with pytest.raises(InputError, match="Mixed has 0 training subjects"):
        group_models(natural, ["Mixed"], steps=2, pretrain_steps=4)


def test_fair_meta_learning_resumes_to_the_same_weights(natural, tmp_path):
    from cmrlib.studies.puyol2021 import metalearning
    from cmrlib.studies.puyol2021.study import run_approach
    metrics = run_approach(natural, "fair_meta_learning")
    assert (metrics.experiment == "fair_meta_learning").all()
    seg, clf, names, rd = metalearning.fair_meta_learning(natural)
    report = pd.read_csv(rd / "classifier.csv", index_col="group")
    assert 0 <= report.loc["all", "accuracy"] <= 1 and set(names) <= set(report.index)
    # a second run stopped after one step, then resumed, ends with the first run's weights
    p2 = {**natural.params, "runs_root": str(tmp_path)}
    from cmrlib.data.pipeline import Data
    other = Data(natural.cache, natural.subjects, p2)
    metalearning.fair_meta_learning(other, stop_at=1)
    seg2, clf2, _, _ = metalearning.fair_meta_learning(other)
    for a, b in zip(seg.state_dict().values(), seg2.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(clf.state_dict().values(), clf2.state_dict().values()):
        assert torch.equal(a, b)
