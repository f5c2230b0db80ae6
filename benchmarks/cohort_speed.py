"""Speed of the synthetic cohort generator, rendering straight into arrays (the cache's fast path).

Renders a sample of subjects (ED and ES) at a profile's grid on 2 CPU threads, prints subjects per second,
and extrapolates to the paper-scale cohort (5,778 internal + 84 external subjects) against the target of
3 minutes. Usage: python benchmarks/cohort_speed.py [params/course.yaml] [n_subjects]
"""
import sys
import time

import torch

from cmrlib.config import load_params
from cmrlib.data import synthetic
from cmrlib.pipeline import cohort_config, load_spec

TARGET_S, PAPER_N = 180.0, 5778 + 84
torch.set_num_threads(2)
params = load_params(sys.argv[1] if len(sys.argv) > 1 else "params/course.yaml")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 256
spec, cfg = load_spec(params), cohort_config(params)
cfg.internal = {"White": n // 2, "Black": n - n // 2}
cfg.external = {}
subjects = synthetic.subjects_table(spec, cfg)
t0 = time.perf_counter()
for _ in synthetic.iter_volumes(spec, subjects, cfg):
    pass
dt = time.perf_counter() - t0
rate = n / dt
paper_s = PAPER_N / rate
print(f"cohort_speed [{params['profile']}: {cfg.grid.size}x{cfg.grid.size} px, {cfg.grid.n_slices} slices]: "
      f"{n} subjects (ED+ES) in {dt:.1f} s = {rate:.1f} subjects/s; paper scale ({PAPER_N}) ≈ {paper_s:.0f} s; "
      f"ratio target/estimate = {TARGET_S / paper_s:.2f}")
