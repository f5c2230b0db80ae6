"""Training and test splits with chosen group counts (Lee et al. 2025 §4.1).

The paper trains on 15 Black and 4,221 White subjects drawn at random and tests on every remaining subject of
all six ethnic groups. Profiles scale the training counts but keep the minority share at or below 1%.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


class CurationError(ValueError):
    pass


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
