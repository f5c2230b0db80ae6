"""The book's list of work (cmrlib.book.work): every chapter's units, each once, in waves that respect their
dependencies, with resources per kind; the plan printed by ``cmrlib run --dry-run``. That the list covers every
model the chapters train is checked where it can be, by running it and then the book (.ci/run:
``scripts/check_no_training.py`` finds no training start during the book)."""
import os
import time
from pathlib import Path

import pytest

from cmrlib import cli
from cmrlib.book import work
from cmrlib.config import load_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke():
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        yield load_params("params/smoke.yaml")
    finally:
        os.chdir(old)


def test_every_unit_once_and_after_what_it_needs(smoke):
    units = work.plan(smoke)
    keys = [u.key for u in units]
    assert len(keys) == len(set(keys))
    assert len({(u.task, u.args) for u in units}) == len(units)          # a model two chapters need: one unit
    wave_of = {u.key: i for i, w in enumerate(work.waves(units)) for u in w}
    for u in units:
        for a in u.after:
            assert a in wave_of, (u.key, a)
            assert wave_of[a] < wave_of[u.key], (u.key, a)
    cascade = next(u for u in units if u.args[:1] == ("baseline_cascade",))
    seed = smoke["seed"]      # its stages are the units of the chapters that first need them
    assert set(cascade.after) == {f"02:cohort::baseline@{seed}", f"07:cohort::baseline_crop_gt@{seed}"}
    assert {u.chapter for u in units} >= {"02", "10", "12", "audit", "13", "14", "15", "17"}
    down = [u for u in units if u.task == "downstream"]
    assert down and all("17:synthetic_set" in u.after for u in down)


def test_chapters_outside_02_08_have_their_units(smoke):
    s15 = work.plan(smoke, ["15"])
    assert sum(u.task == "point2022" for u in s15) == 3 * len(smoke["study2022"]["shares"]) * len(smoke["study2022"]["seeds"])
    assert sum(u.task == "ensemble2022" for u in s15) == 1
    assert {u.args[0] for u in work.plan(smoke, ["14"])} == {"baseline", "stratified", "fair_meta_learning",
                                                             "protected_group_models", "balanced_database"}
    audit = work.plan(smoke, ["audit"])              # its model comes with it
    assert [u.chapter for u in audit][-1] == "audit" and any(u.chapter == "12" for u in audit)


def test_seeds_multiply_the_seeded_experiments_only(smoke):
    p = {**smoke, "seeds": 3}
    units = work.plan(p, ["03"])
    assert sorted(u.args[1] for u in units if u.args[0] == "oversampling") == [0, 1, 2]
    conv = [u for u in work.plan(p, ["02"]) if u.args[2].startswith("steps*")]
    assert len(conv) == 1                           # the convergence check: the profile's seed only


def test_resources_per_kind(smoke):
    p = {**smoke, "cluster": {"cpus_per_task": 2, "mem_gb": 8, "generator": {"mem_gb": 32, "timeout_min": 600}}}
    assert work.resources_for(p, "segmenter")["mem_gb"] == 8
    g = work.resources_for(p, "generator")
    assert g["mem_gb"] == 32 and g["timeout_min"] == 600 and g["cpus_per_task"] == 2


def test_unknown_chapter_is_refused_before_any_work():
    with pytest.raises(work.InputError, match="--only 99: no chapter '99'.*02, 03"):
        work.chapter_key("99")
    assert work.chapter_key("2") == "02" and work.chapter_key("audit") == "audit"


def test_dry_run_prints_the_plan_and_trains_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CMRLIB_RUNS", str(tmp_path / "runs"))
    assert cli.main(["run", "--params", "params/paper.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "wave 1:" in out and "wave 3:" in out and "chapter 17: 1 generator unit(s)" in out
    assert "generator: cpus_per_task=8, mem_gb=128, timeout_min=2880" in out
    assert not (tmp_path / "runs").exists()


def test_the_no_training_check_reads_event_logs(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("check", ROOT / "scripts" / "check_no_training.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    run = tmp_path / "baseline-abc"
    run.mkdir()
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    run.joinpath("events.log").write_text(f"{before} start at step 0 of 24 (pid 1, host h)\n")
    assert check.starts_since(tmp_path, time.time() - 60) == []
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    with run.joinpath("events.log").open("a") as f:
        f.write(f"{now} start at step 0 of 24 (pid 2, host h)\n")
    assert len(check.starts_since(tmp_path, time.time() - 60)) == 1
    assert check.main(["--runs", str(tmp_path), "--since", str(time.time() - 60)]) == 1


def test_the_paper_scale_page_shows_the_current_plan(monkeypatch):
    monkeypatch.chdir(ROOT)
    page = (ROOT / "book" / "paper_plan.md").read_text()
    assert page == work.plan_page(load_params("params/paper.yaml")), \
        "regenerate: python -m cmrlib.book.work params/paper.yaml > book/paper_plan.md"
    assert "| 17 |" in page and "generator" in page
