"""The networks: plain nn.Modules taking normalised L and giving ab (2 channels) or bin logits (Q channels).

Every generator takes `in_channels=1, out_channels=2, width=1.0` (width=1 is the paper's size) and exposes
`output_stride` (4 for ZhangNet, 1 otherwise) and `size_multiple` (input H and W must be multiples of it).
`final_activation` is None (raw outputs: always so for class logits) or "tanh" (bounded ab, as pix2pix's
generator and report 004's CNN have); the objective passes what it needs.
"""

from __future__ import annotations

from torch import nn

from colorization.nets.cnn import BaselineCNN
from colorization.nets.common import count_parameters
from colorization.nets.koala import KoalaNet
from colorization.nets.patchgan import PatchGAN
from colorization.nets.unet import AttentionGate, UNetGenerator
from colorization.nets.zhang import ZhangNet

#: Generators by the short names the configs use.
GENERATORS: dict[str, type[nn.Module]] = {
    "zhang": ZhangNet,
    "cnn": BaselineCNN,
    "koala": KoalaNet,
    "unet": UNetGenerator,
}


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Instantiate the generator registered as `name` (one of GENERATORS) with keyword arguments."""
    if name not in GENERATORS:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(GENERATORS)}")
    return GENERATORS[name](**kwargs)


__all__ = [
    "AttentionGate",
    "BaselineCNN",
    "GENERATORS",
    "KoalaNet",
    "PatchGAN",
    "UNetGenerator",
    "ZhangNet",
    "build_generator",
    "count_parameters",
]
