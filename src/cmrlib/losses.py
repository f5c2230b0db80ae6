"""Loss functions, all returning one value per sample so that group methods can combine them.

- :func:`dice_ce_per_sample`: soft Dice over the three structures plus cross-entropy (nnU-Net's loss, §4.2);
- :func:`ce_per_sample`: cross-entropy only (used with Group DRO, §4.5, because Dice is not additive).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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


class MeanObjective:
    """The plain mean of per-sample losses (the baseline, oversampling)."""

    def __call__(self, per_sample: torch.Tensor, group_ids: torch.Tensor, n_groups: int) -> torch.Tensor:
        return per_sample.mean()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
