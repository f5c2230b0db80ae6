"""Batch samplers: which training slices make up each batch.

- :func:`uniform_sampler`: every slice equally likely (the baseline, Lee et al. 2025 §4.2);
- :func:`oversampling_sampler`: a chosen share of each batch from the minority group, drawn with replacement
  (Lee et al. 2025 §4.3 uses a share of one half, "as many Black as White subjects in each batch"; Fig. S2 varies it);
- :func:`stratified_sampler`: equal shares for K groups (the 2021 study's stratified batch sampling, Puyol-Antón et al. 2021).

Group counts per batch are exact: each group gets the integer part of its share of the batch, and the slots
left over go to groups with probability equal to their fractional parts (systematic sampling), so a batch is
never more than one slice off its shares and the expected composition equals the shares exactly. All randomness comes from a ``torch.Generator`` so that a resumed run draws the same batches.
"""
from __future__ import annotations

import numpy as np
import torch


class GroupBatchSampler:
    """Draw batches whose group composition follows ``shares`` (group → share of the batch)."""

    def __init__(self, slice_groups, shares: dict | None):
        self.slice_groups = np.asarray(slice_groups)
        self.n = len(self.slice_groups)
        if shares is None:
            self.groups, self.pools, self.shares = [None], [torch.arange(self.n)], torch.ones(1)
            return
        total = float(sum(shares.values()))
        self.groups = list(shares)
        self.pools = []
        for g in self.groups:
            idx = np.flatnonzero(self.slice_groups == g)
            if len(idx) == 0 and shares[g] > 0:
                raise ValueError(f"no training slices for group {g!r}")
            self.pools.append(torch.as_tensor(idx))
        self.shares = torch.tensor([shares[g] / total for g in self.groups], dtype=torch.float64)

    def counts(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        """Slices per group in one batch: floor(share × batch) each, and the remaining slots given by
        systematic sampling on the fractional parts, so group g gets one more with probability equal to its
        fractional part and its expected count is exactly share × batch."""
        raw = self.shares * batch_size
        base = torch.floor(raw).long()
        frac = raw - base
        rem = batch_size - int(base.sum())
        if rem:
            edges = torch.cumsum(frac, 0)
            points = torch.rand(1, generator=gen, dtype=torch.float64) + torch.arange(rem, dtype=torch.float64)
            hits = torch.searchsorted(edges, points, right=True).clamp(max=len(frac) - 1)
            base += torch.bincount(hits, minlength=len(frac))
        return base

    def sample(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        parts = []
        for pool, k in zip(self.pools, self.counts(batch_size, gen).tolist()):
            if k:
                parts.append(pool[torch.randint(len(pool), (k,), generator=gen)])
        idx = torch.cat(parts)
        return idx[torch.randperm(len(idx), generator=gen)]


def uniform_sampler(slice_groups) -> GroupBatchSampler:
    return GroupBatchSampler(slice_groups, None)


def oversampling_sampler(slice_groups, minority: str, level: float = 0.5) -> GroupBatchSampler:
    """``level`` is the minority's share of every batch (0.5: as many minority as majority slices)."""
    if not 0 < level < 1:
        raise ValueError(f"oversampling level must lie in (0, 1), got {level}")
    others = [g for g in np.unique(slice_groups) if g != minority]
    shares = {minority: level}
    for g in others:
        shares[g] = (1 - level) / len(others)
    return GroupBatchSampler(slice_groups, shares)


def stratified_sampler(slice_groups) -> GroupBatchSampler:
    return GroupBatchSampler(slice_groups, {g: 1.0 for g in np.unique(slice_groups)})


def group_order(groups) -> list:
    """The order in which groups are numbered inside training (objectives index their weights by it)."""
    return sorted(set(np.asarray(groups).tolist()), key=str)
