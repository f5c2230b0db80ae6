"""Training throughput of the book's loop (:func:`cmrlib.training.train.train_model`), in training slices per second.

CPU (always): the course profile's network and batch at its image size, on random slices resident in memory,
threads as torch sets them (one per core). Variants:

- ``reference``: the loop as it was before this benchmark existed (deterministic mode filling every new tensor);
- ``eager``: today's loop, eager mode;
- ``compile``: today's loop with ``training.compile: true``;
- ``compile+bf16``: and ``training.amp: bf16`` (bf16 autocast on the CPU: fast where the CPU has bf16
  instructions, e.g. AVX-512 BF16 or AMX; the numerics differ from float32).

Each variant trains a warm-up model, then pairs of fresh models of N1 and N2 steps; the per-step time is the
median of (T2 − T1) / (N2 − N1) and the rest of T1 is the fixed cost (model set-up, compilation when cached). It prints slices/s, the ratio to the reference (target
≥ 1.5 for the fastest variant), and the time of a course-length model (its profile's steps) for each variant.
``--concurrent`` also trains two models at once in two processes with one thread each, against one process
with every thread. ``--stacked 2 4`` trains that many models as one stacked model
(:mod:`cmrlib.training.stacked`, eager) against the eager single model: slices/s in all and the speed-up.

CUDA (when present): the gpu profile's network at its size, bf16, batch as the profile, against the target of
20,000 slices/s on one H100; the same eager and with four times the batch (host-bound or device-bound?); the
course network on the GPU; with ``--concurrent``, 2 and 4 gpu-profile models
trained at once by separate processes on the one GPU.

    python benchmarks/train_speed.py [--profile params/course.yaml] [--n1 10] [--n2 40] [--repeats 3] [--concurrent]
    python benchmarks/train_speed.py --cuda-only --concurrent       # on a GPU machine: the CUDA lines alone
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CPU_TARGET_RATIO = 1.5
GPU_TARGET = 20_000.0


def run(cfg_over: dict, steps: int, size: int, device: str | None = None, reference: bool = False) -> float:
    """Seconds to train one fresh model for ``steps`` steps on random resident slices."""
    import torch

    from cmrlib.training import train
    from cmrlib.training.train import TrainConfig, train_model
    train.FILL_UNINITIALIZED = reference
    rng = np.random.default_rng(0)
    n = 512
    images = rng.normal(size=(n, size, size)).astype(np.float16)
    labels = rng.integers(0, 4, size=(n, size, size)).astype(np.uint8)
    cfg = TrainConfig(**{**cfg_over, "steps": steps, "checkpoint_every": steps})
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train_model(images, labels, cfg, d, device=device, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def run_stacked(cfg_over: dict, steps: int, size: int, n: int, device: str | None = None) -> float:
    """Seconds to train ``n`` fresh models stacked (:func:`cmrlib.training.stacked.train_stacked`) for ``steps``."""
    import torch

    from cmrlib.training.stacked import Job, train_stacked
    from cmrlib.training.train import TrainConfig
    rng = np.random.default_rng(0)
    images = rng.normal(size=(512, size, size)).astype(np.float16)
    labels = rng.integers(0, 4, size=(512, size, size)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as d:
        jobs = [Job(images, labels, TrainConfig(**{**cfg_over, "steps": steps, "checkpoint_every": steps, "seed": i}),
                    f"{d}/m{i}") for i in range(n)]
        t0 = time.perf_counter()
        train_stacked(jobs, device=device, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def measure(cfg_over, size, n1, n2, device=None, reference=False, repeats: int = 1, stacked: int = 0) -> dict:
    """Per-step time as the median over ``repeats`` pairs of runs, after one warm-up run (``stacked``: that many
    models stacked; slices/s counts every model's)."""
    def once(steps):
        return run_stacked(cfg_over, steps, size, stacked, device) if stacked else run(cfg_over, steps, size, device,
                                                                                       reference)
    first = once(n1)   # warm-up: first calls, and compilation if not cached
    pairs = [(once(n1), once(n2)) for _ in range(repeats)]
    per_step = max(float(np.median([(t2 - t1) / (n2 - n1) for t1, t2 in pairs])), 1e-9)
    fixed = float(np.median([max(t1 - n1 * per_step, 0.0) for t1, _ in pairs]))
    return dict(per_step=per_step, fixed=fixed, first=first,
                slices_per_s=max(stacked, 1) * cfg_over["batch_size"] / per_step)


def models_of(variant: str) -> int:
    """How many models one run of a variant trains (``stacked ×N``: N)."""
    return int(variant.split("×")[1]) if "×" in variant else 1


def training_settings(profile: str, extra: tuple = ()) -> tuple[dict, int, int]:
    from cmrlib.config import load_params
    from cmrlib.training.methods import METHODS, train_config, training_steps
    p = load_params(ROOT / profile)
    cfg = train_config(p, METHODS["baseline"]).to_dict()
    keep = ("network", "optimizer", "channels", "batch_size", "lr", "loss", "augment", "seed", *extra)
    return {k: cfg[k] for k in keep}, int(p["cache"]["size"]), training_steps(p)


def concurrent(cfg_over, size, steps, threads_each: int, n: int = 2, device: str | None = None) -> float:
    """Slices per second of ``n`` processes training at once, ``threads_each`` threads apiece: each warms up,
    then times a ``steps``-step model; the timed runs overlap (they start together after the warm-ups)."""
    code = ("import sys, json, torch; sys.path.insert(0, %r); torch.set_num_threads(%d); "
            "from train_speed import run; c = json.loads(sys.argv[1]); run(c, 5, %d, %r); "
            "print('ready', flush=True); sys.stdin.readline(); print(run(c, %d, %d, %r))"
            % (str(Path(__file__).parent), threads_each, size, device, steps, size, device))
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg_over)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    for p in procs:                 # every process warmed up (compiled) before any timed run starts
        p.stdout.readline()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    times = [float(p.communicate()[0].split()[-1]) for p in procs]
    return n * steps * cfg_over["batch_size"] / max(times)


def cuda_report(a, course_cfg: dict, course_size: int) -> None:
    """The CUDA measurements: the gpu profile's network (against the target), the course network, and with
    ``--concurrent`` several gpu-profile models trained at once by separate processes on the one GPU."""
    import torch
    gcfg, gsize, gsteps = training_settings(a.gpu_profile, ("compile", "amp", "graphs"))
    g = measure(gcfg, gsize, 20, 120, device="cuda")
    print(f"CUDA ({torch.cuda.get_device_name(0)}): {a.gpu_profile} network {gcfg['network']} {gcfg['channels']} at "
          f"{gsize}², bf16, batch {gcfg['batch_size']}: {g['slices_per_s']:.0f} slices/s (per step "
          f"{g['per_step'] * 1e3:.2f} ms, fixed {g['fixed']:.1f} s, first run {g['first']:.1f} s), ratio to target "
          f"{g['slices_per_s'] / GPU_TARGET:.2f}; a {gsteps}-step model {g['fixed'] + gsteps * g['per_step']:.0f} s",
          flush=True)
    for name, over in (("eager", {"compile": False}), ("graphed (CUDA graphs)", {"compile": True, "graphs": True}),
                       ("batch × 4", {"batch_size": 4 * gcfg["batch_size"]})):
        v = measure({**gcfg, **over}, gsize, 20, 120, device="cuda")
        print(f"CUDA: the same, {name}: {v['slices_per_s']:.0f} slices/s (per step {v['per_step'] * 1e3:.2f} ms, "
              f"first run {v['first']:.1f} s); a step time that does not grow with the batch is bound by the host",
              flush=True)
    c = measure({**course_cfg, "compile": True}, course_size, 20, 120, device="cuda")
    print(f"CUDA: course network {course_cfg['channels']} at {course_size}², batch {course_cfg['batch_size']}: "
          f"{c['slices_per_s']:.0f} slices/s (per step {c['per_step'] * 1e3:.2f} ms, fixed {c['fixed']:.1f} s)",
          flush=True)
    for n in a.stacked:
        st = measure({**gcfg, "compile": False, "amp": "off"}, gsize, 20, 120, device="cuda", stacked=n)
        print(f"CUDA: {n} gpu-profile models stacked (float32, eager): {st['slices_per_s']:.0f} slices/s in all, "
              f"ratio to target {st['slices_per_s'] / GPU_TARGET:.2f}, against one model {g['slices_per_s']:.0f}: "
              f"speed-up {st['slices_per_s'] / g['slices_per_s']:.2f}", flush=True)
    if a.concurrent:
        for n in (2, 4):
            tot = concurrent(gcfg, gsize, 120, 2, n, "cuda")
            print(f"CUDA: {n} gpu-profile models at once (processes): {tot:.0f} slices/s in all, against one "
                  f"{g['slices_per_s']:.0f}: speed-up {tot / g['slices_per_s']:.2f}", flush=True)


def main(argv=None):
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="params/course.yaml")
    ap.add_argument("--gpu-profile", default="params/gpu.yaml")
    ap.add_argument("--n1", type=int, default=10)
    ap.add_argument("--n2", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="pairs of runs per variant (median)")
    ap.add_argument("--concurrent", action="store_true")
    ap.add_argument("--stacked", type=int, nargs="*", default=[], help="models per stacked model to measure")
    ap.add_argument("--cpu-stacked-only", action="store_true", help="on the CPU only the eager and stacked lines")
    ap.add_argument("--cuda-only", action="store_true", help="only the CUDA measurements (a GPU machine's run)")
    a = ap.parse_args(argv)

    cfg, size, course_steps = training_settings(a.profile)
    if a.cuda_only:
        return cuda_report(a, cfg, size)
    print(f"CPU: {a.profile} network {cfg['network']} {cfg['channels']}, batch {cfg['batch_size']}, {size}², "
          f"{torch.get_num_threads()} threads")
    variants = {"reference": (cfg, True), "eager": (cfg, False), "compile": ({**cfg, "compile": True}, False),
                "compile+bf16": ({**cfg, "compile": True, "amp": "bf16"}, False)}
    if a.cpu_stacked_only:
        variants = {"eager": (cfg, False), "compile": ({**cfg, "compile": True}, False)}
    res = {name: measure(c, size, a.n1, a.n2, reference=ref, repeats=a.repeats) for name, (c, ref) in variants.items()}
    for n in a.stacked:
        res[f"stacked ×{n}"] = measure(cfg, size, a.n1, a.n2, repeats=a.repeats, stacked=n)
        res[f"compiled stacked ×{n}"] = measure({**cfg, "compile": True}, size, a.n1, a.n2, repeats=a.repeats,
                                                stacked=n)
    ref = res.get("reference", res["eager"])
    for name, r in res.items():
        model_s = r["fixed"] + course_steps * r["per_step"]
        ref_model_s = ref["fixed"] + course_steps * ref["per_step"]
        print(f"  {name:12s} {r['slices_per_s']:7.1f} slices/s  per step {r['per_step']:.3f} s  fixed {r['fixed']:5.1f} s"
              f" (first run {r['first']:5.1f} s)"
              f"  ratio {r['slices_per_s'] / ref['slices_per_s']:.2f}  {models_of(name)} {course_steps}-step model(s)"
              f" {model_s:6.1f} s"
              f" (ratio {ref_model_s / model_s:.2f})")
    for n in a.stacked:
        print(f"  {n} models stacked against {n} models one after another: eager speed-up "
              f"{res[f'stacked ×{n}']['slices_per_s'] / res['eager']['slices_per_s']:.2f}, compiled speed-up "
              f"{res[f'compiled stacked ×{n}']['slices_per_s'] / res['compile']['slices_per_s']:.2f}")
    best = max(r["slices_per_s"] for r in res.values()) / ref["slices_per_s"]
    print(f"  fastest against the reference: {best:.2f}x (target {CPU_TARGET_RATIO}x: ratio to target "
          f"{best / CPU_TARGET_RATIO:.2f})")
    if a.concurrent and "compile" in res:
        n = torch.get_num_threads()
        one = res["compile"]["slices_per_s"]
        two = concurrent({**cfg, "compile": True}, size, a.n2, max(1, n // 2))
        print(f"  two models at once ({max(1, n // 2)} thread(s) each): {two:.1f} slices/s in all, against one model "
              f"with {n} threads {one:.1f}: speed-up {two / one:.2f}")
    if torch.cuda.is_available():
        cuda_report(a, cfg, size)
    else:
        print("CUDA: no GPU here; the CUDA path of the loop has not been measured")


if __name__ == "__main__":
    main()
