"""Zhang et al.'s (ECCV 2016) colorization network: VGG-like 3×3 convolutions, output at 1/4 resolution."""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import Generator, check_common, check_input, final_activation_layer, scaled

# (number of 3×3 convolutions, channels, dilation, stride of the block's last convolution) for blocks 1–7.
# Every block ends with ReLU and batch norm; the strides of blocks 1–3 bring the features to 1/8.
ZHANG_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 1, 2),
    (2, 128, 1, 2),
    (3, 256, 1, 2),
    (3, 512, 1, 1),
    (3, 512, 2, 1),
    (3, 512, 2, 1),
    (3, 512, 1, 1),
)
# Block 8: a 4×4 transposed convolution (×2, back to 1/4) then two 3×3 convolutions, no batch norm.
ZHANG_BLOCK8_CHANNELS = 256
ZHANG_BLOCK8_CONVS = 2


class ZhangNet(Generator):
    """Zhang et al.'s network: L_n (B×1×H×W) → B×out_channels×H/4×W/4 (Q bin logits, or 2 ab channels).

    width multiplies every hidden channel count (width=1 is the paper's network, about 32M parameters
    with out_channels=313). final_activation is None (raw logits) by default; "tanh" only for 2 channels.
    """

    output_stride: int = 4
    size_multiple: int = 8
    num_stages: int = 8

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        final_activation: str | None = None,
    ) -> None:
        super().__init__()
        check_common(in_channels, out_channels, width)
        self.in_channels = in_channels
        self.out_channels = out_channels
        blocks: list[nn.Module] = []
        c_in = in_channels
        for n_convs, channels, dilation, stride in ZHANG_BLOCKS:
            c = scaled(channels, width)
            layers: list[nn.Module] = []
            for i in range(n_convs):
                s = stride if i == n_convs - 1 else 1
                layers += [
                    nn.Conv2d(c_in, c, 3, stride=s, padding=dilation, dilation=dilation),
                    nn.ReLU(inplace=True),
                ]
                c_in = c
            layers.append(nn.BatchNorm2d(c))
            blocks.append(nn.Sequential(*layers))
        c8 = scaled(ZHANG_BLOCK8_CHANNELS, width)
        layers = [nn.ConvTranspose2d(c_in, c8, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        for _ in range(ZHANG_BLOCK8_CONVS):
            layers += [nn.Conv2d(c8, c8, 3, padding=1), nn.ReLU(inplace=True)]
        blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(c8, out_channels, 1)
        self.final = final_activation_layer(final_activation, out_channels)

    def stages(self) -> list[nn.Module]:
        """Blocks 1–8 (the head is not a stage: fine-tuning always trains it)."""
        return list(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised L (B×in×H×W, H and W multiples of 8) to B×out×H/4×W/4."""
        check_input(x, self.in_channels, self.size_multiple, "ZhangNet")
        return self.final(self.head(self.blocks(x)))
