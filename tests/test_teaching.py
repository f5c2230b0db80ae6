import pandas as pd

from cmrlib.book.teaching import SESSIONS, chapter_table, read_times, session_plan


def test_sessions_cover_every_numbered_chapter_once(root):
    chapters = sorted(p.name[:2] for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    planned = [c for _, cs in SESSIONS for c in cs]
    assert sorted(planned) == chapters and len(set(planned)) == len(planned)


def test_session_plan_sums_the_measured_minutes(tmp_path):
    t = pd.DataFrame({"profile": ["course"] * 4, "store": ["empty", "empty", "filled", "filled"],
                      "chapter": ["01_cohort", "02_baseline", "01_cohort", "02_baseline"],
                      "seconds": [60.0, 120.0, 30.0, 30.0]})
    plan = session_plan(t, "course")
    assert plan.loc[1, "minutes, empty store"] == 3.0 and plan.loc[1, "minutes, filled store"] == 1.0
    assert plan.loc[2, "minutes, empty store"] == "—"
    assert chapter_table(t, "course").loc["02_baseline", "empty"] == 2.0
    assert chapter_table(t, "smoke").empty and read_times(tmp_path / "none.csv").empty
