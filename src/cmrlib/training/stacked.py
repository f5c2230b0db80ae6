"""Several models of one network trained as one: their parameters stacked along a new first axis
(``torch.func.stack_module_state``) and every step one vectorised forward and backward pass (``torch.func.vmap`` of
``functional_call``), so that small models fill a device that one of them leaves idle.

Each model stays what it would be trained alone (:func:`cmrlib.training.train.train_model`): its own seed (the
same initial weights), its own sampler and random generator (the same batches and augmentations), its own loss
objective, its own gradient clipping (the norm of its own gradients) and its own run folder, log, events and
checkpoint, in the single run's format, so a stacked run resumes alone and a single run resumes stacked. The
optimisers (Adam, SGD with momentum) update each element on its own, so one optimiser over the stacked tensors
is one per model. What differs is the order of floating-point sums inside the batched convolutions: the weights
agree with single runs to a tolerance, not bit for bit (``tests/test_stacked.py`` states and checks it).

Models can be stacked when they share the network, its channels, the batch size, the step count, the optimiser
and its settings and the checkpoint interval (:func:`stack_key`); their data, sampler, objective, loss, seed and
augmentation may differ. ``torch.compile`` and bf16 autocast are not combined with stacking here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from cmrlib.errors import InputError
from cmrlib.files import save_atomic
from cmrlib.training.losses import LOSSES, MeanObjective
from cmrlib.training.models import build_network
from cmrlib.training.sampling import GroupBatchSampler, group_order, uniform_sampler
from cmrlib.training.train import (StepLog, TrainConfig, batch, load_checkpoint, note_start, pick_device, poly_lr,
                                   reset_log)

SHARED = ("network", "channels", "batch_size", "steps", "optimizer", "lr", "momentum", "weight_decay", "poly_power",
          "checkpoint_every", "compile", "graphs")


@dataclass
class Job:
    """One model's training, as :func:`~cmrlib.training.train.train_model` takes it."""
    images: np.ndarray
    labels: np.ndarray
    cfg: TrainConfig
    run_dir: str | Path
    slice_groups: object = None
    sampler: GroupBatchSampler | None = None
    objective: object = None
    init_state: dict | None = None


def stack_key(cfg: TrainConfig) -> tuple:
    """Models whose configurations give the same key (and whose slices have one size) can be stacked."""
    d = cfg.to_dict()
    return tuple(str(d[k]) for k in SHARED)


def _optimizer(params: list, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _split_optimizer(state: dict, i: int) -> dict:
    """Model ``i``'s share of the stacked optimiser's state, as its own optimiser would save it."""
    per = {k: {n: (v[i].clone() if torch.is_tensor(v) and v.dim() > 0 else (v.clone() if torch.is_tensor(v) else v))
               for n, v in s.items()} for k, s in state["state"].items()}
    return {"state": per, "param_groups": [dict(g) for g in state["param_groups"]]}


def _stack_optimizer(states: list[dict]) -> dict:
    """The stacked optimiser's state from each model's own (all taken at one step)."""
    out = {}
    for k in states[0]["state"]:
        s0 = states[0]["state"][k]
        out[k] = {n: (torch.stack([s["state"][k][n] for s in states]) if torch.is_tensor(v) and v.dim() > 0 else v)
                  for n, v in s0.items()}
    return {"state": out, "param_groups": [dict(g) for g in states[0]["param_groups"]]}


class _One:
    """A job's own pieces: data, sampler, generator, objective, loss, log."""

    def __init__(self, job: Job, dev):
        self.job, self.cfg, self.dir = job, job.cfg, Path(job.run_dir)
        groups = np.asarray(job.slice_groups) if job.slice_groups is not None else np.zeros(len(job.images), int)
        self.sampler = job.sampler or uniform_sampler(groups)
        self.objective = job.objective or MeanObjective()
        self.loss_fn = LOSSES[job.cfg.loss]
        self.group_names = group_order(groups)
        index = {g: i for i, g in enumerate(self.group_names)}
        self.slice_gid = torch.as_tensor([index[g] for g in groups.tolist()]).to(dev)
        self.imgs = torch.as_tensor(job.images).to(dev)
        self.labs = torch.as_tensor(job.labels).to(dev)
        self.gen = torch.Generator().manual_seed(job.cfg.seed + 1)
        self.aug_gen = torch.Generator(device=dev).manual_seed(job.cfg.seed + 2) if dev.type == "cuda" else self.gen
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.dir / "checkpoint.pt"


def train_stacked(jobs: list[Job], device: str | None = None, progress: bool = True, stop_at: int | None = None,
                  desc: str = "train (stacked)") -> list[torch.nn.Module]:
    """Train every job's model at once (see the module's notes) and return the models, in the jobs' order, each
    a network of its own with its final weights. Jobs that cannot be stacked (:func:`stack_key`, one slice size,
    every checkpoint at one step) are refused naming the first difference."""
    from tqdm import tqdm
    if not jobs:
        return []
    keys = {stack_key(j.cfg) for j in jobs}
    if len(keys) > 1:
        a, b = list(keys)[:2]
        field = next(SHARED[k] for k in range(len(SHARED)) if a[k] != b[k])
        raise InputError(f"stacked training: the models differ in training.{field}; only models that share "
                         f"{', '.join(SHARED)} can be trained together")
    if len({tuple(j.images.shape[1:]) for j in jobs}) > 1:
        raise InputError("stacked training: the models' slices differ in size")
    dev = pick_device(device)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = jobs[0].cfg
    ones = [_One(j, dev) for j in jobs]
    models = []
    for o in ones:
        torch.manual_seed(o.cfg.seed)                      # the initial weights of a single run with this seed
        m = build_network(cfg.network, cfg.channels).to(dev)
        if o.job.init_state is not None and not o.ckpt.exists():
            m.load_state_dict(o.job.init_state)
        models.append(m)
    states = [load_checkpoint(o.ckpt) if o.ckpt.exists() else None for o in ones]
    steps_at = {0 if s is None else s["step"] for s in states}
    if len(steps_at) > 1:
        raise InputError(f"stacked training: the runs stopped at different steps ({sorted(steps_at)}); resume "
                         "them one at a time (cmrlib.training.train.train_model)")
    step = steps_at.pop()
    for m, o, s in zip(models, ones, states):
        if s is not None:
            m.load_state_dict(s["model"])
            o.gen.set_state(s["generator"])
            if o.aug_gen is not o.gen and "aug_generator" in s:
                o.aug_gen.set_state(s["aug_generator"])
            o.objective.load_state_dict(s["objective"])
    params, buffers = stack_module_state(models)
    names = list(params)
    opt = _optimizer([params[n] for n in names], cfg)
    if states[0] is not None:
        opt.load_state_dict(_stack_optimizer([s["optimizer"] for s in states]))
    base = build_network(cfg.network, cfg.channels).to("meta")

    def one_forward(p, b, x):
        return functional_call(base, (p, b), (x,))
    forward = vmap(one_forward)
    if cfg.compile or cfg.graphs:
        forward = torch.compile(forward)

    def checkpoint(at: int) -> None:
        full = opt.state_dict()
        for i, o in enumerate(ones):
            extra = {"aug_generator": o.aug_gen.get_state()} if o.aug_gen is not o.gen else {}
            save_atomic(dict(model={n: params[n][i].detach().clone() for n in names} | {n: buffers[n][i].clone() for n in buffers},
                             optimizer=_split_optimizer(full, i), generator=o.gen.get_state(),
                             objective=o.objective.state_dict(), step=at, config=o.cfg.to_dict(), **extra), o.ckpt)

    logs = []
    for o in ones:
        note_start(o.dir, step, cfg.steps)
        reset_log(o.dir / "train_log.csv", step)
        logs.append(StepLog(o.dir / "train_log.csv", cfg.steps))
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not progress, mininterval=2)
    try:
        while step < cfg.steps:
            lr = poly_lr(cfg.lr, step, cfg.steps, cfg.poly_power)
            for pg in opt.param_groups:
                pg["lr"] = lr
            xs, ys, idxs = [], [], []
            for o in ones:
                idx = o.sampler.sample(cfg.batch_size, o.gen)
                x, y = batch(o.imgs, o.labs, idx.to(dev), o.cfg, o.aug_gen, dev)
                xs.append(x)
                ys.append(y)
                idxs.append(idx.to(dev))
            logits = forward(params, buffers, torch.stack(xs))
            losses = [o.objective(o.loss_fn(logits[i].float(), ys[i]), o.slice_gid[idxs[i]], len(o.group_names))
                      for i, o in enumerate(ones)]
            opt.zero_grad(set_to_none=True)
            torch.stack(losses).sum().backward()       # each model's gradient is its own loss's: nothing is shared
            norms = torch.sqrt(sum(params[n].grad.reshape(len(ones), -1).pow(2).sum(1) for n in names))
            coef = (12.0 / (norms + 1e-6)).clamp(max=1.0)     # clip_grad_norm_ at 12, model by model
            for n in names:
                params[n].grad.mul_(coef.view(-1, *[1] * (params[n].dim() - 1)))
            opt.step()
            step += 1
            bar.update(1)
            for o, log, loss in zip(ones, logs, losses):
                log.add(step, lr, loss, getattr(getattr(o.objective, "dro", o.objective), "q", None))
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or step == stop_at:
                for log in logs:
                    log.flush()
                checkpoint(step)
            if stop_at is not None and step >= stop_at:
                break
    finally:
        bar.close()
        for log in logs:
            log.close()
    out = []
    for i, m in enumerate(models):
        m.load_state_dict({n: params[n][i].detach() for n in names} | {n: buffers[n][i] for n in buffers})
        m.eval()
        out.append(m)
    return out
