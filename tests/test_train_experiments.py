import numpy as np
import pytest
import torch

from cmrlib.runs import experiments
from cmrlib.runs import store as runstore
from cmrlib.training import methods
from cmrlib.training.augment import augment_batch
from cmrlib.training.sampling import oversampling_sampler
from cmrlib.training.train import TrainConfig, draw_indices, poly_lr, predict, train_model


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(24, 32, 32)).astype(np.float16)
    lab = np.zeros((24, 32, 32), np.uint8)
    lab[:, 8:16, 8:16] = 1; lab[:, 16:20, 8:16] = 2; lab[:, 8:16, 20:26] = 3
    img[lab == 1] += 2
    return img, lab, np.array(["W"] * 20 + ["B"] * 4)


CFG = TrainConfig(channels=(4, 8, 16), steps=6, batch_size=4, checkpoint_every=2, seed=1)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(toy, tmp_path):
    img, lab, groups = toy
    full = _weights(train_model(img, lab, CFG, tmp_path / "full", groups, progress=False))
    train_model(img, lab, CFG, tmp_path / "cut", groups, progress=False, stop_at=3)   # "interrupted" at step 3
    resumed = _weights(train_model(img, lab, CFG, tmp_path / "cut", groups, progress=False))
    for k in full:
        torch.testing.assert_close(full[k], resumed[k], rtol=0, atol=0, msg=k)
    log = (tmp_path / "cut" / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,lr,loss,group_weights" and log[-1].startswith("6,")


def test_same_seed_same_weights_other_seed_differs(toy, tmp_path):
    img, lab, groups = toy
    a = _weights(train_model(img, lab, CFG, tmp_path / "a", groups, progress=False))
    b = _weights(train_model(img, lab, CFG, tmp_path / "b", groups, progress=False))
    c = _weights(train_model(img, lab, TrainConfig(**{**CFG.__dict__, "seed": 2}), tmp_path / "c", groups,
                             progress=False))
    k = next(iter(a))
    torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert not torch.equal(a[k], c[k])


def test_predict_shapes_and_learning_signal(toy, tmp_path):
    img, lab, groups = toy
    cfg = TrainConfig(channels=(8, 16, 32), steps=40, batch_size=8, lr=0.05, augment=False, seed=0)
    model = train_model(img, lab, cfg, tmp_path / "learn", groups, progress=False)
    pred = predict(model, img, batch_size=7)
    assert pred.shape == lab.shape and pred.dtype == np.uint8
    assert ((pred == 1) & (lab == 1)).sum() > 0.5 * (lab == 1).sum()


def test_indices_drawn_ahead_are_those_drawn_step_by_step():
    """On a GPU the batches up to the next checkpoint are drawn at once; they must be the batches that
    step-by-step drawing gives, and leave the generator where it would be, or a resumed run would differ."""
    groups = np.array(["A"] * 40 + ["B"] * 3)
    sampler = oversampling_sampler(groups, "B")
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ahead = draw_indices(sampler, 8, g1, 6, "cpu")
    one_by_one = torch.stack([sampler.sample(8, g2) for _ in range(6)])
    assert ahead.shape == (6, 8) and torch.equal(ahead, one_by_one)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_poly_schedule():
    assert poly_lr(0.01, 0, 100) == 0.01
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5**0.9)


def test_augmentation_keeps_labels_aligned():
    x = torch.zeros(4, 1, 32, 32); y = torch.zeros(4, 32, 32, dtype=torch.long)
    x[:, :, 10:20, 10:20] = 1.0; y[:, 10:20, 10:20] = 1
    xa, ya = augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0)
    assert xa.shape == x.shape and ya.dtype == torch.long and set(ya.unique().tolist()) <= {0, 1}
    inside = xa[:, 0][ya == 1].mean()
    outside = xa[:, 0][ya == 0].mean()
    assert inside > outside + 0.5


def test_appearance_randomisation_changes_signals_not_geometry():
    from cmrlib.training.augment import random_curve, smooth_field
    x = torch.zeros(4, 1, 32, 32); y = torch.zeros(4, 32, 32, dtype=torch.long)
    x[:, :, 10:20, 10:20] = 1.0; y[:, 10:20, 10:20] = 1
    plain = augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0)
    assert torch.equal(plain[0], augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0,
                                               contrast=0.0, bias_field=0.0)[0])   # off: the same draws
    xa, ya = augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0, contrast=0.3, bias_field=0.5)
    assert torch.equal(ya, plain[1])                 # the same geometry, drawn first
    assert not torch.allclose(xa, plain[0])
    # a curve maps [0, 1] into [0, 1], differs between images, and is the identity at SD 0
    ramp = torch.linspace(0, 1, 50).view(1, 1, 1, 50).expand(3, 1, 1, 50)
    out = random_curve(ramp, torch.Generator().manual_seed(1), 0.3)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out[0], out[1])
    assert torch.allclose(random_curve(ramp, torch.Generator().manual_seed(1), 0.0), ramp, atol=1e-6)
    f = smooth_field(2, (32, 32), torch.Generator().manual_seed(2), "cpu")
    assert f.shape == (2, 1, 32, 32) and (f[..., 1:, :] - f[..., :-1, :]).abs().max() < 0.5 * f.std()


def test_run_store_returns_stored_result_without_training(tiny_params, monkeypatch):
    from cmrlib.data.pipeline import prepare_data
    data = prepare_data(tiny_params, progress=False)
    first = experiments.run_experiment(data, "baseline", progress=False)
    assert set(first.split) == {"test", "external"}
    assert set(first.structure) == {"LVBP", "LVM", "RVBP"} and first.hd.notna().all()

    def boom(*a, **k):
        raise AssertionError("trained again")
    monkeypatch.setattr(experiments, "train_model", boom)
    again = experiments.run_experiment(data, "baseline", progress=False)
    assert again.equals(first)
    assert runstore.stored_results(tiny_params)["baseline"].shape == first.shape


def test_transfer_model_has_its_own_training_and_run(tiny_params):
    from cmrlib.data.pipeline import prepare_data, transfer_data, with_training
    plain = {k: v for k, v in tiny_params.items() if k != "transfer"}
    data = prepare_data(plain, progress=False)
    assert transfer_data(data) is data            # no transfer section: the profile's own training
    params = {**plain, "transfer": {"steps": 9, "augment": {"contrast": 0.2}}}
    data = prepare_data(params, progress=False)
    dr = transfer_data(data)
    cfg = methods.train_config(dr.params, methods.METHODS["baseline"])
    assert cfg.steps == 9 and cfg.augment["contrast"] == 0.2 and cfg.augment["rotate_deg"] == 180.0
    assert dr.params["training"]["batch_size"] == tiny_params["training"]["batch_size"]
    assert dr.cache is data.cache and data.params["training"]["steps"] == 6
    base = methods.METHODS["baseline"]
    assert runstore.run_dir_for(dr, "baseline", base) != runstore.run_dir_for(data, "baseline", base)
    longer = with_training(data, {"steps": 9})
    assert longer.params["training"] == {**data.params["training"], "steps": 9}
    assert methods.train_config(longer.params, base).steps == 9
    assert runstore.run_dir_for(longer, "baseline", base) != runstore.run_dir_for(dr, "baseline", base)


def test_crop_experiments_evaluate_in_the_original_image_space(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    data = prepare_data(tiny_params, progress=False)
    size = experiments.crop_size(data)
    net = experiments.crop_input_size(data, size)
    assert size[0] <= data.cache.images.shape[1] and net[0] % 4 == 0 and 0 <= net[0] - size[0] < 4   # tiny: 3 levels
    imgs, labs, groups = experiments.training_arrays(data, size)
    assert imgs.shape[1:] == net and len(imgs) == len(groups)
    assert not labs[:, size[0]:].any() and not labs[:, :, size[1]:].any()   # padding holds no heart
    full_imgs, full_labs, _ = data.train_arrays()
    assert (labs > 0).sum() == (full_labs > 0).sum()          # the box holds the whole heart
    gt = experiments.run_experiment(data, "baseline_crop_gt", progress=False)
    cas = experiments.run_experiment(data, "baseline_cascade", progress=False)
    for df in (gt, cas):
        assert len(df) == 3 * 2 * len(data.ids("test") + data.ids("external"))
        assert df.hd.notna().all()
    assert gt.box_found.all()


def test_box_offsets_per_test_volume(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    data = prepare_data(tiny_params, progress=False)
    off = experiments.box_offsets(data, "baseline")
    assert len(off) == 2 * len(data.ids("test"))
    assert (off.offset_px >= 0).all() and off.found.dtype == bool
    assert set(off.ethnicity) <= set(data.subjects.ethnicity)


def test_group_weight_log_reads_the_weights_per_step(tmp_path):
    from cmrlib.errors import InputError
    from cmrlib.runs.store import group_weight_log
    (tmp_path / "train_log.csv").write_text("step,lr,loss,group_weights\n1,0.01,0.5,0.4 0.6\n2,0.01,0.4,0.3 0.7\n")
    q = group_weight_log(tmp_path, ["Black", "White"])
    assert list(q.columns) == ["Black", "White"] and list(q.index) == [1, 2]
    assert q.loc[2, "White"] == 0.7
    with pytest.raises(InputError, match="2 values per row, expected 3"):
        group_weight_log(tmp_path, ["A", "B", "C"])
    (tmp_path / "train_log.csv").write_text("step,lr,loss,group_weights\n1,0.01,0.5,\n")
    assert group_weight_log(tmp_path, ["A", "B"]).empty


def test_step_log_writes_each_step_at_flush_only(tmp_path):
    from cmrlib.training.train import LOG_HEADER, StepLog
    path = tmp_path / "train_log.csv"
    path.write_text(LOG_HEADER)
    log = StepLog(path)
    log.add(1, 0.01, torch.tensor(0.5), None)
    log.add(2, 0.009, torch.tensor(0.25), torch.tensor([0.4, 0.6]))
    assert path.read_text() == LOG_HEADER            # nothing read back from the device yet
    log.flush()
    assert path.read_text().splitlines()[1:] == ["1,0.01,0.5,", "2,0.009,0.25,0.4 0.6"]
    log.add(3, 0.008, torch.tensor(0.125), None)
    log.close()
    assert path.read_text().splitlines()[-1] == "3,0.008,0.125,"


def test_chunked_evaluation_gives_the_per_volume_table(tiny_params):
    import pandas as pd

    from cmrlib.data.pipeline import prepare_data
    from cmrlib.runs.experiments import evaluate, predictor
    data = prepare_data(tiny_params, progress=False)
    pv = predictor(data, "baseline", progress=False)
    assert hasattr(pv, "many")
    chunked = evaluate(pv, data, progress=False, chunk=3)         # chunks that do not divide the volume count
    del pv.many
    pd.testing.assert_frame_equal(chunked, evaluate(pv, data, progress=False))


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(toy, tmp_path):
    from cmrlib.training.train import TrainingDiverged
    img, lab, groups = toy
    rd = tmp_path / "run"
    train_model(img, lab, CFG, rd, groups, progress=False, stop_at=2)          # a finite checkpoint at step 2
    broken = img.astype(np.float32)
    broken[:] = np.nan                                                         # the fault: NaN data from step 3 on
    with pytest.raises(TrainingDiverged, match=r"run: the training loss became nan at step 3 of 6"):
        train_model(broken, lab, CFG, rd, groups, progress=False)
    assert torch.load(rd / "checkpoint.pt", weights_only=False)["step"] == 2  # the NaN weights were never saved
    assert not list(rd.glob("*.tmp"))
    log = (rd / "train_log.csv").read_text().splitlines()
    assert log[-1].startswith("4,") and "nan" in log[-1]                       # the log shows where it went wrong
