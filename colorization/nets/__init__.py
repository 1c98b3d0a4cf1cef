"""The networks: plain nn.Modules taking normalised L and giving ab (2 channels) or bin logits (Q channels).

Every generator is a `Generator` (nets.common): it takes `in_channels=1, out_channels=2, width=1.0` (width=1
is the paper's size) and exposes `output_stride` (4 for ZhangNet, 1 otherwise), the class method
`input_multiple(**arguments)` (input H and W must be multiples of it, for the given constructor arguments)
and, per instance, `size_multiple`.
`final_activation` is None (raw outputs: always so for class logits) or "tanh" (bounded ab, as pix2pix's
generator and report 004's CNN have); the objective passes what it needs.
Published weights (Zhang et al.'s ECCV16 and SIGGRAPH17 releases) are in nets.registry, with the mapping of
the released state dicts onto these networks in nets.zhang_release.
"""

from __future__ import annotations

from colorization.nets.cnn import BaselineCNN
from colorization.nets.common import Generator
from colorization.nets.koala import KoalaNet
from colorization.nets.patchgan import PatchGAN
from colorization.nets.registry import REGISTRY, PublishedModel, load_published, published
from colorization.nets.siggraph17 import SIGGRAPHNet
from colorization.nets.unet import AttentionGate, UNetGenerator
from colorization.nets.zhang import ZhangNet

__all__ = [
    "AttentionGate",
    "BaselineCNN",
    "Generator",
    "KoalaNet",
    "PatchGAN",
    "PublishedModel",
    "REGISTRY",
    "SIGGRAPHNet",
    "UNetGenerator",
    "ZhangNet",
    "load_published",
    "published",
]
