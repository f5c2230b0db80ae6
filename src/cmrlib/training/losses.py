"""Loss functions and the objectives that combine per-sample losses into the training loss.

Per-sample losses (one value per slice, so group methods can combine them):
- :func:`dice_ce_per_sample`: soft Dice over the three structures plus cross-entropy (nnU-Net's loss, §4.2);
- :func:`ce_per_sample`: cross-entropy only (used with Group DRO, §4.5, because Dice is not additive).

Objectives (chapters 02–06):
- :class:`MeanObjective`: the plain batch mean (baseline, oversampling);
- :class:`ReweightedObjective`: group reweighting, Lee et al. 2025 Eq. 1–2;
- :class:`GroupDROObjective`: Group DRO, Sagawa et al. 2020, with the exponentiated-gradient update;
- :class:`ReweightedGroupDRO`: Group DRO over reweighted losses (Lee et al. 2025, Table 5).

:func:`make_objective` builds a method's objective from the training slices' groups.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cmrlib.training.sampling import group_order


def ce_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean pixel cross-entropy per sample. logits (B, C, H, W), target (B, H, W) long."""
    return F.cross_entropy(logits.float(), target, reduction="none").mean(dim=(1, 2))


def dice_per_sample(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """1 − mean soft Dice over the foreground classes, per sample."""
    prob = torch.softmax(logits.float(), dim=1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    inter = (prob * onehot).sum(dim=(2, 3))
    denom = prob.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    return 1.0 - ((2 * inter + smooth) / (denom + smooth)).mean(dim=1)


def dice_ce_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return dice_per_sample(logits, target) + ce_per_sample(logits, target)


LOSSES = {"dice_ce": dice_ce_per_sample, "ce": ce_per_sample}
LOSS_NAMES = {"dice_ce": "Dice + cross-entropy", "ce": "cross-entropy"}   # as the chapters name them


class MeanObjective:
    """The plain mean of per-sample losses (the baseline, oversampling)."""

    def __call__(self, per_sample: torch.Tensor, group_ids: torch.Tensor, n_groups: int) -> torch.Tensor:
        return per_sample.mean()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def group_weights(counts: dict, eps: float = 1e-6) -> dict:
    """Lee et al. 2025 Eq. 1–2: w_g = n_G / (n_g + ε) with n_G the number of samples in all groups, then
    normalised to sum to 1 over the groups."""
    n_all = float(sum(counts.values()))
    w = {g: n_all / (n + eps) for g, n in counts.items()}
    total = sum(w.values())
    return {g: v / total for g, v in w.items()}


def _group_means(per_sample: torch.Tensor, group_ids: torch.Tensor, n_groups: int):
    """Mean loss and count per group in the batch (0 loss, 0 count for a group absent from the batch)."""
    counts = torch.bincount(group_ids, minlength=n_groups).to(per_sample.dtype)
    sums = torch.zeros(n_groups, dtype=per_sample.dtype, device=per_sample.device).index_add(0, group_ids, per_sample)
    return sums / counts.clamp(min=1), counts


class ReweightedObjective:
    """Group reweighting (Lee et al. 2025 §4.4): each sample's loss times its group's normalised weight ŵ_g.

    ``normalise`` chooses what the weighted losses are divided by:

    - ``"paper"``: the batch size, with ŵ summing to 1 over groups as Eq. 2 states. The weights are then all
      below 1 (the majority's near 1/n_G·n_min), so the effective learning rate shrinks;
    - ``"batch"``: the sum of the batch's weights, a weighted mean that keeps the loss scale of the baseline.
    """

    def __init__(self, weights_by_group_id: torch.Tensor, normalise: str = "paper"):
        if normalise not in ("paper", "batch"):
            raise ValueError(f"normalise must be 'paper' or 'batch', got {normalise!r}")
        self.w = weights_by_group_id.float()
        self.normalise = normalise

    def __call__(self, per_sample, group_ids, n_groups):
        w = self.w.to(per_sample.device)[group_ids]
        if self.normalise == "paper":
            return (w * per_sample).mean()
        return (w * per_sample).sum() / w.sum()

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class GroupDROObjective:
    """Group DRO (Sagawa et al. 2020, Algorithm 1; Lee et al. 2025 §4.5).

    Each step: group losses L_g are the means of the per-sample losses of group g in the batch, plus an
    optional size adjustment C/sqrt(n_g); the group weights are updated by exponentiated gradient,
    q_g ← q_g · exp(η · L_g), and renormalised; the training loss is Σ_g q_g L_g. The weights are part of
    the checkpoint, so a resumed run continues with them."""

    def __init__(self, n_groups: int, eta: float = 0.01, group_sizes=None, adjustment: float = 0.0):
        self.q = torch.full((n_groups,), 1.0 / n_groups)
        self.eta = float(eta)
        sizes = torch.as_tensor(group_sizes, dtype=torch.float32) if group_sizes is not None else torch.ones(n_groups)
        self.adj = float(adjustment) / torch.sqrt(sizes)

    def __call__(self, per_sample, group_ids, n_groups):
        means, counts = _group_means(per_sample, group_ids, n_groups)
        present = counts > 0
        adjusted = means + self.adj.to(means.device) * present
        with torch.no_grad():
            q = self.q.to(means.device) * torch.exp(self.eta * adjusted.detach() * present)
            self.q = q / q.sum()          # stays on the device: no host synchronisation per step
        return (self.q * adjusted).sum()

    def state_dict(self):
        return {"q": self.q.detach().cpu().clone()}

    def load_state_dict(self, state):
        if "q" in state:
            self.q = state["q"].clone()


def make_objective(method, groups):
    """The objective for a method; group weights are computed from the training slices' group counts."""
    names = group_order(groups)
    counts = {g: int((np.asarray(groups) == g).sum()) for g in names}
    o = method.options
    if method.objective == "mean":
        return MeanObjective()
    weights = torch.tensor([group_weights(counts)[g] for g in names])
    if method.objective == "reweight":
        return ReweightedObjective(weights, o.get("normalise", "paper"))
    if method.objective in ("group_dro", "group_dro_reweight"):
        dro = GroupDROObjective(len(names), o.get("eta", 0.01), [counts[g] for g in names], o.get("adjustment", 0.0))
        if method.objective == "group_dro":
            return dro
        return ReweightedGroupDRO(dro, ReweightedObjective(weights, o.get("normalise", "paper")))
    raise ValueError(f"unknown objective {method.objective!r}")


class ReweightedGroupDRO:
    """Group DRO on reweighted losses (Lee et al. 2025, Table 5, "Group DRO + reweighting"): each sample's loss is
    multiplied by its group's weight ŵ_g (Eq. 1–2) before Group DRO forms group means and updates q."""

    def __init__(self, dro, reweight):
        self.dro, self.reweight = dro, reweight

    def __call__(self, per_sample, group_ids, n_groups):
        return self.dro(per_sample * self.reweight.w.to(per_sample.device)[group_ids], group_ids, n_groups)

    def state_dict(self):
        return self.dro.state_dict()

    def load_state_dict(self, state):
        self.dro.load_state_dict(state)


def batch_weights(sampler, slice_groups, weights: dict | None, minority: str, batch_size: int,
                  n_batches: int = 2000, seed: int = 0, group_means: bool = False, q: dict | None = None) -> dict:
    """How a per-sample weighting spreads over ``n_batches`` batches drawn by ``sampler`` (:mod:`cmrlib.training.sampling`),
    each slice weighted by its group's weight (``None``: all equal): the share of batches holding a ``minority``
    slice, the median Kish effective sample size (Σw)² / Σw² of those batches, and their share of the summed
    weight of all batches. Chapter 04 uses it to explain why Eq. 2's weights collapse training on a uniformly
    sampled 1 % minority: about half the loss weight arrives in a quarter of the steps, each carried by one or two
    slices, while with oversampling the same weights are spread over half of every batch.

    ``group_means``: the weights as Group DRO applies them (chapter 06): the loss is Σ_g q_g · mean over the
    batch's slices of group g of w_g · loss, so a slice weighs q_g · w_g / (its group's count in the batch);
    ``q`` the group weights (default: equal over the training groups, where Group DRO starts)."""
    groups = np.asarray(slice_groups)
    w_slice = np.ones(len(groups)) if weights is None else np.array([weights[g] for g in groups], float)
    is_min = groups == minority
    present = sorted(set(groups.tolist()), key=str)
    q_of = q if q is not None else {g: 1.0 / len(present) for g in present}
    gen = torch.Generator().manual_seed(seed)
    has, ess, total = np.zeros(n_batches, bool), np.zeros(n_batches), np.zeros(n_batches)
    for b in range(n_batches):
        idx = sampler.sample(batch_size, gen).numpy()
        w = w_slice[idx]
        if group_means:
            g_idx = groups[idx]
            names, inverse, counts = np.unique(g_idx, return_inverse=True, return_counts=True)
            w = w * np.array([q_of[n] for n in names])[inverse] / counts[inverse]
        has[b], ess[b], total[b] = is_min[idx].any(), w.sum() ** 2 / (w ** 2).sum(), w.sum()
    return {"batches with a minority slice": float(has.mean()),
            "their effective batch size": float(np.median(ess[has])) if has.any() else float("nan"),
            "their share of the loss weight": float(total[has].sum() / total.sum())}
