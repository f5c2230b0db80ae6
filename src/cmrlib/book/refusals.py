"""The catalogue of refused inputs (``resources/refusals.yaml``) and the book page made from it.

``python -m cmrlib.book.refusals > book/refusals.md`` writes the page; a test checks the committed page is current
and that every entry has a test case (``tests/test_bad_inputs.py``).
"""
from __future__ import annotations

from pathlib import Path

import yaml

CATALOGUE = Path(__file__).parents[1] / "resources" / "refusals.yaml"


def catalogue(path: str | Path = CATALOGUE) -> list[dict]:
    """Every entry, with its ``area``."""
    data = yaml.safe_load(Path(path).read_text())
    return [{"area": area, **e} for area, entries in data.items() for e in entries]


def page(path: str | Path = CATALOGUE) -> str:
    """The book page: one table per area."""
    entries = catalogue(path)
    out = ["# What the library refuses, and why", "",
           "A wrong input that reads as a right one becomes a wrong number, and in a fairness study a wrong number "
           "that looks right is the worst outcome. So every input is checked where it enters (images, manifests, "
           "dataset adapters, profiles, the cohort spec, the command line) and refused with a message that names "
           "the file, row, subject or field and, where there is one, the fix. The command line prints a refusal "
           "as one line and exits with status 2 (`--debug` shows the traceback). Each refusal below is a test "
           f"case; there are {len(entries)}. The last table lists faults that happen during a run rather than in an "
           "input, each injected by the test it names.", ""]
    areas = list(dict.fromkeys(e["area"] for e in entries))
    for area in areas:
        out += [f"## {area.capitalize()}", "", "| input | refused with | why |", "|---|---|---|"]
        for e in entries:
            if e["area"] == area:
                cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
                out.append(f"| {cell(e['input'])} | `{e['refused_with']}` | {cell(e['why'])} |")
        out.append("")
    out += ["## Interruption", "",
            "An interrupted run leaves nothing half-done behind: a cache is written into a temporary folder and "
            "renamed into place (a folder left by a killed build is removed by the next build); the synthetic "
            "cohort likewise; a training run resumes from its last checkpoint, and its log is cut back to that "
            "checkpoint's step, so no step appears twice. Tests kill each of these with `SIGKILL` and check the "
            "result against an uninterrupted run.", "",
            "## Privacy", "",
            "UK Biobank subject IDs are replaced by keyed pseudonyms (HMAC-SHA256 under a secret key of at least "
            "16 characters, read from a file kept outside the repository and the outputs). No default key exists: "
            "with a known key, the pseudonym of every possible eid could be computed and the IDs read back. "
            "Messages about a UK Biobank subject name its demographics row, never its pseudonym next to a path "
            "that contains its eid. A test takes a small UK Biobank-layout cohort through the adapter, the cache, "
            "a training run, the summary table and a chapter, and finds no eid in any output.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(page(), end="")
