"""pix2pix's PatchGAN discriminator: one real/fake logit per overlapping patch of cat(L_n, ab_n)."""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import scaled
from colorization.nets.unet import init_pix2pix


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field (pixels) of one PatchGAN logit: 4×4 kernels, n_layers stride-2 layers, two stride-1."""
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = (rf - 1) * s + 4
    return rf


class PatchGAN(nn.Module):
    """PatchGAN: B×in_channels×H×W → B×1×h×w logits (no sigmoid), each judging a patch of the input.

    With n_layers=3 and base_channels=64 this is pix2pix's 70×70 discriminator: 4×4 convolutions, stride 2
    n_layers times, LeakyReLU 0.2, batch norm on all but the first, channels capped at 8×base.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        n_layers: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if int(n_layers) != n_layers or n_layers < 1:
            raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        base = scaled(base_channels, width)
        self.in_channels = in_channels
        self.receptive_field = patchgan_receptive_field(n_layers)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        c_in = base
        for n in range(1, n_layers + 1):
            c = base * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(c_in, c, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c_in = c
        layers.append(nn.Conv2d(c_in, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_pix2pix(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits for the (L_n, ab_n) pair(s) in `x`."""
        return self.model(x)
