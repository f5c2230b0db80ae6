import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cmrlib.evaluation.metrics import (
    clinical_volumes,
    dice,
    extent_diagonal,
    hausdorff,
    label_confusion,
    signal_by_structure,
    subject_scores,
    volume_metrics,
)


def test_dice_hand_computed():
    a = np.zeros((1, 4, 4), bool); a[0, :2, :2] = True          # 4 voxels
    b = np.zeros((1, 4, 4), bool); b[0, :2, :3] = True          # 6 voxels, 4 shared
    assert dice(a, b) == pytest.approx(2 * 4 / 10)
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0


def test_dice_both_empty_is_one():
    z = np.zeros((2, 3, 3), bool)
    assert dice(z, z) == 1.0


def test_hausdorff_isotropic_single_points():
    a = np.zeros((1, 10, 10), bool); a[0, 1, 1] = True
    b = np.zeros((1, 10, 10), bool); b[0, 4, 5] = True
    assert hausdorff(a, b, (1, 1, 1)) == pytest.approx(5.0)      # 3-4-5 triangle


def test_hausdorff_anisotropic_spacing():
    a = np.zeros((3, 10, 10), bool); a[0, 2, 2] = True
    b = np.zeros((3, 10, 10), bool); b[2, 2, 5] = True
    # dz = 2 slices × 8 mm, dx = 3 px × 1.5 mm
    assert hausdorff(a, b, (8.0, 1.0, 1.5)) == pytest.approx(math.hypot(16.0, 4.5))


def test_hausdorff_is_symmetric_and_uses_the_far_point():
    a = np.zeros((1, 1, 20), bool); a[0, 0, 0:3] = True
    b = np.zeros((1, 1, 20), bool); b[0, 0, 0:3] = True; b[0, 0, 15] = True   # an outlier 13 px away
    assert hausdorff(a, b, (1, 1, 2.0)) == pytest.approx(26.0)
    assert hausdorff(b, a, (1, 1, 2.0)) == pytest.approx(26.0)


def test_empty_prediction_is_worst_case_not_zero():
    gt = np.zeros((2, 8, 8), bool); gt[0, 3:5, 3:5] = True
    pred = np.zeros_like(gt)
    diag = extent_diagonal(gt.shape, (10, 2, 2))
    assert diag == pytest.approx(math.sqrt(20**2 + 16**2 + 16**2))
    assert hausdorff(pred, gt, (10, 2, 2)) == pytest.approx(diag)
    assert hausdorff(gt, pred, (10, 2, 2)) == pytest.approx(diag)
    assert hausdorff(pred, pred, (10, 2, 2)) == 0.0


def test_volume_metrics_flags_empty_and_subject_mean():
    gt = np.zeros((1, 6, 6), np.uint8); gt[0, 1:3, 1:3] = 1; gt[0, 3:5, 3:5] = 2; gt[0, 0, 5] = 3
    pred = gt.copy(); pred[pred == 3] = 0
    rows = volume_metrics(pred, gt, (1, 1, 1))
    by = {r["structure"]: r for r in rows}
    assert by["LVBP"]["dsc"] == 1.0 and by["LVM"]["hd"] == 0.0
    assert by["RVBP"]["dsc"] == 0.0 and by["RVBP"]["empty"]
    df = pd.DataFrame([dict(subject_id="a", frame=f, group="g", **r) for f in ("ED", "ES") for r in rows])
    s = subject_scores(df)
    assert s.dsc.iloc[0] == pytest.approx(2 / 3) and s.n_empty.iloc[0] == 2


def test_clinical_volumes():
    lab = np.zeros((2, 10, 10), np.uint8); lab[:, :5, :] = 1; lab[:, 5:7, :] = 2
    v = clinical_volumes(lab, (10.0, 1.0, 1.0))
    assert v["lv_ml"] == pytest.approx(100 * 10 / 1000) and v["lvm_g"] == pytest.approx(40 * 10 / 1000 * 1.05)


def test_signal_by_structure_means_over_volumes():
    lab = np.array([[[0, 1], [2, 3]]], dtype=np.uint8)
    vols = {0: (np.array([[[0.0, 2.0], [4.0, 6.0]]]), lab, (1, 1, 1)),
            1: (np.array([[[2.0, 4.0], [0.0, 8.0]]]), lab, (1, 1, 1))}
    cache = SimpleNamespace(volumes=pd.DataFrame(index=[0, 1]), volume=vols.__getitem__)
    s = signal_by_structure(cache)
    assert s.to_dict() == {"background": 1.0, "LVBP": 3.0, "LVM": 2.0, "RVBP": 7.0}
    assert signal_by_structure(cache, n_volumes=1)["RVBP"] == 6.0


def test_label_confusion_counts_true_by_predicted():
    gt = np.array([[[0, 1, 1], [2, 3, 3]]], dtype=np.uint8)
    pred = np.array([[[0, 3, 1], [2, 0, 3]]], dtype=np.uint8)
    c = label_confusion(pred, gt)
    assert c.loc["LVBP", "RVBP"] == 1 and c.loc["LVBP", "LVBP"] == 1
    assert c.loc["RVBP", "background"] == 1 and c.loc["RVBP", "RVBP"] == 1
    assert c.to_numpy().sum() == gt.size and c.to_numpy().trace() == 4
    with pytest.raises(ValueError, match="labels must lie"):
        label_confusion(pred + 4, gt)
