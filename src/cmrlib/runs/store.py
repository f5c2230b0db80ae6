"""The run store: ``runs/<profile>/<name>-<hash>/`` holds one experiment's configuration, checkpoint,
training log and per-structure metrics.

The hash covers everything that determines the result (method, training settings, cache, training subjects,
post-processing), so asking again for a finished experiment returns its stored metrics without training, and an
interrupted one resumes from its checkpoint.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from cmrlib.config import runs_dir
from cmrlib.data.crop import crop_size
from cmrlib.data.pipeline import Data
from cmrlib.errors import DamagedFile, InputError
from cmrlib.files import stable_hash, write_atomic, write_atomic_bytes
from cmrlib.training.augment import LATER as AUGMENT_LATER
from cmrlib.training.methods import METHODS, Method, train_config
from cmrlib.training.postprocess import postprocessing
from cmrlib.training.sampling import group_order
from cmrlib.training.train import load_checkpoint

_READ_ONLY = [False]


class NotInStore(InputError):
    """A result asked for in read-only mode (:func:`read_only`) that the run store does not hold."""


@contextlib.contextmanager
def read_only():
    """Within this block nothing trains: a result missing from the run store raises :class:`NotInStore`
    instead of being computed (the claims chapter reads what the other chapters stored)."""
    before = _READ_ONLY[0]
    _READ_ONLY[0] = True
    try:
        yield
    finally:
        _READ_ONLY[0] = before


def require_stored(path: Path, what: str) -> None:
    """In read-only mode, refuse to make ``path`` (raise :class:`NotInStore` naming it and ``what``)."""
    if _READ_ONLY[0] and not Path(path).exists():
        raise NotInStore(f"{path}: {what} is not in the run store; run the chapter that makes it first")


def require_trained(run_dir: Path, steps: int, what: str) -> None:
    """In read-only mode, refuse to train: a model whose checkpoint is missing, or stopped before ``steps``,
    raises :class:`NotInStore` naming it (finishing it would be training)."""
    if not _READ_ONLY[0]:
        return
    ck = Path(run_dir) / "checkpoint.pt"
    if not ck.exists():
        raise NotInStore(f"{run_dir}: {what} is not in the run store; run the chapter that makes it first")
    step = load_checkpoint(ck)["step"]
    if step < steps:
        raise NotInStore(f"{run_dir}: {what} stopped at step {step} of {steps}; run its chapter to finish it")


def run_key(data: Data, name: str, method: Method) -> str:
    """The hash that names an experiment's run folder."""
    cfg = train_config(data.params, method).to_dict()
    cfg["extra"] = {}   # a field TrainConfig no longer has; kept empty in the key so stored runs keep their names
    for later in ("compile", "graphs"):   # added later: runs trained without them keep their names
        if not cfg.get(later):
            cfg.pop(later, None)
    if isinstance(cfg.get("augment"), dict):    # augmentation options added later, off: the names stay too
        cfg["augment"] = {k: v for k, v in cfg["augment"].items() if not (k in AUGMENT_LATER and v == AUGMENT_LATER[k])}
    parts = [name, method.__dict__, cfg, data.cache.path.name, sorted(data.ids("train")), postprocessing(data.params)]
    if method.crop:     # the box a crop model is trained and tested on (a change of buffer is a new run)
        parts.append({"crop_size": list(crop_size(data))})
    return stable_hash(parts)


def run_dir_for(data: Data, name: str, method: Method) -> Path:
    """``runs/<profile>/<name>-<hash>``; see :func:`run_key`."""
    return runs_dir(data.params) / f"{name}-{run_key(data, name, method)}"


RECORD = "record.json"     # beside metrics.csv: what the finished run wrote (bytes, rows, subjects, SHA-256)


class DamagedRun(DamagedFile):
    """A file of the run store that is not what its run wrote (cut short, emptied, overwritten): never used,
    never summarised; the message names the file and the way out."""


def _way_out(rd: Path) -> str:
    return (f"remove the folder {rd} and run its chapter again (it is retrained from scratch), or copy the whole "
            "folder again from the store it came from")


def _describe(df: pd.DataFrame) -> dict:
    return {"rows": int(len(df)),
            "subjects": int(df["subject_id"].nunique()) if "subject_id" in df.columns else None}


def _parse(raw: bytes, path: Path) -> pd.DataFrame:
    import io
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype={"subject_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DamagedRun(f"{path}: damaged, not a readable table ({type(exc).__name__}: {str(exc)[:120]}); "
                         f"{_way_out(path.parent)}") from None
    if df.empty:
        raise DamagedRun(f"{path}: damaged, it holds no results (a header and no rows); {_way_out(path.parent)}")
    return df


def write_metrics(rd: Path, df: pd.DataFrame) -> None:
    """Write a finished run's ``metrics.csv`` and its record (:data:`RECORD`: bytes, rows, subjects and SHA-256
    of the file). The record is written first: a run killed between the two has a record and no metrics, and
    computes them again; never metrics without their record."""
    import hashlib
    import json
    text = df.to_csv(index=False).encode()
    record = {"file": "metrics.csv", "bytes": len(text), "sha256": hashlib.sha256(text).hexdigest(),
              **_describe(df)}
    write_atomic(Path(rd) / RECORD, json.dumps(record, indent=1))
    write_atomic_bytes(Path(rd) / "metrics.csv", text)


def read_metrics(path: Path) -> pd.DataFrame:
    """An experiment's ``metrics.csv`` (subject IDs kept as text), checked against the record its run wrote
    (:func:`write_metrics`): a file that differs (a partial copy cut short, an edited or emptied file) raises
    :class:`DamagedRun` naming what the run wrote and what the file holds. A file from before records existed is
    checked for being a readable table with results, and then recorded."""
    import hashlib
    import json
    path = Path(path)
    raw = path.read_bytes()
    rec_path = path.parent / RECORD
    if rec_path.exists():
        try:
            rec = json.loads(rec_path.read_text())
            want = rec["sha256"]
        except (ValueError, KeyError, TypeError):
            raise DamagedRun(f"{rec_path}: damaged record of {path.name}; {_way_out(path.parent)}") from None
        if hashlib.sha256(raw).hexdigest() != want:
            try:
                now = _describe(pd.read_csv(__import__("io").BytesIO(raw), dtype={"subject_id": str}))
                holds = f"it holds {now['rows']} rows" + (f" of {now['subjects']} subjects" if now["subjects"] else "")
            except Exception:       # noqa: BLE001 - any failure to parse is itself the damage being reported
                holds = "it is not a readable table"
            wrote = f"{rec.get('rows')} rows" + (f" of {rec['subjects']} subjects" if rec.get("subjects") else "")
            raise DamagedRun(f"{path}: damaged: {holds} ({len(raw)} bytes), its run wrote {wrote} "
                             f"({rec.get('bytes')} bytes, another checksum); {_way_out(path.parent)}")
        return _parse(raw, path)
    df = _parse(raw, path)
    record = {"file": "metrics.csv", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), **_describe(df),
              "recorded": "on first read (written before records existed)"}
    try:
        write_atomic(rec_path, json.dumps(record, indent=1))
    except OSError:
        pass            # a read-only copy of a store is still readable
    return df


def stored_results(params: dict) -> dict[str, pd.DataFrame]:
    """Every finished experiment of a profile (name → metrics); where an experiment ran under several
    configurations, the most recent result."""
    res = {}
    for f in sorted(runs_dir(params).glob("*/metrics.csv"), key=lambda f: f.stat().st_mtime):
        df = read_metrics(f)
        res[str(df.experiment.iloc[0])] = df
    return res


def group_weight_log(run_dir: Path, group_names: list[str]) -> pd.DataFrame:
    """The group weights a Group DRO run wrote to its training log, one row per step and one column per group
    (groups in training order, :func:`cmrlib.training.sampling.group_order`); empty for objectives without weights."""
    log = pd.read_csv(Path(run_dir) / "train_log.csv", dtype={"group_weights": str})
    w = log.group_weights.dropna()
    if w.empty:
        return pd.DataFrame(columns=list(group_names))
    table = w.str.split(" ", expand=True).astype(float)
    if table.shape[1] != len(group_names):
        raise InputError(f"{Path(run_dir) / 'train_log.csv'}: group_weights has {table.shape[1]} values per row, "
                         f"expected {len(group_names)} ({', '.join(map(str, group_names))})")
    table.columns = list(group_names)
    table.index = log.step[w.index].to_numpy()
    return table.rename_axis("step")


def dro_weights(data: Data, name: str, method: Method | None = None) -> pd.DataFrame:
    """The Group DRO weights q of a stored experiment per step, one column per training group
    (:func:`group_weight_log` on its run folder)."""
    return group_weight_log(run_dir_for(data, name, method or METHODS[name]), group_order(data.train_groups()))
