"""A small UK Biobank-layout cohort goes through adapter → cache → training run → summary → a chapter rendered
to HTML; no raw eid may appear in any output (the manifest itself, an input kept with the data, holds the
paths and is the only file allowed to)."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cmrlib.data import io, synthetic
from cmrlib.data.adapters import read_key, ukbb
from cmrlib.data.synthetic import CohortConfig, Grid

ROOT = Path(__file__).resolve().parents[1]
EIDS = {g: [str(5550001 + i + (100 if g == "Black" else 0)) for i in range(n)]
        for g, n in (("White", 10), ("Black", 4))}
CODES = {"White": 1001, "Black": 4001}


def _ukbb_cohort(tmp: Path, spec) -> tuple[Path, Path]:
    """Synthetic subjects written in UK Biobank's layout: <eid>/sa_ED.nii.gz, <eid>/label_sa_ED.nii.gz."""
    cfg = CohortConfig(internal={"White": 10, "Black": 4}, external={}, grid=Grid(48, 7.0, 6), seed=0)
    subjects = synthetic.subjects_table(spec, cfg)
    order = {g: iter(e) for g, e in EIDS.items()}
    eid_of = {r.subject_id: next(order[r.ethnicity]) for r in subjects.itertuples()}
    for row, frame, img, lab, spacing in synthetic.iter_volumes(spec, subjects, cfg):
        d = tmp / "ukbb" / eid_of[row["subject_id"]]
        io.write_nifti(img, spacing, d / f"sa_{frame}.nii.gz")
        io.write_nifti(lab, spacing, d / f"label_sa_{frame}.nii.gz")
    demo = pd.DataFrame([{"eid": int(eid_of[r.subject_id]), "21000-0.0": CODES[r.ethnicity],
                          "31-0.0": int(r.sex == "M"), "21003-2.0": round(r.age), "50-2.0": r.height,
                          "21002-2.0": r.weight, "21001-2.0": r.bmi} for r in subjects.itertuples()])
    demo.to_csv(tmp / "demographics.csv", index=False)
    return tmp / "ukbb", tmp / "demographics.csv"


@pytest.mark.notebooks
def test_no_eid_reaches_any_output(tmp_path, spec, monkeypatch):
    pm = pytest.importorskip("papermill")
    from nbconvert import HTMLExporter

    from cmrlib.config import load_params
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.evaluation.report import write_summary
    from cmrlib.runs.experiments import run_experiment
    root, demo = _ukbb_cohort(tmp_path, spec)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k" * 8 + "-pseudonym-key-for-a-test")
    out = tmp_path / "outputs"
    manifest = tmp_path / "inputs" / "manifest.csv"
    df = ukbb.build_manifest(root, demo, manifest, key=read_key(secret / "key", [out / "x"]))
    assert df.subject_id.str.startswith("UKB-").all() and df.subject_id.nunique() == 14

    prof = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    prof.update(profile="ukbb_privacy", data_root=str(out / "data"), runs_root=str(out / "runs"))
    prof["cohort"] = {"source": str(manifest)}
    prof["cache"] = {"size": 48, "spacing_mm": 7.0}
    prof["curation"].update(train={"White": 6, "Black": 1}, max_minority_share=None)
    prof["training"].update(steps=4, batch_size=4, channels=[4, 8, 16], checkpoint_every=2)
    (tmp_path / "ukbb.yaml").write_text(yaml.safe_dump(prof))
    monkeypatch.delenv("CMRLIB_DATA", raising=False)
    monkeypatch.delenv("CMRLIB_RUNS", raising=False)
    params = load_params(tmp_path / "ukbb.yaml")
    data = prepare_data(params, progress=False)
    res = {"baseline": run_experiment(data, "baseline", progress=False)}
    write_summary(res, params, out / "runs" / "ukbb_privacy" / "summary.csv")

    nb = out / "02_baseline.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "02_baseline.ipynb"), str(nb),
                        parameters={"PARAMS": str(tmp_path / "ukbb.yaml")}, cwd=str(ROOT), kernel_name="python3",
                        progress_bar=False)
    html, _ = HTMLExporter().from_filename(str(nb))
    (out / "02_baseline.html").write_text(html)

    eids = [e for group in EIDS.values() for e in group]
    checked = 0
    for f in out.rglob("*"):
        if f.is_file():
            raw = f.read_bytes()
            if f.suffix == ".npz":            # arrays only: the names inside the archive are checked
                import zipfile
                raw = " ".join(zipfile.ZipFile(f).namelist()).encode()
            text = raw.decode("latin-1")
            leaked = [e for e in eids if e in text]
            assert not leaked, f"eid(s) {leaked} in {f.relative_to(out)}"
            checked += 1
    assert checked >= 8 and (out / "02_baseline.html").stat().st_size > 10_000
    assert any(e in manifest.read_text() for e in eids)     # the check above could find an eid
