"""Verdicts on the studies' claims: the rules that turn stored results into a verdict, and the judging of a
claim of the registry (:mod:`cmrlib.registry`).

A verdict is one of :data:`STATUSES`. The rules, stated once for every claim (chapter 18 prints them):

- **direction**: "A is lower than B" holds only if it holds in every training seed; in some seeds, partly; in
  none, not reproduced.
- **significance**: "A is significantly lower than B" needs, besides the direction in every seed, the 95 %
  interval of the difference (subject bootstrap, pooled over seeds; :class:`cmrlib.evidence.Evidence`) to
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

Every rule reads an :class:`~cmrlib.evidence.Estimate`: the statistic in each training seed and a subject-level
bootstrap interval. No rule treats seeds as extra subjects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .evidence import Estimate
from .runstore import NotInStore

STATUSES = ("reproduced", "partly reproduced", "not reproduced", "not testable", "decided by design", "not run")
BEST_SHARE = 0.5      # the most-often-best rule: the claimed option best in at least half the bootstrap draws
COLOURS = {"reproduced": "#2e7d32", "partly reproduced": "#f9a825", "not reproduced": "#c62828",
           "not testable": "#757575", "decided by design": "#5e35b1", "not run": "#bdbdbd"}   # one per status
INTERNAL = "data_manifest/paper_tables/lee2025_internal.csv"
EXTERNAL = "data_manifest/paper_tables/lee2025_external.csv"


@dataclass
class Verdict:
    """A claim's status, our number with its interval (where the claim has one number) and the reason."""
    status: str
    detail: str
    ours: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    seeds: int = 0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r}: expected one of {', '.join(STATUSES)}")

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"


def _seeds_phrase(est: Estimate) -> str:
    return "the one seed" if est.seeds == 1 else f"every one of {est.seeds} seeds"


def significant(est: Estimate, sign: int, what: str) -> Verdict:
    """The significance rule for ``what`` (a difference claimed positive for ``sign=+1``, negative for -1)."""
    side = "above" if sign > 0 else "below"
    n_dir = sum(sign * v > 0 for v in est.per_seed.values())
    on_side = est.low > 0 if sign > 0 else est.high < 0
    other_side = est.high < 0 if sign > 0 else est.low > 0
    num = f"{what} {est.text()}"
    if n_dir == est.seeds and on_side:
        status, why = "reproduced", f"{num}, {side} zero in {_seeds_phrase(est)} and the interval excludes zero"
    elif other_side:
        status, why = "not reproduced", f"{num}: the interval lies on the other side of zero"
    elif n_dir == est.seeds:
        status, why = "partly reproduced", f"{num}, {side} zero in {_seeds_phrase(est)}, but the interval includes zero"
    elif n_dir:
        status, why = "partly reproduced", f"{num}, {side} zero in {n_dir} of {est.seeds} seeds"
    else:
        status, why = "not reproduced", f"{num}, {side} zero in no seed"
    return Verdict(status, why, est.point, est.low, est.high, est.seeds)


def direction(est: Estimate, sign: int, what: str) -> Verdict:
    """The direction rule: ``what`` of the claimed sign in every seed."""
    side = "above" if sign > 0 else "below"
    n_dir = sum(sign * v > 0 for v in est.per_seed.values())
    status = "reproduced" if n_dir == est.seeds else "partly reproduced" if n_dir else "not reproduced"
    return Verdict(status, f"{what} {est.text()}, {side} zero in {n_dir} of {est.seeds} seed(s)",
                   est.point, est.low, est.high, est.seeds)


def no_effect(est: Estimate, margin: float, what: str) -> Verdict:
    """The no-effect rule: the interval of ``what`` includes zero and lies inside ± ``margin``; an interval that
    excludes zero is a difference, however small."""
    num = f"{what} {est.text()}"
    if est.low > 0 or est.high < 0:
        status, why = "not reproduced", f"{num}: the interval excludes zero"
    elif -margin <= est.low and est.high <= margin:
        status, why = "reproduced", f"{num} includes zero and lies within ±{margin:.3f}"
    else:
        status, why = "not testable", (f"{num} includes zero but reaches beyond ±{margin:.3f}: too wide to decide "
                                       "at this size")
    return Verdict(status, why, est.point, est.low, est.high, est.seeds)


def most_often_best(freq: dict, claimed, what: str, seeds: int, threshold: float = BEST_SHARE) -> Verdict:
    """The most-often-best rule: ``freq`` maps each option to the share of bootstrap draws (pooled over seeds)
    in which it is best; ``claimed`` is the option the paper names. Our number is the claimed option's share,
    without an interval (it is itself a bootstrap frequency)."""
    share = float(freq.get(claimed, 0.0))
    top = max(freq, key=freq.get)
    ranked = ", ".join(f"{k}: {v:.0%}" for k, v in sorted(freq.items(), key=lambda kv: -kv[1]))
    detail = f"{what} {claimed} is best in {share:.0%} of the bootstrap draws (threshold {threshold:.0%}; {ranked})"
    status = ("reproduced" if share >= threshold else "partly reproduced" if top == claimed and share > 0
              else "not reproduced")
    return Verdict(status, detail, share, seeds=seeds)


def by_design(reason: str, measured: Verdict | None = None) -> Verdict:
    """A claim the cohort's specification decides before any training: status "decided by design", the reason
    and, where the claim was measured too, that measurement's number, interval and detail."""
    if measured is None:
        return Verdict("decided by design", reason)
    return Verdict("decided by design", f"{reason} Measured: {measured.detail} ({measured.status} by its rule)",
                   measured.ours, measured.low, measured.high, measured.seeds)


def all_of(parts: list[Verdict], joiner: str = "; ") -> Verdict:
    """A claim of several parts: reproduced if every part is, not reproduced if every part is not, not testable
    if every part is not testable, partly otherwise. Our number is that of the first part."""
    statuses = {p.status for p in parts}
    status = (statuses.pop() if len(statuses) == 1 and statuses <= {"reproduced", "not reproduced", "not testable"}
              else "partly reproduced")
    first = parts[0]
    return Verdict(status, joiner.join(p.detail for p in parts), first.ours, first.low, first.high,
                   min(p.seeds for p in parts))


def paper_value(csv: str, table: str, method: str, measure: str, group: str = "all") -> float:
    """One value of the main paper's tables (``data_manifest/paper_tables``)."""
    from .report import load_paper_table
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
        from .evidence import Evidence
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

    from .runstore import read_only
    try:
        with nullcontext() if ctx.train else read_only():
            return claim.rule(ctx)
    except NotInStore as exc:
        return Verdict("not run", f"{exc}")
