"""Which noise target lets the course generator draw the mask's heart in a short budget?

Trains the chapter 17 generator (cmrlib.studies.skorupko2024.generative) on the course profile's training slices for ``--steps`` steps
with each prediction target (epsilon, v_prediction with the scaled linear schedule, sample), generates minority
slices for real minority masks, and prints the median per-slice Dice of the baseline segmenter against the
conditioning masks, beside the same segmenter on the real slices taken to the generator's resolution and back
(the ceiling at that resolution) and the ratio of the two. Run alone (two torch processes on two cores slow each
other): ``python benchmarks/generative_target.py params/course.yaml --steps 600``.
"""
import argparse
import tempfile
import time

import numpy as np

from cmrlib import config
from cmrlib.data import pipeline
from cmrlib.runs import experiments
from cmrlib.studies.skorupko2024 import fidelity, synthesis
from cmrlib.studies.skorupko2024.generative import (
    GenConfig,
    at_resolution,
    config_from_params,
    sample,
    train_generator,
)

VARIANTS = {"epsilon": dict(prediction="epsilon", schedule="linear_beta"),
            "v_prediction": dict(prediction="v_prediction", schedule="scaled_linear_beta"),
            "sample": dict(prediction="sample", schedule="linear_beta")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("params")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    params = config.load_params(args.params)
    data = pipeline.prepare_data(params, progress=False)
    seg, _ = experiments.trained_model(data, "baseline", progress=False)
    idx, sids, _ = synthesis._train_slices(data)
    images, labels = np.asarray(data.cache.images[idx]), np.asarray(data.cache.labels[idx])
    attrs = synthesis.slice_attributes(data, sids)
    im, lab = fidelity.real_slices(data, "train", data.minority, limit=args.n, seed=1)
    base = config_from_params(params)

    def score(x):       # slice by slice, without a volume's post-processing (cmrlib.studies.skorupko2024.fidelity.mask_fidelity)
        return float(fidelity.mask_fidelity(seg, {"x": (x, lab)}).dice_median.iloc[0])
    ceiling = score(at_resolution(im, base.size))
    print(f"real minority slices at {base.size} px: Dice {ceiling:.3f}")
    for name, v in VARIANTS.items():
        cfg = GenConfig(**{**base.to_dict(), "steps": args.steps, **v})
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            g = train_generator(images, labels, attrs, cfg, tmp, progress=False)
        out = sample(g, lab, [g.class_index(data.minority, "M")] * len(lab), seed=0)
        d = score(out)
        print(f"{name:13s} {args.steps} steps in {time.time() - t0:.0f} s: Dice {d:.3f}, ratio to real {d / ceiling:.2f}")


if __name__ == "__main__":
    main()
