"""Batched data augmentation written as tensor operations, so it runs wherever the batch lives (CPU or GPU).

Per sample: rotation, isotropic scaling and translation applied by one affine grid to image (bilinear) and
label (nearest); then gamma, intensity scale and Gaussian noise on the image. The default ranges are nnU-Net's
2D ones (rotation ±180°, scaling 0.7–1.4, gamma 0.7–1.5) with a ±15% translation, so a model does not learn
where in the field of view the heart sits. All random draws come from a CPU ``torch.Generator`` so runs are
reproducible and resumable.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


DEFAULTS = dict(rotate_deg=180.0, scale=(0.7, 1.4), shift=0.15, noise=0.1, gamma=(0.7, 1.5))


def augment_batch(img: torch.Tensor, lab: torch.Tensor, gen: torch.Generator,
                  rotate_deg: float = DEFAULTS["rotate_deg"], scale=DEFAULTS["scale"],
                  shift: float = DEFAULTS["shift"], noise: float = DEFAULTS["noise"], gamma=DEFAULTS["gamma"]):
    """img (B, 1, H, W) float, lab (B, H, W) long → augmented copies on the same device."""
    B = img.shape[0]
    dev = img.device
    u = torch.rand((B, 6), generator=gen).to(dev)
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
    out = ((out - lo) / (hi - lo + 1e-6)).clamp(min=0) ** g * (hi - lo) + lo
    out = out * (0.9 + 0.2 * u[:, 5].view(B, 1, 1, 1))
    out = out + noise * torch.randn(out.shape, generator=gen).to(dev)
    return out, lab_out
