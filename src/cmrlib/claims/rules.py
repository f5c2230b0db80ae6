"""A claim of the registry (:mod:`cmrlib.claims.registry`), the context its rule reads (the data, the evidence
per split, a cache of the chapters' tables), the study's numbers read from the cited CSVs, the margin of the
no-effect rule, and :func:`judge`, which turns a claim into a verdict by the rules of
:mod:`cmrlib.evaluation.verdicts` ("not run" when the store lacks what it needs)."""
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
    n_boot: int = 2000       # bootstrap draws of every interval a rule reads

    def evidence(self, split: str = "test", groups: tuple | None = None):
        """Evidence on ``split`` for ``groups`` (default: the advantaged group and the minority)."""
        key = ("evidence", split, groups)
        if key not in self.cache:
            frames = ("ED",) if split == "external" else ("ED", "ES")   # the paper's external tables: ED only
            self.cache[key] = Evidence(self.data, split, frames, groups=groups, train=self.train, n_boot=self.n_boot)
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
