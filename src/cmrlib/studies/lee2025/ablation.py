"""Which factor of the synthetic cohort drives a gap: a stored model evaluated on the same subjects re-rendered
with one factor at a time set, for every group, to the reference group's value (chapter 09 does it at the
external site). The model is not retrained; only the test images change, so each row isolates what one
factor does to this model's gap."""
from __future__ import annotations

import copy

import pandas as pd

from cmrlib.data import synthetic
from cmrlib.data.cache import Preprocessing, build_cache
from cmrlib.data.pipeline import Data, cohort_config, load_spec, synthetic_key
from cmrlib.evaluation.report import experiment_scores, fairness_summary
from cmrlib.files import stable_hash
from cmrlib.runs.experiments import evaluate, segment, trained_model


def without_factor(spec: dict, name: str) -> dict:
    """``spec`` with factor ``name`` at the reference group's value for every group."""
    s = copy.deepcopy(spec)
    fac = s["factors"][name]
    ref = synthetic.factor_value(spec, name, spec["reference_group"])
    s["factors"][name] = {**fac, "default": ref, "groups": {}}
    return s


def site_data(data: Data, spec: dict, site: str = "external") -> Data:
    """The subjects of one site of ``data``'s synthetic cohort, rendered with ``spec`` straight into a cache;
    every subject is in split ``site``."""
    params = data.params
    cfg = cohort_config(params)
    counts = cfg.internal if site == "internal" else cfg.external
    subjects = synthetic.sample_subjects(spec, counts, site, cfg.seed + (0 if site == "internal" else 1),
                                         "S" if site == "internal" else "X")
    prep = Preprocessing(size=int(params["cache"]["size"]), spacing=float(params["cache"]["spacing_mm"]))
    key = "a-" + stable_hash([synthetic_key(params), spec, site, prep.key(), synthetic.RENDERER_ID])
    cache = build_cache(synthetic.iter_volumes(spec, subjects, cfg), subjects[synthetic.PUBLIC_COLUMNS], key,
                        f"{params['data_root']}/cache", prep, total=2 * len(subjects), progress=False)
    subs = cache.subjects.copy()
    subs["split"] = site
    return Data(cache, subs, params)


def factor_ablation(data: Data, name: str = "baseline", site: str = "external", frames=("ED",)) -> pd.DataFrame:
    """The gap of experiment ``name``'s stored model at ``site``: as rendered, and with each factor in turn at
    the reference group's value. Columns: factor, median DSC of the two groups, FG, p."""
    model, _ = trained_model(data, name, progress=False)
    cur = data.params["curation"]
    adv, mino, gcol = cur["advantaged"], cur["minority"], data.group_col
    spec = load_spec(data.params)
    rows = []
    for factor in [None, *spec["factors"]]:
        variant = spec if factor is None else without_factor(spec, factor)
        d = site_data(data, variant, site)
        per = evaluate(lambda img, lab: (segment(model, img, data.params), True), d, progress=False, splits=(site,))
        sc = experiment_scores(per, site, frames)
        med = sc.groupby(gcol).dsc.median()
        fs = fairness_summary(sc, gcol, adv, mino)
        rows.append({"factor set to the reference": factor or "(none: as rendered)", f"DSC {adv}": med.get(adv),
                     f"DSC {mino}": med.get(mino), "FG": fs["fg"], "p": fs["p"]})
    return pd.DataFrame(rows).set_index("factor set to the reference")
