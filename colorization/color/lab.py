"""CIE Lab conversion (through Kornia) and the normalisation used by every objective.

Images enter the library as float sRGB in [0, 1], B×3×H×W (a single 3×H×W image is accepted and
returned unbatched). Lab is in its usual units: L in 0..100, a and b about -110..110. Networks see
normalised values, L_n = (L - L_CENT) / L_NORM and ab_n = ab / AB_NORM, the constants of Zhang et
al.'s released code.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

__all__ = [
    "AB_NORM",
    "L_CENT",
    "L_NORM",
    "check_image",
    "denormalize_ab",
    "denormalize_l",
    "l_ab_to_rgb",
    "lab_batch",
    "lab_to_rgb",
    "normalize_ab",
    "normalize_l",
    "rgb_to_lab",
]

L_CENT: float = 50.0
L_NORM: float = 100.0
AB_NORM: float = 110.0

# Slack for values that left their range by rounding (e.g. an augmentation that overshoots by 1e-7).
_RGB_TOL = 1e-3
_L_TOL = 1e-2
# Kornia documents a, b in -128..127; anything far beyond is not a colour but a bug upstream.
_AB_LIMIT = 128.0 + 1e-2


def check_image(
    x: torch.Tensor,
    name: str = "image",
    channels: int = 3,
    low: float | None = None,
    high: float | None = None,
    finite: bool = True,
) -> None:
    """Raise a one-line ValueError unless x is a float (B×)C×H×W tensor, finite and within [low, high]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4) or x.shape[-3] != channels:
        raise ValueError(
            f"{name} must have shape B×{channels}×H×W or {channels}×H×W, got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        return
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    if low is not None or high is not None:
        lo, hi = torch.aminmax(x.detach())
        lo_v, hi_v = float(lo), float(hi)
        if (low is not None and lo_v < low) or (high is not None and hi_v > high):
            raise ValueError(f"{name} values must lie in [{low}, {high}], got min {lo_v:.4g}, max {hi_v:.4g}")


def _as_float_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 images become float in [0, 1]; float images pass unchanged."""
    if isinstance(rgb, torch.Tensor) and rgb.dtype == torch.uint8:
        return rgb.float() / 255.0
    return rgb


def rgb_to_lab(rgb: torch.Tensor, check: bool = True) -> torch.Tensor:
    """sRGB in [0, 1] (B×3×H×W or 3×H×W; uint8 is taken as 0..255) to Lab in its usual units, via Kornia.

    `check=False` skips the finiteness and range checks (one device sync) for hot paths that already
    know their input is valid; shapes are always checked.
    """
    rgb = _as_float_rgb(rgb)
    if check:
        check_image(rgb, "rgb", 3, -_RGB_TOL, 1.0 + _RGB_TOL)
    else:
        check_image(rgb, "rgb", 3, finite=False)
    return _kornia_rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor, check: bool = True, clip: bool = True) -> torch.Tensor:
    """Lab (L 0..100, a/b about -110..110; B×3×H×W or 3×H×W) to sRGB, clipped to [0, 1], via Kornia."""
    if check:
        check_image(lab, "lab", 3)
        if lab.numel():
            l_lo, l_hi = torch.aminmax(lab.detach().select(-3, 0))
            ab_max = lab.detach().narrow(-3, 1, 2).abs().amax()
            if float(l_lo) < -_L_TOL or float(l_hi) > 100.0 + _L_TOL:
                raise ValueError(f"lab L must lie in [0, 100], got {float(l_lo):.4g}..{float(l_hi):.4g}")
            if float(ab_max) > _AB_LIMIT:
                raise ValueError(f"lab a/b must lie in [-128, 128], got |ab| up to {float(ab_max):.4g}")
    else:
        check_image(lab, "lab", 3, finite=False)
    return _kornia_lab_to_rgb(lab, clip=clip)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """L in 0..100 to the network's input scale, (L - 50) / 100."""
    return (L - L_CENT) / L_NORM


def denormalize_l(L_n: torch.Tensor) -> torch.Tensor:
    """Normalised L back to 0..100."""
    return L_n * L_NORM + L_CENT


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units to the network's scale, ab / 110."""
    return ab / AB_NORM


def denormalize_ab(ab_n: torch.Tensor) -> torch.Tensor:
    """Normalised ab back to Lab units."""
    return ab_n * AB_NORM


def lab_batch(rgb: torch.Tensor, check: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB batch (B×3×H×W float in [0, 1] or uint8) to normalised (L_n B×1×H×W, ab_n B×2×H×W)."""
    lab = rgb_to_lab(rgb, check=check)
    return normalize_l(lab[..., :1, :, :]), normalize_ab(lab[..., 1:, :, :])


def l_ab_to_rgb(L_n: torch.Tensor, ab_n: torch.Tensor) -> torch.Tensor:
    """Normalised L (B×1×H×W) and ab (B×2×H×W) to sRGB in [0, 1].

    Predictions are not validated for range: L is clamped to 0..100 and ab to ±128 so that any network
    output can be shown; shapes must agree.
    """
    if L_n.ndim != ab_n.ndim or L_n.ndim not in (3, 4) or L_n.shape[-3] != 1 or ab_n.shape[-3] != 2:
        raise ValueError(
            f"l_ab_to_rgb expects L B×1×H×W and ab B×2×H×W, got {tuple(L_n.shape)} and {tuple(ab_n.shape)}"
        )
    if L_n.shape[-2:] != ab_n.shape[-2:] or L_n.shape[:-3] != ab_n.shape[:-3]:
        raise ValueError(f"L {tuple(L_n.shape)} and ab {tuple(ab_n.shape)} differ in batch or spatial size")
    L = denormalize_l(L_n.float()).clamp(0.0, 100.0)
    ab = denormalize_ab(ab_n.float()).clamp(-128.0, 127.0)
    return _kornia_lab_to_rgb(torch.cat([L, ab], dim=-3), clip=True)
