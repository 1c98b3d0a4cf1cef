"""The small regression baselines: report 000's 7-layer ~30k-parameter CNN, report 004's 8-layer CNN."""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import Generator, check_common, check_input, final_activation_layer, scaled

# small7: seven 3×3 convolutions, ~30k parameters at width 1. Two stride-2 convolutions down to 1/4,
# two bilinear ×2 upsamplings back; conv → batch norm → ReLU; the last convolution is the output head.
# (channels, stride, upsample ×2 before the convolution)
SMALL7_LAYERS: tuple[tuple[int, int, bool], ...] = (
    (16, 1, False),
    (32, 2, False),
    (32, 2, False),
    (32, 1, False),
    (16, 1, True),
    (16, 1, True),
)

# deep8 (report 004): filters {16, 32, 64, 128, 256, 128, 64, 64, 32, 2}, LeakyReLU then batch norm after
# every convolution but the last, max pooling after every second batch norm of the encoder (1/4), and
# bilinear ×2 upsampling after every second one of the decoder, so the output is at full resolution.
# (channels, max-pool after, upsample after)
DEEP8_LAYERS: tuple[tuple[int, bool, bool], ...] = (
    (16, False, False),
    (32, True, False),
    (64, False, False),
    (128, True, False),
    (256, False, False),
    (128, False, True),
    (64, False, False),
    (64, False, True),
    (32, False, False),
)

VARIANTS = ("small7", "deep8")


def _upsample() -> nn.Module:
    """Bilinear ×2 upsampling (ONNX-exportable)."""
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)


class BaselineCNN(Generator):
    """Plain CNN baseline: L_n (B×1×H×W) → B×out_channels×H×W, H and W multiples of 4.

    variant="small7" is report 000's 7-layer network (~30k parameters); variant="deep8" is report 004's
    baseline (LeakyReLU, batch norm, max pooling; use final_activation="tanh" for its tanh output).
    """

    output_stride: int = 1
    size_multiple: int = 4

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        variant: str = "small7",
        final_activation: str | None = None,
    ) -> None:
        super().__init__()
        check_common(in_channels, out_channels, width)
        if variant not in VARIANTS:
            raise ValueError(f"BaselineCNN variant must be one of {VARIANTS}, got {variant!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.variant = variant
        layers: list[nn.Module] = []
        c_in = in_channels
        if variant == "small7":
            for channels, stride, up in SMALL7_LAYERS:
                c = scaled(channels, width)
                if up:
                    layers.append(_upsample())
                layers += [
                    nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(c),
                    nn.ReLU(inplace=True),
                ]
                c_in = c
        else:
            for channels, pool, up in DEEP8_LAYERS:
                c = scaled(channels, width)
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.2, True), nn.BatchNorm2d(c)]
                if pool:
                    layers.append(nn.MaxPool2d(2))
                if up:
                    layers.append(_upsample())
                c_in = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c_in, out_channels, 3, padding=1)
        self.final = final_activation_layer(final_activation, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised L (B×in×H×W) to B×out×H×W."""
        check_input(x, self.in_channels, self.size_multiple, "BaselineCNN")
        return self.final(self.head(self.body(x)))
