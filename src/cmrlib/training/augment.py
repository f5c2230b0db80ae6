"""Batched data augmentation written as tensor operations, so it runs wherever the batch lives (CPU or GPU).

Per sample: rotation, isotropic scaling and translation applied by one affine grid to image (bilinear) and
label (nearest); then gamma, intensity scale and Gaussian noise on the image. The default ranges are nnU-Net's
2D ones (rotation ±180°, scaling 0.7–1.4, gamma 0.7–1.5) with a ±15% translation, so a model does not learn
where in the field of view the heart sits. All random draws come from one ``torch.Generator`` so runs are
reproducible and resumable; draws are made on the generator's device (training on a GPU passes a GPU generator,
so no random numbers cross from the host each step).

Two further options, off by default, randomise the appearance rather than the geometry, in the spirit of
SynthSeg's domain randomisation (Billot et al. 2023, Medical Image Analysis 86:102789): ``contrast`` passes
each image through its own random piecewise-linear intensity curve (knots moved by this SD on the normalised
scale, so tissues change brightness relative to each other), and ``bias_field`` multiplies it by a smooth
random field (log-amplitude SD). A model trained so has to recognise the chambers by shape rather than by the
exact signals of one scanner or one simulator. MONAI's ``RandHistogramShift`` (monotonic curves only) and
``RandBiasField`` (polynomial fields) transform one image at a time; these are batched tensor versions, drawn
from the same generator as the rest.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULTS = dict(rotate_deg=180.0, scale=(0.7, 1.4), shift=0.15, noise=0.1, gamma=(0.7, 1.5), contrast=0.0,
                bias_field=0.0)


def augment_batch(img: torch.Tensor, lab: torch.Tensor, gen: torch.Generator,
                  rotate_deg: float = DEFAULTS["rotate_deg"], scale=DEFAULTS["scale"],
                  shift: float = DEFAULTS["shift"], noise: float = DEFAULTS["noise"], gamma=DEFAULTS["gamma"],
                  contrast: float = DEFAULTS["contrast"], bias_field: float = DEFAULTS["bias_field"]):
    """img (B, 1, H, W) float, lab (B, H, W) long → augmented copies on the same device."""
    B = img.shape[0]
    dev = img.device
    u = torch.rand((B, 6), generator=gen, device=gen.device).to(dev)
    ang = (u[:, 0] * 2 - 1) * math.radians(rotate_deg)
    sc = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    tx, ty = (u[:, 2] * 2 - 1) * shift * 2, (u[:, 3] * 2 - 1) * shift * 2
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    bg = img.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(img - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg
    lab_out = F.grid_sample(lab.unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros",
                            align_corners=False)[:, 0].long()
    # intensity: gamma on the min-max normalised image, then scale/shift and noise
    lo = out.amin(dim=(1, 2, 3), keepdim=True)
    hi = out.amax(dim=(1, 2, 3), keepdim=True)
    g = (gamma[0] + (gamma[1] - gamma[0]) * u[:, 4]).view(B, 1, 1, 1)
    out = ((out - lo) / (hi - lo + 1e-6)).clamp(min=0) ** g
    if contrast > 0:
        out = random_curve(out, gen, contrast)
    out = out * (hi - lo) + lo
    if bias_field > 0:
        out = (out - lo) * smooth_field(B, img.shape[-2:], gen, dev).mul(bias_field).exp() + lo
    out = out * (0.9 + 0.2 * u[:, 5].view(B, 1, 1, 1))
    out = out + noise * torch.randn(out.shape, generator=gen, device=gen.device).to(dev)
    return out, lab_out


def random_curve(x: torch.Tensor, gen: torch.Generator, sd: float, knots: int = 7) -> torch.Tensor:
    """Each image of ``x`` (B, 1, H, W), values in [0, 1], through its own piecewise-linear curve: knots evenly
    spaced on the input axis, each output the identity plus Gaussian noise of SD ``sd``, clipped to [0, 1]
    (the curve need not be monotonic, so one tissue can overtake another)."""
    B = x.shape[0]
    ys = (torch.linspace(0, 1, knots, device=gen.device).expand(B, knots)
          + sd * torch.randn((B, knots), generator=gen, device=gen.device)).clamp(0, 1)
    ys = ys.to(x.device)
    t = x.clamp(0, 1).reshape(B, -1) * (knots - 1)
    i0 = t.floor().long().clamp(max=knots - 2)
    w = t - i0
    y = torch.gather(ys, 1, i0) * (1 - w) + torch.gather(ys, 1, i0 + 1) * w
    return y.reshape(x.shape)


def smooth_field(B: int, size, gen: torch.Generator, dev, cells: int = 4) -> torch.Tensor:
    """(B, 1, H, W) smooth fields of about unit SD: a ``cells`` × ``cells`` Gaussian grid upsampled bicubically."""
    lo = torch.randn((B, 1, cells, cells), generator=gen, device=gen.device).to(dev)
    return F.interpolate(lo, size=tuple(size), mode="bicubic", align_corners=True)
