"""Speed of the evaluation: DSC + HD for 1,000 subjects × 2 frames × 3 structures (target ≤ 30 s on 2 cores).

Ground truths are synthetic-cohort stacks at the course profile's grid (96 × 96 at 3.6 mm, 10 slices);
predictions are the same labels shifted by one pixel with a false-positive blob, so HD needs real work.
Prints subjects per second and the ratio of the target time to the measured time (> 1 meets the target).
Usage: python benchmarks/eval_speed.py [n_subjects]
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cmrlib.data import synthetic
from cmrlib.evaluation.metrics import volume_metrics

TARGET_S = 30.0
torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
spec = synthetic.load_spec(Path(__file__).resolve().parents[1] / "data_manifest" / "synthetic_cohort.yaml")
cfg = synthetic.CohortConfig(internal={"White": 10, "Black": 10}, external={}, grid=synthetic.Grid(96, 3.6, 10))
pairs = []
for row, frame, img, lab, sp in synthetic.iter_volumes(spec, synthetic.subjects_table(spec, cfg), cfg):
    pred = np.roll(lab, 1, axis=2)
    pred[2, 5:8, 5:8] = 1
    pairs.append((pred, lab, sp))
t0 = time.perf_counter()
for i in range(n):
    for f in range(2):
        pred, lab, sp = pairs[(2 * i + f) % len(pairs)]
        volume_metrics(pred, lab, sp)
dt = time.perf_counter() - t0
target = TARGET_S * n / 1000
print(f"eval_speed: {n} subjects x 2 frames x 3 structures in {dt:.2f} s = {n / dt:.1f} subjects/s; "
      f"target {target:.1f} s; ratio target/measured = {target / dt:.2f}")
