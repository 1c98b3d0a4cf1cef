"""ResNet-18/34 encoder in plain torch, with torchvision's parameter names so its ImageNet weights load.

torchvision is not needed: the weights are fetched with `torch.hub.load_state_dict_from_url` (hash-checked,
cached in torch hub's checkpoint folder). Without network or cache the encoder keeps its random
initialisation and says so once.
"""

from __future__ import annotations

import torch
from torch import nn

from colorization.nets.common import scaled, warn_once

# torchvision's ImageNet-1k (V1) weights of the BasicBlock ResNets; the name's suffix is the hash prefix.
RESNET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
}
RESNET_DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
RESNET_STAGE_CHANNELS = (64, 128, 256, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNetEncoder(nn.Module):
    """ResNet-18/34 trunk on an RGB input; returns the features at strides 2, 4, 8, 16 and 32.

    Parameter names follow torchvision (conv1, bn1, layerK.J.conv1, ..., layerK.0.downsample.0/1), without
    the classifier (fc). width scales the channels; pretrained weights exist only for width=1.
    """

    def __init__(self, arch: str = "resnet18", width: float = 1.0) -> None:
        super().__init__()
        if arch not in RESNET_DEPTHS:
            raise ValueError(f"ResNet encoder must be one of {tuple(RESNET_DEPTHS)}, got {arch!r}")
        self.arch = arch
        self.width = width
        c_stem = scaled(64, width)
        self.conv1 = nn.Conv2d(3, c_stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c_stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = c_stem
        self.channels = [c_stem]
        for k, (depth, channels) in enumerate(zip(RESNET_DEPTHS[arch], RESNET_STAGE_CHANNELS, strict=True)):
            c = scaled(channels, width)
            blocks = [BasicBlock(c_in, c, stride=1 if k == 0 else 2)]
            blocks += [BasicBlock(c, c) for _ in range(depth - 1)]
            self.add_module(f"layer{k + 1}", nn.Sequential(*blocks))
            self.channels.append(c)
            c_in = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """ImageNet-normalised RGB (B×3×H×W) → [stem, layer1, ..., layer4] at strides 2, 4, 8, 16, 32."""
        x = self.relu(self.bn1(self.conv1(rgb)))
        feats = [x]
        x = self.maxpool(x)
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
            feats.append(x)
        return feats


def fetch_resnet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict for `arch`, from torch hub's cache or downloaded (hash-checked)."""
    return torch.hub.load_state_dict_from_url(
        RESNET_URLS[arch], map_location="cpu", progress=False, check_hash=True
    )


def load_pretrained_resnet(encoder: ResNetEncoder) -> bool:
    """Load torchvision's ImageNet weights into `encoder`; on failure keep random weights, warn once."""
    if encoder.width != 1.0:
        warn_once(
            f"resnet-width-{encoder.arch}",
            f"ResNet encoder: pretrained {encoder.arch} weights need width=1 (got {encoder.width}); "
            "starting from random weights",
        )
        return False
    try:
        state = fetch_resnet_state_dict(encoder.arch)
    except Exception as err:  # no network and no cached file, or a corrupt download
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip()
        warn_once(
            f"resnet-weights-{encoder.arch}",
            f"ResNet encoder: {encoder.arch} ImageNet weights unavailable ({reason}); using random weights",
        )
        return False
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    encoder.load_state_dict(state, strict=True)
    return True
