"""Files that many writers share: hashing that names cache and run folders, a lock per folder, and writes
that a reader sees whole or not at all (a rename into place; a write that fails leaves no temporary file, and
a full disk is said as such, with the place). The lowest layer of the library: it imports only
:mod:`cmrlib.errors`."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from cmrlib.errors import InputError

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


class DiskFull(InputError):
    """A write that failed because the disk is full (or refused more): the message names the place and the
    free space."""


def storage_error(exc: BaseException, path: Path) -> BaseException:
    """``exc`` as :class:`DiskFull` where it means that the disk holding ``path`` is full (``ENOSPC``, or
    torch's zip writer's ``unexpected pos`` after a short write), else ``exc`` itself."""
    import errno
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    full = full or (isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "file write failed" in str(exc)))
    if not full:
        return exc
    where = Path(path).parent
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:.0f} MiB free there now"
    except OSError:
        free = "its free space unknown"
    return DiskFull(f"{path}: the disk is full ({free}); nothing was written. Free space on the disk holding "
                    f"{where}, or point CMRLIB_RUNS (run store) or CMRLIB_DATA (caches) at a larger disk, and run again")


def _replace_into(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it into place; on failure the
    temporary file is removed and a full disk raised as :class:`DiskFull`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        err = storage_error(exc, path)
        if err is exc:
            raise
        raise err from None


@contextlib.contextmanager
def folder_atomic(final: Path):
    """A folder written whole or not at all: the block fills the temporary folder it is given, beside ``final``
    (``.<name>.partial-<pid>``, the name :func:`cmrlib.data.cache.clean_partials` removes when its process is
    gone), which then replaces ``final``; on any failure the temporary folder goes, and a full disk is raised as
    :class:`DiskFull`."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = storage_error(exc, final)
        if err is exc:
            raise
        raise err from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path``, then rename it into place: a reader sees the old file or the
    whole new one, never half of it."""
    _replace_into(path, lambda tmp: tmp.write_text(text))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """:func:`write_atomic` for bytes."""
    _replace_into(path, lambda tmp: tmp.write_bytes(data))


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` into a file beside ``path``, then rename it into place (a checkpoint is whole or absent)."""
    import torch  # the only torch use of this module: keep the base layer light to import
    _replace_into(path, lambda tmp: torch.save(obj, tmp))
