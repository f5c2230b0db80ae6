"""Whether anything trained after a moment: every ``events.log`` of a run store read for training starts
(``<time> start at step k of n``, written by :func:`cmrlib.training.train.run_loop`) at or after ``--since``
(seconds since the epoch), in every run folder below ``--runs``. After ``cmrlib run --executor local`` has filled the store, executing the book must
start none: a start names a model some chapter trains that the list of work (:mod:`cmrlib.book.work`) lacks.

    python scripts/check_no_training.py --runs runs/smoke --since 1765000000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def starts_since(runs: Path, since: float) -> list[str]:
    out = []
    for log in sorted(Path(runs).rglob("events.log")):
        for line in log.read_text(errors="replace").splitlines():
            stamp, _, rest = line.partition(" ")
            try:
                t = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:
                continue
            if t >= since and rest.startswith("start at step"):
                out.append(f"{log.parent.name}: {line}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="the run store (every profile below it), e.g. runs")
    ap.add_argument("--since", required=True, type=float, help="seconds since the epoch")
    a = ap.parse_args(argv)
    found = starts_since(Path(a.runs), a.since)
    if found:
        print(f"{len(found)} training start(s) after the list of work had run:\n" + "\n".join(f"  {f}" for f in found))
        return 1
    print(f"no training started in {a.runs} since {time.strftime('%H:%M:%S', time.localtime(a.since))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
