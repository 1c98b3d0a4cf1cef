"""The saturation enhancer of report 000: boosts weak saturation in HSV, hue and value unchanged."""

from __future__ import annotations

import torch

from colorization.color.lab import check_image

__all__ = ["enhance_saturation"]


def enhance_saturation(
    rgb: torch.Tensor,
    w: float = 0.8,
    c: float = 0.2,
    alpha: float = 2.0,
    beta: float = 4.0,
    check: bool = True,
) -> torch.Tensor:
    """s' = s·(1 + w·exp(−|β(s − c)|^α)) clipped to [0, 1], in HSV; rgb is B×3×H×W or 3×H×W in [0, 1].

    For a fixed hue and value every channel equals v·(1 − s·f(hue)), linear in s, so the result is
    v − (v − rgb)·s'/s: hue and value are kept exactly, with no angular round trip through HSV.
    """
    if check:
        check_image(rgb, "rgb", 3, -1e-3, 1.0 + 1e-3)
    else:
        check_image(rgb, "rgb", 3, finite=False)
    x = rgb.clamp(0.0, 1.0)
    v = x.amax(dim=-3, keepdim=True)
    mn = x.amin(dim=-3, keepdim=True)
    safe_v = torch.where(v > 0, v, torch.ones_like(v))
    s = torch.where(v > 0, (v - mn) / safe_v, torch.zeros_like(v))
    s_new = (s * (1.0 + w * torch.exp(-((beta * (s - c)).abs() ** alpha)))).clamp(0.0, 1.0)
    safe_s = torch.where(s > 0, s, torch.ones_like(s))
    ratio = torch.where(s > 0, s_new / safe_s, torch.ones_like(s))
    return (v - (v - x) * ratio).clamp(0.0, 1.0)
