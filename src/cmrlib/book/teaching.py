"""The teachers' page: a plan of sessions over the chapters, timed from ``benchmarks/chapter_times.py``'s
measurements (``benchmarks/results/chapter_times.csv``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SESSION_MINUTES = 90   # the length of one session
# The sessions: what each one is about and which chapters it works through.
SESSIONS = [
    ("The bias, and where it comes from", ["01", "02", "11"]),
    ("Generic mitigations: sampling and objectives", ["03", "04", "05", "06"]),
    ("Cropping to the heart", ["07", "08"]),
    ("Beyond one test set: other sites, other mixes, real scans", ["09", "10", "12"]),
    ("Where it began: six groups and four strategies (the 2021 study)", ["13", "14"]),
    ("Imbalance by design, and what it does to clinical measures (the 2022 study)", ["15", "16"]),
    ("Synthetic minority data: generative debiasing", ["17"]),
    ("What reproduces: every claim judged, with seeds and intervals", ["18"]),
]


def read_times(path: str | Path) -> pd.DataFrame:
    """The measured chapter times; an empty table (same columns) where none were measured yet."""
    path = Path(path)
    cols = ["profile", "store", "chapter", "seconds", "cores", "machine", "date"]
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=cols)


def session_plan(times: pd.DataFrame, profile: str) -> pd.DataFrame:
    """One row per session: its chapters and their summed time in minutes from an empty and from a filled
    run store for ``profile`` (``—`` where that profile was not measured)."""
    t = times[times.profile == profile]
    rows = []
    for k, (topic, chapters) in enumerate(SESSIONS, 1):
        row = {"session": k, "topic": topic, "chapters": ", ".join(chapters)}
        for store in ("empty", "filled"):
            d = t[(t.store == store) & t.chapter.str[:2].isin(chapters)]
            row[f"minutes, {store} store"] = round(d.seconds.sum() / 60, 1) if len(d) else "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("session")


def chapter_table(times: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Minutes per chapter (rows) from an empty and from a filled run store (columns)."""
    t = times[times.profile == profile]
    if t.empty:
        return pd.DataFrame(columns=["empty", "filled"])
    return (t.pivot_table(index="chapter", columns="store", values="seconds", aggfunc="sum") / 60).round(1)
