"""Generative debiasing (chapter 17): the conditioning reaches the network, sampling is deterministic, training
resumes exactly, the Fréchet distance behaves, and synthetic slices reach training only through their switch."""
import numpy as np
import pytest
import torch

from cmrlib.errors import InputError
from cmrlib.studies.skorupko2024.fidelity import frechet_distance, slice_dice
from cmrlib.studies.skorupko2024.generative import GenConfig, at_resolution, mask_channels, sample, train_generator

TINY = dict(size=16, channels=(8, 16), steps=6, batch_size=4, lr=1e-3, timesteps=50, sample_steps=3,
            checkpoint_every=3)


def toy_slices(n: int = 12, size: int = 32, seed: int = 0):
    """Discs of three labels on noise, two attribute classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx, r = size / 2 + rng.integers(-3, 4), size / 2 + rng.integers(-3, 4), 4 + i % 4
        d = np.hypot(yy - cy, xx - cx)
        labels[i][d < r + 5] = 3
        labels[i][d < r + 2] = 2
        labels[i][d < r] = 1
    images = (labels > 0) * 2.0 + rng.normal(0, 0.3, labels.shape)
    attrs = [("White" if i % 2 else "Black", "F" if i % 3 else "M") for i in range(n)]
    return images.astype(np.float32), labels, attrs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, labels, attrs = toy_slices()
    # a higher rate than TINY's, so that six steps move the ControlNet's zero-initialised output convolutions
    cfg = GenConfig(**{**TINY, "lr": 1e-2})
    g = train_generator(images, labels, attrs, cfg, tmp_path_factory.mktemp("gen"), progress=False)
    return g, images, labels


def test_changing_the_mask_changes_the_sample_for_a_fixed_seed(trained):
    g, _, labels = trained
    a = sample(g, labels[:2], [0, 0], seed=5)
    b = sample(g, labels[[2, 3]], [0, 0], seed=5)
    assert a.shape == (2, 32, 32)
    assert np.abs(a - b).max() > 1e-4


def test_the_attribute_embedding_reaches_the_network(trained):
    g, _, labels = trained
    m = mask_channels(labels[:2], g.cfg.size)
    x = torch.randn(2, 1, g.cfg.size, g.cfg.size)
    t = torch.tensor([10, 10])
    with torch.no_grad():
        e0 = g.model(x, t, m, torch.tensor([0, 0]))
        e1 = g.model(x, t, m, torch.tensor([1, 1]))
    assert (e0 - e1).abs().max() > 1e-5
    assert g.model.null == len(g.classes) == 4            # two groups × two sexes, then the null class


def test_sampling_is_deterministic_and_independent_of_batch_size(trained):
    g, _, labels = trained
    a = sample(g, labels[:4], [0, 1, 2, 3], seed=3, batch_size=4)
    b = sample(g, labels[:4], [0, 1, 2, 3], seed=3, batch_size=2)
    c = sample(g, labels[:4], [0, 1, 2, 3], seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_resume_gives_the_same_weights(tmp_path):
    images, labels, attrs = toy_slices()
    cfg = GenConfig(**TINY)
    whole = train_generator(images, labels, attrs, cfg, tmp_path / "a", progress=False)
    train_generator(images, labels, attrs, cfg, tmp_path / "b", progress=False, stop_at=3)
    resumed = train_generator(images, labels, attrs, cfg, tmp_path / "b", progress=False)
    for (k, v), w in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(v, w), k
    log = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == [str(i) for i in range(1, 7)]


def test_two_phase_training_freezes_the_base_model(tmp_path):
    images, labels, attrs = toy_slices()
    cfg = GenConfig(**{**TINY, "base_steps": 3})
    train_generator(images, labels, attrs, cfg, tmp_path, progress=False, stop_at=3)
    base = {k: v.clone() for k, v in torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"].items()
            if k.startswith("unet.")}
    g = train_generator(images, labels, attrs, cfg, tmp_path, progress=False)
    after = g.model.state_dict()
    assert all(torch.equal(base[k], after[k]) for k in base)
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in after.items() if "controlnet_down_blocks" in k)


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="generative.size"):
        GenConfig(size=18, channels=(8, 16, 32))
    with pytest.raises(InputError, match="base_steps"):
        GenConfig(steps=4, base_steps=4)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    d = [frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    assert d == pytest.approx([6 * 0.25, 6 * 1.0, 6 * 4.0], rel=1e-6)     # ‖μ shift‖² when covariances agree
    wider = frechet_distance(a, 2 * a)
    assert wider > 1.0
    with pytest.raises(ValueError):
        frechet_distance(a, a[:, :3])


def test_at_resolution_keeps_the_shape_and_smooths():
    images, labels, _ = toy_slices(2)
    lo = at_resolution(images, 8)
    assert lo.shape == images.shape
    assert lo.std() < images.std()
    assert slice_dice(labels, labels).tolist() == [1.0, 1.0]


def test_synthetic_slices_reach_training_only_through_the_switch_and_never_the_test_set(tiny_params, monkeypatch):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.runs import experiments
    from cmrlib.studies.skorupko2024 import synthesis
    params = {**tiny_params, "generative": dict(TINY, size=16, counts=[4, 6], pairs=2, classifier_steps=2)}
    data = prepare_data(params, progress=False)
    s = synthesis.synthetic_set(data, progress=False)
    assert len(s["images"]) == 6 and s["images"].shape[1:] == data.cache.images.shape[1:]
    assert (s["plan"].group == data.minority).all()
    assert set(s["plan"].mask_from) == {"minority", "majority"}
    assert set(s["plan"].subject_id) <= set(data.ids("train"))              # masks from the training split only
    for i, row in s["plan"].iterrows():
        np.testing.assert_array_equal(s["labels"][i], data.cache.labels[row.cache_slice])

    seen = {}

    def record(images, labels, cfg, rd, slice_groups=None, **kw):
        seen[rd.name.split("-")[0]] = (len(images), list(slice_groups).count(data.minority))
        raise RuntimeError("stop")
    monkeypatch.setattr(experiments, "train_model", record)
    n_real = len(data.train_arrays()[0])
    n_min = list(data.train_arrays()[2]).count(data.minority)
    for name, method in [("baseline", None), synthesis.synthetic_method(data, 4, "pool")]:
        with pytest.raises(RuntimeError, match="stop"):
            experiments.trained_model(data, name, method, progress=False, prepare=synthesis.prepare_training)
    name, method = synthesis.synthetic_method(data, 4, "pool")
    with pytest.raises(InputError, match="synthetic_pool_4: .*skorupko2024.synthesis"):
        experiments.trained_model(data, name, method, progress=False)     # without the study's slices: refused
    assert seen["baseline"] == (n_real, n_min)
    assert seen["synthetic_pool_4"] == (n_real + 4, n_min + 4)
    with pytest.raises(InputError, match="holds 6"):
        synthesis.synthetic_method(data, 7)

    monkeypatch.undo()                                       # now train one, and score it
    m = synthesis.run_synthetic(data, 4, "pool", progress=False)
    assert set(m.subject_id) == set(data.ids("test")) | set(data.ids("external"))   # real subjects only
    assert m.experiment.iloc[0] == "synthetic_pool_4"


def test_the_plan_keeps_its_share_in_every_prefix(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.studies.skorupko2024 import synthesis
    data = prepare_data(tiny_params, progress=False)
    plan = synthesis.synthesis_plan(data, 10, minority_masks=0.5, seed=1)
    share = (plan.mask_from == "minority").cumsum() / np.arange(1, 11)
    assert share.iloc[1::2].eq(0.5).all()
    assert (plan.group == data.minority).all()
    only_major = synthesis.synthesis_plan(data, 5, minority_masks=0.0)
    assert (only_major.mask_from == "majority").all()
