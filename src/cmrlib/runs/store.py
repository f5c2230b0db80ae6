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
from cmrlib.errors import InputError
from cmrlib.files import stable_hash
from cmrlib.training.methods import METHODS, Method, train_config
from cmrlib.training.postprocess import postprocessing
from cmrlib.training.sampling import group_order

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


def run_key(data: Data, name: str, method: Method) -> str:
    """The hash that names an experiment's run folder."""
    cfg = train_config(data.params, method).to_dict()
    cfg["extra"] = {}   # a field TrainConfig no longer has; kept empty in the key so stored runs keep their names
    if not cfg.get("compile"):  # added later: runs trained in eager mode keep their names
        cfg.pop("compile", None)
    parts = [name, method.__dict__, cfg, data.cache.path.name, sorted(data.ids("train")), postprocessing(data.params)]
    if method.crop:     # the box a crop model is trained and tested on (a change of buffer is a new run)
        parts.append({"crop_size": list(crop_size(data))})
    return stable_hash(parts)


def run_dir_for(data: Data, name: str, method: Method) -> Path:
    """``runs/<profile>/<name>-<hash>``; see :func:`run_key`."""
    return runs_dir(data.params) / f"{name}-{run_key(data, name, method)}"


def read_metrics(path: Path) -> pd.DataFrame:
    """An experiment's ``metrics.csv`` (subject IDs kept as text)."""
    return pd.read_csv(path, dtype={"subject_id": str})


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
