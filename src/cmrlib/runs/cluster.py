"""A profile's experiments as jobs: one job per experiment, through submitit, on Slurm or as local processes.

``cmrlib run --params P --executor slurm`` (or ``local``) prepares the data once in the submitting process (the
cohort and the cache; jobs only read them), then submits

1. every experiment that trains a model as one job array (they are independent of each other);
2. every cascade (:mod:`cmrlib.training.methods`), which trains nothing but needs its two stages' models, as a second
   array that starts when the first has finished (a Slurm ``afterok`` dependency; the local executor waits).

Each job runs :func:`cmrlib.runs.experiments.run_experiment`, so results land in the run store exactly as a
sequential run puts them there. A job that is killed leaves its last checkpoint; submitting the same
experiments again resumes it (``events.log`` in its run folder records where each start began). The store is
safe for concurrent writers: every result file is written whole and renamed into place, and a lock per run
folder (:func:`run_lock`) keeps two jobs from training the same experiment at once.

Job resources come from the profile's ``cluster`` section (``partition``, ``cpus_per_task``, ``gpus_per_node``,
``mem_gb``, ``timeout_min``); every job uses ``cpus_per_task`` threads, so a Slurm run and a local run of the same
experiments compute the same numbers on the CPU.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from cmrlib.config import load_params, runs_dir
from cmrlib.data.pipeline import prepare_data
from cmrlib.errors import InputError
from cmrlib.runs.evidence import SEEDED, seeded, training_seeds
from cmrlib.runs.experiments import run_experiment
from cmrlib.runs.store import run_dir_for
from cmrlib.training.methods import METHODS

DEFAULTS = dict(cpus_per_task=1, mem_gb=4, timeout_min=60, gpus_per_node=0, partition=None)


def job_waves(names: list[str]) -> tuple[list[str], list[str]]:
    """Experiments that train (first wave) and cascades (second wave); each cascade's two stages are added to
    the first wave when missing."""
    first, second = [], []
    for n in names:
        m = METHODS[n]
        if m.crop == "cascade":
            second.append(n)
            for stage in (m.first_stage, m.second_stage):
                if stage not in first:
                    first.append(stage)
        elif n not in first:
            first.append(n)
    return first, second


def run_job(params_path: str, name: str, threads: int, env: dict | None = None, seed: int | None = None) -> str:
    """One job: the experiment ``name`` of the profile at ``params_path``, with ``threads`` torch threads and
    training seed ``seed`` (the profile's by default; :func:`cmrlib.runs.evidence.seeded`). Returns its run folder."""
    os.environ.update(env or {})
    import torch

    torch.set_num_threads(int(threads))
    params = load_params(params_path)
    data = prepare_data(params, progress=False)
    if seed is not None:
        data = seeded(data, seed)
    run_experiment(data, name, progress=False)
    return str(run_dir_for(data, name, METHODS[name]))


def executor_for(kind: str, folder: Path, resources: dict):
    """A submitit executor: ``slurm`` or ``local`` (processes on this machine)."""
    import submitit
    if kind not in ("slurm", "local"):
        raise InputError(f"--executor {kind!r}: expected slurm or local")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    r = {**DEFAULTS, **resources}
    params = dict(timeout_min=int(r["timeout_min"]), cpus_per_task=int(r["cpus_per_task"]))
    if kind == "slurm":
        params.update(slurm_mem=f"{int(r['mem_gb'])}G")
        if r["partition"]:
            params["slurm_partition"] = r["partition"]
        if r["gpus_per_node"]:
            params["gpus_per_node"] = int(r["gpus_per_node"])
    ex.update_parameters(**params)
    return ex


def seed_jobs(names: list[str], params: dict) -> list[tuple[str, int]]:
    """(experiment, training seed) pairs: every seed of the profile for :data:`cmrlib.runs.evidence.SEEDED`
    experiments, the profile's seed for the others."""
    seeds = training_seeds(params)
    return [(n, s) for n in names for s in (seeds if n in SEEDED else seeds[:1])]


def job_label(name: str, seed: int, params: dict) -> str:
    """``name``, or ``name@seed<k>`` for a training seed other than the profile's."""
    return name if seed == params["seed"] else f"{name}@seed{seed}"


class _Stopped(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def cancel_jobs(jobs: list, grace_s: float = 10.0) -> list[str]:
    """Cancel every job not finished yet, as Slurm's ``scancel`` would (a local job gets SIGINT, then SIGKILL
    after ``grace_s`` seconds if still running); returns their ids. A cancelled job keeps its last checkpoint,
    and submitting again resumes it."""
    live = [j for j in jobs if not j.done()]
    for j in live:
        with contextlib.suppress(Exception):
            j.cancel(check=False)
    end = time.monotonic() + grace_s
    for j in live:
        proc = getattr(j, "_process", None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=max(0.0, end - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
    return [str(j.job_id) for j in live]


@contextlib.contextmanager
def cancelled_when_stopped(jobs: list):
    """While this block runs, SIGTERM, SIGINT or SIGHUP to this process cancels ``jobs`` (a list that may grow)
    before it exits with status 128 + the signal: no job outlives the command that submitted it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Stopped(signum)
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    old = {s: signal.signal(s, stop) for s in sigs}
    try:
        yield
    except (_Stopped, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)          # a second signal must not interrupt the cancelling
        ids = cancel_jobs(jobs)
        print(f"[cluster] stopped by {signal.Signals(signum).name}: cancelled {len(ids)} job(s) "
              f"({', '.join(ids) or 'none running'}); submit again to resume them from their checkpoints",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + int(signum)) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def submit(params_path: str, names: list[str], kind: str = "slurm", wait: bool = True) -> dict[str, str]:
    """Run ``names`` as jobs, each under every training seed it needs (:func:`seed_jobs`; see the module's
    description); returns :func:`job_label` → run folder."""
    params = load_params(params_path)
    resources = params.get("cluster") or {}
    ex = executor_for(kind, runs_dir(params) / "_jobs", resources)
    prepare_data(params, progress=True)                 # cohort and cache made once, before any job reads them
    threads = int(resources.get("cpus_per_task", DEFAULTS["cpus_per_task"]))
    env = {k: v for k, v in os.environ.items() if k.startswith("CMRLIB_")}
    first, second = (seed_jobs(w, params) for w in job_waves(names))
    params_abs = str(Path(params_path).resolve())

    def array(wave):
        return ex.map_array(run_job, [params_abs] * len(wave), [n for n, _ in wave], [threads] * len(wave),
                            [env] * len(wave), [s for _, s in wave])

    def labels(wave, jobs):
        return ", ".join(f"{job_label(n, s, params)} ({j.job_id})" for (n, s), j in zip(wave, jobs))
    submitted: list = []
    with cancelled_when_stopped(submitted) if wait else contextlib.nullcontext():
        jobs = array(first)
        submitted += jobs
        print(f"[cluster] {kind}: {len(first)} training job(s): {labels(first, jobs)}", flush=True)
        done = {}
        if second:
            if kind == "slurm":
                ex.update_parameters(slurm_additional_parameters={"dependency": "afterok:" + ":".join(j.job_id for j in jobs)})
            else:
                done.update({job_label(n, s, params): j.result() for (n, s), j in zip(first, jobs)})
            later = array(second)
            submitted += later
            print(f"[cluster] {kind}: {len(second)} cascade job(s) after them: {labels(second, later)}", flush=True)
            jobs, first = jobs + later, first + second
        if not wait:
            return {}
        for (n, s), j in zip(first, jobs):
            done[job_label(n, s, params)] = j.result()   # raises with the job's own traceback when it failed
        return done
