"""Verdicts on the studies' claims: the rules that turn stored results into a verdict, and the judging of a
claim of the registry (:mod:`cmrlib.claims.registry`).

A verdict is one of :data:`STATUSES`. The rules, stated once for every claim (chapter 18 prints them):

- **direction**: "A is lower than B" holds only if it holds in every training seed; in some seeds, partly; in
  none, not reproduced.
- **significance**: "A is significantly lower than B" needs, besides the direction in every seed, the 95 %
  interval of the difference (subject bootstrap, pooled over seeds; :class:`cmrlib.runs.evidence.Evidence`) to
  exclude zero on the claimed side. The direction in every seed with an interval that includes zero is partly
  reproduced; an interval on the other side is not reproduced.
- **no effect**: "no bias", "no loss" needs the interval to include zero and to lie inside ± the equivalence
  margin (:func:`equivalence_margin`); an interval that excludes zero is not reproduced; one that includes zero
  but reaches past the margin is not testable at this size (a difference of that size is not ruled out, nor
  shown).
- **most often best**: "the best X is at A" holds when A is the best option in at least :data:`BEST_SHARE` of
  the bootstrap draws pooled over seeds; partly when A is best more often than any other option but below that
  share; not reproduced otherwise.
- a claim made of several parts is reproduced when every part is, not reproduced when every part is not, partly
  otherwise (a part that is not testable makes the whole at most partly reproduced).
- **decided by the cohort's design**: a claim whose outcome the synthetic cohort's specification sets before any
  training (:func:`by_design`) is shown with our number and the reason, not judged.

Every rule reads an :class:`~cmrlib.evaluation.verdicts.Estimate`: the statistic in each training seed and a subject-level
bootstrap interval. No rule treats seeds as extra subjects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from cmrlib.evaluation.report import load_paper_table
from cmrlib.evaluation.verdicts import Verdict
from cmrlib.runs.evidence import Evidence
from cmrlib.runs.store import NotInStore, read_only

INTERNAL = "data_manifest/paper_tables/lee2025_internal.csv"
EXTERNAL = "data_manifest/paper_tables/lee2025_external.csv"


def paper_value(csv: str, table: str, method: str, measure: str, group: str = "all") -> float:
    """One value of the main paper's tables (``data_manifest/paper_tables``)."""
    return float(load_paper_table(csv, table, method).loc[measure, group])


def equivalence_margin() -> float:
    """The margin of the no-effect rule: half the paper's baseline fairness gap (Lee et al. 2025, Table 4), so
    "no gap" means a gap under half the one the paper set out to remove."""
    return 0.5 * paper_value(INTERNAL, "4", "baseline", "Fairness gap")


@dataclass
class Claim:
    """One claim: ``id`` (``study.short``), the chapter that tests it, the claim in this book's words, where the
    study shows it, the experiments it needs, the study's number (a callable reading the cited CSV, or
    ``None``), the rule that judges it from a :class:`Context`, and the measure (and its unit) of the numbers."""
    id: str
    chapter: str
    text: str
    where: str
    experiments: tuple
    rule: Callable[["Context"], Verdict]
    paper: Callable[[], float] | None = None
    measure: str = ""
    unit: str = "DSC"      # the unit of ``measure``: claims in DSC share the axis of chapter 18's forest plot

    @property
    def study(self) -> str:
        return self.id.split(".")[0]

    @property
    def short(self) -> str:
        return self.id.split(".", 1)[1]


@dataclass
class Context:
    """What a rule reads: the data, the evidence per split (built once), and a cache for the chapter-level
    tables a rule recomputes from the store. ``train=False`` reads the run store only."""
    data: object
    train: bool = False
    cache: dict = field(default_factory=dict)

    def evidence(self, split: str = "test", groups: tuple | None = None):
        """Evidence on ``split`` for ``groups`` (default: the advantaged group and the minority)."""
        key = ("evidence", split, groups)
        if key not in self.cache:
            frames = ("ED",) if split == "external" else ("ED", "ES")   # the paper's external tables: ED only
            self.cache[key] = Evidence(self.data, split, frames, groups=groups, train=self.train)
        return self.cache[key]

    def memo(self, key: str, make: Callable):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def judge(claim: Claim, ctx: Context) -> Verdict:
    """The claim's verdict; "not run" when the store lacks an experiment it needs (read-only contexts)."""
    from contextlib import nullcontext

    try:
        with nullcontext() if ctx.train else read_only():
            return claim.rule(ctx)
    except NotInStore as exc:
        return Verdict("not run", f"{exc}")
