"""Files that many writers share: hashing that names cache and run folders, a lock per folder, and writes
that a reader sees whole or not at all (a rename into place). The lowest layer of the library: it imports
nothing of cmrlib."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path

_held: dict[str, tuple[int, int]] = {}       # run folder -> (file descriptor, depth): re-entrant in one process


def stable_hash(obj) -> str:
    """The first 16 hex digits of the SHA-256 of ``obj`` as sorted JSON (names cache and run folders)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def run_lock(run_dir: str | Path):
    """An exclusive lock on a run folder (``lock`` in it), held by one process at a time; re-entrant within a
    process. The operating system releases it when its holder dies, so a killed job blocks nothing."""
    key = str(Path(run_dir).resolve())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(run_dir) / "lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _held[key]
        if depth <= 1:
            del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:
            _held[key] = (fd, depth - 1)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path``, then rename it into place: a reader sees the old file or the
    whole new one, never half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` into a file beside ``path``, then rename it into place (a checkpoint is whole or absent)."""
    import torch  # the only torch use of this module: keep the base layer light to import
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
