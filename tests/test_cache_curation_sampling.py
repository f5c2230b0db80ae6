import numpy as np
import pandas as pd
import pytest
import torch

from cmrlib.data.cache import Preprocessing, build_cache, manifest_key, preprocess_volume
from cmrlib.data.curation import CurationError, split_train_test
from cmrlib.data.pipeline import prepare_data
from cmrlib.training.sampling import oversampling_sampler, stratified_sampler, uniform_sampler


def test_preprocess_resamples_and_fits(tmp_path):
    img = np.random.default_rng(0).random((3, 40, 30)).astype(np.float32)
    lab = np.zeros((3, 40, 30), np.uint8); lab[:, 10:20, 10:20] = 2
    pi, pl, sp = preprocess_volume(img, lab, (8.0, 1.0, 1.0), Preprocessing(size=32, spacing=2.0))
    assert pi.shape == (3, 32, 32) and pl.shape == (3, 32, 32) and sp == (8.0, 2.0, 2.0)
    centre = pi[:, 6:26, 8:23].astype(np.float32)          # 20 × 15 resampled pixels, the rest is padding
    assert abs(float(centre.mean())) < 0.05 and abs(float(centre.std()) - 1) < 0.05
    assert (pl == 2).sum() == 3 * 5 * 5 and set(np.unique(pl)) == {0, 2}


def test_nifti_route_and_direct_route_give_identical_caches(tiny_params):
    p_direct = {**tiny_params, "cohort": {**tiny_params["cohort"], "route": "direct"}}
    a = prepare_data(tiny_params, progress=False)
    b = prepare_data(p_direct, progress=False)
    assert a.cache.path != b.cache.path
    np.testing.assert_array_equal(a.cache.images, b.cache.images)
    np.testing.assert_array_equal(a.cache.labels, b.cache.labels)
    pd.testing.assert_frame_equal(a.cache.volumes, b.cache.volumes)
    assert a.subjects.split.tolist() == b.subjects.split.tolist()


def test_cache_is_reused_and_rebuilt_when_inputs_change(tiny_params):
    from cmrlib.data.manifest import load_manifest
    from cmrlib.data.pipeline import prepare_cohort
    man = load_manifest(prepare_cohort(tiny_params, progress=False))
    prep = Preprocessing(48, 7.0)
    k1 = manifest_key(man, prep)
    assert manifest_key(man, prep) == k1
    assert manifest_key(man, Preprocessing(48, 6.0)) != k1
    import os
    st = os.stat(man.image.iloc[0])
    os.utime(man.image.iloc[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert manifest_key(man, prep) != k1


def test_interrupted_cache_build_leaves_nothing(tmp_path):
    def volumes():
        yield {"subject_id": "a"}, "ED", np.zeros((2, 8, 8), np.float32), np.zeros((2, 8, 8), np.uint8), (8, 1, 1)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        build_cache(volumes(), pd.DataFrame({"subject_id": ["a"]}), "k", tmp_path, Preprocessing(8, 1.0))
    assert not (tmp_path / "k").exists()


def test_curation_counts_and_minority_share():
    subj = pd.DataFrame({"subject_id": [f"s{i}" for i in range(400)],
                         "ethnicity": ["White"] * 300 + ["Black"] * 50 + ["Asian"] * 50, "site": "internal"})
    df = split_train_test(subj, {"White": 200, "Black": 2}, seed=0, max_minority_share=0.01)
    tr = df[df.split == "train"]
    assert (tr.ethnicity == "White").sum() == 200 and (tr.ethnicity == "Black").sum() == 2
    assert set(df[df.split == "test"].ethnicity) == {"White", "Black", "Asian"}
    assert df.equals(split_train_test(subj, {"White": 200, "Black": 2}, seed=0))
    with pytest.raises(CurationError, match="exceeds"):
        split_train_test(subj, {"White": 100, "Black": 2}, seed=0, max_minority_share=0.01)
    with pytest.raises(CurationError, match="cohort has 50"):
        split_train_test(subj, {"Black": 60}, seed=0)


def _composition(sampler, groups, n_batches=400, bs=16):
    gen = torch.Generator().manual_seed(0)
    counts = {}
    for _ in range(n_batches):
        idx = sampler.sample(bs, gen).numpy()
        assert len(idx) == bs
        for g, c in zip(*np.unique(groups[idx], return_counts=True)):
            counts.setdefault(g, []).append(c)
    return counts


def test_oversampling_gives_exact_batch_shares():
    groups = np.array(["W"] * 990 + ["B"] * 10)
    c = _composition(oversampling_sampler(groups, "B", 0.5), groups)
    assert c["B"] == [8] * 400 and c["W"] == [8] * 400
    c = _composition(oversampling_sampler(groups, "B", 0.25), groups)
    assert set(c["B"]) == {4}


def test_fractional_shares_average_out_exactly():
    groups = np.array(["W"] * 500 + ["B"] * 5)
    c = _composition(oversampling_sampler(groups, "B", 0.1), groups, n_batches=1000, bs=16)   # 1.6 per batch
    assert set(c["B"]) <= {1, 2} and np.mean(c["B"]) == pytest.approx(1.6, abs=0.06)


def test_stratified_and_uniform():
    groups = np.array(["a"] * 600 + ["b"] * 30 + ["c"] * 3)
    c = _composition(stratified_sampler(groups), groups, bs=15)
    assert c["a"] == c["b"] == c["c"] == [5] * 400
    u = _composition(uniform_sampler(groups), groups, bs=16)
    assert np.mean(u["a"]) > 14


def test_oversampling_level_is_checked():
    with pytest.raises(ValueError, match="level"):
        oversampling_sampler(np.array(["a", "b"]), "b", 1.0)


def test_synthetic_key_follows_the_renderer_code(tiny_params, monkeypatch):
    from cmrlib.data import synthetic
    from cmrlib.data.pipeline import synthetic_key
    k = synthetic_key(tiny_params)
    assert synthetic_key(tiny_params) == k
    monkeypatch.setattr(synthetic, "RENDERER_ID", "edited")
    assert synthetic_key(tiny_params) != k


def test_the_order_a_profile_lists_its_groups_in_changes_nothing(tiny_params):
    from cmrlib.data import synthetic
    from cmrlib.data.pipeline import cohort_config, in_group_order, load_spec, prepare_data
    flipped = {**tiny_params, "cohort": {**tiny_params["cohort"], "internal": dict(reversed(list(tiny_params["cohort"]["internal"].items())))},
               "curation": {**tiny_params["curation"], "train": dict(reversed(list(tiny_params["curation"]["train"].items())))}}
    spec = load_spec(tiny_params)
    a = synthetic.subjects_table(spec, cohort_config(tiny_params))
    b = synthetic.subjects_table(spec, cohort_config(flipped))
    assert a.equals(b)
    assert sorted(prepare_data(tiny_params, progress=False).ids("train")) == \
        sorted(prepare_data(flipped, progress=False).ids("train"))
    assert list(in_group_order({"obese": 1, "Black": 2, "White": 3, "not obese": 4})) == ["White", "Black", "not obese", "obese"]
