import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmrlib.data.adapters import AdapterError, acdc, mnms, pseudonym, ukbb
from cmrlib.data.io import write_nifti
from cmrlib.data.manifest import load_manifest

KEY = "0123456789abcdef-test-key"
ACDC_DIR = Path(os.environ.get("CMRLIB_ACDC", Path(__file__).resolve().parents[2] / "shared" / "data" / "acdc"))


def _pair(shape=(4, 20, 24), values=(1, 2, 3)):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    for i, v in enumerate(values):
        lab[:, 4 + 3 * i:6 + 3 * i, 5:10] = v
    return img, lab


def _acdc_fixture(root, n=3):
    for i in range(1, n + 1):
        pid = f"patient{i:03d}"
        d = root / pid
        d.mkdir(parents=True)
        (d / "Info.cfg").write_text(f"ED: 1\nES: 9\nGroup: NOR\nHeight: 170.0\nNbFrame: 20\nWeight: {60 + 10 * i}.0\n")
        for fr in (1, 9):
            img, lab = _pair()
            write_nifti(img, (10.0, 1.5, 1.5), d / f"{pid}_frame{fr:02d}.nii.gz")
            write_nifti(lab, (10.0, 1.5, 1.5), d / f"{pid}_frame{fr:02d}_gt.nii.gz")


def test_acdc_fixture_builds_manifest_with_mapped_labels(tmp_path):
    _acdc_fixture(tmp_path / "acdc")
    out = tmp_path / "m.csv"
    df = acdc.build_manifest(tmp_path / "acdc", out)
    assert len(df) == 6 and set(df.frame) == {"ED", "ES"}
    assert df.bmi_class.tolist()[::2] == ["normal", "overweight", "obese"]     # 70, 80, 90 kg at 170 cm
    man = load_manifest(out)
    from cmrlib.data.cache import volumes_from_manifest
    row, frame, img, lab, sp = next(volumes_from_manifest(man))
    # ACDC 1 (RV) → 3, 3 (LV) → 1
    assert lab[0, 4, 5] == 3 and lab[0, 10, 5] == 1 and lab[0, 7, 5] == 2 and sp == (10.0, 1.5, 1.5)


def test_acdc_reports_every_problem_and_writes_nothing(tmp_path):
    root = tmp_path / "acdc"
    _acdc_fixture(root)
    (root / "patient001" / "patient001_frame09_gt.nii.gz").unlink()
    (root / "patient002" / "Info.cfg").write_text("ED: 1\n")
    img, lab = _pair(values=(1, 7))
    write_nifti(lab, (10.0, 1.5, 1.5), root / "patient003" / "patient003_frame01_gt.nii.gz")
    out = tmp_path / "m.csv"
    with pytest.raises(AdapterError) as e:
        acdc.build_manifest(root, out)
    msg = str(e.value)
    assert "patient001 frame ES: missing file" in msg and "patient002" in msg and "lacks ES" in msg
    assert not out.exists()
    (root / "patient002" / "Info.cfg").write_text("ED: 1\nES: 9\nGroup: NOR\nHeight: 170.0\nWeight: 70.0\n")
    _, lab = _pair()
    write_nifti(lab, (10.0, 1.5, 1.5), root / "patient001" / "patient001_frame09_gt.nii.gz")
    with pytest.raises(AdapterError, match=r"patient003 frame ED: unexpected label values \[7\]"):
        acdc.build_manifest(root, out)


def test_ukbb_maps_ethnicity_pseudonymises_and_excludes_unknown(tmp_path):
    root = tmp_path / "ukbb"
    demo = pd.DataFrame({"eid": [1000001, 1000002, 1000003], "21000-0.0": [1001, 4002, -3], "31-0.0": [0, 1, 1],
                         "21003-2.0": [60, 55, 70], "50-2.0": [165, 180, 170], "21002-2.0": [70, 90, 80],
                         "21001-2.0": [25.7, 27.8, 27.7]})
    demo.to_csv(tmp_path / "demo.csv", index=False)
    for eid in (1000001, 1000002):
        for fr in ("ED", "ES"):
            img, lab = _pair()
            write_nifti(img, (10.0, 1.8, 1.8), root / str(eid) / f"sa_{fr}.nii.gz")
            write_nifti(lab, (10.0, 1.8, 1.8), root / str(eid) / f"label_sa_{fr}.nii.gz")
    df = ukbb.build_manifest(root, tmp_path / "demo.csv", tmp_path / "m.csv", key=KEY)
    assert df.attrs["excluded"] == ["1000003"]
    assert sorted(df.ethnicity.unique()) == ["Black", "White"]
    assert df.subject_id.iloc[0] == pseudonym("1000001", KEY, "UKB-") and "1000001" not in df.subject_id.iloc[0]
    assert pseudonym("1000001", KEY, "UKB-") == pseudonym("1000001", KEY, "UKB-") != pseudonym("1000001", "t" * 16, "UKB-")
    assert set(df.sex) == {"F", "M"}
    demo.drop(columns="31-0.0").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AdapterError, match="missing column '31-0.0'"):
        ukbb.build_manifest(root, tmp_path / "bad.csv", key=KEY)


def test_mnms_reads_ed_es_time_points_from_4d(tmp_path):
    root = tmp_path / "mnms"
    info = pd.DataFrame({"External code": ["A1B2C3", "D4E5F6"], "VendorName": ["Siemens", "Philips"],
                         "Vendor": ["A", "B"], "Centre": [1, 2], "ED": [0, 1], "ES": [2, 3], "Age": [50, 61],
                         "Pathology": ["NOR", "HCM"], "Sex": ["M", "F"], "Height": [180, float("nan")],
                         "Weight": [80, 70]})
    root.mkdir()
    info.to_csv(root / "info.csv", index=False)
    for code in ("A1B2C3", "D4E5F6"):
        img = np.stack([_pair()[0] + t for t in range(4)])
        lab = np.stack([_pair()[1] * (t in (0, 1, 2, 3)) for t in range(4)])
        lab[1, 0, 0, 0] = 2                                   # marks time point 1
        write_nifti(img, (8.0, 1.3, 1.3), root / "Training" / "Labeled" / code / f"{code}_sa.nii.gz")
        write_nifti(lab, (8.0, 1.3, 1.3), root / "Training" / "Labeled" / code / f"{code}_sa_gt.nii.gz")
    df = mnms.build_manifest(root, tmp_path / "m.csv")
    assert len(df) == 4 and df.frame_index.tolist() == [0, 2, 1, 3]
    assert df.vendor.tolist()[:2] == ["A", "A"] and df.bmi_class.iloc[0] == "normal"
    man = load_manifest(tmp_path / "m.csv")
    from cmrlib.data.cache import volumes_from_manifest
    vols = list(volumes_from_manifest(man))
    assert vols[2][3][0, 0, 0] == 2 and vols[0][3][0, 0, 0] == 0    # D4E5F6's ED is time point 1
    assert vols[1][2].mean() == pytest.approx(_pair()[0].mean() + 2, rel=1e-5)


@pytest.mark.skipif(not ACDC_DIR.exists(), reason="ACDC folder not present")
def test_real_acdc_all_patients_load(tmp_path):
    df = acdc.build_manifest(ACDC_DIR, tmp_path / "acdc.csv", check_images=False)   # the cache route checks each pair
    assert df.subject_id.nunique() == 100 and len(df) == 200
    assert df.group.value_counts().to_dict() == {g: 40 for g in ("DCM", "HCM", "MINF", "NOR", "RV")}
    from cmrlib.data.cache import volumes_from_manifest
    from cmrlib.evaluation.metrics import clinical_volumes
    lv = {}
    for row, frame, img, lab, sp in volumes_from_manifest(load_manifest(tmp_path / "acdc.csv")):
        assert 5 <= img.shape[0] <= 25 and min(img.shape[1:]) >= 140
        assert 0.6 <= sp[1] <= 2.0 and 4.5 <= sp[0] <= 10.5
        assert set(np.unique(lab)) == {0, 1, 2, 3}
        lv[(row["subject_id"], frame)] = clinical_volumes(lab, sp)["lv_ml"]
    ed = np.array([lv[(s, "ED")] for s in df.subject_id.unique()])
    es = np.array([lv[(s, "ES")] for s in df.subject_id.unique()])
    assert (ed > es).all() and 40 < np.median(ed) < 400
