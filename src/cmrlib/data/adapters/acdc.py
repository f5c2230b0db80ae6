"""ACDC (Bernard et al. 2018): ``patientNNN/Info.cfg`` and ``patientNNN_frameXX[_gt].nii.gz``.

ACDC labels are 1 RV, 2 myocardium, 3 LV; the manifest maps them to the project's 1 LVBP, 2 LVM, 3 RVBP.
Group columns: diagnosis ``group`` (NOR, DCM, HCM, MINF, RV), height, weight, BMI, its WHO class and
``obesity`` (obese: BMI ≥ 30).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmrlib.data.adapters import AdapterError, bmi_class, check_out, check_pairs, finish

LABEL_MAP = "1:3,2:2,3:1"
OBESE_BMI = 30.0        # obesity: BMI of at least 30 kg/m² (WHO)


WHERE_TO_GET = ("**ACDC is not available here**, so this chapter shows no results. To run it: register on the "
                "ACDC challenge site (Université de Lyon, CREATIS), download the training set, and point the chapter "
                "at the folder that holds `patient001/ … patient100/`, either with the parameter `ACDC_DIR` or the "
                "environment variable `CMRLIB_ACDC`; see *Using your own data*.")


def find_root(folder: str | None = None) -> Path | None:
    """The ACDC folder: the given one, else ``$CMRLIB_ACDC``, else ``../shared/data/acdc`` beside the
    repository; None when none exists."""
    import os
    for cand in (folder, os.environ.get("CMRLIB_ACDC"), str(Path.cwd().parent / "shared" / "data" / "acdc")):
        if cand and (Path(cand) / "patient001").is_dir():
            return Path(cand).resolve()
    return None


def read_info(path: Path) -> dict:
    """``key: value`` lines of an Info.cfg; raises ValueError naming the byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                         "save it as UTF-8") from None
    info = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep:
            info[key.strip()] = val.strip()
    return info


def build_manifest(root: str | Path, out: str | Path | None = None, check_images: bool = True) -> pd.DataFrame:
    """Manifest of every ``patient*`` folder under ``root``; raises AdapterError listing every problem."""
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        raise AdapterError("ACDC", [f"folder not found: {root} (give the folder that holds patient001, ...)"])
    check_out(Path(out) if out else None, "ACDC")
    patients = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("patient"))
    if not patients:
        problems.append(f"{root}: no patientNNN folders")
    rows = []
    for pdir in patients:
        pid = pdir.name
        cfg = pdir / "Info.cfg"
        if not cfg.exists():
            problems.append(f"subject {pid}: missing {cfg}")
            continue
        try:
            info = read_info(cfg)
        except ValueError as exc:
            problems.append(f"subject {pid}: {exc}")
            continue
        missing = [k for k in ("ED", "ES", "Group", "Height", "Weight") if k not in info]
        if missing:
            problems.append(f"subject {pid}: {cfg} lacks {', '.join(missing)}")
            continue
        nums = {}
        for k, kind in (("Height", float), ("Weight", float), ("ED", int), ("ES", int)):
            try:
                nums[k] = kind(info[k])
            except ValueError:
                problems.append(f"subject {pid}: {cfg} field {k} is {info[k]!r}, not a "
                                f"{'number' if kind is float else 'whole number'} (use '.' for decimals, no "
                                "thousands separator)")
        if len(nums) < 4:
            continue
        h, w = nums["Height"], nums["Weight"]
        bmi = w / (h / 100) ** 2 if h > 0 else float("nan")
        for frame in ("ED", "ES"):
            n = nums[frame]
            img = f"{pid}/{pid}_frame{n:02d}.nii.gz"
            lab = f"{pid}/{pid}_frame{n:02d}_gt.nii.gz"
            for f in (img, lab):
                if not (root / f).exists():
                    problems.append(f"subject {pid} frame {frame}: missing file {root / f}")
            rows.append(dict(subject_id=pid, frame=frame, image=img, label=lab, label_map=LABEL_MAP,
                             group=info["Group"], height=h, weight=w, bmi=round(bmi, 2), bmi_class=bmi_class(bmi),
                             obesity="obese" if bmi >= OBESE_BMI else "not obese", site="ACDC"))
    if check_images and not problems:
        check_pairs(rows, root, problems)
    return finish(rows, root, Path(out) if out else None, "ACDC", problems)
