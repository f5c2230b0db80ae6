"""The run store's integrity, by fault injection: a finished run records what it wrote (rows, subjects, SHA-256 of
its metrics), and a damaged file (cut short while keeping every group, emptied, overwritten, a checkpoint cut short)
is refused with the file and the way out, never used; a full disk is said as such and leaves no temporary file."""
import errno
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cmrlib.errors import DamagedFile
from cmrlib.files import DiskFull, save_atomic, write_atomic
from cmrlib.runs import experiments
from cmrlib.runs.store import RECORD, DamagedRun, read_metrics, read_only, run_dir_for, write_metrics
from cmrlib.training.methods import METHODS
from cmrlib.training.train import TrainConfig, load_checkpoint, train_model


def _metrics(n_subjects=6):
    rows = [dict(subject_id=f"S{i}", frame=f, structure=s, dsc=0.8 + 0.01 * i, ethnicity="White" if i % 2 else "Black",
                 experiment="baseline") for i in range(n_subjects) for f in ("ED", "ES") for s in ("LVBP", "LVM")]
    return pd.DataFrame(rows)


def _cut_keeping_every_group(path, keep):
    lines = path.read_text().splitlines(True)
    path.write_text("".join(lines[: 1 + keep]))


def test_a_finished_run_records_what_it_wrote_and_reads_back(tmp_path):
    df = _metrics()
    write_metrics(tmp_path, df)
    rec = pd.read_json(tmp_path / RECORD, typ="series")
    assert rec["rows"] == 24 and rec["subjects"] == 6
    pd.testing.assert_frame_equal(read_metrics(tmp_path / "metrics.csv"), df)


def test_metrics_cut_short_but_keeping_every_group_are_refused(tmp_path):
    write_metrics(tmp_path, _metrics())
    _cut_keeping_every_group(tmp_path / "metrics.csv", 16)           # 4 of 6 subjects, both groups still there
    assert set(pd.read_csv(tmp_path / "metrics.csv").ethnicity) == {"White", "Black"}
    with pytest.raises(DamagedRun) as e:
        read_metrics(tmp_path / "metrics.csv")
    msg = str(e.value)
    for part in ("metrics.csv: damaged", "16 rows of 4 subjects", "wrote 24 rows of 6 subjects",
                 f"remove the folder {tmp_path}"):
        assert part in msg, msg


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage\xff" * 10, b"subject_id,dsc\n"],
                         ids=["empty", "garbage", "header-only"])
def test_empty_or_garbage_metrics_are_refused_with_or_without_a_record(tmp_path, content):
    for recorded in (True, False):
        rd = tmp_path / str(recorded)
        rd.mkdir()
        write_metrics(rd, _metrics())
        if not recorded:
            (rd / RECORD).unlink()
        (rd / "metrics.csv").write_bytes(content)
        with pytest.raises(DamagedRun, match=f"{rd}.*damaged.*remove the folder"):
            read_metrics(rd / "metrics.csv")


def test_metrics_from_before_records_are_recorded_on_first_read_then_checked(tmp_path):
    (tmp_path / "metrics.csv").write_text(_metrics().to_csv(index=False))
    assert len(read_metrics(tmp_path / "metrics.csv")) == 24
    assert (tmp_path / RECORD).exists()
    _cut_keeping_every_group(tmp_path / "metrics.csv", 20)
    with pytest.raises(DamagedRun, match="20 rows of 5 subjects"):
        read_metrics(tmp_path / "metrics.csv")


def test_a_store_damaged_after_a_finished_run_is_detected_not_summarised(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    data = prepare_data(tiny_params, progress=False)
    first = experiments.run_experiment(data, "baseline", progress=False)
    rd = run_dir_for(data, "baseline", METHODS["baseline"])
    keep = (rd / "metrics.csv").read_bytes()
    try:
        _cut_keeping_every_group(rd / "metrics.csv", len(first) - 6)
        with read_only(), pytest.raises(DamagedRun, match="metrics.csv: damaged"):
            experiments.run_experiment(data, "baseline", progress=False)
    finally:
        (rd / "metrics.csv").write_bytes(keep)
    assert experiments.run_experiment(data, "baseline", progress=False).equals(first)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "not-a-state"])
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    rng = np.random.default_rng(0)
    img = rng.normal(size=(8, 32, 32)).astype(np.float32)
    lab = np.zeros((8, 32, 32), np.uint8)
    lab[:, 8:16, 8:16] = 1
    cfg = TrainConfig(channels=(4, 8), steps=4, batch_size=2, checkpoint_every=2)
    train_model(img, lab, cfg, tmp_path, progress=False, stop_at=2)
    ckpt = tmp_path / "checkpoint.pt"
    raw = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "garbage":
        ckpt.write_bytes(b"not a checkpoint" * 64)
    else:
        torch.save([1, 2, 3], ckpt)
    with pytest.raises(DamagedFile, match=f"{ckpt}: damaged checkpoint.*remove the folder"):
        train_model(img, lab, cfg, tmp_path, progress=False)
    with pytest.raises(DamagedFile):
        load_checkpoint(ckpt)


def test_a_full_disk_is_named_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def short_write(obj, f):
        Path(f).write_bytes(b"PK\x03\x04partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed; unexpected pos 4096 vs 512")
    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(DiskFull, match=f"{tmp_path / 'checkpoint.pt'}: the disk is full.*MiB free"):
        save_atomic({"step": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []

    def enospc(self, text, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(type(tmp_path), "write_text", enospc)
    with pytest.raises(DiskFull, match="summary.csv: the disk is full"):
        write_atomic(tmp_path / "summary.csv", "a,b\n")
    assert list(tmp_path.iterdir()) == []


def test_other_write_failures_keep_their_own_error(tmp_path, monkeypatch):
    def denied(self, text, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(type(tmp_path), "write_text", denied)
    with pytest.raises(PermissionError):
        write_atomic(tmp_path / "x.csv", "a\n")
    assert shutil.disk_usage(tmp_path).free > 0 and list(tmp_path.iterdir()) == []


def test_a_failed_cohort_write_leaves_no_partial_or_lock_folder(tmp_path, monkeypatch):
    from cmrlib.data import pipeline, synthetic

    def full_disk(spec, cfg, out, progress=True):
        (out.with_name(out.name + ".partial") / "images").mkdir(parents=True)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(synthetic, "write_cohort", full_disk)
    monkeypatch.setattr(pipeline, "load_spec", lambda params: {})
    monkeypatch.setattr(pipeline, "cohort_config", lambda params: None)
    monkeypatch.setattr(pipeline, "synthetic_key", lambda params: "s-key")
    params = {"cohort": {"source": "synthetic"}, "data_root": str(tmp_path)}
    with pytest.raises(DiskFull, match="the disk is full"):
        pipeline.prepare_cohort(params, progress=False)
    assert list((tmp_path / "synthetic").iterdir()) == []


def test_a_failed_cache_build_leaves_no_partial_or_lock_folder(tmp_path):
    from cmrlib.data.cache import Preprocessing, build_cache

    def volumes():
        img = np.random.default_rng(0).random((4, 24, 24)).astype(np.float32)
        lab = np.zeros((4, 24, 24), np.uint8)
        lab[:, 8:12, 8:12] = 1
        yield {"subject_id": "S1"}, "ED", img, lab, (8.0, 1.5, 1.5)
        raise OSError(errno.EIO, "Input/output error")
    subjects = pd.DataFrame({"subject_id": ["S1"]})
    with pytest.raises(OSError, match="Input/output"):
        build_cache(volumes(), subjects, "k", tmp_path / "cache", Preprocessing(32, 2.0), progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_reading_the_store_only_never_trains_a_missing_or_unfinished_model(tiny_params, tmp_path):
    from cmrlib.data.pipeline import prepare_data, with_training
    from cmrlib.runs.store import NotInStore
    data = with_training(prepare_data(tiny_params, progress=False), {"steps": 7})
    with read_only(), pytest.raises(NotInStore, match="the model of baseline is not in the run store"):
        experiments.trained_model(data, "baseline", progress=False)
    rd = run_dir_for(data, "baseline", METHODS["baseline"])
    cfg = TrainConfig(**{**experiments.train_config(data.params, METHODS["baseline"]).to_dict(), "steps": 7})
    images, labels, groups = experiments.training_arrays(data)
    train_model(images, labels, cfg, rd, groups, progress=False, stop_at=3)     # a run stopped part-way
    with read_only(), pytest.raises(NotInStore, match="stopped at step 3 of 7"):
        experiments.trained_model(data, "baseline", progress=False)
    assert load_checkpoint(rd / "checkpoint.pt")["step"] == 3                    # nothing trained meanwhile
