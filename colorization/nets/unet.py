"""U-Net generators: pix2pix's (Isola et al.), with optional attention gates and optional ResNet encoder.

- encoder=None: the pix2pix U-Net. num_downs 4×4 stride-2 convolutions (LeakyReLU 0.2, batch norm), as
  many 4×4 transposed convolutions back (ReLU, batch norm, dropout in the deep 8×base layers), skips by
  concatenation. At 256 px pix2pix uses num_downs=8 (a 1×1 bottleneck) and base_channels=64.
- attention=True: an additive attention gate (Oktay et al. 2018) scales every skip connection by a
  per-pixel weight in (0, 1) computed from the skip and the decoder's features at the same resolution.
- encoder="resnet18" | "resnet34": the ResNet trunk as the encoder (ImageNet weights when available, as
  report 002's best "pretrained" generator) and a decoder of transposed convolutions with skips at
  strides 16, 8, 4, 2 and the input itself (dropout in its two deepest blocks, as pix2pix's noise).
"""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import Generator, check_common, check_input, final_activation_layer, scaled
from colorization.nets.resnet import IMAGENET_MEAN, IMAGENET_STD, ResNetEncoder, load_pretrained_resnet

ENCODERS = (None, "resnet18", "resnet34")


def init_pix2pix(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: convolution weights ~ N(0, gain), batch-norm scales ~ N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class AttentionGate(nn.Module):
    """Additive attention gate: skip · σ(ψ(ReLU(θ(skip) + φ(gate)))), both inputs at the same resolution."""

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int | None = None) -> None:
        super().__init__()
        inter = inter_channels or max(1, skip_channels // 2)
        self.theta = nn.Sequential(nn.Conv2d(skip_channels, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.phi = nn.Sequential(nn.Conv2d(gate_channels, inter, 1, bias=False), nn.BatchNorm2d(inter))
        self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def attention(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """The gate's per-pixel weights, B×1×H×W in (0, 1)."""
        return self.psi(self.relu(self.theta(skip) + self.phi(gate)))

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """The skip features scaled by the attention weights."""
        return skip * self.attention(skip, gate)


class UNetGenerator(Generator):
    """U-Net generator: L_n (B×1×H×W) → B×out_channels×H×W, H and W multiples of `size_multiple`.

    size_multiple is 2**num_downs for the pix2pix encoder and 32 for a ResNet encoder.
    final_activation=None gives raw outputs (required for class logits); pix2pix's cGAN uses "tanh".
    """

    output_stride: int = 1

    @classmethod
    def input_multiple(cls, num_downs: int = 8, encoder: str | None = None, **arguments: object) -> int:
        """2**num_downs for the pix2pix encoder (256 at its default 8), 32 for a ResNet encoder."""
        return 32 if encoder else 2 ** int(num_downs)

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        num_downs: int = 8,
        base_channels: int = 64,
        dropout: float = 0.5,
        attention: bool = False,
        encoder: str | None = None,
        pretrained: bool = True,
        final_activation: str | None = None,
    ) -> None:
        super().__init__()
        check_common(in_channels, out_channels, width)
        if encoder not in ENCODERS:
            raise ValueError(f"UNetGenerator encoder must be one of {ENCODERS}, got {encoder!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.encoder_name = encoder
        self.attention = attention
        if encoder is None:
            if int(num_downs) != num_downs or num_downs < 2:
                raise ValueError(f"num_downs must be an integer >= 2, got {num_downs!r}")
            self.size_multiple = self.input_multiple(num_downs=num_downs)
            self.num_downs = int(num_downs)
            self._build_pix2pix(num_downs, scaled(base_channels, width), dropout, attention)
            init_pix2pix(self)
        else:
            if in_channels not in (1, 3):
                raise ValueError(f"a ResNet encoder takes 1 (gray) or 3 input channels, got {in_channels}")
            self.size_multiple = self.input_multiple(encoder=encoder)
            self._build_resnet(encoder, width, dropout, attention)
            init_pix2pix(self.decoder)
            if self.gates is not None:
                init_pix2pix(self.gates)
            self.pretrained_loaded = load_pretrained_resnet(self.encoder) if pretrained else False
        self.final = final_activation_layer(final_activation, out_channels)

    # -- pix2pix -----------------------------------------------------------------------------------------
    def _build_pix2pix(self, num_downs: int, base: int, dropout: float, attention: bool) -> None:
        """Encoder/decoder lists of the pix2pix U-Net (level i works at 1/2**(i+1) with c[i] channels)."""
        mult = [min(2**i, 8) for i in range(num_downs)]
        c = [base * m for m in mult]
        downs: list[nn.Module] = []
        for i in range(num_downs):
            c_prev = self.in_channels if i == 0 else c[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            has_norm = 0 < i < num_downs - 1
            layers.append(nn.Conv2d(c_prev, c[i], 4, stride=2, padding=1, bias=False))
            if has_norm:
                layers.append(nn.BatchNorm2d(c[i]))
            downs.append(nn.Sequential(*layers))
        ups: list[nn.Module] = []
        gates: list[nn.Module] = []
        for i in range(num_downs):
            c_in = c[i] if i == num_downs - 1 else 2 * c[i]
            layers = [nn.ReLU(inplace=True)]
            if i == 0:
                layers.append(nn.ConvTranspose2d(c_in, self.out_channels, 4, stride=2, padding=1))
            else:
                layers += [
                    nn.ConvTranspose2d(c_in, c[i - 1], 4, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c[i - 1]),
                ]
                # pix2pix: dropout in the blocks between two 8×base levels, except the innermost
                if dropout > 0 and i < num_downs - 1 and mult[i] == mult[i - 1] == 8:
                    layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
            if attention and i < num_downs - 1:
                gates.append(AttentionGate(c[i], c[i]))
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)
        self.gates = nn.ModuleList(gates) if attention else None

    def _forward_pix2pix(self, x: torch.Tensor) -> torch.Tensor:
        """Encode, then decode from the bottleneck concatenating (gated) skips."""
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        n = len(self.downs)
        d = self.ups[n - 1](skips[n - 1])
        for i in range(n - 2, -1, -1):
            skip = skips[i] if self.gates is None else self.gates[i](skips[i], d)
            d = self.ups[i](torch.cat([skip, d], dim=1))
        return d

    # -- ResNet encoder ------------------------------------------------------------------------------------
    def _build_resnet(self, arch: str, width: float, dropout: float, attention: bool) -> None:
        """ResNet trunk plus a decoder: up ×2 (transposed conv), concatenate the skip, 3×3 conv; 5 times."""
        self.encoder = ResNetEncoder(arch, width)
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        enc = self.encoder.channels  # stem, layer1..layer4
        skips = [enc[3], enc[2], enc[1], enc[0], self.in_channels]
        outs = [scaled(c, width) for c in (256, 128, 64, 64, 32)]
        ups, convs, gates = [], [], []
        c_in = enc[4]
        for k, (c_skip, c_out) in enumerate(zip(skips, outs, strict=True)):
            up: list[nn.Module] = [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            if dropout > 0 and k < 2:
                up.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*up))
            convs.append(
                nn.Sequential(
                    nn.Conv2d(c_out + c_skip, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                )
            )
            if attention and k < 4:
                gates.append(AttentionGate(c_skip, c_out))
            c_in = c_out
        self.decoder = nn.ModuleDict(
            {
                "ups": nn.ModuleList(ups),
                "convs": nn.ModuleList(convs),
                "head": nn.Conv2d(c_in, self.out_channels, 1),
            }
        )
        self.gates = nn.ModuleList(gates) if attention else None

    def _forward_resnet(self, x: torch.Tensor) -> torch.Tensor:
        """Gray L_n as an ImageNet-normalised RGB image through the trunk, then the decoder with skips."""
        rgb = (x + 0.5).clamp(0.0, 1.0).expand(-1, 3, -1, -1) if self.in_channels == 1 else x
        rgb = (rgb - self.rgb_mean.to(rgb.dtype)) / self.rgb_std.to(rgb.dtype)
        feats = self.encoder(rgb)
        skips = [feats[3], feats[2], feats[1], feats[0], x]
        d = feats[4]
        for k, (up, conv) in enumerate(zip(self.decoder["ups"], self.decoder["convs"], strict=True)):
            d = up(d)
            skip = skips[k] if self.gates is None or k >= 4 else self.gates[k](skips[k], d)
            d = conv(torch.cat([skip, d], dim=1))
        return self.decoder["head"](d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised L (B×in×H×W) to B×out×H×W."""
        check_input(x, self.in_channels, self.size_multiple, "UNetGenerator")
        out = self._forward_pix2pix(x) if self.encoder_name is None else self._forward_resnet(x)
        return self.final(out)
