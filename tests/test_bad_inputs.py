"""The catalogue of refused inputs (cmrlib/resources/refusals.yaml): every entry has a case here that feeds the
bad input to a real entry point and checks the error class, that the message names the input (file, row,
subject or field), and that nothing partial is left. Plus kill-and-resume tests for training, cache and cohort."""
import gzip
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from cmrlib import cli
from cmrlib.book import refusals
from cmrlib.config import ParamsError, load_params
from cmrlib.data import io
from cmrlib.data.adapters import AdapterError, acdc, read_key, ukbb
from cmrlib.data.cache import Preprocessing, build_cache, volumes_from_manifest
from cmrlib.data.curation import CurationError
from cmrlib.data.manifest import ManifestError, load_manifest
from cmrlib.data.spec import SpecError, load_spec
from cmrlib.errors import InputError
from cmrlib.evaluation.audit import AuditError
from cmrlib.runs.store import NotInStore
from cmrlib.training.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "data_manifest" / "synthetic_cohort.yaml"
KEY = "a-test-key-of-32-characters-0123"
ERRORS = {c.__name__: c for c in (io.ImageReadError, ManifestError, AdapterError, ParamsError, SpecError, InputError,
                                  AuditError, CurationError, NotInStore)}
CASES = {}


def case(name):
    def deco(fn):
        CASES[name] = fn
        return fn
    return deco


# ----------------------------------------------------------------------------------------------- helpers
def _img(shape=(4, 24, 24)):
    return np.random.default_rng(0).random(shape).astype(np.float32)


def _lab(shape=(4, 24, 24)):
    lab = np.zeros(shape, np.uint8)
    lab[:, 8:12, 8:12], lab[:, 12:14, 8:12], lab[:, 8:12, 14:18] = 1, 2, 3
    return lab


def _nib_save(arr, path, zooms=(1.5, 1.5, 8.0), affine=None):
    finite = [z if np.isfinite(z) and z > 0 else 1.0 for z in zooms]
    img = nib.Nifti1Image(np.asarray(arr).T, affine if affine is not None else np.diag([*finite, 1.0]))
    img.header.set_zooms(zooms[: arr.ndim])
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def _manifest(tmp, lab=None, img=None, lab_zooms=(1.5, 1.5, 8.0), img_zooms=(1.5, 1.5, 8.0), lab_affine=None,
              extra=None, rows=None):
    """A one-subject manifest (subject S1, ED) whose label or image is replaced; returns its path."""
    _nib_save(_img() if img is None else img, tmp / "S1_ED.nii.gz", img_zooms)
    _nib_save(_lab() if lab is None else lab, tmp / "S1_ED_gt.nii.gz", lab_zooms, lab_affine)
    row = dict(subject_id="S1", frame="ED", image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz", ethnicity="White")
    df = pd.DataFrame(rows or [{**row, **(extra or {})}])
    df.to_csv(tmp / "manifest.csv", index=False)
    return tmp / "manifest.csv"


def _cache_call(tmp, **kw):
    """Read a manifest into a cache; the refusal must leave no cache folder."""
    path = _manifest(tmp, **kw)

    def call():
        m = load_manifest(path)
        build_cache(volumes_from_manifest(m), m, "k", tmp / "cache", Preprocessing(32, 2.0), progress=False)
    return call, ["manifest.csv", "S1", "ED"], [tmp / "cache" / "k"]


def _acdc(root, n=2):
    for i in range(1, n + 1):
        pid = f"patient{i:03d}"
        (root / pid).mkdir(parents=True)
        (root / pid / "Info.cfg").write_text("ED: 1\nES: 9\nGroup: NOR\nHeight: 170.0\nNbFrame: 20\nWeight: 70.0\n")
        for fr in (1, 9):
            io.write_nifti(_img(), (10.0, 1.5, 1.5), root / pid / f"{pid}_frame{fr:02d}.nii.gz")
            io.write_nifti(_lab(), (10.0, 1.5, 1.5), root / pid / f"{pid}_frame{fr:02d}_gt.nii.gz")
    return root


def _ukbb(tmp, codes=(1001, 4002), eids=(1234567, 2345678)):
    root = tmp / "ukbb"
    demo = pd.DataFrame({"eid": list(eids), "21000-0.0": list(codes), "31-0.0": [0, 1], "21003-2.0": [60, 55],
                         "50-2.0": [165, 180], "21002-2.0": [70, 90], "21001-2.0": [25.7, 27.8]})
    demo.to_csv(tmp / "demo.csv", index=False)
    for eid in eids:
        if pd.isna(eid):
            continue
        for fr in ("ED", "ES"):
            io.write_nifti(_img(), (10.0, 1.8, 1.8), root / str(int(eid)) / f"sa_{fr}.nii.gz")
            io.write_nifti(_lab(), (10.0, 1.8, 1.8), root / str(int(eid)) / f"label_sa_{fr}.nii.gz")
    return root, tmp / "demo.csv"


def _profile(tmp, text, name="p.yaml"):
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def _smoke_with(tmp, change: dict, name="p.yaml"):
    """The smoke profile with some fields replaced (a variant through extends)."""
    return _profile(tmp, f"extends: {ROOT / 'params' / 'smoke.yaml'}\n" + yaml.safe_dump(change), name)


def _spec_with(tmp, edit):
    spec = yaml.safe_load(SPEC.read_text())
    edit(spec)
    p = tmp / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


# ----------------------------------------------------------------------------------------------- images
@case("truncated-gz")
def _(tmp):
    io.write_nifti(_img((6, 40, 40)), (10, 1.5, 1.5), tmp / "a.nii.gz")
    raw = (tmp / "a.nii.gz").read_bytes()
    (tmp / "cut.nii.gz").write_bytes(raw[: len(raw) // 3])
    return lambda: io.read_nifti(tmp / "cut.nii.gz"), ["cut.nii.gz", "truncated"], []


@case("truncated-nii")
def _(tmp):
    _nib_save(_img((6, 40, 40)), tmp / "a.nii")
    raw = (tmp / "a.nii").read_bytes()
    (tmp / "cut.nii").write_bytes(raw[: len(raw) // 2])
    return lambda: io.read_nifti(tmp / "cut.nii"), ["cut.nii", "truncated"], []


@case("not-nifti")
def _(tmp):
    (tmp / "x.nii.gz").write_bytes(gzip.compress(b"not a nifti file at all" * 20))
    return lambda: io.read_nifti(tmp / "x.nii.gz"), ["x.nii.gz"], []


@case("symlink-loop")
def _(tmp):
    os.symlink(tmp / "b.nii.gz", tmp / "a.nii.gz")
    os.symlink(tmp / "a.nii.gz", tmp / "b.nii.gz")
    return lambda: io.read_nifti(tmp / "a.nii.gz"), ["a.nii.gz", "loop of links"], []


@case("symlink-dangling")
def _(tmp):
    os.symlink(tmp / "moved.nii.gz", tmp / "a.nii.gz")
    return lambda: io.read_nifti(tmp / "a.nii.gz"), ["a.nii.gz", "symbolic link to", "moved.nii.gz", "does not exist"], []


@case("text-as-image")
def _(tmp):
    (tmp / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n" * 20)
    return lambda: io.read_nifti(tmp / "passwd"), ["passwd", "not a NIfTI file", "root:x"], []


@case("nan-voxels")
def _(tmp):
    a = _img()
    a[1, 2, 3] = np.nan
    _nib_save(a, tmp / "nan.nii.gz")
    return lambda: io.read_nifti(tmp / "nan.nii.gz"), ["nan.nii.gz", "NaN", "(1, 2, 3)"], []


@case("inf-voxels")
def _(tmp):
    a = _img()
    a[0, 0, 0] = np.inf
    _nib_save(a, tmp / "inf.nii.gz")
    return lambda: io.read_nifti(tmp / "inf.nii.gz"), ["inf.nii.gz", "infinite"], []


@case("nan-pixdim")
def _(tmp):
    _nib_save(_img(), tmp / "sp.nii.gz", zooms=(np.nan, 1.5, 8.0))
    return lambda: io.read_nifti(tmp / "sp.nii.gz"), ["sp.nii.gz", "pixdim", "nan"], []


@case("zero-pixdim")
def _(tmp):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((24, 24, 4))
    hdr.set_data_dtype(np.float32)
    hdr["pixdim"][1:4] = (1.5, 1.5, 0.0)
    hdr["vox_offset"] = 352
    hdr["magic"] = b"n+1"                  # written by hand: nibabel's writer would set the zero to 1
    raw = hdr.binaryblock + b"\0" * 4 + _img().T.tobytes(order="F")
    (tmp / "sp.nii.gz").write_bytes(gzip.compress(raw))
    return lambda: io.read_nifti(tmp / "sp.nii.gz"), ["sp.nii.gz", "pixdim"], []


@case("missing-image")
def _(tmp):
    return lambda: io.read_nifti(tmp / "none.nii.gz"), ["none.nii.gz", "not found"], []


@case("4d-without-frame")
def _(tmp):
    io.write_nifti(np.stack([_img()] * 3), (8.0, 1.5, 1.5), tmp / "cine.nii.gz")
    return lambda: io.read_nifti(tmp / "cine.nii.gz"), ["cine.nii.gz", "frame index"], []


@case("frame-out-of-range")
def _(tmp):
    io.write_nifti(np.stack([_img()] * 3), (8.0, 1.5, 1.5), tmp / "cine.nii.gz")
    return lambda: io.read_nifti(tmp / "cine.nii.gz", 5), ["cine.nii.gz", "frame index 5"], []


# ----------------------------------------------------------------------------------------------- manifests
def _load_call(path):
    return lambda: load_manifest(path)


@case("manifest-missing-column")
def _(tmp):
    pd.DataFrame({"subject_id": ["S1"], "frame": ["ED"], "image": ["a"]}).to_csv(tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "label"], []


@case("manifest-empty")
def _(tmp):
    (tmp / "m.csv").write_text("")
    return _load_call(tmp / "m.csv"), ["m.csv", "empty"], []


@case("manifest-not-utf8")
def _(tmp):
    (tmp / "m.csv").write_bytes("subject_id,frame,image,label,site\nS1,ED,a,b,Zürich\n".encode("latin-1"))
    return _load_call(tmp / "m.csv"), ["m.csv", "UTF-8", "0xfc"], []


@case("manifest-semicolon")
def _(tmp):
    (tmp / "m.csv").write_text("subject_id;frame;image;label\nS1;ED;a;b\n")
    return _load_call(tmp / "m.csv"), ["m.csv", "semicolon"], []


@case("manifest-frame-index-text")
def _(tmp):
    return _load_call(_manifest(tmp, extra={"frame_index": "two"})), ["manifest.csv", "frame_index", "'two'", "S1"], []


@case("manifest-bad-ethnicity")
def _(tmp):
    return _load_call(_manifest(tmp, extra={"ethnicity": "Whte"})), ["manifest.csv", "ethnicity", "Whte", "S1"], []


@case("manifest-duplicate")
def _(tmp):
    _manifest(tmp)
    row = dict(subject_id="S1", frame="ED", image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz")
    pd.DataFrame([row, row]).to_csv(tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "subject S1, frame ED", "more than once"], []


@case("manifest-empty-id")
def _(tmp):
    _manifest(tmp)
    pd.DataFrame([dict(subject_id=None, frame="ED", image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz")]).to_csv(
        tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "row 2", "subject_id is empty"], []


@case("manifest-id-spaces")
def _(tmp):
    _manifest(tmp)
    rows = [dict(subject_id=sid, frame=f, image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz", ethnicity="White")
            for sid, f in (("S1", "ED"), (" S1", "ES"))]
    pd.DataFrame(rows).to_csv(tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "row 3", "' S1'", "leading or trailing spaces"], []


@case("manifest-group-disagrees")
def _(tmp):
    _manifest(tmp)
    rows = [dict(subject_id="S1", frame=f, image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz", ethnicity=g, sex="F")
            for f, g in (("ED", "White"), ("ES", "Black"))]
    pd.DataFrame(rows).to_csv(tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "subject S1", "ethnicity differs", "'White'", "'Black'"], []


@case("manifest-sex-disagrees")
def _(tmp):
    _manifest(tmp)
    rows = [dict(subject_id="S1", frame=f, image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz", ethnicity="White", sex=x)
            for f, x in (("ED", "F"), ("ES", "M"))]
    pd.DataFrame(rows).to_csv(tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "subject S1", "sex differs"], []


@case("manifest-image-is-label")
def _(tmp):
    _manifest(tmp)
    pd.DataFrame([dict(subject_id="S1", frame="ED", image="S1_ED_gt.nii.gz", label="S1_ED_gt.nii.gz")]).to_csv(
        tmp / "m.csv", index=False)
    return _load_call(tmp / "m.csv"), ["m.csv", "row 2", "same file"], []


@case("image-constant")
def _(tmp):
    call, names, absent = _cache_call(tmp, img=np.full((4, 24, 24), 7.0, np.float32))
    return call, names + ["constant"], absent


@case("label-negative")
def _(tmp):
    lab = _lab().astype(np.int16)
    lab[0, 0, 0] = -1
    call, names, absent = _cache_call(tmp, lab=lab)
    return call, names + ["S1_ED_gt.nii.gz", "[-1]"], absent


@case("label-fractional")
def _(tmp):
    lab = _lab().astype(np.float32)
    lab[0, 0, 0] = 1.5
    call, names, absent = _cache_call(tmp, lab=lab)
    return call, names + ["not whole numbers", "1.5"], absent


@case("label-unmapped")
def _(tmp):
    lab = _lab()
    lab[0, 0, 0] = 7
    call, names, absent = _cache_call(tmp, lab=lab)
    return call, names + ["[7]", "label_map"], absent


@case("label-empty")
def _(tmp):
    call, names, absent = _cache_call(tmp, lab=np.zeros((4, 24, 24), np.uint8))
    return call, names + ["empty"], absent


@case("spacing-huge")
def _(tmp):
    z = (500.0, 500.0, 8.0)
    call, names, absent = _cache_call(tmp, img_zooms=z, lab_zooms=z)
    return call, names + ["implausible spacing", "500"], absent


@case("spacing-tiny")
def _(tmp):
    z = (0.001, 0.001, 8.0)
    call, names, absent = _cache_call(tmp, img_zooms=z, lab_zooms=z)
    return call, names + ["implausible spacing", "0.001"], absent


@case("grid-shape")
def _(tmp):
    call, names, absent = _cache_call(tmp, lab=_lab((4, 24, 20)))
    return call, names + ["shape"], absent


@case("grid-spacing")
def _(tmp):
    call, names, absent = _cache_call(tmp, lab_zooms=(1.2, 1.2, 8.0))
    return call, names + ["spacing"], absent


@case("grid-origin")
def _(tmp):
    aff = np.diag([1.5, 1.5, 8.0, 1.0])
    aff[:3, 3] = (12.0, -4.0, 0.0)
    call, names, absent = _cache_call(tmp, lab_affine=aff)
    return call, names + ["origin"], absent


@case("grid-direction")
def _(tmp):
    # the label's in-plane axes swapped, and its affine's columns swapped to match: same shape, spacing and origin
    aff = np.array([[0.0, 1.5, 0, 0], [1.5, 0.0, 0, 0], [0, 0, 8.0, 0], [0, 0, 0, 1.0]])
    call, names, absent = _cache_call(tmp, lab=_lab().transpose(0, 2, 1), lab_affine=aff)
    return call, names + ["different directions"], absent


# ----------------------------------------------------------------------------------------------- adapters
@case("acdc-missing-root")
def _(tmp):
    return lambda: acdc.build_manifest(tmp / "nowhere", tmp / "m.csv"), ["nowhere", "not found"], [tmp / "m.csv"]


@case("acdc-thousands")
def _(tmp):
    root = _acdc(tmp / "acdc")
    (root / "patient002" / "Info.cfg").write_text("ED: 1\nES: 9\nGroup: NOR\nHeight: 1,160.0\nWeight: 70.0\n")
    return lambda: acdc.build_manifest(root, tmp / "m.csv"), ["patient002", "Height", "1,160.0"], [tmp / "m.csv"]


@case("acdc-latin1")
def _(tmp):
    root = _acdc(tmp / "acdc")
    (root / "patient001" / "Info.cfg").write_bytes("ED: 1\nES: 9\nGroup: NOR\nHeight: 170\nWeight: 70\nName: Müller\n"
                                                   .encode("latin-1"))
    return lambda: acdc.build_manifest(root, tmp / "m.csv"), ["patient001", "Info.cfg", "UTF-8"], [tmp / "m.csv"]


@case("acdc-truncated")
def _(tmp):
    root = _acdc(tmp / "acdc")
    f = root / "patient002" / "patient002_frame09.nii.gz"
    f.write_bytes(f.read_bytes()[:200])
    return (lambda: acdc.build_manifest(root, tmp / "m.csv"),
            ["patient002 frame ES", "patient002_frame09.nii.gz", "truncated"], [tmp / "m.csv"])


def _ukbb_case(tmp, names, **kw):
    root, demo = _ukbb(tmp, **kw)
    return lambda: ukbb.build_manifest(root, demo, tmp / "m.csv", key=KEY), names, [tmp / "m.csv"]


@case("ukbb-code-fraction")
def _(tmp):
    return _ukbb_case(tmp, ["demo.csv row 2", "21000-0.0", "1.5"], codes=(1.5, 4002))


@case("ukbb-code-unknown")
def _(tmp):
    return _ukbb_case(tmp, ["demo.csv row 3", "21000-0.0", "is 7, not a code"], codes=(1001, 7))


@case("ukbb-code-text")
def _(tmp):
    return _ukbb_case(tmp, ["demo.csv row 2", "'White'"], codes=("White", 4002))


@case("ukbb-missing-eid")
def _(tmp):
    return _ukbb_case(tmp, ["demo.csv row 3", "eid"], eids=(1234567, None))


@case("ukbb-pattern-key")
def _(tmp):
    root, demo = _ukbb(tmp)
    return (lambda: ukbb.build_manifest(root, demo, tmp / "m.csv", image_pattern="{subject}/sa_{frame}.nii.gz",
                                        key=KEY), ["image pattern", "{subject}", "{eid}"], [tmp / "m.csv"])


@case("ukbb-no-key")
def _(tmp):
    root, demo = _ukbb(tmp)
    return lambda: ukbb.build_manifest(root, demo, tmp / "m.csv"), ["key", "secrets"], [tmp / "m.csv"]


@case("ukbb-short-key")
def _(tmp):
    (tmp / "key").write_text("short")
    return lambda: read_key(tmp / "key"), ["key", "16"], []


@case("ukbb-key-in-output")
def _(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "key").write_text(KEY)
    return lambda: read_key(tmp / "out" / "key", outputs=[tmp / "out" / "m.csv"]), ["inside the output folder"], []


@case("out-is-folder")
def _(tmp):
    root = _acdc(tmp / "acdc")
    (tmp / "outdir").mkdir()
    return lambda: acdc.build_manifest(root, tmp / "outdir"), ["outdir", "is a folder"], []


@case("out-read-only")
def _(tmp):
    root = _acdc(tmp / "acdc")
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    target = ro / "m.csv" if not os.access(ro, os.W_OK) else Path("/proc/cmrlib-no-such-folder/m.csv")
    return lambda: acdc.build_manifest(root, target), [str(target.parent)], [target]


# ----------------------------------------------------------------------------------------------- profiles
@case("profile-misspelt-section")
def _(tmp):
    p = _smoke_with(tmp, {"trainig": {"steps": 5}})
    return lambda: load_params(p), ["p.yaml", "trainig", "did you mean 'training'"], []


@case("profile-misspelt-switch")
def _(tmp):
    p = _smoke_with(tmp, {"cohort": {"outside_heart_diferences": False}})
    return lambda: load_params(p), ["cohort.outside_heart_diferences", "did you mean 'outside_heart_differences'"], []


@case("profile-steps-zero")
def _(tmp):
    return lambda: load_params(_smoke_with(tmp, {"training": {"steps": 0}})), ["training.steps", "at least 1"], []


@case("profile-steps-text")
def _(tmp):
    return lambda: load_params(_smoke_with(tmp, {"training": {"steps": "ten"}})), ["training.steps", "'ten'"], []


@case("profile-checkpoint-zero")
def _(tmp):
    p = _smoke_with(tmp, {"training": {"checkpoint_every": 0}})
    return lambda: load_params(p), ["training.checkpoint_every"], []


@case("profile-batch-zero")
def _(tmp):
    return lambda: load_params(_smoke_with(tmp, {"training": {"batch_size": 0}})), ["training.batch_size"], []


@case("profile-unknown-network")
def _(tmp):
    p = _smoke_with(tmp, {"training": {"network": "unet3"}})
    return lambda: load_params(p), ["training.network", "unet3", "dynunet"], []


@case("profile-extends-cycle")
def _(tmp):
    _profile(tmp, "extends: b.yaml\nprofile: a\n", "a.yaml")
    _profile(tmp, "extends: a.yaml\nprofile: b\n", "b.yaml")
    return lambda: load_params(tmp / "a.yaml"), ["cycle", "a.yaml", "b.yaml"], []


@case("profile-yaml-syntax")
def _(tmp):
    p = _profile(tmp, "profile: x\ntraining: {steps: 3\nseed: 0\n")
    return lambda: load_params(p), ["p.yaml", "YAML syntax error", "line"], []


@case("profile-missing")
def _(tmp):
    return lambda: load_params(tmp / "nope.yaml"), ["nope.yaml", "params/"], []


@case("train-steps-zero")
def _(tmp):
    return lambda: TrainConfig(steps=0), ["training.steps"], []


# ----------------------------------------------------------------------------------------------- specs
@case("spec-misspelt-switch")
def _(tmp):
    p = _spec_with(tmp, lambda s: s.update(outside_heart_diferences=False))
    return (lambda: load_spec(p),
            ["spec.yaml", "outside_heart_diferences", "did you mean 'outside_heart_differences'"], [])


@case("spec-factor-grups")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["factors"]["fat_signal"].update(grups=s["factors"]["fat_signal"].pop("groups")))
    return lambda: load_spec(p), ["factors.fat_signal", "grups", "did you mean 'groups'"], []


@case("spec-unknown-group")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["factors"]["fat_signal"]["groups"].update(Blak=0.9))
    return lambda: load_spec(p), ["factors.fat_signal.groups.Blak", "did you mean 'Black'"], []


@case("spec-bad-location")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["factors"]["fat_signal"].update(location="heart"))
    return lambda: load_spec(p), ["factors.fat_signal.location", "heart"], []


@case("spec-nan-number")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["sites"]["internal"].update(noise=float("nan")))
    return lambda: load_spec(p), ["spec.yaml", "sites.internal.noise", "not a finite number"], []


@case("spec-text-number")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["sites"]["internal"].update(noise="0.03"))
    return lambda: load_spec(p), ["spec.yaml", "sites.internal.noise", "expected a number", "'0.03'"], []


@case("spec-number-out-of-range")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["anatomy"].update(lvef=[1.5, 0.05]))
    return lambda: load_spec(p), ["spec.yaml", "anatomy.lvef (mean)", "1.5", "outside"], []


@case("spec-missing-anatomy")
def _(tmp):
    p = _spec_with(tmp, lambda s: s["anatomy"].pop("lv_wall_ed"))
    return lambda: load_spec(p), ["spec.yaml", "missing field 'anatomy.lv_wall_ed'"], []


@case("spec-yaml-syntax")
def _(tmp):
    (tmp / "spec.yaml").write_text("factors: [1, 2\nsites: {}\n")
    return lambda: load_spec(tmp / "spec.yaml"), ["spec.yaml", "YAML syntax error", "line"], []


# ----------------------------------------------------------------------------------------------- curation
def _split_subjects(n_black_f: int = 3):
    rows = [dict(subject_id=f"W{i}", ethnicity="White", sex="MF"[i % 2], site="internal") for i in range(20)]
    rows += [dict(subject_id=f"B{i}", ethnicity="Black", sex="M", site="internal") for i in range(6)]
    rows += [dict(subject_id=f"BF{i}", ethnicity="Black", sex="F", site="internal") for i in range(n_black_f)]
    return pd.DataFrame(rows)


@case("split-fractions-sum")
def _(tmp):
    from cmrlib.data.curation import split_natural
    return (lambda: split_natural(_split_subjects(), {"train": 0.8, "val": 0.1, "test": 0.2}, 0),
            ["sum to 1", "'test': 0.2"], [])


@case("balanced-cell-empty")
def _(tmp):
    from cmrlib.data.curation import balanced_train, split_natural
    s = split_natural(_split_subjects(n_black_f=0), {"train": 0.8, "val": 0.1, "test": 0.1}, 0)
    return lambda: balanced_train(s, 0), ["ethnicity=Black, sex=F: 0"], []


@case("group-model-no-training")
def _(tmp):
    from cmrlib.data.pipeline import Data
    from cmrlib.studies.puyol2021.groupmodels import group_models
    s = _split_subjects().assign(split="train")
    return lambda: group_models(Data(None, s, {"curation": {}}), ["White", "Asian"], 2, 2), ["ethnicity=Asian", "0 training"], []


@case("group-model-route")
def _(tmp):
    from cmrlib.studies.puyol2021.groupmodels import route
    return (lambda: route(_split_subjects(), "ethnicity", {"White": None}),
            ["subject B0", "ethnicity='Black'", "groups with models: White"], [])


@case("proportion-cell-small")
def _(tmp):
    from cmrlib.data.curation import proportion_split
    rows = [dict(subject_id=f"{g}{x}{i}", ethnicity=g, sex=x, site="internal") for g in ("White", "Asian")
            for x in "FM" for i in range(10 if g == "Asian" else 40)]
    return (lambda: proportion_split(pd.DataFrame(rows), "ethnicity", ("Asian", "White"), 1.0, "sex", ("F", "M"),
                                     24, 16, 0), ["ethnicity=Asian, sex=F", "10 subjects", "12 training"], [])


@case("folds-too-many")
def _(tmp):
    from cmrlib.studies.lee2022.ensemble import fold_of
    return lambda: fold_of(["a", "b", "c"], 5, 0), ["k = 5", "(3)"], []


# ----------------------------------------------------------------------------------------------- generative
class _Params:
    """The little of a Data object that the synthesis switches read."""
    def __init__(self, tmp, counts=(480,)):
        self.params = {"generative": {"counts": list(counts)}, "runs_root": str(tmp / "runs"), "profile": "t",
                       "seed": 0}
        self.minority = "Black"


@case("generative-size-stride")
def _(tmp):
    from cmrlib.studies.skorupko2024.generative import GenConfig
    return lambda: GenConfig(size=18, channels=(16, 32, 64)), ["generative.size", "18", "4"], []


@case("generative-missing-group")
def _(tmp):
    from cmrlib.studies.skorupko2024.generative import Generator
    g = Generator(model=None, cfg=None, classes=[("White", "F"), ("White", "M")], window=(0.0, 1.0))
    return lambda: g.class_for("Black", "F"), ["Black", "('White', 'F')"], []


@case("synthetic-count-too-large")
def _(tmp):
    from cmrlib.studies.skorupko2024.synthesis import synthetic_method
    return lambda: synthetic_method(_Params(tmp), 600), ["600", "480"], []


@case("synthetic-set-missing")
def _(tmp):
    import numpy as np

    from cmrlib.studies.skorupko2024.synthesis import add_synthetic
    z = np.zeros((1, 4, 4), np.float32)
    return (lambda: add_synthetic(_Params(tmp), {"synthetic": "synthetic-abc", "n": 2}, z, z.astype(np.uint8), ["White"]),
            ["synthetic-abc", "samples.npz", "not found"], [])


@case("profile-seeds-zero")
def _(tmp):
    p = _smoke_with(tmp, {"seeds": 0})
    return lambda: load_params(p), ["p.yaml", "seeds"], []


@case("profile-seed-overflow")
def _(tmp):
    p = _smoke_with(tmp, {"seed": 2**64})
    return lambda: load_params(p), ["p.yaml", "'seed'", "at most"], []


@case("profile-realdata-ablation")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"realdata": {"ablation": ["field of veiw"]}})
    return lambda: load_profile(p), ["p.yaml", "realdata.ablation", "item 1", "did you mean 'field of view'"], []


@case("profile-realdata-method")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"realdata": {"methods": ["baseline", "oversampeling"]}})
    return lambda: load_profile(p), ["p.yaml", "realdata.methods", "item 2", "did you mean 'oversampling'"], []


@case("profile-sample-steps")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"generative": {"sample_steps": 500, "timesteps": 100}})
    return lambda: load_profile(p), ["p.yaml", "generative.sample_steps 500", "timesteps 100"], []


@case("profile-generative-base-steps")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"generative": {"steps": 6, "base_steps": 6}})
    return lambda: load_profile(p), ["p.yaml", "generative.base_steps", "[0, 6)"], []


@case("profile-generative-size")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"generative": {"size": 18, "channels": [8, 16, 32]}})
    return lambda: load_profile(p), ["p.yaml", "generative.size 18", "multiple of"], []


@case("profile-generative-channels")
def _(tmp):
    from cmrlib.book.profile import load_profile
    p = _smoke_with(tmp, {"generative": {"channels": [8, 12]}})
    return lambda: load_profile(p), ["p.yaml", "generative.channels", "multiples of 8"], []


@case("realdata-folds-too-many")
def _(tmp):
    from types import SimpleNamespace

    from cmrlib.studies.lee2025.realdata import cv_folds
    subj = pd.DataFrame({"subject_id": [f"p{i}" for i in range(20)], "obesity": ["obese"] * 4 + ["not obese"] * 16,
                         "split": "test"})
    data = SimpleNamespace(subjects=subj, group_col="obesity")
    return (lambda: cv_folds(data, 6, 0, {"not obese": 2, "obese": 1}, 0)), ["realdata.folds", "6 folds",
                                                                              "obesity=obese has 4"], []


# ----------------------------------------------------------------------------------------------- claims
@case("claim-unknown-experiment")
def _(tmp):
    from cmrlib.claims.registry import register
    from cmrlib.claims.rules import Claim
    from cmrlib.evaluation.verdicts import Verdict
    claim = Claim("lee2025.nothing", "02", "t", "w", ("baseline_typo",), lambda c: Verdict("reproduced", "x"))
    return lambda: register(claim), ["lee2025.nothing", "baseline_typo", "known"], []


@case("cv-train-too-many")
def _(tmp):
    from types import SimpleNamespace

    from cmrlib.studies.lee2025.realdata import cv_folds
    subj = pd.DataFrame({"subject_id": [f"p{i}" for i in range(20)], "obesity": ["obese"] * 4 + ["not obese"] * 16,
                         "split": "test"})
    data = SimpleNamespace(subjects=subj, group_col="obesity")
    return (lambda: cv_folds(data, 2, 0, {"not obese": 5, "obese": 3}, 0)), ["realdata.train", "obese", "fold 0"], []


@case("claim-not-in-store")
def _(tmp):
    from cmrlib.runs.experiments import stored_metrics
    from cmrlib.runs.store import read_only

    def call():
        with read_only():
            stored_metrics(tmp / "baseline-abc", lambda: pd.DataFrame())
    return call, ["baseline-abc", "metrics.csv", "not in the run store", "run the chapter"], [tmp / "baseline-abc"]


# ----------------------------------------------------------------------------------------------- command line
def _cli(*argv):
    return lambda: cli.main(list(argv))


@case("cli-only-unknown")
def _(tmp):
    return _cli("run", "--params", str(ROOT / "params" / "smoke.yaml"), "--only", "99"), ["--only 99", "02"], []


@case("cli-missing-params")
def _(tmp):
    return _cli("run", "--params", str(tmp / "missing.yaml")), ["missing.yaml"], []


@case("cli-out-folder")
def _(tmp):
    root = _acdc(tmp / "acdc")
    return _cli("manifest", "--dataset", "acdc", "--root", str(root), "--out", str(tmp)), ["is a folder"], []


@case("cli-ukbb-no-key")
def _(tmp, monkeypatch=None):
    root, demo = _ukbb(tmp)
    return (_cli("manifest", "--dataset", "ukbb", "--root", str(root), "--demographics", str(demo), "--out",
                 str(tmp / "m.csv")), ["key", "secrets.token_hex"], [tmp / "m.csv"])


@case("cli-acdc-missing-root")
def _(tmp):
    return (_cli("manifest", "--dataset", "acdc", "--root", str(tmp / "none"), "--out", str(tmp / "m.csv")),
            ["none", "not found"], [tmp / "m.csv"])


@case("cli-bad-profile-key")
def _(tmp):
    p = _smoke_with(tmp, {"cohort": {"outside_heart_diferences": False}, "data_root": str(tmp / "data")})
    return _cli("cohort", "--params", str(p)), ["outside_heart_diferences"], [tmp / "data"]


# ----------------------------------------------------------------------------------------------- audit
def _audit_case(tmp, names, edit=None, **settings):
    """An audit of a small folder of predictions (tests/test_audit.py's maker), after ``edit(folder)``; the
    refusal must leave no output folder."""
    from test_audit import make_audit

    from cmrlib.evaluation.audit import AuditSettings, run_audit
    manifest, preds = make_audit(tmp, {"A": 3, "B": 3})
    if edit:
        edit(tmp)
    s = AuditSettings(**{"groups": ["group"], **settings})
    return (lambda: run_audit(manifest, tmp / "out", preds, s, progress=False)), names, [tmp / "out"]


@case("audit-prediction-missing")
def _(tmp):
    return _audit_case(tmp, ["cases.csv", "row 2 (case A00_ED)", "no prediction"],
                       lambda t: (t / "preds" / "A00_ED.nii.gz").unlink())


@case("audit-prediction-orphan")
def _(tmp):
    return _audit_case(tmp, ["1 prediction(s)", "without a case", "Z99_ED.nii.gz"],
                       lambda t: shutil.copy(t / "preds" / "A00_ED.nii.gz", t / "preds" / "Z99_ED.nii.gz"))


@case("audit-shape")
def _(tmp):
    return _audit_case(tmp, ["case A01_ES", "shape (6, 40, 36)", "(6, 40, 40)"],
                       lambda t: io.write_nifti(np.zeros((6, 40, 36), np.uint8), (8.0, 1.5, 1.5),
                                                t / "preds" / "A01_ES.nii.gz"))


@case("audit-affine")
def _(tmp):
    def shift(t):
        img = nib.load(str(t / "preds" / "B00_ED.nii.gz"))
        aff = img.affine.copy()
        aff[:3, 3] += (15.0, 0.0, 0.0)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff, img.header), str(t / "preds" / "B00_ED.nii.gz"))
    return _audit_case(tmp, ["case B00_ED", "origin", "the two grids differ"], shift)


@case("audit-label-values")
def _(tmp):
    def five(t):
        io.write_nifti(np.full((6, 40, 40), 5, np.uint8), (8.0, 1.5, 1.5), t / "preds" / "A02_ED.nii.gz")
    return _audit_case(tmp, ["case A02_ED", "prediction", "values [5] outside", "--label-map"], five)


@case("audit-group-missing")
def _(tmp):
    return _audit_case(tmp, ["cases.csv", "group column 'ethnicity' is not in the manifest"], groups=["ethnicity"])


@case("audit-group-empty")
def _(tmp):
    def blank(t):
        m = pd.read_csv(t / "cases.csv")
        m["site"] = np.nan
        m.to_csv(t / "cases.csv", index=False)
    return _audit_case(tmp, ["cases.csv", "group column 'site' is empty"], blank, groups=["site"])


@case("audit-reference-missing")
def _(tmp):
    return _audit_case(tmp, ["reference group 'White' has no cases in 'group'", "A, B"], reference="White")


@case("audit-label-map")
def _(tmp):
    return _audit_case(tmp, ["--label-map", "'1-3'", "source:target"], label_map="1-3")


@case("cli-audit-out-file")
def _(tmp):
    from test_audit import make_audit
    manifest, preds = make_audit(tmp, {"A": 2, "B": 2})
    (tmp / "taken").write_text("x")
    return (_cli("audit", "--manifest", str(manifest), "--predictions", str(preds), "--group", "group", "--out",
                 str(tmp / "taken"), "--no-report"), ["taken", "names a file"], [])


# ----------------------------------------------------------------------------------------------- the tests
ENTRIES = refusals.catalogue()


INPUTS = [e for e in ENTRIES if "test" not in e]          # bad inputs: a case here each
FAULTS = [e for e in ENTRIES if "test" in e]              # faults during a run: each names the test that injects it


def test_catalogue_and_cases_match():
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids)) >= 40
    assert {e["id"] for e in INPUTS} == set(CASES), ({e["id"] for e in INPUTS} ^ set(CASES))


@pytest.mark.parametrize("entry", FAULTS, ids=[e["id"] for e in FAULTS])
def test_each_fault_names_a_test_that_exists(entry, root):
    path, _, name = entry["test"].partition("::")
    assert name.startswith("test_") and f"def {name}(" in (root / path).read_text(), entry["test"]


def test_book_page_is_current(root):
    assert (root / "book" / "refusals.md").read_text() == refusals.page(), \
        "regenerate: python -m cmrlib.book.refusals > book/refusals.md"


@pytest.mark.parametrize("entry", INPUTS, ids=[e["id"] for e in INPUTS])
def test_bad_input_is_refused(entry, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CMRLIB_PSEUDONYM_KEY_FILE", raising=False)
    call, names, absent = CASES[entry["id"]](tmp_path)
    if entry["refused_with"] == "exit 2":
        assert call() == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("cmrlib ") and err.count("\n") == 1, err
        msg = err
    else:
        with pytest.raises(ERRORS[entry["refused_with"]]) as e:
            call()
        msg = str(e.value)
        assert isinstance(e.value, InputError)
    for n in names:
        assert n in msg, f"{n!r} not named in: {msg}"
    for p in absent:
        assert not Path(p).exists(), f"{p} left behind"
    for p in tmp_path.rglob("*"):
        assert ".partial" not in p.name and not p.name.endswith(".tmp"), f"partial output {p}"


def test_a_file_that_is_not_nifti_is_refused_without_nibabels_notes(tmp_path, capfd, caplog):
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n" * 20)
    for raw in (b"root:x:0:0" * 40, b"\x5c\x01\x00\x00" + b"\x00" * 400):    # text; a 348 header without magic
        (tmp_path / "x.nii").write_bytes(raw)
        with pytest.raises(io.ImageReadError, match="not a NIfTI file"):
            io.read_nifti(tmp_path / "x.nii")
    out = capfd.readouterr()
    assert out.out == out.err == "" and not caplog.records


def test_leading_zero_ids_stay_text(tmp_path):
    _manifest(tmp_path)
    rows = [dict(subject_id=s, frame="ED", image="S1_ED.nii.gz", label="S1_ED_gt.nii.gz") for s in ("007", "7")]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    m = load_manifest(tmp_path / "m.csv")
    assert m.subject_id.tolist() == ["007", "7"]


def test_cli_accepts_chapter_without_leading_zero():
    from cmrlib.training.methods import CHAPTERS, chapter_experiments
    assert chapter_experiments("2") == chapter_experiments("02") == CHAPTERS["02"]


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ParamsError):
        cli.main(["run", "--params", str(tmp_path / "missing.yaml"), "--debug"])


def test_ukbb_errors_never_put_a_pseudonym_beside_an_eid_path(tmp_path):
    root, demo = _ukbb(tmp_path)
    (root / "2345678" / "label_sa_ES.nii.gz").unlink()
    with pytest.raises(AdapterError) as e:
        ukbb.build_manifest(root, demo, tmp_path / "m.csv", key=KEY)
    assert "2345678" in str(e.value) and "UKB-" not in str(e.value)


def test_ukbb_pseudonyms_are_keyed(tmp_path):
    from cmrlib.data.adapters import pseudonym
    root, demo = _ukbb(tmp_path)
    a = ukbb.build_manifest(root, demo, key=KEY).subject_id.unique()
    b = ukbb.build_manifest(root, demo, key=KEY[::-1]).subject_id.unique()
    assert set(a).isdisjoint(b)
    # without the key, trying every eid does not find the subject: the unkeyed hash differs
    import hashlib
    assert pseudonym("1234567", KEY, "UKB-")[4:] not in (hashlib.sha256(b"1234567").hexdigest(),
                                                          hashlib.sha256(b"cmrlib:1234567").hexdigest()[:10])


# ----------------------------------------------------------------------------------------------- interruption
def test_train_log_of_a_run_killed_before_its_first_checkpoint_starts_afresh(tmp_path):
    from cmrlib.training.train import reset_log
    (tmp_path / "train_log.csv").write_text("step,lr,loss,group_weights\n1,0.003,0.9,\n2,0.003,0.8,\n3,0.0")
    reset_log(tmp_path / "train_log.csv", 0)      # no checkpoint: the resumed run starts at step 0
    assert (tmp_path / "train_log.csv").read_text() == "step,lr,loss,group_weights\n"


def test_train_log_is_cut_back_to_the_checkpoint_on_resume(tmp_path, tiny_params):
    from cmrlib.training.train import train_model
    rng = np.random.default_rng(0)
    images = rng.standard_normal((12, 32, 32)).astype(np.float16)
    labels = (rng.random((12, 32, 32)) > 0.7).astype(np.uint8)
    cfg = TrainConfig(steps=6, batch_size=4, channels=(4, 8, 16), checkpoint_every=3, optimizer="adam", lr=0.003)
    train_model(images, labels, cfg, tmp_path / "a", stop_at=3, progress=False)
    with open(tmp_path / "a" / "train_log.csv", "a") as f:   # what a run killed after step 5 leaves behind
        f.write("4,0.001,0.5,\n5,0.001,0.4,\n6,0.0")
    train_model(images, labels, cfg, tmp_path / "a", progress=False)
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert log.step.tolist() == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "a" / "train_log.csv").read_text().count("step,") == 1


KILL_TRAIN = """
import os, signal, sys, numpy as np, torch
from cmrlib.training import train
calls = {"n": 0}
orig = torch.optim.Adam.step
def step(self, *a, **k):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return orig(self, *a, **k)
torch.optim.Adam.step = step
rng = np.random.default_rng(0)
images = rng.standard_normal((12, 32, 32)).astype(np.float16)
labels = (rng.random((12, 32, 32)) > 0.7).astype(np.uint8)
cfg = train.TrainConfig(steps=8, batch_size=4, channels=(4, 8, 16), checkpoint_every=3, optimizer="adam", lr=0.003)
m = train.train_model(images, labels, cfg, sys.argv[1], progress=False)
torch.save(m.state_dict(), os.path.join(sys.argv[1], "final.pt"))
"""


def _run(script, *args, check=True):
    r = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_training_killed_resumes_to_identical_weights(tmp_path):
    """Killed (SIGKILL) between two checkpoints and resumed to the end: the weights equal an uninterrupted run's
    (trained here in-process with the same settings) and the log holds each step once. A kill before the first
    checkpoint is covered above, in-process."""
    import torch

    from cmrlib.training import train
    r = _run(KILL_TRAIN, tmp_path / "killed", 5, check=False)      # at step 5; the checkpoint is at 3
    assert r.returncode == -signal.SIGKILL
    _run(KILL_TRAIN, tmp_path / "killed", 0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((12, 32, 32)).astype(np.float16)
    labels = (rng.random((12, 32, 32)) > 0.7).astype(np.uint8)
    cfg = train.TrainConfig(steps=8, batch_size=4, channels=(4, 8, 16), checkpoint_every=3, optimizer="adam", lr=0.003)
    whole = train.train_model(images, labels, cfg, tmp_path / "whole", progress=False).state_dict()
    killed = torch.load(tmp_path / "killed" / "final.pt")
    assert all(torch.equal(killed[k], whole[k]) for k in whole)
    log = pd.read_csv(tmp_path / "killed" / "train_log.csv")
    assert log.step.tolist() == list(range(1, 9))


KILL_CACHE = """
import os, signal, sys, numpy as np, pandas as pd
from cmrlib.data import cache
kill = int(sys.argv[2])
if kill:
    orig = cache.np.savez
    def savez(*a, **k):
        orig(*a, **k)
        os.kill(os.getpid(), signal.SIGKILL)      # killed after the slices are written, before the rename
    cache.np.savez = savez
def vols():
    for i in range(3):
        lab = np.zeros((2, 16, 16), np.uint8); lab[:, 4:8, 4:8] = 1
        yield {"subject_id": f"S{i}"}, "ED", np.random.default_rng(i).random((2, 16, 16)), lab, (8.0, 2.0, 2.0)
subjects = pd.DataFrame({"subject_id": ["S0", "S1", "S2"]})
c = cache.build_cache(vols(), subjects, "key", sys.argv[1], cache.Preprocessing(16, 2.0), progress=False)
print(len(c.images))
"""


def test_cache_build_killed_leaves_a_partial_that_the_next_build_removes(tmp_path):
    r = _run(KILL_CACHE, tmp_path, 1, check=False)
    assert r.returncode == -signal.SIGKILL
    assert list(tmp_path.glob(".key.partial-*")) and not (tmp_path / "key").exists()
    r = _run(KILL_CACHE, tmp_path, 0)
    assert r.stdout.strip() == "6"
    assert not list(tmp_path.glob(".*partial*")) and (tmp_path / "key" / "slices.npz").exists()


KILL_COHORT = """
import os, signal, sys
from cmrlib.data import io, synthetic
from cmrlib.data.synthetic import CohortConfig, Grid, load_spec
kill = int(sys.argv[2])
if kill:
    orig, n = io.write_nifti, {"n": 0}
    def write(*a, **k):
        n["n"] += 1
        if n["n"] == kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(*a, **k)
    io.write_nifti = write
cfg = CohortConfig(internal={"White": 2, "Black": 1}, external={}, grid=Grid(32, 7.0, 4), seed=0)
print(synthetic.write_cohort(load_spec(sys.argv[3]), cfg, sys.argv[1], progress=False))
"""


def test_cohort_write_killed_leaves_no_cohort_and_the_next_run_completes(tmp_path):
    out = tmp_path / "cohort"
    r = _run(KILL_COHORT, out, 5, SPEC, check=False)
    assert r.returncode == -signal.SIGKILL
    assert not (out / "manifest.csv").exists()
    _run(KILL_COHORT, out, 0, SPEC)
    m = load_manifest(out / "manifest.csv")
    assert len(m) == 6 and not list(tmp_path.glob("*.partial"))


def test_book_only_accepts_a_chapter_number_without_leading_zero(root):
    from cmrlib.book.build import chapter_numbers
    assert chapter_numbers(root, "2") == "02"
    with pytest.raises(InputError, match="no chapter '99'"):
        chapter_numbers(root, "99")
