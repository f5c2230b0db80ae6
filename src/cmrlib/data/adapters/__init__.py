"""Adapters: build a validated manifest from a dataset as its providers distribute it.

Each adapter checks every subject (files present, readable, image and label shapes and spacings agree,
label values known) and raises :class:`AdapterError` listing *every* problem, with subject and path, before
anything is written; a manifest is written only when the whole dataset passes. Used by the "Using your own
data" page and chapter 12.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pandas as pd

from cmrlib.data.io import read_pair
from cmrlib.data.manifest import parse_label_map, validate_manifest
from cmrlib.data.validate import pair_problems
from cmrlib.errors import InputError


class AdapterError(InputError):
    def __init__(self, dataset: str, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:          # one problem: one line
            super().__init__(f"{dataset}: {problems[0]}; no manifest written")
        else:
            super().__init__(f"{dataset}: {len(problems)} problem(s); no manifest written\n"
                             + "\n".join(f"  - {p}" for p in problems))


def pseudonym(subject_id: str, key: str | bytes, prefix: str) -> str:
    """A stable pseudonym, HMAC-SHA256 of the ID under a secret ``key``: the same ID and key always give the
    same pseudonym, and without the key an ID cannot be found from its pseudonym, even by trying every ID (a
    small space for UK Biobank's eids)."""
    key = key.encode() if isinstance(key, str) else key
    return prefix + hmac.new(key, str(subject_id).encode(), hashlib.sha256).hexdigest()[:16]


MIN_KEY_CHARS = 16
KEY_HELP = ("make one with: python -c \"import secrets; print(secrets.token_hex(32))\" > ~/.cmrlib-pseudonym-key "
            "(keep it outside the repository and the outputs, and keep it: the same key gives the same pseudonyms)")


def read_key(path: str | Path | None, outputs: list[Path] = ()) -> str:
    """The secret pseudonymisation key from ``path`` (or ``$CMRLIB_PSEUDONYM_KEY_FILE``): at least
    16 characters, in a file that lies outside the folders that receive outputs."""
    path = path or os.environ.get("CMRLIB_PSEUDONYM_KEY_FILE")
    if not path:
        raise InputError(f"pseudonyms need a secret key file (--key-file or CMRLIB_PSEUDONYM_KEY_FILE); {KEY_HELP}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"key file {path} not found; {KEY_HELP}")
    for o in outputs:
        if o is not None and Path(o).resolve().parent in path.resolve().parents:
            raise InputError(f"key file {path} lies inside the output folder {Path(o).resolve().parent}; "
                             "move it outside anything that is shared")
    key = path.read_text(errors="replace").strip()
    if len(key) < MIN_KEY_CHARS:
        raise InputError(f"key file {path} holds {len(key)} characters; a key needs at least {MIN_KEY_CHARS}; "
                         f"{KEY_HELP}")
    return key


def bmi_class(bmi) -> str:
    """WHO classes: underweight < 18.5 ≤ normal < 25 ≤ overweight < 30 ≤ obese."""
    if pd.isna(bmi):
        return "unknown"
    return "underweight" if bmi < 18.5 else "normal" if bmi < 25 else "overweight" if bmi < 30 else "obese"


def check_pairs(rows: list[dict], root: Path, problems: list[str], where_of=None) -> None:
    """Read every image/label pair of ``rows`` and append its problems (:func:`cmrlib.data.validate.pair_problems`:
    readable, same grid, plausible spacing, label values known after the row's ``label_map``, label not empty).
    ``where_of(row)`` names a row in the messages (default: subject and frame)."""
    where_of = where_of or (lambda r: f"subject {r['subject_id']} frame {r['frame']}")
    for r in rows:
        where = where_of(r)
        fi = r.get("frame_index")
        try:
            img, isp, lab, lsp, affines = read_pair(root / r["image"], root / r["label"], fi)
        except Exception as exc:  # noqa: BLE001 - collected, reported together
            problems.append(f"{where}: {exc}")
            continue
        mapping = parse_label_map(r["label_map"]) if r.get("label_map") else None
        problems += pair_problems(img, isp, lab, lsp, where, r["image"], r["label"], mapping, affines)[0]


def check_out(out: Path | None, dataset: str) -> None:
    """Refuse an output path that cannot take the manifest, before any work is done."""
    if out is None:
        return
    out = Path(out)
    if out.is_dir():
        raise AdapterError(dataset, [f"--out {out} is a folder; give the path of the manifest CSV to write, "
                                     f"e.g. {out / 'manifest.csv'}"])
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise AdapterError(dataset, [f"--out {out}: {probe} is a file, not a folder"])
    if not os.access(probe, os.W_OK):
        raise AdapterError(dataset, [f"--out {out}: folder {probe} is not writable; choose another place"])


def finish(rows: list[dict], root: Path, out: Path | None, dataset: str, problems: list[str]) -> pd.DataFrame:
    """Raise with every problem, or validate and write the manifest (atomically) and return it."""
    if problems:
        raise AdapterError(dataset, problems)
    df = pd.DataFrame(rows)
    validate_manifest(df, root, dataset)
    if out is not None:
        out = Path(out)
        check_out(out, dataset)
        df = df.copy()
        for c in ("image", "label"):   # absolute, so the manifest can live anywhere
            df[c] = [str((root / p).resolve()) for p in df[c]]
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(tmp, index=False)
            os.replace(tmp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise AdapterError(dataset, [f"--out {out}: cannot write the manifest ({exc.strerror or exc})"]) from exc
    return df
