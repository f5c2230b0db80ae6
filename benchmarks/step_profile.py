"""Where one training step's time goes on a GPU: the course network trained eagerly on random resident slices,
timed with augmentation on and off, and one torch.profiler table of the full step (host time per operator and
device time per kernel). A step whose host time exceeds its device time is bound by the host (Python, kernel
launches, synchronisation), not by the GPU.

    python benchmarks/step_profile.py [--profile params/course.yaml] [--steps 40]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main(argv=None):
    import torch
    from train_speed import run, training_settings
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="params/course.yaml")
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg, size, _ = training_settings(a.profile)
    run(cfg, 5, size, dev)                       # warm-up
    for name, c in (("full step", cfg), ("no augmentation", {**cfg, "augment": False}),
                    ("no augmentation, cross-entropy", {**cfg, "augment": False, "loss": "ce"})):
        t1, t2 = run(c, 10, size, dev), run(c, 10 + a.steps, size, dev)
        print(f"step_profile [{dev}] {name}: {(t2 - t1) / a.steps * 1e3:.2f} ms per step", flush=True)
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
    with profile(activities=acts) as prof:
        run(cfg, a.steps, size, dev)
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=25))
    if dev == "cuda":
        print(table.table(sort_by="self_cuda_time_total", row_limit=12))


if __name__ == "__main__":
    main()
