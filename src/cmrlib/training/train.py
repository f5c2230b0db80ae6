"""One training loop for every method of the book.

SGD with Nesterov momentum (or Adam, for short CPU budgets) and nnU-Net's poly learning-rate schedule,
lr_t = lr_0 (1 − t/T)^0.9; a
per-sample loss combined by an *objective* (plain mean, group reweighting, Group DRO); a batch sampler
(uniform, oversampling, stratified); batched tensor augmentation; automatic mixed precision (bf16) when CUDA is
present; a tqdm progress bar; a checkpoint every ``checkpoint_every`` steps holding model, optimiser, objective
and random-generator state, so an interrupted run resumes exactly where it stopped. On CPU a seed fixes the
result bit for bit.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.utils.deterministic

from cmrlib.errors import DamagedFile, InputError
from cmrlib.files import save_atomic
from cmrlib.training.augment import DEFAULTS as AUGMENT_DEFAULTS
from cmrlib.training.augment import augment_batch
from cmrlib.training.losses import LOSSES, MeanObjective
from cmrlib.training.models import build_network
from cmrlib.training.sampling import GroupBatchSampler, group_order, uniform_sampler


@dataclass
class TrainConfig:
    network: str = "unet"
    optimizer: str = "sgd"       # sgd: nnU-Net's SGD, Nesterov momentum; adam: Adam (faster start on CPU budgets)
    channels: tuple = (8, 16, 32, 64)
    steps: int = 40
    batch_size: int = 16
    lr: float = 0.01
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_power: float = 0.9
    loss: str = "dice_ce"
    # augmentation ranges (augment.DEFAULTS, overridable key by key from a profile); False: none
    augment: bool | dict = field(default_factory=lambda: dict(AUGMENT_DEFAULTS))
    checkpoint_every: int = 50
    seed: int = 0
    amp: str = "auto"            # auto: bf16 autocast when CUDA is present; bf16: on the CPU too; off: never
    # torch.compile the training forward and backward: on 2 CPU cores about 1.3-1.5x faster per step once
    # compiled (benchmarks/train_speed.py), ~25 s to compile a new shape the first time (cached on disk after);
    # the numerics differ from eager mode, so it is part of the run key when on
    compile: bool = False
    # on a GPU, CUDA graphs: the forward and backward passes compiled with torch.compile(mode="reduce-overhead"),
    # which captures them as graphs replayed with one launch (a host-bound loop's remedy; benchmarks/train_speed.py);
    # on the CPU it compiles as ``compile`` does. Part of the run key when on
    graphs: bool = False

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"training.{name} must be a whole number ≥ 1, got {v!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise InputError(f"training.lr must be a positive number, got {self.lr!r}")
        if isinstance(self.augment, dict):   # ranges not given keep their defaults
            self.augment = {**AUGMENT_DEFAULTS, **self.augment}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def poly_lr(lr0: float, step: int, total: int, power: float = 0.9) -> float:
    return lr0 * (1 - step / total) ** power


LOG_HEADER = "step,lr,loss,group_weights\n"
FILL_UNINITIALIZED = False   # True restores PyTorch's default in deterministic mode (benchmarks/train_speed.py)


def reset_log(path: Path, step: int) -> None:
    """Make the training log agree with the checkpoint at ``step``: one header, then exactly the rows of steps
    1..step (rows written after the last checkpoint by a run that was killed, and any half-written line, are
    dropped, so a resumed run does not repeat them)."""
    keep = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            head = line.split(",", 1)[0]
            if head.isdigit() and 1 <= int(head) <= step and line.count(",") == 3 and int(head) == len(keep) + 1:
                keep.append(line + "\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(LOG_HEADER + "".join(keep))
    os.replace(tmp, path)


class TrainingDiverged(InputError):
    """The training loss became NaN or infinite: the run stops there and keeps its last finite checkpoint."""


class StepLog:
    """The training log, one row per step (``step,lr,loss,group_weights``). Losses and group weights stay on
    the device until :meth:`flush`, which reads them back in one transfer: no host synchronisation per step.
    :meth:`flush` also stops a run whose loss is no longer finite (:class:`TrainingDiverged`, naming the run
    folder and the first such step), before the checkpoint after it is written."""

    def __init__(self, path: Path, total: int | None = None):
        self.path, self.total = Path(path), total
        self.file = open(path, "a")
        self.rows: list[tuple] = []

    def add(self, step: int, lr: float, loss: torch.Tensor, q: torch.Tensor | None) -> None:
        self.rows.append((step, lr, loss.detach(), None if q is None else q.detach().clone()))

    def flush(self) -> None:
        if not self.rows:
            return
        losses = torch.stack([r[2] for r in self.rows]).float().cpu().tolist()
        bad = next(((step, loss) for (step, *_), loss in zip(self.rows, losses) if not np.isfinite(loss)), None)
        for (step, lr, _, q), loss in zip(self.rows, losses):
            qs = " ".join(f"{v:.5g}" for v in q.tolist()) if q is not None else ""
            self.file.write(f"{step},{lr:.6g},{loss:.6g},{qs}\n")
        self.file.flush()
        self.rows = []
        if bad is not None:
            of = f" of {self.total}" if self.total else ""
            raise TrainingDiverged(
                f"{self.path.parent}: the training loss became {bad[1]} at step {bad[0]}{of}; the run stops and "
                "keeps its last finite checkpoint. Look for NaN or infinite values in its data (images, labels, the "
                "cohort spec) or lower training.lr, then remove the folder to train it again")

    def close(self) -> None:
        self.flush()
        self.file.close()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """nnU-Net's SGD (Nesterov momentum) or Adam, as ``cfg.optimizer`` says; on a GPU the fused
    implementation (one kernel for every parameter's update; the CPU keeps the default, so its numerics stay)."""
    fused = {"fused": True} if next(model.parameters()).device.type == "cuda" else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                               weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r} (sgd or adam)")


def restore(state: dict, model, opt, gen: torch.Generator, objective, aug_gen: torch.Generator | None = None) -> int:
    """Load a checkpoint's model, optimiser, random-generator and objective state (``objective=None``: none
    stored; ``aug_gen``: the GPU's augmentation generator, when training on one); the step it was taken at.
    The checkpoint is loaded on the CPU (:func:`run_loop`): a generator's state must be a CPU tensor; the
    weights go to the model's device and the optimiser casts its state to its parameters' device."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    if aug_gen is not None and "aug_generator" in state:
        aug_gen.set_state(state["aug_generator"])
    if objective is not None:
        objective.load_state_dict(state["objective"])
    return state["step"]


def note_start(run_dir: Path, step: int, total: int) -> None:
    """Add where this start of a run began to its ``events.log`` (a resumed run shows its checkpoint's step)."""
    if step < total:
        with open(Path(run_dir) / "events.log", "a") as ev:
            ev.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} start at step {step} of {total} "
                     f"(pid {os.getpid()}, host {platform.node()})\n")


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint written by :func:`run_loop`; one that cannot be read (cut short by a partial copy, emptied,
    overwritten by something else) raises :class:`~cmrlib.errors.DamagedFile` naming it and the way out."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:        # noqa: BLE001 - torch raises many kinds for a bad file; all mean the same
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}"
        state = why
    if not isinstance(state, dict) or "step" not in state:
        why = state if isinstance(state, str) else f"it holds a {type(state).__name__}, not a training state"
        raise DamagedFile(f"{path}: damaged checkpoint ({path.stat().st_size} bytes; {why}); remove the folder "
                          f"{path.parent} and run again (the model is retrained from scratch), or copy the whole "
                          "folder again from the store it came from")
    return state


def run_loop(run_dir: Path, total: int, checkpoint_every: int, step_fn, state, load, lr_at, opt=None,
             weights=None, desc: str = "train", progress: bool = True, stop_at: int | None = None) -> int:
    """The library's one training loop, shared by the segmentation models, fair meta-learning and the
    generator; each supplies its step. Returns the step it ended at.

    Resumes from ``run_dir/checkpoint.pt`` (loaded on the CPU: a random generator's state must stay there;
    ``load(state) → step``), notes each start in ``events.log``, keeps ``train_log.csv`` in step with the
    checkpoint, and per step: sets ``lr_at(step)`` on ``opt``'s parameter groups, calls ``step_fn(step) → loss``
    (the forward pass, backward pass and update), logs the loss (and ``weights()``, e.g. Group DRO's q), and
    every ``checkpoint_every`` steps (and at the last, and at ``stop_at``) writes ``state(step)`` atomically.
    ``stop_at`` ends early after that step (used to test resumption)."""
    from tqdm import tqdm
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    step = load(load_checkpoint(ckpt)) if ckpt.exists() else 0
    note_start(run_dir, step, total)
    reset_log(run_dir / "train_log.csv", step)
    log = StepLog(run_dir / "train_log.csv", total)
    bar = tqdm(total=total, initial=step, desc=desc, disable=not progress, mininterval=2)
    try:
        while step < total:
            lr = lr_at(step)
            if opt is not None:
                for pg in opt.param_groups:
                    pg["lr"] = lr
            loss = step_fn(step)
            step += 1
            bar.update(1)
            log.add(step, lr, loss, weights() if weights else None)
            if step % checkpoint_every == 0 or step == total or step == stop_at:
                log.flush()     # the one point per checkpoint interval where the host waits for the device
                save_atomic(state(step), ckpt)
            if stop_at is not None and step >= stop_at:
                break
    finally:
        bar.close()
        log.close()
    return step


def batch(imgs: torch.Tensor, labs: torch.Tensor, idx: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, dev):
    """The slices ``idx`` as a (B, 1, H, W) float batch and (B, H, W) labels on ``dev``, augmented as the
    configuration says."""
    x = imgs[idx].float().unsqueeze(1).to(dev)
    y = labs[idx].long().to(dev)
    if cfg.augment:
        x, y = augment_batch(x, y, gen, **(cfg.augment if isinstance(cfg.augment, dict) else {}))
    return x, y


def train_step(model, opt, x, y, objective, loss_fn, use_amp: bool) -> torch.Tensor:
    """One optimiser step: forward (bf16 autocast when ``use_amp``), per-sample loss, the objective over the
    batch, backward, gradient clipping at norm 12 (nnU-Net), update; returns the loss."""
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits = model(x)
    loss = objective(loss_fn(logits.float(), y))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
    opt.step()
    return loss


def train_model(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, run_dir: str | Path,
                slice_groups=None, sampler: GroupBatchSampler | None = None, objective=None,
                device: str | None = None, progress: bool = True, stop_at: int | None = None,
                desc: str = "train", init_state: dict | None = None) -> torch.nn.Module:
    """Train on slices ``images`` (S, H, W) / ``labels`` (S, H, W) and return the model (:func:`run_loop`).

    ``slice_groups`` (S,) names each slice's group for samplers and group objectives. A checkpoint in
    ``run_dir`` is resumed. ``init_state``: the weights a new run starts from (fine-tuning a pre-trained model;
    a resumed run starts from its checkpoint instead). ``stop_at`` ends the run early after that step (used to
    test resumption)."""
    run_dir = Path(run_dir)
    dev = pick_device(device)
    use_amp = (dev.type == "cuda" and cfg.amp != "off") or cfg.amp == "bf16"
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode also fills every new tensor with NaN; no kernel here reads memory it did not
        # write, so that costs time and changes nothing (the weights are identical, tested)
        torch.utils.deterministic.fill_uninitialized_memory = FILL_UNINITIALIZED
    else:
        torch.backends.cudnn.benchmark = True     # one batch shape per run: let cuDNN pick its fastest kernels
    torch.manual_seed(cfg.seed)
    model = build_network(cfg.network, cfg.channels).to(dev)
    if dev.type == "cuda":         # convolutions in bf16 run fastest with channels-last tensors
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    if cfg.graphs and dev.type == "cuda":
        forward = torch.compile(model, mode="reduce-overhead")
    else:                          # same parameters; the checkpoint saves `model`
        forward = torch.compile(model) if cfg.compile or cfg.graphs else model
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    # on a GPU the augmentation draws on a generator of its own there, and the batches' slice indices are drawn
    # (on ``gen``) for every step up to the next checkpoint at once and sent in one copy; on the CPU one
    # generator serves both, step by step, as it always has
    aug_gen = torch.Generator(device=dev).manual_seed(cfg.seed + 2) if dev.type == "cuda" else gen
    groups = np.asarray(slice_groups) if slice_groups is not None else np.zeros(len(images), dtype=int)
    sampler = sampler or uniform_sampler(groups)
    objective = objective or MeanObjective()
    loss_fn = LOSSES[cfg.loss]
    group_names = group_order(groups)
    group_index = {g: i for i, g in enumerate(group_names)}
    slice_gid = torch.as_tensor([group_index[g] for g in groups.tolist()])
    imgs = torch.as_tensor(images)
    labs = torch.as_tensor(labels)
    if dev.type == "cuda":   # keep the data resident on the GPU
        imgs, labs, slice_gid = imgs.to(dev), labs.to(dev), slice_gid.to(dev)

    if init_state is not None and not (run_dir / "checkpoint.pt").exists():
        model.load_state_dict(init_state)          # a new fine-tuning run; a resumed one starts from its checkpoint
    model.train()
    block: list = []

    def step_fn(step: int) -> torch.Tensor:
        if dev.type == "cuda":
            if not block:
                ahead = min(cfg.checkpoint_every - step % cfg.checkpoint_every, cfg.steps - step,
                            *([stop_at - step] if stop_at is not None and stop_at > step else []))
                block.extend(list(draw_indices(sampler, cfg.batch_size, gen, ahead, dev).unbind(0))[::-1])
            idx_d = block.pop()
        else:
            idx_d = sampler.sample(cfg.batch_size, gen)
        x, y = batch(imgs, labs, idx_d, cfg, aug_gen, dev)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            return train_step(forward, opt, x, y, lambda ps: objective(ps, slice_gid[idx_d], len(group_names)),
                              loss_fn, use_amp)
        except Exception as exc:
            if (cfg.compile or cfg.graphs) and "dynamo" in type(exc).__module__ + str(type(exc)):
                raise RuntimeError(f"training.compile: torch.compile failed on this machine ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:200]}); it needs a C++ compiler on the CPU. Set "
                                   "training.compile: false in the profile (such runs get their own keys)") from exc
            raise

    def state(step: int) -> dict:
        extra = {"aug_generator": aug_gen.get_state()} if aug_gen is not gen else {}
        return dict(model=model.state_dict(), optimizer=opt.state_dict(), generator=gen.get_state(),
                    objective=objective.state_dict(), step=step, config=cfg.to_dict(), **extra)

    run_loop(run_dir, cfg.steps, cfg.checkpoint_every, step_fn, state,
             lambda st: restore(st, model, opt, gen, objective, aug_gen if aug_gen is not gen else None),
             lambda step: poly_lr(cfg.lr, step, cfg.steps, cfg.poly_power), opt,
             lambda: getattr(getattr(objective, "dro", objective), "q", None), desc, progress, stop_at)
    model.eval()
    return model


def draw_indices(sampler: GroupBatchSampler, batch_size: int, gen: torch.Generator, steps: int, dev) -> torch.Tensor:
    """The slice indices of the next ``steps`` batches, (steps, batch_size), drawn as step-by-step sampling
    would draw them and sent to ``dev`` in one copy (pinned, so the host does not wait for the device)."""
    idx = torch.stack([sampler.sample(batch_size, gen) for _ in range(steps)])
    if torch.device(dev).type == "cuda":
        idx = idx.pin_memory()
    return idx.to(dev, non_blocking=True)


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Label maps (S, H, W) uint8 for slices (S, H, W)."""
    dev = next(model.parameters()).device if device is None else torch.device(device)
    use_amp = dev.type == "cuda"
    model.eval()
    out = []
    for s in range(0, len(images), batch_size):
        x = torch.as_tensor(images[s:s + batch_size]).float().unsqueeze(1).to(dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = model(x)
        # argmax over the last, contiguous axis: the same labels (first maximum) as argmax(1), 7x faster on CPU
        out.append(logits.permute(0, 2, 3, 1).contiguous().argmax(-1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[1:], np.uint8)
