"""Deep Koalarization (Baldassarre et al. 2017): a convolutional encoder fused with a global image embedding.

The encoder takes L to 1/8 resolution × 256 channels; a feature extractor turns the whole image into one
vector, which is tiled over the encoder's grid, concatenated and fused by a 1×1 convolution; a decoder of
convolutions and ×2 upsamplings brings the result back to full resolution (reports 000 and 004).

The extractor is pluggable: timm's Inception-ResNet-v2 with its ImageNet weights (the paper's choice,
frozen), or a small built-in CNN trained with the rest when timm or the weights are unavailable.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from colorization.errors import ConfigError
from colorization.nets.common import (
    Generator,
    check_common,
    check_input,
    final_activation_layer,
    scaled,
    warn_once,
)

EXTRACTORS = ("auto", "inception_resnet_v2", "small")
INCEPTION_SIZE = 299

# Encoder (channels, stride) to 1/8 × 256, decoder (channels, upsample ×2 after), as in report 004's table.
KOALA_ENCODER: tuple[tuple[int, int], ...] = (
    (64, 2),
    (128, 1),
    (128, 2),
    (256, 1),
    (256, 2),
    (512, 1),
    (512, 1),
    (256, 1),
)
KOALA_FUSION = 256
KOALA_DECODER: tuple[tuple[int, bool], ...] = ((128, True), (64, True), (32, False), (16, False))
# Small extractor: four stride-2 convolutions, then a global average: one vector per image.
SMALL_EXTRACTOR: tuple[int, ...] = (32, 64, 128, 256)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    """3×3 convolution, batch norm, ReLU."""
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU(True)]


class SmallExtractor(nn.Module):
    """Built-in global feature extractor: a few strided convolutions and a global average (trainable)."""

    def __init__(self, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for channels in SMALL_EXTRACTOR:
            c = scaled(channels, width)
            layers += _conv_bn_relu(c_in, c, stride=2)
            c_in = c
        self.features = nn.Sequential(*layers)
        self.out_features = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised L (B×C×H×W) → B×out_features."""
        return self.features(x).mean(dim=(2, 3))


class TimmExtractor(nn.Module):
    """A timm classifier seen as a global extractor: gray L replicated to RGB, resized, normalised."""

    def __init__(self, model: nn.Module, frozen: bool) -> None:
        super().__init__()
        self.model = model
        self.frozen = frozen
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
        mean = cfg.get("mean", (0.5, 0.5, 0.5))
        std = cfg.get("std", (0.5, 0.5, 0.5))
        size = cfg.get("input_size", (3, INCEPTION_SIZE, INCEPTION_SIZE))[-2:]
        self.size = (int(size[0]), int(size[1]))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.out_features = int(getattr(model, "num_classes", 0) or model.num_features)
        if frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> TimmExtractor:
        """Keep a frozen backbone in eval mode (its batch-norm statistics stay the pretrained ones)."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def forward(self, l_n: torch.Tensor) -> torch.Tensor:
        """Normalised L (B×1×H×W) → B×out_features: L/100 as a gray RGB image at the backbone's input size."""
        gray = (l_n[:, :1] + 0.5).clamp(0.0, 1.0)
        rgb = gray.expand(-1, 3, -1, -1)
        rgb = F.interpolate(rgb, size=self.size, mode="bilinear", align_corners=False)
        rgb = (rgb - self.mean.to(rgb.dtype)) / self.std.to(rgb.dtype)
        if self.frozen:
            with torch.no_grad():
                return self.model(rgb).detach()
        return self.model(rgb)


def _timm_inception(pretrained: bool) -> nn.Module:
    """timm's Inception-ResNet-v2 (ImageNet weights when pretrained); raises without timm or weights."""
    timm = importlib.import_module("timm")
    return timm.create_model("inception_resnet_v2", pretrained=pretrained)


def build_extractor(extractor: str, pretrained: bool, in_channels: int, width: float) -> nn.Module:
    """The global feature extractor named by `extractor` ("auto" falls back to "small" and says so once)."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"KoalaNet extractor must be one of {EXTRACTORS}, got {extractor!r}")
    if extractor == "small":
        return SmallExtractor(in_channels, width)
    try:
        model = _timm_inception(pretrained)
    except Exception as err:  # no timm, no network, no cached weights: all end in the same fallback
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip()
        if extractor == "inception_resnet_v2":
            raise ConfigError(
                f"KoalaNet extractor='inception_resnet_v2' needs timm and its weights ({reason}); "
                "install the 'perceptual' extra or use extractor='small'"
            ) from err
        warn_once(
            "koala-extractor",
            f"KoalaNet: Inception-ResNet-v2 unavailable ({reason}); using the small built-in extractor",
        )
        return SmallExtractor(in_channels, width)
    return TimmExtractor(model, frozen=pretrained)


class KoalaNet(Generator):
    """Deep Koalarization: L_n (B×1×H×W) → B×out_channels×H×W, H and W multiples of 8.

    extractor: "auto" (timm Inception-ResNet-v2 when importable and its weights load, else the small
    built-in CNN, said once), "inception_resnet_v2" (required; error if unavailable) or "small".
    A pretrained extractor is frozen. final_activation="tanh" gives the paper's bounded ab output.
    """

    output_stride: int = 1
    size_multiple: int = 8

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        width: float = 1.0,
        extractor: str = "auto",
        pretrained: bool = True,
        final_activation: str | None = None,
    ) -> None:
        super().__init__()
        check_common(in_channels, out_channels, width)
        self.in_channels = in_channels
        self.out_channels = out_channels
        enc: list[nn.Module] = []
        c_in = in_channels
        for channels, stride in KOALA_ENCODER:
            c = scaled(channels, width)
            enc += _conv_bn_relu(c_in, c, stride)
            c_in = c
        self.encoder = nn.Sequential(*enc)
        self.extractor = build_extractor(extractor, pretrained, in_channels, width)
        self.extractor_name = "small" if isinstance(self.extractor, SmallExtractor) else "inception_resnet_v2"
        c_fused = scaled(KOALA_FUSION, width)
        self.fusion = nn.Sequential(
            nn.Conv2d(c_in + self.extractor.out_features, c_fused, 1, bias=False),
            nn.BatchNorm2d(c_fused),
            nn.ReLU(inplace=True),
        )
        dec: list[nn.Module] = []
        c_in = c_fused
        for channels, up in KOALA_DECODER:
            c = scaled(channels, width)
            dec += _conv_bn_relu(c_in, c)
            if up:
                dec.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            c_in = c
        dec += [
            nn.Conv2d(c_in, out_channels, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        ]
        self.decoder = nn.Sequential(*dec)
        self.final = final_activation_layer(final_activation, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised L (B×in×H×W) to B×out×H×W."""
        check_input(x, self.in_channels, self.size_multiple, "KoalaNet")
        mid = self.encoder(x)
        emb = self.extractor(x).to(mid.dtype)
        tiled = emb[:, :, None, None].expand(-1, -1, mid.shape[2], mid.shape[3])
        fused = self.fusion(torch.cat([mid, tiled], dim=1))
        return self.final(self.decoder(fused))
