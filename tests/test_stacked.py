"""Models trained stacked (cmrlib.training.stacked) against the same models trained one at a time.

Tolerance: after a dozen Adam steps the weights of a stacked model and of its single run differ by at most 1e-3
(absolute; the weights themselves are of order 0.1) and the logged losses by at most 1e-4 relative: the batched
convolutions sum in another order, and Adam's normalised steps pass such differences on at their own size."""
import numpy as np
import pytest
import torch

from cmrlib.errors import InputError
from cmrlib.training.stacked import Job, stack_key, train_stacked
from cmrlib.training.train import TrainConfig, load_checkpoint, train_model

WEIGHTS_ATOL, LOSS_RTOL = 1e-3, 1e-4


def _data(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(24, 32, 32)).astype(np.float16)
    y = np.zeros((24, 32, 32), np.uint8)
    y[:, 8:20, 8:20] = 1
    y[:, 12:16, 12:16] = 2
    x[y == 1] += 2
    return x, y


def _cfg(seed, **over):
    return TrainConfig(**{"channels": (4, 8, 16), "steps": 12, "batch_size": 4, "lr": 0.003, "optimizer": "adam",
                          "checkpoint_every": 4, "seed": seed, **over})


def _losses(run_dir):
    rows = (run_dir / "train_log.csv").read_text().splitlines()[1:]
    return np.array([float(r.split(",")[2]) for r in rows])


def _close(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_a_stacked_pair_equals_two_single_runs(tmp_path):
    jobs = [Job(*_data(s), _cfg(s, augment={"contrast": 0.2} if s else True), tmp_path / f"stacked{s}",
                slice_groups=np.array(["a", "b"] * 12)) for s in (0, 1)]
    stacked = train_stacked(jobs, progress=False)
    for s, job, m in zip((0, 1), jobs, stacked):
        single = train_model(job.images, job.labels, job.cfg, tmp_path / f"single{s}",
                             slice_groups=job.slice_groups, progress=False)
        assert _close(m.state_dict(), single.state_dict()) < WEIGHTS_ATOL
        assert np.allclose(_losses(tmp_path / f"stacked{s}"), _losses(tmp_path / f"single{s}"), rtol=LOSS_RTOL)
        a, b = load_checkpoint(tmp_path / f"stacked{s}" / "checkpoint.pt"), load_checkpoint(tmp_path / f"single{s}" / "checkpoint.pt")
        assert a.keys() == b.keys() and a["step"] == b["step"] == 12 and a["config"] == b["config"]
        assert torch.equal(a["generator"], b["generator"])                       # the same draws were made
        assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    assert _close(stacked[0].state_dict(), stacked[1].state_dict()) > 10 * WEIGHTS_ATOL   # two different models


def test_a_stacked_run_resumes_alone(tmp_path):
    jobs = [Job(*_data(s), _cfg(s), tmp_path / f"r{s}") for s in (0, 1)]
    train_stacked(jobs, progress=False, stop_at=4)
    assert load_checkpoint(tmp_path / "r0" / "checkpoint.pt")["step"] == 4
    resumed = train_model(jobs[0].images, jobs[0].labels, jobs[0].cfg, tmp_path / "r0", progress=False)
    single = train_model(jobs[0].images, jobs[0].labels, jobs[0].cfg, tmp_path / "alone", progress=False)
    assert _close(resumed.state_dict(), single.state_dict()) < WEIGHTS_ATOL
    assert len(_losses(tmp_path / "r0")) == 12
    with pytest.raises(InputError, match=r"different steps \(\[4, 12\]\)"):   # r0 finished, r1 at step 4
        train_stacked(jobs, progress=False)


def test_models_that_cannot_be_stacked_are_refused(tmp_path):
    a = Job(*_data(0), _cfg(0), tmp_path / "a")
    with pytest.raises(InputError, match="training.lr"):
        train_stacked([a, Job(*_data(1), _cfg(1, lr=0.01), tmp_path / "b")], progress=False)
    x, y = _data(1)
    with pytest.raises(InputError, match="size"):
        train_stacked([a, Job(x[:, :16, :16], y[:, :16, :16], _cfg(1), tmp_path / "c")], progress=False)
    assert stack_key(_cfg(0)) == stack_key(_cfg(5, augment=False, loss="ce"))
