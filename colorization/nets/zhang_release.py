"""Zhang et al.'s released state dicts (their PyTorch ports) mapped onto this project's networks.

- ECCV16 (`colorization_release_v2`): `model{i}.{j}` is block i of ZhangNet(width=1, out_channels=313):
  `model{i}.{j}.*` → `blocks.{i-1}.{j}.*` for i = 1..8, except `model8.6.*` (the 256 → 313 1×1
  convolution) → `head.*`. `model_out.weight` (2×313×1×1, no bias) is no layer of ours: it is the
  decoding matrix of the released forward (softmax, then ab/110 = Σ p_q · centre_q / 110), so it is checked
  against ABGamut.zhang().points / 110 (the same 313 bins in the same order) and dropped.
- SIGGRAPH17: SIGGRAPHNet keeps the official module names, so its keys load one for one.

Every conversion is exact or refused: a missing, extra or misshapen key is a one-line ColorizationError,
never a partial load.
"""

from __future__ import annotations

import re

import torch

from colorization.color import AB_NORM, ABGamut
from colorization.errors import ColorizationError

__all__ = [
    "DECODING_TOLERANCE",
    "check_decoding_matrix",
    "decoding_matrix",
    "eccv16_to_zhangnet",
    "siggraph17_to_siggraphnet",
    "zhangnet_to_eccv16",
]

DECODING_TOLERANCE = 1e-4
"""Largest |Δ| (normalised ab) between the release's decoding matrix and the 313 bin centres / 110."""

_ECCV16_KEY = re.compile(r"model([1-8])\.(\d+)\.(.+)")


def decoding_matrix() -> torch.Tensor:
    """The release's `model_out.weight`: ABGamut.zhang()'s 313 bin centres / 110, as a 2×313×1×1 kernel."""
    points = ABGamut.zhang().points
    return (points / AB_NORM).t().reshape(2, len(points), 1, 1).contiguous()


def check_decoding_matrix(weight: torch.Tensor, name: str = "eccv16") -> None:
    """Refuse a `model_out.weight` that is not the 313 bin centres / 110 of ABGamut.zhang(), in order."""
    expected = decoding_matrix()
    if tuple(weight.shape) != tuple(expected.shape):
        raise ColorizationError(
            f"{name} weights: model_out.weight has shape {list(weight.shape)}, "
            f"expected {list(expected.shape)}"
        )
    gap = float((weight.detach().float().cpu() - expected).abs().max())
    if not gap <= DECODING_TOLERANCE:
        raise ColorizationError(
            f"{name} weights: model_out.weight is not the 313 bin centres / 110 of Zhang's gamut "
            f"(max |Δ| = {gap:.3g}): this file decodes other bins than the ones this project reads"
        )


def eccv16_to_zhangnet(state: dict[str, torch.Tensor], name: str = "eccv16") -> dict[str, torch.Tensor]:
    """The ECCV16 release's state dict as ZhangNet's: keys renamed, the decoding matrix checked and dropped.

    Keys that match neither pattern are passed through unchanged, so that the strict load names them.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "model_out.weight":
            check_decoding_matrix(value, name)
            continue
        m = _ECCV16_KEY.fullmatch(key)
        if m is None:
            out[key] = value
        elif m.group(1) == "8" and m.group(2) == "6":
            out[f"head.{m.group(3)}"] = value
        else:
            out[f"blocks.{int(m.group(1)) - 1}.{m.group(2)}.{m.group(3)}"] = value
    if "model_out.weight" not in state:
        raise ColorizationError(f"{name} weights: model_out.weight (the decoding matrix) is missing")
    return out


def zhangnet_to_eccv16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse: a ZhangNet(width=1, out_channels=313) state dict in the release's layout, decoding matrix
    included, so that the authors' code loads it (a fine-tuned network shared with their demo)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        block, _, rest = key.partition(".")
        if block == "head":
            out[f"model8.6.{rest}"] = value
        elif block == "blocks":
            i, _, tail = rest.partition(".")
            out[f"model{int(i) + 1}.{tail}"] = value
        else:
            raise ColorizationError(f"{key} is not a ZhangNet key")
    out["model_out.weight"] = decoding_matrix()
    return out


def siggraph17_to_siggraphnet(
    state: dict[str, torch.Tensor], name: str = "siggraph17"
) -> dict[str, torch.Tensor]:
    """The SIGGRAPH17 release's state dict as SIGGRAPHNet's: the same names, nothing to rename."""
    return dict(state)
