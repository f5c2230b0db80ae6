import pandas as pd
import pytest

from cmrlib.data.manifest import ManifestError, load_manifest, validate_manifest


def _write(tmp_path, rows):
    for r in rows:
        for c in ("image", "label"):
            if r.get(c) and not r[c].startswith("missing"):
                (tmp_path / r[c]).write_bytes(b"x")
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def _row(sid="S1", frame="ED", **kw):
    r = dict(subject_id=sid, frame=frame, image=f"{sid}_{frame}.nii.gz", label=f"{sid}_{frame}_gt.nii.gz",
             ethnicity="White", sex="F", age=60)
    r.update(kw)
    return r


def test_valid_manifest_gets_absolute_paths(tmp_path):
    df = load_manifest(_write(tmp_path, [_row(), _row(frame="ES")]))
    assert all(p.startswith(str(tmp_path.resolve())) for p in df.image)


def test_missing_column_is_named(tmp_path):
    with pytest.raises(ManifestError, match="missing required column.*label"):
        validate_manifest(pd.DataFrame([{"subject_id": "a", "frame": "ED", "image": "x"}]), tmp_path)


def test_every_problem_is_reported_with_row_subject_and_file(tmp_path):
    rows = [_row(), _row("S2", frame="XX"), _row("S3", ethnicity="Martian"), _row("S4", age=500),
            _row("S5", image="missing.nii.gz"), _row()]
    path = _write(tmp_path, rows)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    msg = str(e.value)
    assert len(e.value.problems) == 5
    assert "row 3 (subject S2, frame XX): frame 'XX'" in msg
    assert "subject S3" in msg and "Martian" in msg
    assert "subject S4" in msg and "age 500" in msg
    assert "subject S5" in msg and "missing.nii.gz" in msg
    assert "subject S1, frame ED: appears more than once" in msg


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.csv")
