"""Batch samplers: which training slices make up each batch.

- :func:`uniform_sampler`: every slice equally likely (the baseline, seed 001 §4.2);
- :func:`oversampling_sampler`: a chosen share of each batch from the minority group, drawn with replacement
  (seed 001 §4.3 uses a share of one half, "as many Black as White subjects in each batch"; Fig. S2 varies it);
- :func:`stratified_sampler`: equal shares for K groups (the 2021 study's stratified batch sampling, seed 002).

Group counts per batch are exact: shares are turned into integers by largest remainder, ties broken at
random, so over many batches the composition matches the shares exactly in expectation and within one slice
per batch. All randomness comes from a ``torch.Generator`` so that a resumed run draws the same batches.
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
        raw = self.shares * batch_size
        base = torch.floor(raw).long()
        rem = batch_size - int(base.sum())
        if rem:
            frac = raw - base
            # largest remainder with random tie-breaking
            key = frac + 1e-9 * torch.rand(len(frac), generator=gen, dtype=torch.float64)
            base[torch.argsort(key, descending=True)[:rem]] += 1
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
