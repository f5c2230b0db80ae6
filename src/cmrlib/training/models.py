"""Network factories on MONAI: a compact UNet for CPU profiles and an nnU-Net-like DynUNet for GPU ones."""
from __future__ import annotations

import torch


def build_network(name: str = "unet", channels=(16, 32, 64, 128), in_channels: int = 1,
                  out_channels: int = 4) -> torch.nn.Module:
    from monai.networks.nets import DynUNet, UNet
    channels = tuple(int(c) for c in channels)
    if name == "unet":
        return UNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, channels=channels,
                    strides=(2,) * (len(channels) - 1), num_res_units=1, norm="INSTANCE")
    if name == "dynunet":
        # nnU-Net 2D style: 3×3 kernels, stride-2 downsampling, instance norm, leaky ReLU, filters capped at 480
        n = len(channels)
        return DynUNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels,
                       kernel_size=[3] * n, strides=[1] + [2] * (n - 1), upsample_kernel_size=[2] * (n - 1),
                       filters=[min(c, 480) for c in channels], norm_name="instance", act_name="leakyrelu",
                       res_block=False)
    raise ValueError(f"unknown network {name!r} (expected 'unet' or 'dynunet')")
