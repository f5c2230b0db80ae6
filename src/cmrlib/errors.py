"""The library's refusals of bad input.

Every error caused by what a user gave (a profile, a cohort spec, a manifest, an image, a dataset folder, a
command-line argument) is an :class:`InputError`; its message names the input (file, row, subject, field) and,
where there is one, the fix. The command line prints such an error as one line and exits with status 2; any
other exception is a bug and keeps its traceback. The catalogue of refused inputs is
``cmrlib/resources/refusals.yaml`` (rendered in the book by :mod:`cmrlib.book.refusals`).
"""
from __future__ import annotations

import difflib
from pathlib import Path


class InputError(ValueError):
    """Bad input, named in the message."""


class ProblemsError(InputError):
    """Every problem found in one input (``source``), one per line, each naming what it is about; a single
    problem stays one line. Where ``shown`` is set, only the first ``shown`` are listed, with the count of the
    rest."""
    shown: int | None = None

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:          # one problem: one line
            super().__init__(f"{source}: {problems[0]}")
            return
        listed = problems if self.shown is None else problems[: self.shown]
        more = f"\n  … and {len(problems) - len(listed)} more" if len(listed) < len(problems) else ""
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in listed) + more)


class DamagedFile(InputError):
    """A stored file (a checkpoint, a run's results) that is not what was written: cut short, emptied,
    overwritten. It is never used; the message names it and the way out."""


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or the list of options when none is close."""
    options = [str(o) for o in options]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected one of: {', '.join(options)})" if options else ""


def read_yaml(path, error=InputError):
    """A YAML file's content; a file that is not UTF-8 or not valid YAML raises ``error`` naming the file, line
    and column."""
    import yaml
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (offset {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: YAML syntax error{at}: {getattr(exc, 'problem', None) or exc}") from None
