"""Speed of the synthetic cohort generator, rendering straight into arrays (the cache's fast path).

Renders a sample of subjects (ED and ES) at a profile's grid on 2 CPU threads (or on a GPU with ``--device
cuda``), prints subjects per second, and extrapolates to the paper-scale cohort (5,778 internal + 84 external
subjects) against the target of 3 minutes. On a GPU it also renders the first chunk on the CPU and prints how
far the two renderings differ (the same random draws; other floating-point rounding).

    python benchmarks/cohort_speed.py [params/course.yaml] [n_subjects] [--device cuda]
"""
import argparse
import time

import numpy as np
import torch

from cmrlib.config import load_params
from cmrlib.data import synthetic
from cmrlib.data.pipeline import cohort_config, load_spec

TARGET_S, PAPER_N = 180.0, 5778 + 84
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("params", nargs="?", default="params/course.yaml")
ap.add_argument("n", nargs="?", type=int, default=256)
ap.add_argument("--device", default="cpu")
a = ap.parse_args()
torch.set_num_threads(2)
params = load_params(a.params)
n = a.n
spec, cfg = load_spec(params), cohort_config(params)
cfg.internal = {"White": n // 2, "Black": n - n // 2}
cfg.external = {}
subjects = synthetic.subjects_table(spec, cfg)
for _ in synthetic.iter_volumes(spec, subjects.iloc[:cfg.chunk], cfg, a.device):   # warm-up (GPU kernels)
    pass
t0 = time.perf_counter()
for _ in synthetic.iter_volumes(spec, subjects, cfg, a.device):
    pass
dt = time.perf_counter() - t0
rate = n / dt
paper_s = PAPER_N / rate
print(f"cohort_speed [{params['profile']}: {cfg.grid.size}x{cfg.grid.size} px, {cfg.grid.n_slices} slices, "
      f"{a.device}]: {n} subjects (ED+ES) in {dt:.1f} s = {rate:.1f} subjects/s; paper scale ({PAPER_N}) ≈ "
      f"{paper_s:.0f} s; ratio target/estimate = {TARGET_S / paper_s:.2f}")
if a.device != "cpu":
    first = subjects.iloc[:cfg.chunk]
    pairs = zip(synthetic.iter_volumes(spec, first, cfg, a.device), synthetic.iter_volumes(spec, first, cfg, "cpu"))
    d_img = max(float(np.abs(g[2] - c[2]).max()) for g, c in pairs)
    agree = np.mean([float((g[3] == c[3]).mean()) for g, c in
                     zip(synthetic.iter_volumes(spec, first, cfg, a.device), synthetic.iter_volumes(spec, first, cfg, "cpu"))])
    print(f"cohort_speed: {a.device} against cpu on {len(first)} subjects: image max |difference| {d_img:.2e}, "
          f"label voxels equal {agree:.6f}")
