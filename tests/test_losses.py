import numpy as np
import pytest
import torch

from cmrlib.training.losses import (
    GroupDROObjective,
    MeanObjective,
    ReweightedGroupDRO,
    ReweightedObjective,
    ce_per_sample,
    dice_ce_per_sample,
    group_weights,
    make_objective,
)
from cmrlib.training.methods import METHODS, make_sampler


def test_group_weights_eq_1_2():
    w = group_weights({"W": 4221, "B": 15})
    n = 4236
    raw = {"W": n / (4221 + 1e-6), "B": n / (15 + 1e-6)}
    s = raw["W"] + raw["B"]
    assert w["W"] == pytest.approx(raw["W"] / s) and w["B"] == pytest.approx(raw["B"] / s)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["B"] / w["W"] == pytest.approx(4221 / 15)


def test_reweighting_normalisations():
    per = torch.tensor([1.0, 1.0, 2.0, 4.0])
    gid = torch.tensor([0, 0, 0, 1])
    w = torch.tensor([0.25, 0.75])
    paper = ReweightedObjective(w, "paper")(per, gid, 2)
    assert paper.item() == pytest.approx((0.25 * (1 + 1 + 2) + 0.75 * 4) / 4)
    batch = ReweightedObjective(w, "batch")(per, gid, 2)
    assert batch.item() == pytest.approx((0.25 * 4 + 0.75 * 4) / (0.25 * 3 + 0.75))
    with pytest.raises(ValueError):
        ReweightedObjective(w, "other")


def test_group_dro_raises_the_weight_of_the_group_with_larger_loss():
    dro = GroupDROObjective(2, eta=0.5)
    gid = torch.tensor([0, 0, 0, 1])
    for _ in range(20):
        loss = dro(torch.tensor([0.1, 0.2, 0.1, 2.0]), gid, 2)
    assert dro.q[1] > 0.99 and dro.q.sum().item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(float(dro.q[0] * 0.4 / 3 + dro.q[1] * 2.0), rel=1e-5)
    # one step by hand: q ∝ (0.5·e^{η·L0}, 0.5·e^{η·L1})
    d = GroupDROObjective(2, eta=0.1)
    d(torch.tensor([1.0, 3.0]), torch.tensor([0, 1]), 2)
    e0, e1 = np.exp(0.1 * 1.0), np.exp(0.1 * 3.0)
    assert d.q[1].item() == pytest.approx(e1 / (e0 + e1), rel=1e-6)


def test_group_dro_absent_group_keeps_weight_and_state_round_trip():
    d = GroupDROObjective(3, eta=1.0)
    d(torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), 3)
    assert d.q[1] == d.q[2] and d.q[0] > d.q[1]
    e = GroupDROObjective(3)
    e.load_state_dict(d.state_dict())
    assert torch.equal(e.q, d.q)


def test_group_dro_size_adjustment_favours_small_groups():
    d = GroupDROObjective(2, eta=1.0, group_sizes=[10000, 4], adjustment=1.0)
    d(torch.tensor([1.0, 1.0]), torch.tensor([0, 1]), 2)
    assert d.q[1] > d.q[0]


def test_losses_are_per_sample_and_perfect_prediction_is_near_zero():
    target = torch.zeros(2, 8, 8, dtype=torch.long); target[:, 2:5, 2:5] = 1; target[1, 6:, 6:] = 3
    logits = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 20
    assert ce_per_sample(logits, target).shape == (2,)
    v = dice_ce_per_sample(logits, target)
    assert v.shape == (2,)
    # the Dice term of an absent class (smooth/smooth) counts as perfect, so a perfect prediction is ~0
    assert torch.all(v < 0.01)
    assert torch.all(dice_ce_per_sample(-logits, target) > 1.0)


def test_combinations_compose_as_documented():
    groups = np.array(["White"] * 90 + ["Black"] * 10)
    m = METHODS["oversampling_group_dro"]
    assert m.loss == "ce" and make_sampler(m, groups, "Black").counts(16, torch.Generator()).tolist() == [8, 8]
    assert isinstance(make_objective(m, groups), GroupDROObjective)
    rw = make_objective(METHODS["group_dro_reweighting"], groups)
    assert isinstance(rw, ReweightedGroupDRO)
    # order of groups inside training is sorted: Black (0), White (1); Black gets the larger weight
    assert rw.reweight.w[0] > rw.reweight.w[1]
    orw = make_objective(METHODS["oversampling_reweighting"], groups)
    assert isinstance(orw, ReweightedObjective) and METHODS["oversampling_reweighting"].sampler == "oversampling"
    assert isinstance(make_objective(METHODS["baseline"], groups), MeanObjective)


def test_profile_can_set_the_group_dro_loss():
    from cmrlib.training.methods import train_config
    params = {"seed": 0, "training": {"steps": 5, "dro_loss": "dice_ce"}}
    assert train_config(params, METHODS["group_dro"]).loss == "dice_ce"
    assert train_config(params, METHODS["oversampling_group_dro"]).loss == "dice_ce"
    assert train_config(params, METHODS["baseline"]).loss == "dice_ce"
    assert train_config({"seed": 0, "training": {"steps": 5}}, METHODS["group_dro"]).loss == "ce"


class _FixedBatch:
    """A sampler that always draws the same batch."""

    def __init__(self, idx):
        self.idx = torch.as_tensor(idx)

    def sample(self, batch_size, gen):
        return self.idx


def test_batch_weights_by_hand():
    from cmrlib.training.losses import batch_weights
    groups = ["W"] * 7 + ["B"]
    batch = _FixedBatch(range(8))                   # seven majority slices and the one minority slice
    plain = batch_weights(batch, groups, None, "B", 8, n_batches=3)
    assert plain["batches with a minority slice"] == 1.0 and plain["their effective batch size"] == pytest.approx(8)
    w = {"W": 0.1, "B": 0.9}
    rw = batch_weights(batch, groups, w, "B", 8, n_batches=3)
    assert rw["their effective batch size"] == pytest.approx((7 * 0.1 + 0.9) ** 2 / (7 * 0.01 + 0.81))
    # Group DRO's group means: the lone minority slice weighs q_B·w_B, each majority slice q_W·w_W/7
    dro = batch_weights(batch, groups, w, "B", 8, n_batches=3, group_means=True)
    sw = [0.5 * 0.9] + [0.5 * 0.1 / 7] * 7
    assert dro["their effective batch size"] == pytest.approx(sum(sw) ** 2 / sum(x * x for x in sw))
    assert dro["their effective batch size"] < rw["their effective batch size"]
    none = batch_weights(_FixedBatch(range(7)), groups, w, "B", 7, n_batches=3, group_means=True)
    assert none["batches with a minority slice"] == 0.0
