"""Results of an experiment over the profile's training seeds, and fairness numbers with intervals over them.

The profile key ``seeds`` (an integer, 1 by default) trains the key experiments (:data:`SEEDED`) with training
seeds ``seed, seed + 1, …``; the first is the run every chapter already uses. A statistic of the groups' median
DSC (the fairness gap, a group's median, a paired change between two experiments) is reported as

- its value in each seed, and the median over seeds (the point estimate);
- a subject-level percentile bootstrap 95 % interval of that median over seeds: each bootstrap draw resamples
  the test subjects within each group once, and every experiment and seed is scored on the same draw, so changes
  between experiments are paired and seeds are pooled.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd

from cmrlib.data.pipeline import Data, with_training
from cmrlib.errors import InputError
from cmrlib.evaluation.report import experiment_scores
from cmrlib.evaluation.verdicts import Estimate
from cmrlib.runs.experiments import run_experiment
from cmrlib.runs.store import NotInStore, read_only
from cmrlib.training.methods import METHODS, PAPER_METHODS, Method

# the experiments trained under every seed of the profile (the claims of chapters 02-09 rest on them)
SEEDED = [*PAPER_METHODS, *(f"{m}_crop_gt" for m in PAPER_METHODS), *(f"{m}_cascade" for m in PAPER_METHODS)]


def training_seeds(params: dict) -> list[int]:
    """The profile's training seeds: ``seed`` and the ``seeds - 1`` after it."""
    n = params.get("seeds", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"seeds: {n!r} is not a number of training seeds (an integer of at least 1)")
    return [int(params["seed"]) + k for k in range(n)]


def seeded(data: Data, seed: int) -> Data:
    """``data`` with training seed ``seed`` (the profile's own seed gives ``data`` itself, so its runs keep
    their names)."""
    return data if seed == data.params["seed"] else with_training(data, {"seed": int(seed)})


def seed_runs(data: Data, name: str, method: Method | None = None, progress: bool = False,
              seeds: list[int] | None = None) -> dict[int, pd.DataFrame]:
    """Per-structure metrics of experiment ``name`` for each training seed (trained or resumed where missing;
    inside :func:`cmrlib.runs.store.read_only`, the seeds the store holds). Experiments outside :data:`SEEDED` run
    under the profile's seed only."""
    if seeds is None:
        seeds = training_seeds(data.params) if name in SEEDED else [int(data.params["seed"])]
    out = {}
    for s in seeds:
        try:
            out[s] = run_experiment(seeded(data, s), name, method or METHODS.get(name), progress)
        except NotInStore:
            continue
    if not out:
        raise NotInStore(f"{name}: no seed of this experiment is in the run store; run its chapter first")
    return out


class Evidence:
    """The group medians of stored experiments on one split, over seeds, on one shared subject bootstrap.

    ``train=False`` reads the run store only (:func:`cmrlib.runs.store.read_only`): a missing experiment raises
    :class:`~cmrlib.runs.store.NotInStore`. ``groups`` defaults to (advantaged, minority)."""

    def __init__(self, data: Data, split: str = "test", frames=("ED", "ES"), groups=None, train: bool = False,
                 n_boot: int = 2000, seed: int = 0, level: float = 0.95):
        self.data, self.split, self.frames, self.train = data, split, tuple(frames), train
        subjects = data.subjects[data.subjects.split == split]
        self._setup(subjects, data.group_col, list(groups or (data.advantaged, data.minority)), n_boot, seed, level)

    @classmethod
    def from_scores(cls, runs: dict, subjects: pd.DataFrame, group_col: str, groups, n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> "Evidence":
        """Evidence over subject scores at hand (name → seed, or repeat → subject scores) instead of the run
        store; ``subjects`` lists the subjects and their group (chapter 12's repeated splits)."""
        ev = cls.__new__(cls)
        ev.data, ev.split, ev.frames, ev.train = None, "test", ("ED", "ES"), False
        ev._setup(subjects, group_col, list(groups), n_boot, seed, level)
        ev._cache.update({n: dict(r) for n, r in runs.items()})
        return ev

    def _setup(self, subjects: pd.DataFrame, group_col: str, groups: list, n_boot: int, seed: int, level: float):
        self.groups, self.level, self.group_col = groups, level, group_col
        rng = np.random.default_rng(seed)
        self._ids, self._draws = {}, {}
        for g in self.groups:
            ids = subjects.loc[subjects[group_col] == g, "subject_id"].astype(str).tolist()
            if not ids:
                raise InputError(f"no subjects of {group_col}={g}; cannot judge its medians")
            self._ids[g] = ids
            self._draws[g] = rng.integers(0, len(ids), (n_boot, len(ids)))
        self._cache: dict = {}
        self._medians: dict = {}

    def runs(self, name: str, method: Method | None = None) -> dict[int, pd.DataFrame]:
        """Subject scores (split and frames of this evidence) per seed."""
        if name not in self._cache:
            if self.data is None:
                raise NotInStore(f"{name}: not among the scores this evidence was given")
            with nullcontext() if self.train else read_only():
                per = seed_runs(self.data, name, method)
            self._cache[name] = {s: experiment_scores(p, self.split, self.frames) for s, p in per.items()}
        return self._cache[name]

    def medians(self, name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per seed: the groups' median DSC (G,) and their bootstrap draws (B, G); computed once per experiment."""
        if name in self._medians:
            return self._medians[name]
        out = {}
        for s, sc in self.runs(name).items():
            dsc = sc.assign(subject_id=sc.subject_id.astype(str)).set_index("subject_id").dsc
            point, boot = [], []
            for g in self.groups:
                v = dsc.reindex(self._ids[g]).to_numpy(float)
                point.append(np.nanmedian(v))
                boot.append(np.nanmedian(v[self._draws[g]], axis=1))
            out[s] = (np.asarray(point), np.stack(boot, axis=1))
        self._medians[name] = out
        return out

    def estimate(self, fn, *names: str) -> Estimate:
        """``fn(m_1, …, m_k)`` of the experiments' group medians (arrays whose last axis follows ``groups``),
        over the seeds all of them hold."""
        meds = [self.medians(n) for n in names]
        common = sorted(set.intersection(*(set(m) for m in meds)))
        if not common:
            raise NotInStore(f"{', '.join(names)}: no training seed is stored for all of them")
        per_seed = {s: float(fn(*(m[s][0] for m in meds))) for s in common}
        boot = np.median(np.stack([fn(*(m[s][1] for m in meds)) for s in common]), axis=0)
        a = (1 - self.level) / 2
        lo, hi = np.nanquantile(boot, [a, 1 - a])
        return Estimate(per_seed, float(np.median(list(per_seed.values()))), float(lo), float(hi))

    def best_frequency(self, names) -> dict:
        """How often each experiment has the highest median DSC over all of this evidence's subjects (every
        group pooled), over the bootstrap draws of every seed the experiments share: name → share of draws.
        The draws resample within each group, so the groups keep their sizes."""
        per = {n: self.runs(n) for n in names}
        common = sorted(set.intersection(*(set(r) for r in per.values())))
        if not common:
            raise NotInStore(f"{', '.join(names)}: no training seed is stored for all of them")
        wins = np.zeros(len(names))
        for s in common:
            boot = []
            for n in names:
                sc = per[n][s]
                dsc = sc.assign(subject_id=sc.subject_id.astype(str)).set_index("subject_id").dsc
                draws = [dsc.reindex(self._ids[g]).to_numpy(float)[self._draws[g]] for g in self.groups]
                boot.append(np.nanmedian(np.concatenate(draws, axis=1), axis=1))
            best = np.argmax(np.stack(boot, axis=1), axis=1)
            wins += np.bincount(best, minlength=len(names))
        return {n: float(w / wins.sum()) for n, w in zip(names, wins)}

    # the statistics the claims use; group 0 is the advantaged group, 1 the minority
    def gap(self, name: str) -> Estimate:
        """Fairness gap: median DSC of the first group minus the second's."""
        return self.estimate(lambda m: m[..., 0] - m[..., 1], name)

    def median(self, name: str, group: int = 1) -> Estimate:
        return self.estimate(lambda m: m[..., group], name)

    def change(self, name: str, reference: str, group: int = 1) -> Estimate:
        """Paired change of a group's median DSC: ``name`` minus ``reference``."""
        return self.estimate(lambda a, b: a[..., group] - b[..., group], name, reference)

    def gap_change(self, name: str, reference: str) -> Estimate:
        """Paired change of the fairness gap: ``name`` minus ``reference``."""
        return self.estimate(lambda a, b: (a[..., 0] - a[..., 1]) - (b[..., 0] - b[..., 1]), name, reference)


def seed_table(data: Data, names, split: str = "test", frames=("ED", "ES"), train: bool = True) -> pd.DataFrame:
    """Per experiment: the number of seeds, both groups' median DSC and the fairness gap as the median over
    seeds with its pooled 95 % interval, and the gap's range over seeds."""
    ev = Evidence(data, split, frames, train=train)
    adv, mi = ev.groups
    rows = []
    for n in names:
        fg, a, b = ev.gap(n), ev.median(n, 0), ev.median(n, 1)
        rows.append({"experiment": n, "seeds": fg.seeds, adv: a.point, mi: b.point, "FG": fg.point,
                     "FG low": fg.low, "FG high": fg.high, "FG min over seeds": min(fg.per_seed.values()),
                     "FG max over seeds": max(fg.per_seed.values())})
    return pd.DataFrame(rows).set_index("experiment")
