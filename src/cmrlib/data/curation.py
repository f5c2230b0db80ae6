"""Training and test splits with chosen group counts (Lee et al. 2025 §4.1).

The paper trains on 15 Black and 4,221 White subjects drawn at random and tests on every remaining subject of
all six ethnic groups. Profiles scale the training counts but keep the minority share at or below 1%.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cmrlib.errors import InputError


class CurationError(InputError):
    """A training set that cannot be drawn as asked (an :class:`~cmrlib.errors.InputError`: the message names
    the group and the count)."""


def split_train_test(subjects: pd.DataFrame, train_counts: dict[str, int], seed: int,
                     group_col: str = "ethnicity", site: str | None = "internal",
                     max_minority_share: float | None = None) -> pd.DataFrame:
    """Return ``subjects`` with a ``split`` column: ``train`` for the drawn subjects, ``test`` for every other
    subject of the site (all groups), ``external`` for other sites.

    ``train_counts`` maps group → number of training subjects; ``max_minority_share`` (e.g. 0.01) checks that
    the smallest training group is at most that share of the training set."""
    rng = np.random.default_rng(seed)
    df = subjects.copy()
    in_site = np.ones(len(df), bool) if site is None or "site" not in df else (df["site"] == site).to_numpy()
    df["split"] = np.where(in_site, "test", "external")
    for g, n in train_counts.items():
        pool = df.index[in_site & (df[group_col] == g).to_numpy()]
        if n > len(pool):
            raise CurationError(f"asked for {n} training subjects of {group_col}={g}, the cohort has {len(pool)}")
        chosen = rng.choice(pool, size=n, replace=False)
        df.loc[chosen, "split"] = "train"
    if max_minority_share is not None:
        counts = df[df.split == "train"][group_col].value_counts()
        share = counts.min() / counts.sum()
        if share > max_minority_share + 1e-12:
            raise CurationError(f"minority share {share:.3%} exceeds {max_minority_share:.1%} ({dict(counts)})")
    return df


def paper_cohort_counts(scale: float, minimum: int = 1) -> dict[str, int]:
    """Group sizes of the paper's internal cohort (5,778 UK Biobank subjects: 4,236 training + 1,542 test,
    Lee et al. 2025 Tables 1–2), multiplied by ``scale``."""
    full = {"White": 4221 + 469, "Mixed": 170, "Asian": 387, "Black": 15 + 223, "Chinese": 111, "Other": 182}
    return {g: max(minimum, int(round(n * scale))) for g, n in full.items()}


def present_groups(subjects: pd.DataFrame, group_col: str, expected) -> tuple[list, list]:
    """The expected groups a table has subjects of (in the expected order) and those it lacks; a run goes on
    with the groups present and names the missing ones."""
    have = set(subjects[group_col].dropna())
    return [g for g in expected if g in have], [g for g in expected if g not in have]


def split_natural(subjects: pd.DataFrame, fractions: dict, seed: int, group_col: str = "ethnicity",
                  strata=("sex",), site: str | None = "internal") -> pd.DataFrame:
    """The 2021 study's split (Puyol-Antón et al. 2021, §4: 4,723 / 590 / 590 subjects): every subject of the
    site goes to ``train``, ``val`` or ``test`` in the given fractions, so that each keeps the cohort's own
    group mix; other sites are ``external``.

    The draw is stratified by group and by ``strata`` (sex): in each cell of n subjects, ceil(n × test)
    go to test (so a group of two or more has a test subject), floor(n × val) to val, the rest to train."""
    import math
    for k in ("train", "val", "test"):
        if k not in fractions:
            raise CurationError(f"split fractions need train, val and test; got {sorted(fractions)}")
    total = sum(float(fractions[k]) for k in ("train", "val", "test"))
    if abs(total - 1) > 1e-6:
        raise CurationError(f"split fractions must sum to 1, got {total:g} ({fractions})")
    rng = np.random.default_rng(seed)
    df = subjects.copy()
    in_site = np.ones(len(df), bool) if site is None or "site" not in df else (df["site"] == site).to_numpy()
    df["split"] = np.where(in_site, "train", "external")
    keys = [group_col, *[s for s in strata if s in df]]
    for _, cell in df[in_site].groupby(keys, sort=True):
        idx = rng.permutation(cell.index.to_numpy())
        n_test = math.ceil(len(idx) * fractions["test"] - 1e-9) if len(idx) > 1 else 0
        n_val = math.floor(len(idx) * fractions["val"] + 1e-9)
        df.loc[idx[:n_test], "split"] = "test"
        df.loc[idx[n_test:n_test + n_val], "split"] = "val"
    return df


def balanced_train(subjects: pd.DataFrame, seed: int, group_col: str = "ethnicity", by: str | None = "sex",
                   groups=None, minimum: int = 1) -> pd.DataFrame:
    """The 2021 study's balanced database: the same number of training subjects for every group (the smallest
    group's count, N = 87 there), also balanced by ``by`` (sex): each group × sex cell keeps as many training
    subjects as the smallest cell has; the other training subjects become ``unused``. Validation and test
    subjects are untouched.

    A group (or group × sex cell) with fewer than ``minimum`` training subjects raises an error naming it and
    its count."""
    rng = np.random.default_rng(seed)
    df = subjects.copy()
    train = df[df.split == "train"]
    groups = list(groups) if groups is not None else sorted(train[group_col].dropna().unique(), key=str)
    levels = sorted(train[by].dropna().unique(), key=str) if by else [None]
    counts = {}
    for g in groups:
        for lv in levels:
            sel = train[group_col] == g
            if lv is not None:
                sel &= train[by] == lv
            counts[(g, lv)] = train.index[sel.to_numpy()]
    small = {k: len(v) for k, v in counts.items() if len(v) < minimum}
    if small:
        names = ", ".join(f"{group_col}={g}" + (f", {by}={lv}" if lv is not None else "") + f": {n}"
                          for (g, lv), n in small.items())
        raise CurationError(f"balanced database: fewer than {minimum} training subject(s) in {names}")
    n = min(len(v) for v in counts.values())
    keep = np.concatenate([rng.choice(v, size=n, replace=False) for v in counts.values()])
    df.loc[(df.split == "train") & ~df.index.isin(keep), "split"] = "unused"
    return df


def _halves(n: int) -> tuple[int, int]:
    return n - n // 2, n // 2


def proportion_split(subjects: pd.DataFrame, attr: str, pair: tuple, share: float, control: str, control_pair: tuple,
                     n_train: int, n_test: int, seed: int, site: str | None = "internal") -> pd.DataFrame:
    """One training set of the 2022 study's sweeps (Lee et al. 2022, §2.1): ``n_train`` subjects of which
    round(share × n_train) have ``attr == pair[0]`` and the rest ``pair[1]``, each half ``control_pair[0]`` and
    half ``control_pair[1]`` on the ``control`` attribute; and a test set of ``n_test`` subjects, a quarter
    in each cell of the two attributes, drawn with ``seed`` alone, so it is the same at every ``share`` (and for
    every experiment over the same four cells, whichever attribute it sweeps) and never overlaps training. Other subjects of the site are ``unused``; other sites ``external``.

    A cell with too few subjects raises an error naming it and the counts."""
    if not 0 <= share <= 1:
        raise CurationError(f"training share of {attr}={pair[0]} must lie in [0, 1], got {share}")
    df = subjects.copy()
    in_site = np.ones(len(df), bool) if site is None or "site" not in df else (df["site"] == site).to_numpy()
    df["split"] = np.where(in_site, "unused", "external")
    n_first = int(round(share * n_train))
    want_train = {}
    for a, n_a in zip(pair, (n_first, n_train - n_first)):
        for c, n_c in zip(control_pair, _halves(n_a)):
            want_train[(a, c)] = n_c
    test_rng = np.random.default_rng([seed, 1])
    train_rng = np.random.default_rng([seed, 2, int(round(share * 1000))])
    cells = [(a, c) for a in pair for c in control_pair]
    # the test set is drawn cell by cell in an order that names both attributes, never which one is swept, so two
    # experiments over the same four cells (the study's Experiments 1 and 2) test on the same subjects
    order = sorted(cells, key=lambda ac: sorted([(attr, str(ac[0])), (control, str(ac[1]))]))
    quarter = dict(zip(order, (n_test // 4 + (1 if k < n_test % 4 else 0) for k in range(4))))
    pools = {}
    for a, c in cells:
        pools[(a, c)] = df.index[in_site & (df[attr] == a).to_numpy() & (df[control] == c).to_numpy()].to_numpy()
        need = quarter[(a, c)] + want_train[(a, c)]
        if need > len(pools[(a, c)]):
            raise CurationError(f"{attr}={a}, {control}={c}: {len(pools[(a, c)])} subjects, {quarter[(a, c)]} test "
                                f"and {want_train[(a, c)]} training subjects needed (share {share:g})")
    tests = {cell: test_rng.permutation(pools[cell])[: quarter[cell]] for cell in order}
    for cell in cells:
        df.loc[tests[cell], "split"] = "test"
        rest = np.setdiff1d(pools[cell], tests[cell])
        df.loc[train_rng.choice(rest, size=want_train[cell], replace=False), "split"] = "train"
    return df
