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

Five more options, also off by default, randomise what a scanner and a patient vary and a simulated cohort may hold
fixed (chapter 12's model meant for real scans): ``elastic`` bends the geometry by a smooth random displacement
field (SD as a fraction of the field: chamber shapes, heart and body proportions); ``fov`` keeps a random
rectangle of the field, each side between ``1 − fov`` and all of it, and gives the rest the image's background
value, as a smaller field of view padded to the cache's size looks (labels outside it are background too);
``tissue`` moves each labelled structure's signal by its own random offset (SD on the normalised scale: a real
RV blood pool is often darker than the LV's, which a simulator that gives both one signal never shows); ``blur``
smooths each image by a Gaussian of random SD up to this many pixels (coarser acquisitions, partial volume);
and ``noise`` may be a ``[low, high]`` range, each image then drawing its own noise level. An option left at its
default draws no random numbers, so a model trained without it is the same bit for bit as before it existed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULTS = dict(rotate_deg=180.0, scale=(0.7, 1.4), shift=0.15, noise=0.1, gamma=(0.7, 1.5), contrast=0.0,
                bias_field=0.0)
# options added later, each off at this value; a run key leaves out those at it (cmrlib.runs.store.run_key)
LATER = dict(elastic=0.0, fov=0.0, blur=0.0, tissue=0.0)
DEFAULTS.update(LATER)


def augment_batch(img: torch.Tensor, lab: torch.Tensor, gen: torch.Generator,
                  rotate_deg: float = DEFAULTS["rotate_deg"], scale=DEFAULTS["scale"],
                  shift: float = DEFAULTS["shift"], noise: float = DEFAULTS["noise"], gamma=DEFAULTS["gamma"],
                  contrast: float = DEFAULTS["contrast"], bias_field: float = DEFAULTS["bias_field"],
                  elastic: float = 0.0, fov: float = 0.0, blur: float = 0.0, tissue: float = 0.0):
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
    if elastic > 0:     # normalised coordinates span 2 across the field
        shift_xy = torch.cat([smooth_field(B, img.shape[-2:], gen, dev), smooth_field(B, img.shape[-2:], gen, dev)], 1)
        grid = grid + (2 * elastic) * shift_xy.permute(0, 2, 3, 1)
    bg = img.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(img - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg
    lab_out = F.grid_sample(lab.unsqueeze(1).float(), grid, mode="nearest", padding_mode="zeros",
                            align_corners=False)[:, 0].long()
    # intensity: gamma on the min-max normalised image, then scale/shift and noise
    lo = out.amin(dim=(1, 2, 3), keepdim=True)
    hi = out.amax(dim=(1, 2, 3), keepdim=True)
    g = (gamma[0] + (gamma[1] - gamma[0]) * u[:, 4]).view(B, 1, 1, 1)
    out = ((out - lo) / (hi - lo + 1e-6)).clamp(min=0) ** g
    if tissue > 0:
        out = (out + tissue_offsets(lab_out, gen, tissue)).clamp(0, 1)
    if contrast > 0:
        out = random_curve(out, gen, contrast)
    out = out * (hi - lo) + lo
    if bias_field > 0:
        out = (out - lo) * smooth_field(B, img.shape[-2:], gen, dev).mul(bias_field).exp() + lo
    out = out * (0.9 + 0.2 * u[:, 5].view(B, 1, 1, 1))
    if blur > 0:
        out = gaussian_blur(out, blur * torch.rand((B,), generator=gen, device=gen.device).to(dev))
    if isinstance(noise, (list, tuple)):
        noise = (noise[0] + (noise[1] - noise[0]) * torch.rand((B,), generator=gen, device=gen.device)).to(dev)
        noise = noise.view(B, 1, 1, 1)
    out = out + noise * torch.randn(out.shape, generator=gen, device=gen.device).to(dev)
    if fov > 0:
        keep = field_window(B, img.shape[-2:], fov, gen, dev)
        out = torch.where(keep, out, out.amin(dim=(1, 2, 3), keepdim=True))
        lab_out = lab_out * keep[:, 0]
    return out, lab_out


def tissue_offsets(lab: torch.Tensor, gen: torch.Generator, sd: float, classes: int = 4) -> torch.Tensor:
    """(B, 1, H, W): for each image and each labelled structure (labels 1 to ``classes`` − 1) its own offset, Gaussian
    of SD ``sd`` on the normalised scale, over the structure's pixels (0 elsewhere)."""
    B = lab.shape[0]
    off = torch.zeros((B, classes), device=lab.device)
    off[:, 1:] = sd * torch.randn((B, classes - 1), generator=gen, device=gen.device).to(lab.device)
    return torch.gather(off, 1, lab.reshape(B, -1).clamp(0, classes - 1)).reshape(B, 1, *lab.shape[1:])


def gaussian_blur(x: torch.Tensor, sd: torch.Tensor, radius: int = 4) -> torch.Tensor:
    """Each image of ``x`` (B, 1, H, W) smoothed by a separable Gaussian of its own SD ``sd`` (B,) in pixels (an SD
    near zero leaves it unchanged); one grouped convolution per axis, edges replicated."""
    B = x.shape[0]
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sd.clamp(min=1e-3).view(B, 1)) ** 2)
    k = (k / k.sum(1, keepdim=True)).view(B, 1, 1, -1)
    y = F.pad(x.transpose(0, 1), (radius, radius, radius, radius), mode="replicate")      # (1, B, H+2r, W+2r)
    y = F.conv2d(F.conv2d(y, k, groups=B), k.transpose(-1, -2), groups=B)
    return y.transpose(0, 1)


def field_window(B: int, size, fov: float, gen: torch.Generator, dev) -> torch.Tensor:
    """(B, 1, H, W) masks of a random rectangle each: each side between ``1 − fov`` and all of the field, placed
    at random within it."""
    H, W = size
    u = torch.rand((B, 4), generator=gen, device=gen.device).to(dev)
    h, w = (1 - fov * u[:, 0]) * H, (1 - fov * u[:, 1]) * W
    y0, x0 = u[:, 2] * (H - h), u[:, 3] * (W - w)
    ys = torch.arange(H, device=dev).view(1, H, 1) + 0.5
    xs = torch.arange(W, device=dev).view(1, 1, W) + 0.5
    inside = ((ys >= y0.view(B, 1, 1)) & (ys < (y0 + h).view(B, 1, 1))
              & (xs >= x0.view(B, 1, 1)) & (xs < (x0 + w).view(B, 1, 1)))
    return inside.unsqueeze(1)


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
