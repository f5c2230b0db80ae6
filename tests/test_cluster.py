"""Experiments as jobs: the two waves, the lock per run folder, and a local submitit run into the store."""
import multiprocessing as mp
import time

import pytest
import yaml

from cmrlib.files import run_lock
from cmrlib.runs.cluster import job_waves


def test_cascades_wait_for_both_of_their_stages():
    first, second = job_waves(["baseline", "oversampling_cascade", "group_dro"])
    assert second == ["oversampling_cascade"]
    assert first == ["baseline", "oversampling", "oversampling_crop_gt", "group_dro"]
    assert job_waves(["baseline_cascade"]) == (["baseline", "baseline_crop_gt"], ["baseline_cascade"])


def _hold(path, seconds, started):
    with run_lock(path):
        started.set()
        time.sleep(seconds)


def test_run_lock_excludes_other_processes_and_is_reentrant(tmp_path):
    started = mp.Event()
    child = mp.Process(target=_hold, args=(tmp_path / "run", 1.0, started))
    child.start()
    assert started.wait(30)
    t0 = time.perf_counter()
    with run_lock(tmp_path / "run"):
        waited = time.perf_counter() - t0
        with run_lock(tmp_path / "run"):        # the same process may take it again
            pass
    child.join()
    assert waited > 0.5


def test_run_lock_is_released_when_its_holder_dies(tmp_path):
    started = mp.Event()
    child = mp.Process(target=_hold, args=(tmp_path / "run", 60.0, started))
    child.start()
    assert started.wait(30)
    child.kill()
    child.join()
    t0 = time.perf_counter()
    with run_lock(tmp_path / "run"):
        assert time.perf_counter() - t0 < 5


def test_local_jobs_fill_the_store_a_sequential_run_reads(tiny_params, tmp_path, monkeypatch):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.runs.cluster import submit
    from cmrlib.runs.experiments import run_experiment
    params = {k: v for k, v in tiny_params.items() if k != "_path"}
    params.update(profile="tiny_jobs", runs_root=str(tmp_path / "runs"), cluster={"cpus_per_task": 1, "timeout_min": 10})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("CMRLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CMRLIB_DATA", tiny_params["data_root"])
    done = submit(str(path), ["baseline", "oversampling"], "local")     # one wave (the waves: test above)
    assert set(done) == {"baseline", "oversampling"}
    data = prepare_data(params, progress=False)
    import cmrlib.runs.experiments as ex

    def boom(*a, **k):
        raise AssertionError("trained again")
    monkeypatch.setattr(ex, "train_model", boom)       # every result is in the store already
    for name in done:
        assert len(run_experiment(data, name, progress=False))
    with pytest.raises(Exception, match="executor"):
        submit(str(path), ["baseline"], "cloud")


def test_seeded_experiments_become_one_job_per_training_seed():
    from cmrlib.runs.cluster import job_label, seed_jobs
    params = {"seed": 3, "seeds": 2}
    jobs = seed_jobs(["baseline", "oversampling_group_dro", "baseline_cascade"], params)
    assert jobs == [("baseline", 3), ("baseline", 4), ("oversampling_group_dro", 3),
                    ("baseline_cascade", 3), ("baseline_cascade", 4)]
    assert [job_label(n, s, params) for n, s in jobs[:2]] == ["baseline", "baseline@seed4"]
    assert seed_jobs(["baseline"], {"seed": 0}) == [("baseline", 0)]


def test_sigterm_to_the_submitting_process_cancels_its_local_jobs(tmp_path):
    """The parent waits on a local job that would run for a minute; SIGTERM to the parent cancels the job (as
    ``scancel`` would) and the parent exits with 128 + 15."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, time, submitit
        from cmrlib.runs.cluster import cancelled_when_stopped

        def work(path):
            open(path, "w").write(str(os.getpid()))
            time.sleep(60)

        ex = submitit.AutoExecutor(folder={str(tmp_path / "jobs")!r}, cluster="local")
        ex.update_parameters(timeout_min=5)
        jobs = []
        with cancelled_when_stopped(jobs):
            jobs.append(ex.submit(work, {str(tmp_path / "pid")!r}))
            jobs[0].result()
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    child = int((tmp_path / "pid").read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM: cancelled 1 job(s)" in parent.stderr.read()
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"job process {child} outlived its parent")
