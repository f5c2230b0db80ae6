"""Chapter 12's transfer study: the scanner and patient randomisations, the ablation's models, where errors lie
on the heart, and the fine-tuning curve (the tiny synthetic cohort stands in for the real scans)."""
import numpy as np
import pandas as pd
import pytest
import torch

from cmrlib.errors import InputError
from cmrlib.training.augment import augment_batch, field_window, gaussian_blur, tissue_offsets


def _square():
    x = torch.zeros(4, 1, 32, 32)
    y = torch.zeros(4, 32, 32, dtype=torch.long)
    x[:, :, 10:20, 10:20] = 1.0
    y[:, 10:20, 10:20] = 1
    y[:, 12:14, 12:14] = 3
    return x, y


def test_new_options_off_draw_nothing_and_keep_the_old_result():
    x, y = _square()
    old = augment_batch(x, y, torch.Generator().manual_seed(0), contrast=0.3, bias_field=0.5)
    new = augment_batch(x, y, torch.Generator().manual_seed(0), contrast=0.3, bias_field=0.5, elastic=0.0,
                        fov=0.0, blur=0.0, tissue=0.0)
    assert torch.equal(old[0], new[0]) and torch.equal(old[1], new[1])


def test_field_of_view_pads_with_background_and_drops_labels_outside():
    x, y = _square()
    xa, ya = augment_batch(x, y, torch.Generator().manual_seed(3), noise=0.0, fov=0.8, rotate_deg=0, shift=0,
                           scale=(1, 1))
    keep = field_window(4, (32, 32), 0.8, torch.Generator().manual_seed(1), "cpu")
    assert keep.any(dim=(1, 2, 3)).all() and not keep.all()
    rows = keep[:, 0].any(2).sum(1)
    assert (rows >= 32 * 0.2 - 1).all()                       # each side keeps at least 1 - fov of the field
    for b in range(4):
        lo = xa[b].min()
        outside = xa[b, 0] == lo
        assert (ya[b][outside & (y[b] > 0)] == 0).all()       # no label where the field was cut away
    assert (ya > 0).sum() < (y > 0).sum()                     # at 80 % some labelled pixels fall outside


def test_elastic_bends_image_and_label_together():
    x, y = _square()
    xa, ya = augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0, gamma=(1, 1), rotate_deg=0,
                           shift=0, scale=(1, 1), elastic=0.05)
    xb, yb = augment_batch(x, y, torch.Generator().manual_seed(0), noise=0.0, gamma=(1, 1), rotate_deg=0,
                           shift=0, scale=(1, 1))
    assert not torch.equal(ya, yb)
    assert xa[:, 0][ya == 1].mean() > xa[:, 0][ya == 0].mean() + 0.5     # still aligned


def test_blur_and_tissue_offsets():
    img = torch.zeros(2, 1, 16, 16)
    img[:, :, 8, 8] = 1.0
    out = gaussian_blur(img, torch.tensor([1e-4, 1.5]))
    assert torch.allclose(out[0], img[0], atol=1e-5)                     # SD near zero: unchanged
    assert out[1].sum() == pytest.approx(1.0, abs=1e-4) and out[1].max() < 0.2
    lab = torch.zeros(3, 8, 8, dtype=torch.long)
    lab[:, :4] = 1
    lab[:, 4:, :4] = 3
    off = tissue_offsets(lab, torch.Generator().manual_seed(0), 0.5)
    assert (off[:, 0][lab == 0] == 0).all()
    for b in range(3):                                                    # one offset per structure and image
        assert off[b, 0][lab[b] == 1].unique().numel() == 1 and off[b, 0][lab[b] == 3].unique().numel() == 1
    assert off[0, 0, 0, 0] != off[1, 0, 0, 0]


def test_noise_range_gives_each_image_its_own_level():
    x = torch.zeros(64, 1, 16, 16)
    y = torch.zeros(64, 16, 16, dtype=torch.long)
    xa, _ = augment_batch(x, y, torch.Generator().manual_seed(0), noise=(0.0, 1.0), rotate_deg=0, shift=0)
    sd = xa.std(dim=(1, 2, 3))
    assert sd.min() < 0.2 and sd.max() > 0.8


def test_run_keys_of_runs_without_the_new_options_do_not_change(tiny_params):
    from cmrlib.data.pipeline import prepare_data, with_training
    from cmrlib.files import stable_hash
    from cmrlib.runs.store import run_key
    from cmrlib.training.methods import METHODS, train_config
    data = prepare_data(tiny_params, progress=False)
    base = METHODS["baseline"]
    cfg = train_config(data.params, base).to_dict()
    cfg["extra"] = {}
    cfg.pop("compile", None)
    cfg.pop("graphs", None)
    for k in ("elastic", "fov", "blur", "tissue"):      # the key as written before these options existed
        cfg["augment"].pop(k)
    parts = ["baseline", base.__dict__, cfg, data.cache.path.name, sorted(data.ids("train")), {"largest_component": True}]
    from cmrlib.training.postprocess import postprocessing
    parts[-1] = postprocessing(data.params)
    assert run_key(data, "baseline", base) == stable_hash(parts)
    assert run_key(with_training(data, {"augment": {"fov": 0.3}}), "baseline", base) != run_key(data, "baseline", base)


def test_profile_checks_the_new_options(tmp_path):
    from cmrlib.config import validate_params
    ok = {"transfer": {"augment": {"fov": 0.5, "noise": [0.0, 0.2], "elastic": 0.02, "blur": 1.0, "tissue": 0.1}}}
    assert not [p for p in validate_params(ok, "p.yaml") if "transfer" in p]
    bad = validate_params({"transfer": {"augment": {"fov": 1.5, "noise": [0.3, 0.1]}}}, "p.yaml")
    assert any("transfer.augment.fov" in b for b in bad) and any("transfer.augment.noise" in b for b in bad)


@pytest.fixture(scope="module")
def syn(tiny_params):
    from cmrlib.data.pipeline import prepare_data
    params = {**tiny_params, "transfer": {"steps": 8, "augment": {"contrast": 0.2, "fov": 0.3}},
              "realdata": {**tiny_params.get("realdata", {}), "ablation": None, "ablation_steps": 4,
                           "finetune": {"patients": [1, 2], "draws": 2, "steps": 3}}}
    return prepare_data(params, progress=False)


def test_ablation_sets_revert_one_kind_each(syn):
    from cmrlib.studies.lee2025 import transfer
    from cmrlib.training.methods import METHODS, train_config
    sets = transfer.ablation_sets(syn)
    assert list(sets) == ["all", "without field of view", "without intensity curve", "none"]
    aug = {n: train_config(d.params, METHODS["baseline"]).augment for n, d in sets.items()}
    assert all(train_config(d.params, METHODS["baseline"]).steps == 4 for d in sets.values())
    assert aug["all"]["fov"] == 0.3 and aug["all"]["contrast"] == 0.2
    assert aug["without field of view"]["fov"] == 0.0 and aug["without field of view"]["contrast"] == 0.2
    assert aug["without intensity curve"]["contrast"] == 0.0 and aug["without intensity curve"]["fov"] == 0.3
    assert aug["none"]["fov"] == 0.0 and aug["none"]["contrast"] == 0.0


def test_ablation_table_pairs_patients(syn):
    from cmrlib.studies.lee2025 import transfer
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(30)]

    def scores(shift):
        return pd.DataFrame([{"subject_id": s, "frame": f, "structure": k, "split": "test",
                              "dsc": float(np.clip(0.7 + 0.1 * rng.standard_normal() + shift, 0, 1)), "hd": 1.0,
                              "empty": False}
                             for s in ids for f in ("ED", "ES") for k in ("LVBP", "LVM", "RVBP")])
    t = transfer.ablation_table({"all": scores(0.0), "without x": scores(-0.2), "none": scores(0.0)})
    assert t.loc["without x", "Δ high"] < 0 < t.loc["none", "Δ high"]
    assert t.loc["all", "DSC low"] <= t.loc["all", "DSC"] <= t.loc["all", "DSC high"]
    assert np.isnan(t.loc["all", "Δ vs all"])


def test_slice_positions_run_from_base_to_apex():
    from cmrlib.studies.lee2025.transfer import slice_positions
    lab = np.zeros((6, 8, 8), np.uint8)
    for z, r in zip(range(1, 5), (4, 3, 2, 1)):          # the base (largest) first
        lab[z, :r, :r] = 1
    pos = slice_positions(lab)
    assert np.isnan(pos[0]) and np.isnan(pos[5]) and pos[1] == 0 and pos[4] == 1
    assert np.allclose(slice_positions(lab[::-1])[1:5], [1, 2 / 3, 1 / 3, 0])    # apex first: turned round


def test_slice_scores_and_figures(syn):
    import matplotlib
    matplotlib.use("Agg")
    from cmrlib.runs.experiments import trained_model
    from cmrlib.studies.lee2025 import transfer
    model, _ = trained_model(syn, "baseline", progress=False)
    s = transfer.slice_scores(model, syn, syn.params, splits=("test",))
    assert set(s.band) <= set(transfer.BANDS) and s.position.between(0, 1).all() and s.dsc.between(0, 1).all()
    table = transfer.by_position(s)
    assert set(table.columns) >= {"LVBP", "pairs"} and table.pairs.sum() == len(s)
    assert len(transfer.position_figure(s).axes) == s.frame.nunique()
    anatomy = transfer.anatomy_by_position({"a": syn, "b": syn})
    assert list(anatomy.columns.levels[0]) == ["a", "b"] and anatomy["a"].equals(anatomy["b"])
    assert anatomy[("a", "RV present")].between(0, 1).all() and (anatomy[("a", "LVBP px")] >= 0).all()


def test_finetune_sets_draw_from_the_training_patients(syn):
    from cmrlib.studies.lee2025 import transfer
    a, b = transfer.finetune_sets(syn, 2, 0), transfer.finetune_sets(syn, 2, 1)
    train = set(syn.ids("train"))
    assert len(a.ids("train")) == 2 and set(a.ids("train")) <= train
    assert a.ids("test") == syn.ids("test") and set(a.ids("train")) != set(b.ids("train"))
    assert transfer.finetune_sets(syn, 2, 0).ids("train") == a.ids("train")        # a draw is reproducible
    with pytest.raises(InputError, match="finetune.patients"):
        transfer.finetune_sets(syn, len(train) + 1, 0)


def test_finetune_curve_starts_from_the_synthetic_weights(syn, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from cmrlib.runs import experiments
    from cmrlib.studies.lee2025 import transfer
    weights, name = transfer.pretrained_weights(syn)
    seen = []
    real_train = experiments.train_model
    monkeypatch.setattr(experiments, "train_model",
                        lambda *a, **k: seen.append((str(a[3]), k.get("init_state"))) or real_train(*a, **k))
    scores = transfer.finetune_scores(syn, syn)
    runs = {rd: w for rd, w in seen if "few_patients" in rd}
    assert len(runs) == 2 * 2 * 2                 # patients × draws × start, each its own run
    started = [w for w in runs.values() if w is not None]
    assert len(started) == 4 and all(torch.equal(w[k], weights[k]) for w in started for k in weights)
    curve = transfer.finetune_curve(scores)
    assert set(curve.start) == {"scratch", "synthetic", "gain"} and sorted(curve.patients.unique()) == [1, 2]
    assert (curve.low <= curve.DSC + 1e-9).all() and (curve.DSC <= curve.high + 1e-9).all()
    g = curve.set_index(["patients", "start"]).DSC
    assert g[(1, "gain")] == pytest.approx(g[(1, "synthetic")] - g[(1, "scratch")])
    assert len(transfer.finetune_figure(curve).axes) == 1


def test_the_profile_chooses_the_kinds_ablated_and_the_scratch_budget(syn):
    from cmrlib.data.pipeline import Data
    from cmrlib.studies.lee2025 import transfer
    from cmrlib.training.methods import training_steps
    p = {**syn.params, "realdata": {**syn.params["realdata"], "ablation": ["field of view"]}}
    assert list(transfer.ablation_sets(Data(syn.cache, syn.subjects, p))) == ["all", "without field of view", "none"]
    with pytest.raises(InputError, match="'field of veiw' is not a kind"):
        transfer.settings({**p, "realdata": {"ablation": ["field of veiw"]}})
    assert training_steps(transfer.finetune_sets(syn, 1, 0, "scratch").params) == training_steps(syn.params)
    assert training_steps(transfer.finetune_sets(syn, 1, 0, "synthetic").params) == 3
    assert transfer.finetune_sets(syn, 1, 0, "scratch").ids("train") == transfer.finetune_sets(syn, 1, 0).ids("train")
