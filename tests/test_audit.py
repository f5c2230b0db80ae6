"""``cmrlib audit``: the per-case metrics against SimpleITK's filters, the intervals against the library's
bootstrap, the fairness numbers by hand, and each refusal of bad input (named in ``book/refusals.md``)."""
import json

import numpy as np
import pandas as pd
import pytest

from cmrlib.data import io
from cmrlib.evaluation.audit import (
    AuditError,
    AuditSettings,
    audit_cases,
    es_dice,
    group_summary,
    run_audit,
    score_cases,
    spread_score,
)

GROUPS = {"A": 8, "B": 6, "C": 3}


def _heart(shape=(6, 40, 40), shift=0, rv=True):
    lab = np.zeros(shape, np.uint8)
    lab[1:5, 12 + shift:22 + shift, 12:22] = 1
    lab[1:5, 10 + shift:24 + shift, 22:25] = 2
    if rv:
        lab[1:5, 12:22, 26:33] = 3
    return lab


def make_audit(tmp, groups=GROUPS, spacing=(8.0, 1.5, 1.5), label_map=None):
    """A folder of true and predicted label maps (predictions shifted more in later groups) and its manifest."""
    rows = []
    (tmp / "labels").mkdir(parents=True, exist_ok=True)
    (tmp / "preds").mkdir(exist_ok=True)
    k = 0
    for gi, (g, n) in enumerate(groups.items()):
        for i in range(n):
            sid = f"{g}{i:02d}"
            for frame, es in (("ED", 0), ("ES", 1)):
                lab = _heart(shift=0)
                if es:
                    lab[lab == 1] = 0
                    lab[1:5, 14:20, 14:20] = 1
                pred = np.roll(lab, gi + (k % 2), axis=1)
                k += 1
                io.write_nifti(lab, spacing, tmp / "labels" / f"{sid}_{frame}.nii.gz")
                io.write_nifti(pred, spacing, tmp / "preds" / f"{sid}_{frame}.nii.gz")
                rows.append(dict(subject_id=sid, frame=frame, label=f"labels/{sid}_{frame}.nii.gz", group=g,
                                 sex="F" if i % 2 else "M"))
    pd.DataFrame(rows).to_csv(tmp / "cases.csv", index=False)
    return tmp / "cases.csv", tmp / "preds"


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    manifest, preds = make_audit(tmp)
    out = run_audit(manifest, tmp / "out", preds, AuditSettings(groups=["group", "sex"], reference="A",
                                                                intersect=("group", "sex"), n_boot=300),
                    progress=False)
    return tmp, out


def test_per_case_metrics_match_simpleitk(audited):
    sitk = pytest.importorskip("SimpleITK")
    tmp, out = audited
    cases = pd.read_csv(out / "cases.csv", dtype={"subject_id": str})
    for sid, frame in (("A00", "ED"), ("B03", "ES"), ("C02", "ED")):
        lab = sitk.ReadImage(str(tmp / "labels" / f"{sid}_{frame}.nii.gz"))
        pred = sitk.ReadImage(str(tmp / "preds" / f"{sid}_{frame}.nii.gz"))
        for k, s in enumerate(("LVBP", "LVM", "RVBP"), start=1):
            row = cases[(cases.subject_id == sid) & (cases.frame == frame) & (cases.structure == s)].iloc[0]
            a, b = sitk.Equal(lab, k), sitk.Equal(pred, k)
            ov = sitk.LabelOverlapMeasuresImageFilter()
            ov.Execute(a, b)
            hd = sitk.HausdorffDistanceImageFilter()
            hd.Execute(a, b)
            assert row.dsc == pytest.approx(ov.GetDiceCoefficient(), abs=1e-9)
            assert row.hd == pytest.approx(hd.GetHausdorffDistance(), abs=1e-6)


def test_group_intervals_are_the_librarys_bootstrap(audited):
    tmp, out = audited
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    s = AuditSettings(groups=["group"], n_boot=300)
    t = group_summary(subjects, "group", "A", s).set_index("group")
    rng = np.random.default_rng(0)                 # GroupMeans: one draw per group, in the groups' order
    draws = {}
    for g in ("A", "B"):
        x = subjects[subjects.group == g].sort_values("subject_id").dsc.to_numpy()
        draws[g] = np.median(x[rng.integers(0, len(x), (300, len(x)))], axis=1)
    lo, hi = np.quantile(draws["B"], [0.025, 0.975])
    assert t.loc["B", "median low"] == pytest.approx(lo) and t.loc["B", "median high"] == pytest.approx(hi)
    glo, ghi = np.quantile(draws["A"] - draws["B"], [0.025, 0.975])
    assert (t.loc["B", "gap low"], t.loc["B", "gap high"]) == pytest.approx((glo, ghi))
    assert bool(t.loc["C", "small"]) and np.isnan(t.loc["C", "median low"])      # 3 subjects: flagged, no interval


def test_fairness_numbers_by_hand(audited):
    tmp, out = audited
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    f = pd.read_csv(out / "fairness_group.csv").set_index("statistic")
    big = subjects[subjects.group.isin(["A", "B"])]
    means = big.groupby("group").dsc.mean().to_numpy()
    w = big.groupby("group").size().to_numpy(float)
    overall = big.dsc.mean()
    assert es_dice(means, w) == pytest.approx(overall / (1 + np.abs(means - overall).sum()))
    assert f.loc["ES-Dice (Tian et al. 2024)", "value"] == pytest.approx(es_dice(means, w))
    nhd = big.groupby("group").nhd.mean().to_numpy()
    assert f.loc["fairness score 1 − ½(ΔDSC + ΔnHD) (MAMA-MIA)", "value"] == pytest.approx(
        1 - 0.5 * (np.ptp(means) + np.ptp(nhd)))
    assert spread_score(means, nhd) <= 1
    for _, r in f.iterrows():
        assert r.low <= r.value <= r.high, r.name
    assert "C" in f.note.iloc[0]                              # the small group is named, not hidden
    meta = json.loads((out / "audit.json").read_text())
    assert meta["cases"] == 34 and meta["subjects"] == 17 and meta["reference"] == "A"


def test_intersections_and_clinical_measures(audited):
    tmp, out = audited
    cells = pd.read_csv(out / "intersection_group_sex.csv")
    assert len(cells) == 6 and cells.small.any()
    err = pd.read_csv(out / "clinical_errors.csv")
    assert set(err.measure) == {"LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF"}
    a = err[(err.measure == "LVEDV")]
    assert np.allclose(a.error, 0)                 # a shifted mask keeps its volume
    ba = pd.read_csv(out / "bland_altman_group.csv")
    assert {"bias", "loa_low", "loa_high"} <= set(ba.columns)


def test_label_map_applies_to_labels_and_predictions(tmp_path):
    manifest, preds = make_audit(tmp_path, {"A": 5, "B": 5})
    cases = audit_cases(manifest, preds, ["group"])
    plain, _ = score_cases(cases, progress=False)
    swapped, _ = score_cases(cases, "1:1,2:2,3:3", progress=False)
    assert np.allclose(plain.dsc, swapped.dsc)


def test_scoring_in_two_processes_gives_the_same_table(tmp_path):
    manifest, preds = make_audit(tmp_path, {"A": 3, "B": 3})
    cases = audit_cases(manifest, preds, ["group"])
    one, _ = score_cases(cases, progress=False)
    two, _ = score_cases(cases, progress=False, workers=2)
    pd.testing.assert_frame_equal(one, two)


def test_a_refused_audit_leaves_nothing(tmp_path):
    manifest, preds = make_audit(tmp_path, {"A": 3, "B": 3})
    (preds / "B00_ED.nii.gz").unlink()
    with pytest.raises(AuditError, match=r"row 8 \(case B00_ED\): no prediction"):
        run_audit(manifest, tmp_path / "out", preds, AuditSettings(groups=["group"]), progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_on_acdc_cases_the_metrics_match_simpleitk(tmp_path):
    """Real ACDC label maps (where the folder is beside the repository) against predictions shifted by a few
    voxels, in ACDC's own label convention (``--label-map``): DSC and HD as SimpleITK's filters give them."""
    import nibabel as nib
    sitk = pytest.importorskip("SimpleITK")
    from cmrlib.data.adapters import acdc
    root = acdc.find_root()
    if root is None:
        pytest.skip("no ACDC folder")
    rows = []
    (tmp_path / "preds").mkdir()
    for i, pid in enumerate(("patient001", "patient042", "patient087")):
        gt = sorted((root / pid).glob(f"{pid}_frame*_gt.nii.gz"))[0]
        img = nib.load(str(gt))
        shifted = np.roll(np.asarray(img.dataobj), 1 + i, axis=0)
        nib.save(nib.Nifti1Image(shifted, img.affine, img.header), str(tmp_path / "preds" / f"{pid}_ED.nii.gz"))
        rows.append(dict(subject_id=pid, frame="ED", label=str(gt), group="A" if i < 2 else "B"))
    pd.DataFrame(rows).to_csv(tmp_path / "cases.csv", index=False)
    out = run_audit(tmp_path / "cases.csv", tmp_path / "out", tmp_path / "preds",
                    AuditSettings(groups=["group"], label_map=acdc.LABEL_MAP, min_n=2, n_boot=100), progress=False)
    cases = pd.read_csv(out / "cases.csv")
    acdc_label = {"LVBP": 3, "LVM": 2, "RVBP": 1}          # ACDC's values of the project's structures
    for r in rows:
        lab, pred = sitk.ReadImage(r["label"]), sitk.ReadImage(str(tmp_path / "preds" / f"{r['subject_id']}_ED.nii.gz"))
        pred.CopyInformation(lab)
        for s, k in acdc_label.items():
            row = cases[(cases.subject_id == r["subject_id"]) & (cases.structure == s)].iloc[0]
            a, b = sitk.Equal(lab, k), sitk.Equal(pred, k)
            ov, hd = sitk.LabelOverlapMeasuresImageFilter(), sitk.HausdorffDistanceImageFilter()
            ov.Execute(a, b)
            hd.Execute(a, b)
            assert row.dsc == pytest.approx(ov.GetDiceCoefficient(), abs=1e-9), (r["subject_id"], s)
            assert row.hd == pytest.approx(hd.GetHausdorffDistance(), rel=1e-4), (r["subject_id"], s)
