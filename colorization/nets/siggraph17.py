"""Zhang et al.'s (SIGGRAPH 2017) user-guided colorization network: a U-Net over L and sparse user hints.

Input: normalised L and three hint planes (the hints' a/110 and b/110, and a 0/1 mask; all zero is
automatic colorization). The encoder is Zhang et al.'s ECCV16 network with stride-1 convolutions: blocks
2–4 take every other pixel of the previous block's output (down to 1/8), blocks 5–6 are dilated. The decoder
goes back up with three 4×4 transposed convolutions, each added to a 3×3 "shortcut" convolution of
encoder block 3, 2 and 1, and ends in a full-resolution ab head (tanh: ab/110 in [-1, 1]). A 1×1 head over
the 256 features at 1/4 predicts a distribution over 529 ab classes (a 23×23 grid of 10 over ±110); the
released forward does not use it, nor does this one, but it is kept (frozen) so that the release's
state dict loads key for key: the module names are the official ones (model1 … model10, model8up,
model3short8, …, model_class, model_out).
"""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import Generator, check_common, check_input, final_activation_layer, scaled

HINT_CHANNELS = 3
"""Hint planes after L: a/110, b/110 of the hinted colour, and the 0/1 mask of hinted pixels."""

# Encoder blocks: (name, 3×3 convolutions, channels, dilation); each convolution is followed by ReLU and
# the block by batch norm. Blocks 2, 3 and 4 first take every other pixel of their input ([::2, ::2]).
SIGGRAPH_ENCODER: tuple[tuple[str, int, int, int], ...] = (
    ("model1", 2, 64, 1),
    ("model2", 2, 128, 1),
    ("model3", 3, 256, 1),
    ("model4", 3, 512, 1),
    ("model5", 3, 512, 2),
    ("model6", 3, 512, 2),
    ("model7", 3, 512, 1),
)
SUBSAMPLED = ("model2", "model3", "model4")
# Decoder blocks: (index i, channels, 3×3 convolutions, encoder block of the shortcut). modelIup is a 4×4
# transposed convolution (×2), modelSshortI a 3×3 convolution of encoder block S; their sum goes through
# ReLU, then the convolutions (ReLU after each, LeakyReLU 0.2 after the last block's) and batch norm
# (blocks 8 and 9 only).
SIGGRAPH_DECODER: tuple[tuple[int, int, int, int], ...] = (
    (8, 256, 2, 3),
    (9, 128, 1, 2),
    (10, 128, 1, 1),
)
CLASSES = 529  # the distribution head: 23×23 ab classes


class SIGGRAPHNet(Generator):
    """L_n (B×1×H×W) and optional hints (B×3×H×W) → B×out_channels×H×W (ab/110 through tanh by default).

    width multiplies every hidden channel count (width=1 is the paper's network, 34.2M parameters).
    `classes` sizes the unused distribution head (529 in the release; 0 leaves it out). H and W must be
    multiples of 8. `forward(L)` without hints is automatic colorization (all hint planes zero).
    """

    output_stride: int = 1
    size_multiple: int = 8
    takes_hints: bool = True
    num_stages: int = 10

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        classes: int = CLASSES,
        final_activation: str | None = "tanh",
    ) -> None:
        super().__init__()
        check_common(in_channels, out_channels, width)
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 0:
            raise ValueError(f"classes must be an integer >= 0 (529 in the release), got {classes!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        widths: dict[str, int] = {}
        c_in = in_channels + HINT_CHANNELS
        for name, n_convs, channels, dilation in SIGGRAPH_ENCODER:
            c = scaled(channels, width)
            layers: list[nn.Module] = []
            for _ in range(n_convs):
                layers += [nn.Conv2d(c_in, c, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.BatchNorm2d(c))
            self.add_module(name, nn.Sequential(*layers))
            widths[name] = c
        for i, channels, n_convs, _ in SIGGRAPH_DECODER:
            c = scaled(channels, width)
            self.add_module(f"model{i}up", nn.Sequential(nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1)))
            last = i == SIGGRAPH_DECODER[-1][0]
            layers = [nn.ReLU(inplace=True)]
            for _ in range(n_convs):
                act = nn.LeakyReLU(0.2, inplace=True) if last else nn.ReLU(inplace=True)
                layers += [nn.Conv2d(c, c, 3, padding=1), act]
            if not last:
                layers.append(nn.BatchNorm2d(c))
            self.add_module(f"model{i}", nn.Sequential(*layers))
            widths[f"model{i}"] = c
            c_in = c
        for i, _, _, short in SIGGRAPH_DECODER:  # registered after the decoder, as in the release's file
            shortcut = nn.Conv2d(widths[f"model{short}"], widths[f"model{i}"], 3, padding=1)
            self.add_module(f"model{short}short{i}", nn.Sequential(shortcut))
        self.classes = classes
        if classes:
            self.model_class = nn.Sequential(nn.Conv2d(widths["model8"], classes, 1))
            self.model_class.requires_grad_(False)  # unused by forward: frozen, so DDP sees no idle parameter
        self.model_out = nn.Sequential(
            nn.Conv2d(c_in, out_channels, 1), final_activation_layer(final_activation, out_channels)
        )

    def stages(self) -> list[nn.Module]:
        """Encoder blocks 1–7, then each decoder block with its up-sampling and shortcut (10 stages)."""
        encoder = [getattr(self, name) for name, *_ in SIGGRAPH_ENCODER]
        decoder = [
            nn.ModuleList(
                [getattr(self, f"model{i}up"), getattr(self, f"model{s}short{i}"), getattr(self, f"model{i}")]
            )
            for i, _, _, s in SIGGRAPH_DECODER
        ]
        return encoder + decoder

    def forward(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Map normalised L (B×in×H×W, H and W multiples of 8) and hints (B×3×H×W or None) to B×out×H×W."""
        check_input(x, self.in_channels, self.size_multiple, "SIGGRAPHNet")
        if hints is None:
            hints = x.new_zeros(x.shape[0], HINT_CHANNELS, x.shape[2], x.shape[3])
        elif not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            if hints.shape != (x.shape[0], HINT_CHANNELS, *x.shape[2:]):
                raise ValueError(
                    f"SIGGRAPHNet hints must be B×3×H×W like the input, got {tuple(hints.shape)} for "
                    f"{tuple(x.shape)}"
                )
        feats: dict[int, torch.Tensor] = {}
        h = torch.cat([x, hints.to(x.dtype)], dim=1)
        for k, (name, *_) in enumerate(SIGGRAPH_ENCODER, start=1):
            if name in SUBSAMPLED:
                h = h[:, :, ::2, ::2]
            h = getattr(self, name)(h)
            feats[k] = h
        for i, _, _, short in SIGGRAPH_DECODER:
            up = getattr(self, f"model{i}up")(h) + getattr(self, f"model{short}short{i}")(feats[short])
            h = getattr(self, f"model{i}")(up)
        return self.model_out(h)
