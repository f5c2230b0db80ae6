"""The verdict rules shared by every claim of the book (:mod:`cmrlib.claims`) and by chapter 12's own
judgements: a statistic over training seeds with its bootstrap interval (:class:`Estimate`) and the rules that turn
it into a :class:`Verdict`.

A verdict is one of :data:`STATUSES`. The rules, stated once for every claim (chapter 18 prints them):

- **direction**: "A is lower than B" holds only if it holds in every training seed; in some seeds, partly; in
  none, not reproduced.
- **significance**: "A is significantly lower than B" needs, besides the direction in every seed, the 95 %
  interval of the difference (subject bootstrap, pooled over seeds; :class:`cmrlib.runs.evidence.Evidence`) to
  exclude zero on the claimed side. The direction in every seed with an interval that includes zero is partly
  reproduced; an interval on the other side is not reproduced.
- **no effect**: "no bias", "no loss" needs the interval to include zero and to lie inside ± the equivalence
  margin (:func:`cmrlib.claims.rules.equivalence_margin`); an interval that excludes zero is not reproduced; one that includes zero
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

from dataclasses import dataclass


@dataclass
class Estimate:
    """A statistic in each seed, the median over seeds and its bootstrap interval."""
    per_seed: dict
    point: float
    low: float
    high: float

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    def text(self, digits: int = 3) -> str:
        return f"{self.point:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


STATUSES = ("reproduced", "partly reproduced", "not reproduced", "not testable", "decided by design", "not run")


BEST_SHARE = 0.5      # the most-often-best rule: the claimed option best in at least half the bootstrap draws


COLOURS = {"reproduced": "#2e7d32", "partly reproduced": "#f9a825", "not reproduced": "#c62828",
           "not testable": "#757575", "decided by design": "#5e35b1", "not run": "#bdbdbd"}   # one per status


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
