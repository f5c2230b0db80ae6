import numpy as np
import pytest
import yaml

from cmrlib.data import io, synthetic
from cmrlib.data.synthetic import CohortConfig, Grid, SpecError


def _cfg(seed=3):
    return CohortConfig(internal={"White": 3, "Black": 3}, external={"Black": 1}, grid=Grid(64, 5.0, 8), seed=seed)


def test_nifti_round_trip_keeps_spacing_and_orientation(tmp_path, monkeypatch):
    arr = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    for backend in ("sitk", "nibabel"):
        if backend == "nibabel":
            monkeypatch.setattr(io, "_sitk", lambda: None)
        p = tmp_path / f"{backend}.nii.gz"
        io.write_nifti(arr, (8.0, 1.8, 1.7), p)
        back, sp = io.read_nifti(p)
        assert sp == (8.0, 1.8, 1.7)
        np.testing.assert_array_equal(back, arr)   # (Z, Y, X) order kept: no flips or transposes


def test_sitk_written_file_reads_the_same_with_nibabel(tmp_path, monkeypatch):
    pytest.importorskip("SimpleITK")
    arr = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    io.write_nifti(arr, (10.0, 1.25, 1.5), tmp_path / "a.nii.gz")
    a, sa = io.read_nifti(tmp_path / "a.nii.gz")
    monkeypatch.setattr(io, "_sitk", lambda: None)
    b, sb = io.read_nifti(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(a, b)
    assert sa == sb


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(io.ImageReadError, match="broken.nii.gz"):
        io.read_nifti(bad)


def test_same_seed_gives_identical_arrays(spec):
    cfg = _cfg()
    s1, s2 = synthetic.subjects_table(spec, cfg), synthetic.subjects_table(spec, cfg)
    assert s1.equals(s2)
    v1 = list(synthetic.iter_volumes(spec, s1, cfg))
    v2 = list(synthetic.iter_volumes(spec, s2, cfg))
    for a, b in zip(v1, v2):
        np.testing.assert_array_equal(a[2], b[2])
        np.testing.assert_array_equal(a[3], b[3])
    other = list(synthetic.iter_volumes(spec, synthetic.subjects_table(spec, _cfg(4)), _cfg(4)))
    assert not np.array_equal(v1[0][2], other[0][2])


def test_label_topology(spec):
    from scipy import ndimage
    cfg = _cfg()
    subj = synthetic.subjects_table(spec, cfg)
    n_checked = 0
    for row, frame, img, lab, sp in synthetic.iter_volumes(spec, subj, cfg):
        assert set(np.unique(lab)) <= {0, 1, 2, 3}
        assert (lab == 1).any() and (lab == 2).any() and (lab == 3).any()
        for z in range(lab.shape[0]):
            lv, myo, rv = lab[z] == 1, lab[z] == 2, lab[z] == 3
            if lv.any():
                # the myocardium encloses the blood pool: a one-pixel ring around LVBP is LVBP or LVM only
                ring = ndimage.binary_dilation(lv) & ~lv
                assert np.isin(lab[z][ring], [1, 2]).all(), (row["subject_id"], frame, z)
                n_checked += 1
            if rv.any() and myo.any():
                # the RV touches the septum: some RV pixel borders the myocardium
                assert (ndimage.binary_dilation(rv) & myo).any()
        # no label outside the thorax: labels sit within the central body region, never at the border
        assert not lab[:, 0, :].any() and not lab[:, :, 0].any()
        assert sp == (10.0, 5.0, 5.0)
    assert n_checked > 10


def test_spec_errors_name_the_field(tmp_path, spec):
    bad = dict(spec)
    bad["factors"] = {k: dict(v) for k, v in spec["factors"].items()}
    bad["factors"]["ghosting_rate"]["location"] = "everywhere"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError, match=r"factors\.ghosting_rate\.location"):
        synthetic.load_spec(p)
    bad2 = {k: v for k, v in spec.items() if k != "anatomy"}
    with pytest.raises(SpecError, match="anatomy"):
        synthetic.validate_spec(bad2)
    bad3 = dict(spec, demographics={"internal": {"White": dict(spec["demographics"]["internal"]["White"], age=[60])}})
    with pytest.raises(SpecError, match=r"demographics\.internal\.White\.age"):
        synthetic.validate_spec(bad3)


def test_switching_outside_heart_factors_off(spec):
    on = synthetic.factor_table(spec).set_index("factor")
    off_spec = dict(spec, outside_heart_differences=False)
    off = synthetic.factor_table(off_spec).set_index("factor")
    assert on.loc["subcutaneous_fat_thickness", "Black"] > on.loc["subcutaneous_fat_thickness", "White"]
    for f in off.index[off.location == "outside_heart"]:
        assert off.loc[f, "Black"] == off.loc[f, "White"]
    assert off.loc["myocardial_wall", "Black"] == on.loc["myocardial_wall", "Black"]


def test_appearance_changes_images_not_labels_and_bad_fields_are_named(spec):
    plain = dict(spec, appearance={k: 0.0 for k in ("tissue_jitter", "texture", "clutter", "lung_vessels")})
    cfg = _cfg()
    a = list(synthetic.iter_volumes(spec, synthetic.subjects_table(spec, cfg), cfg))
    b = list(synthetic.iter_volumes(plain, synthetic.subjects_table(plain, cfg), cfg))
    for va, vb in zip(a, b):
        np.testing.assert_array_equal(va[3], vb[3])          # same hearts: appearance is not anatomy
    assert not np.allclose(a[0][2], b[0][2])
    with pytest.raises(SpecError, match=r"appearance\.textur\b"):
        synthetic.validate_spec(dict(spec, appearance={"textur": 0.1}))
    with pytest.raises(SpecError, match=r"appearance\.clutter"):
        synthetic.validate_spec(dict(spec, appearance={"clutter": -1}))


def test_code_id_ignores_comments_and_docstrings_not_code():
    a = 'def f(x):\n    """Doc."""\n    return x * 2  # twice\n'
    b = 'def f(x):\n    """Other words."""\n    # a comment\n    return x*2\n'
    c = 'def f(x):\n    """Doc."""\n    return x * 3\n'
    assert synthetic.code_id(a) == synthetic.code_id(b) != synthetic.code_id(c)
