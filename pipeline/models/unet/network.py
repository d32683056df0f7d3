"""The DeepCAC2 3-D U-Net, with the module names of the published ``state_dict``.

The attribute names (``downs``, ``ups``, ``pool``, ``bottleneck``, ``final_conv`` and
``conv`` inside each double convolution) decide the ``state_dict`` keys, so the
published ``vivid-haze-6_model.pt`` loads with ``strict=True`` and no renaming. The
input is ``(N, 1, X, Y, Z)`` in TorchIO axis order; the output is logits (no sigmoid).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: the published widths; a small variant such as (8, 16, 32, 64) trains on CPU
DEFAULT_FEATURES: tuple[int, ...] = (64, 128, 256, 512)


class DoubleConv3D(nn.Module):
    """Two Conv3d(k=3, p=1, no bias) + BatchNorm3d + ReLU, in a Sequential named ``conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet3D(nn.Module):
    """Encoder ``downs``, ``bottleneck``, decoder ``ups`` (ConvTranspose3d, DoubleConv pairs)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: Sequence[int] = DEFAULT_FEATURES):
        super().__init__()
        self.features = tuple(int(f) for f in features)
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        channels = in_channels
        for f in self.features:
            self.downs.append(DoubleConv3D(channels, f))
            channels = f
        # deepest level first, so ups[0] takes the bottleneck output
        for f in reversed(self.features):
            self.ups.append(nn.ConvTranspose3d(2 * f, f, kernel_size=2, stride=2))
            self.ups.append(DoubleConv3D(2 * f, f))
        self.bottleneck = DoubleConv3D(self.features[-1], 2 * self.features[-1])
        self.final_conv = nn.Conv3d(self.features[0], out_channels, kernel_size=1)

    @property
    def min_divisor(self) -> int:
        """Each spatial size must be a multiple of this (one halving per level)."""
        return 2 ** len(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for level, skip in enumerate(reversed(skips)):
            x = self.ups[2 * level](x)
            # published order: (skip, upsampled)
            x = self.ups[2 * level + 1](torch.cat((skip, x), dim=1))
        return self.final_conv(x)
