"""A mask- and attribute-conditioned diffusion model of short-axis slices (after Skorupko et al. 2024).

The study generates UK Biobank cine slices with a latent diffusion model steered by a ControlNet: text built
from the patient's metadata (sex, age, BMI, diagnosis) and the geometry of a segmentation mask. Here the same
parts come from MONAI's generative components, in pixel space (a latent autoencoder needs perceptual-loss
weights that cannot be downloaded here):

- a :class:`~monai.networks.nets.DiffusionModelUNet` predicts the target of a DDPM
  (:class:`~monai.networks.schedulers.DDPMScheduler`): by default the velocity v (``prediction =
  "v_prediction"``), or the noise ε or the clean slice (``"epsilon"``, ``"sample"``); the attributes enter as a class embedding, one class per
  group × sex, plus a null class that replaces the attributes of a tenth of the training slices
  (classifier-free guidance dropout, Ho & Salimans 2022);
- a :class:`~monai.networks.nets.ControlNet` reads the label mask (one channel per structure) and adds its
  residuals to the UNet's skip connections; its output convolutions start at zero, so at first it changes
  nothing;
- sampling uses DDIM (:class:`~monai.networks.schedulers.DDIMScheduler`, η = 0: a seed fixes the sample) with
  guidance on the network's prediction, ŷ = ŷ(∅) + w · (ŷ(attributes) − ŷ(∅)), whatever its target; the mask
  conditions both terms.

``base_steps > 0`` follows ControlNet's recipe: the UNet trains alone first, then is frozen while the ControlNet
trains. ``base_steps = 0`` (the CPU profiles) trains both together from the first step, which costs the
same per step and needs no second phase.

Images are generated at ``size`` pixels (the training slices area-downsampled to it) and brought back to the
cache's size with bilinear interpolation; the label mask of the source slice is kept at full size.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cmrlib.errors import InputError
from cmrlib.training.train import load_checkpoint, pick_device, restore, run_loop

STRUCTURES = 3      # LV blood pool, LV myocardium, RV blood pool: one conditioning channel each


@dataclass
class GenConfig:
    """Settings of the generative model (the profile's ``generative`` section)."""
    size: int = 48                      # side of the generated slice in pixels
    channels: tuple = (16, 32, 64)      # UNet and ControlNet widths per level
    attention: bool = False             # self-attention in the deepest level (the middle block always has it)
    steps: int = 1000
    base_steps: int = 0                 # > 0: UNet alone this many steps, then frozen while the ControlNet trains
    batch_size: int = 16
    lr: float = 1e-3
    timesteps: int = 1000               # DDPM noise levels in training
    # noise schedule and target: after 600 steps at 48 px on the course cohort, the baseline segmenter finds the
    # conditioning mask in v-predicted slices at 0.86 of its Dice on real slices at 48 px, in x0-predicted ones at
    # 0.78 (smooth, square bodies), in epsilon-predicted ones not at all (0.00): benchmarks/generative_target.py,
    # benchmarks/results/generative_target_course.txt
    schedule: str = "scaled_linear_beta"    # linear_beta | scaled_linear_beta | cosine
    prediction: str = "v_prediction"        # epsilon (the noise) | v_prediction | sample
    sample_steps: int = 20              # DDIM steps when sampling
    guidance: float = 2.0               # classifier-free guidance scale w
    p_uncond: float = 0.1               # share of training slices whose attributes are replaced by the null class
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        for name in ("size", "steps", "batch_size", "timesteps", "sample_steps", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"generative.{name} must be a whole number ≥ 1, got {v!r}")
        if self.size % 2 ** (len(self.channels) - 1):
            raise InputError(f"generative.size {self.size} must be a multiple of 2^(levels − 1) = "
                             f"{2 ** (len(self.channels) - 1)} for generative.channels {list(self.channels)}")
        if self.sample_steps > self.timesteps:
            raise InputError(f"generative.sample_steps {self.sample_steps} is above generative.timesteps "
                             f"{self.timesteps}: DDIM samples a subset of the noise levels the model was trained on")
        if not 0 <= self.base_steps < self.steps:
            raise InputError(f"generative.base_steps must lie in [0, steps) = [0, {self.steps}), got {self.base_steps}")
        if self.schedule not in ("linear_beta", "scaled_linear_beta", "cosine"):
            raise InputError(f"generative.schedule {self.schedule!r}: linear_beta, scaled_linear_beta or cosine")
        if self.prediction not in ("epsilon", "v_prediction", "sample"):
            raise InputError(f"generative.prediction {self.prediction!r}: epsilon, v_prediction or sample")
        if any(c % 8 for c in self.channels):
            raise InputError(f"generative.channels must be multiples of 8 (group norm of 8 groups), got {list(self.channels)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


class ConditionedDiffusion(torch.nn.Module):
    """The diffusion network ŷ(x_t, t | mask, attributes), predicting the configured target (v, ε or x0): a
    DiffusionModelUNet with a class embedding, and a ControlNet on the mask. ``n_classes`` attribute classes; class ``n_classes`` is the null class."""

    def __init__(self, cfg: GenConfig, n_classes: int):
        super().__init__()
        from monai.networks.nets import ControlNet, DiffusionModelUNet
        levels = len(cfg.channels)
        kw = dict(spatial_dims=2, in_channels=1, channels=cfg.channels, num_res_blocks=1, norm_num_groups=8,
                  attention_levels=(False,) * (levels - 1) + (bool(cfg.attention),), num_head_channels=cfg.channels[-1],
                  num_class_embeds=n_classes + 1)
        self.unet = DiffusionModelUNet(out_channels=1, **kw)
        self.control = ControlNet(conditioning_embedding_in_channels=STRUCTURES,
                                  conditioning_embedding_num_channels=(cfg.channels[0],), **kw)
        self.null = n_classes

    def forward(self, x, t, mask, cls, control: bool = True):
        if not control:
            return self.unet(x, t, class_labels=cls)
        down, mid = self.control(x, t, controlnet_cond=mask, class_labels=cls)
        return self.unet(x, t, class_labels=cls, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid)


def mask_channels(labels, size: int) -> torch.Tensor:
    """Label maps (N, H, W) as conditioning (N, 3, size, size): one channel per structure, area-averaged."""
    lab = torch.as_tensor(np.asarray(labels)).long()
    onehot = torch.stack([(lab == k).float() for k in range(1, STRUCTURES + 1)], 1)
    return onehot if onehot.shape[-1] == size else F.interpolate(onehot, size=(size, size), mode="area")


def resize(images, size) -> torch.Tensor:
    """Slices (N, H, W) to (N, 1, h, w): area averaging when shrinking, bilinear when enlarging."""
    x = torch.as_tensor(np.asarray(images, np.float32)).unsqueeze(1)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    mode = "area" if size[0] < x.shape[-2] else "bilinear"
    return F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def at_resolution(images, size: int) -> np.ndarray:
    """Slices taken down to ``size`` and back up to their own size: what the generator's resolution leaves of
    them (the fair reference for the generated slices, which are enlarged the same way)."""
    images = np.asarray(images)
    return resize(resize(images, size)[:, 0], images.shape[-2:])[:, 0].numpy()


@dataclass
class Generator:
    """A trained conditioned diffusion model with what sampling needs: the attribute classes (group, sex) in
    embedding order and the intensity window [lo, hi] mapped to [−1, 1]."""
    model: ConditionedDiffusion
    cfg: GenConfig
    classes: list
    window: tuple

    def class_index(self, group: str, sex: str) -> int:
        key = (str(group), str(sex))
        if key not in self.classes:
            raise InputError(f"no attribute class {key} in the generator's training set; classes: {self.classes}")
        return self.classes.index(key)

    def class_for(self, group: str, sex: str) -> tuple[int, str]:
        """The class of (group, sex), or, where the training set had no such subject, the group's class of the
        other sex: (class index, the sex it stands for). A group without any class is refused."""
        options = [c for c in self.classes if c[0] == str(group)]
        if not options:
            raise InputError(f"no {group} slice in the generator's training set; classes: {self.classes}")
        key = (str(group), str(sex)) if (str(group), str(sex)) in options else options[0]
        return self.classes.index(key), key[1]


def intensity_window(images) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles of the training intensities (mapped to −1 and 1)."""
    lo, hi = np.percentile(np.asarray(images, np.float32), [0.5, 99.5])
    return float(lo), float(hi)


def _scale(x, window):
    lo, hi = window
    return (2 * (x - lo) / (hi - lo) - 1).clamp(-1, 1)


def _unscale(x, window):
    lo, hi = window
    return (x + 1) / 2 * (hi - lo) + lo


def train_generator(images, labels, attrs: list, cfg: GenConfig, run_dir: str | Path, progress: bool = True,
                    stop_at: int | None = None, device: str | None = None) -> Generator:
    """Train (or resume) the conditioned diffusion model on slices ``images`` (N, H, W), their label maps and
    ``attrs``, one (group, sex) per slice. A checkpoint in ``run_dir`` holds model, optimiser and random state,
    so an interrupted run resumes exactly; ``stop_at`` ends early after that step (to test resumption)."""
    from monai.networks.schedulers import DDPMScheduler

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    classes = sorted({(str(g), str(s)) for g, s in attrs})
    cls_all = torch.as_tensor([classes.index((str(g), str(s))) for g, s in attrs])
    window = intensity_window(images)
    torch.manual_seed(cfg.seed)
    model = ConditionedDiffusion(cfg, len(classes)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    x_all = _scale(resize(images, cfg.size), window).to(dev)
    m_all = mask_channels(labels, cfg.size).to(dev)
    cls_all = cls_all.to(dev)
    sched = DDPMScheduler(num_train_timesteps=cfg.timesteps, schedule=cfg.schedule, prediction_type=cfg.prediction)
    model.train()

    def step_fn(step: int) -> torch.Tensor:
        control = step >= cfg.base_steps
        if cfg.base_steps and control:        # ControlNet's recipe: the base model is frozen once it has trained
            model.unet.requires_grad_(False)
        return _train_step(model, opt, sched, x_all, m_all, cls_all, cfg, gen, control)

    run_loop(run_dir, cfg.steps, cfg.checkpoint_every, step_fn,
             lambda step: dict(model=model.state_dict(), optimizer=opt.state_dict(), generator=gen.get_state(),
                               step=step, classes=classes, window=window, config=cfg.to_dict()),
             lambda state: restore(state, model, opt, gen, None), lambda step: cfg.lr, opt, desc="generator",
             progress=progress, stop_at=stop_at)
    model.eval()
    return Generator(model, cfg, classes, window)


def _train_step(model, opt, sched, x_all, m_all, cls_all, cfg: GenConfig, gen: torch.Generator, control: bool):
    """One step of the diffusion loss ‖y − ŷ(x_t, t | mask, attributes)‖² with attribute dropout, y the configured
    target (v by default, or ε or x0)."""
    dev = x_all.device
    idx = torch.randint(len(x_all), (cfg.batch_size,), generator=gen).to(dev)
    noise = torch.randn((cfg.batch_size, 1, cfg.size, cfg.size), generator=gen).to(dev)
    t = torch.randint(cfg.timesteps, (cfg.batch_size,), generator=gen).to(dev)
    drop = (torch.rand(cfg.batch_size, generator=gen) < cfg.p_uncond).to(dev)
    cls = torch.where(drop, torch.full_like(cls_all[idx], model.null), cls_all[idx])
    x0 = x_all[idx]
    x_t = sched.add_noise(original_samples=x0, noise=noise, timesteps=t)
    target = {"epsilon": noise, "sample": x0}.get(cfg.prediction)
    if target is None:
        target = sched.get_velocity(x0, noise, t)
    loss = F.mse_loss(model(x_t, t, m_all[idx], cls, control=control).float(), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def load_generator(run_dir: str | Path, device: str | None = None) -> Generator:
    """The finished generator stored in ``run_dir``."""
    ckpt = Path(run_dir) / "checkpoint.pt"
    if not ckpt.exists():
        raise InputError(f"{ckpt}: no generator checkpoint here; train it first (cmrlib.studies.skorupko2024.synthesis.generator)")
    dev = pick_device(device)
    state = load_checkpoint(ckpt, map_location=dev)
    cfg = GenConfig(**{**state["config"], "channels": tuple(state["config"]["channels"])})
    if state["step"] < cfg.steps:
        raise InputError(f"{ckpt}: the generator stopped at step {state['step']} of {cfg.steps}; run it again to resume")
    model = ConditionedDiffusion(cfg, len(state["classes"])).to(dev)
    model.load_state_dict(state["model"])
    model.eval()
    return Generator(model, cfg, [tuple(c) for c in state["classes"]], tuple(state["window"]))


@torch.no_grad()
def sample(g: Generator, labels, classes, seed: int = 0, batch_size: int = 64, guidance: float | None = None,
           out_size=None, progress: bool = False) -> np.ndarray:
    """Slices generated for label maps ``labels`` (N, H, W) and attribute class indices ``classes`` (N,) by
    DDIM with classifier-free guidance; the initial noise comes from ``seed`` alone (slice i gets the same noise
    whatever the batch size). Returned at ``out_size`` (default: the labels' size) in the training intensities."""
    from monai.networks.schedulers import DDIMScheduler
    from tqdm import tqdm
    cfg, model = g.cfg, g.model
    dev = next(model.parameters()).device
    w = cfg.guidance if guidance is None else guidance
    labels = np.asarray(labels)
    noise = torch.randn((len(labels), 1, cfg.size, cfg.size), generator=torch.Generator().manual_seed(seed))
    cls = torch.as_tensor(np.asarray(classes, np.int64))
    sched = DDIMScheduler(num_train_timesteps=cfg.timesteps, schedule=cfg.schedule, prediction_type=cfg.prediction)
    sched.set_timesteps(cfg.sample_steps)
    out = []
    for s in tqdm(range(0, len(labels), batch_size), desc="sample", disable=not progress, mininterval=2):
        x = noise[s:s + batch_size].to(dev)
        m = mask_channels(labels[s:s + batch_size], cfg.size).to(dev)
        c = cls[s:s + batch_size].to(dev)
        m2, c2 = torch.cat([m, m]), torch.cat([torch.full_like(c, model.null), c])
        for t in sched.timesteps:
            tt = torch.full((2 * len(x),), int(t), device=dev, dtype=torch.long)
            eps_u, eps_c = model(torch.cat([x, x]), tt, m2, c2).float().chunk(2)   # or v, or x0: guided alike
            x, _ = sched.step(eps_u + w * (eps_c - eps_u), t, x)
        out.append(_unscale(x.clamp(-1, 1), g.window).cpu())
    x = torch.cat(out)[:, 0] if out else torch.zeros((0, cfg.size, cfg.size))
    size = labels.shape[-2:] if out_size is None else out_size
    return resize(x.numpy(), size)[:, 0].numpy()


def config_from_params(params: dict) -> GenConfig:
    """The profile's ``generative`` section as a :class:`GenConfig` (seed from the profile)."""
    g = {k: v for k, v in params.get("generative", {}).items() if k in GenConfig.__dataclass_fields__}
    g.setdefault("seed", params["seed"])   # the section's other fields are synthesis settings (cmrlib.studies.skorupko2024.synthesis)
    return GenConfig(**g)


def describe(cfg: GenConfig, n_classes: int) -> dict:
    """Parameter counts of the UNet and the ControlNet (for the chapter's method table)."""
    m = ConditionedDiffusion(cfg, n_classes)
    return {"unet_parameters": sum(p.numel() for p in m.unet.parameters()),
            "controlnet_parameters": sum(p.numel() for p in m.control.parameters()),
            "config": json.dumps(cfg.to_dict())}
