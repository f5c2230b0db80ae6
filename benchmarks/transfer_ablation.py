"""Chapter 12's ablation of the transfer model's randomisation with every kind taken out in turn (the course
profile's chapter takes out the field of view only, to stay under 15 minutes): each row a synthetic-only model
trained at the transfer model's steps, scored on every ACDC patient (:func:`cmrlib.studies.lee2025.transfer.ablation_table`).
The models land in the profile's run store, so a second run only evaluates.

    python benchmarks/transfer_ablation.py [--params params/course.yaml] [--acdc ../shared/data/acdc]
"""
from __future__ import annotations

import argparse
import time


def main(argv=None):
    from cmrlib.book.profile import load_profile
    from cmrlib.data.pipeline import prepare_data
    from cmrlib.runs.experiments import trained_model
    from cmrlib.studies.lee2025 import realdata, transfer
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/course.yaml")
    ap.add_argument("--acdc", default="")
    a = ap.parse_args(argv)
    params = load_profile(a.params)
    params["realdata"] = {**params.get("realdata", {}), "ablation": None}      # every kind the model uses
    syn = prepare_data(params, progress=False)
    real = realdata.acdc_data(params, a.acdc or None)
    if real is None:
        raise SystemExit("no ACDC folder found (--acdc)")
    t = time.time()
    sets = transfer.ablation_sets(syn)
    scores = {n: realdata.on_real(trained_model(d, "baseline", progress=False)[0], real, params)[0]
              for n, d in sets.items()}
    print(f"{a.params}: {len(sets)} models of {transfer.settings(params)['ablation_steps']} steps, {time.time() - t:.0f} s")
    print(transfer.ablation_table(scores, seed=params["seed"]).round(3).to_string())


if __name__ == "__main__":
    main()
