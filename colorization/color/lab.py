"""CIE Lab conversion and the normalisation used by every objective.

RGB -> Lab is Kornia's formula (D65, 2°), recomputed here in a few fused in-place passes with a 256-entry
sRGB table for uint8 input: about 3x faster than Kornia's on the CPU, where the data pipeline converts every
batch beside its workers (benchmarks/datamodule.py). It agrees with kornia.color.rgb_to_lab and skimage's
rgb2lab to 2e-4 Lab units. Lab -> RGB and anything that needs gradients use Kornia itself.

Images enter the library as float sRGB in [0, 1], B×3×H×W (a single 3×H×W image is accepted and
returned unbatched). Lab is in its usual units: L in 0..100, a and b about -110..110. Networks see
normalised values, L_n = (L - L_CENT) / L_NORM and ab_n = ab / AB_NORM, the constants of Zhang et
al.'s released code. Those and the conversion's constants are defined once, in the torch-free
colorization.imaging.lab (the numpy twin used by the ONNX path), and imported here.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

from colorization.imaging.lab import AB_NORM, L_CENT, L_NORM
from colorization.imaging.lab import D65_WHITE as _WHITE
from colorization.imaging.lab import F_EPS as _F_EPS
from colorization.imaging.lab import F_SLOPE as _F_SLOPE
from colorization.imaging.lab import SRGB_KNEE as _SRGB_KNEE
from colorization.imaging.lab import XYZ_FROM_RGB as _XYZ_FROM_RGB

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
        raise ValueError(f"{name} must have shape B×{channels}×H×W or {channels}×H×W, got {tuple(x.shape)}")
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


# sRGB (D65) -> CIE XYZ -> Lab: the constants (Kornia's and scikit-image's) are colorization.imaging.lab's,
# shared with the numpy twin of the torch-free path.
_CHUNK_PIXELS = 1 << 17  # on the CPU, images are converted a few at a time so that temporaries stay in cache
_LOW_ALPHA = 1.055**2.4 / 12.92  # weight of min(t, knee) against the unscaled power term
_CONSTANTS: dict[tuple[torch.device, torch.dtype], dict[str, torch.Tensor]] = {}


def _constants(device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Lookup table and matrices of the conversion, made once per device and dtype (in float64, then cast)."""
    key = (device, dtype)
    if key not in _CONSTANTS:
        d = torch.float64
        m = torch.tensor(_XYZ_FROM_RGB, dtype=d) / torch.tensor(_WHITE, dtype=d)[:, None]  # to XYZ / white
        v = torch.arange(256, dtype=d) / 255.0
        lut = torch.where(v > _SRGB_KNEE, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
        # float input: lin + c = k (max(t, knee) + 0.055)^2.4 + min(t, knee) / 12.92, k = 1.055^-2.4, where
        # c is the sRGB curve at the knee (both branches meet there); k and c fold into the XYZ matrix
        k = 1.055**-2.4
        c = (_SRGB_KNEE / 12.92 + k * (_SRGB_KNEE + 0.055) ** 2.4) / 2
        # f'(t) = max(t, eps)^(1/3) + 7.787 min(t, eps) = f(t) + 7.787 eps on both sides of eps (to 3e-7):
        # the offset cancels in a and b and moves into L's shift
        offset = _F_SLOPE * _F_EPS
        lab = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=d)
        norm = torch.tensor([L_NORM, AB_NORM, AB_NORM], dtype=d)[:, None]
        shift = -16.0 - 116.0 * offset
        _CONSTANTS[key] = {
            name: t.to(device=device, dtype=dtype)
            for name, t in {
                "lut": lut,
                "m": m,
                "m_float": m * k,
                "bias_float": -(m @ torch.full((3,), c, dtype=d))[:, None],
                "lab": lab,
                "lab_shift": torch.tensor(shift, dtype=d),
                "lab_n": lab / norm,
                "lab_n_shift": torch.tensor((shift - L_CENT) / L_NORM, dtype=d),
            }.items()
        }
    return _CONSTANTS[key]


def _lab_chunk(
    rgb: torch.Tensor, L: torch.Tensor, ab: torch.Tensor, k: dict[str, torch.Tensor], norm: bool
) -> None:
    """Lab of n×3×P uint8 or float sRGB into L (n×1×P) and ab (n×2×P): a few fused, in-place passes."""
    n = rgb.shape[0]
    if rgb.dtype == torch.uint8:
        lin = k["lut"].index_select(0, rgb.reshape(-1).int()).view(rgb.shape)
        xyz = torch.bmm(k["m"].expand(n, 3, 3), lin)
    else:  # (max(t, knee) + 0.055)^2.4 as exp(2.4 log(.)): cheaper than pow, as exact in float32
        low = rgb.clamp(0.0, _SRGB_KNEE)
        lin = rgb.clamp(_SRGB_KNEE, 1.0).add_(0.055).log_().mul_(2.4).exp_()
        lin.add_(low, alpha=_LOW_ALPHA)
        xyz = torch.baddbmm(k["bias_float"], k["m_float"].expand(n, 3, 3), lin)
    low = xyz.clamp_max(_F_EPS)
    f = xyz.clamp_min_(_F_EPS).log_().mul_(1.0 / 3.0).exp_().add_(low, alpha=_F_SLOPE)  # f + 7.787 eps
    g = k["lab_n"] if norm else k["lab"]
    torch.bmm(g[1:].expand(n, 2, 3), f, out=ab)
    torch.mul(f[:, 1:2], g[0, 1], out=L).add_(k["lab_n_shift"] if norm else k["lab_shift"])


def _lab_planes(rgb: torch.Tensor, norm: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, ab) of a B×3×H×W uint8 (0..255) or float ([0, 1], clamped) batch, in Lab units or normalised."""
    b, _, h, w = rgb.shape
    dtype = torch.float64 if rgb.dtype == torch.float64 else torch.float32
    if rgb.is_floating_point() and rgb.dtype != dtype:
        rgb = rgb.to(dtype)
    k = _constants(rgb.device, dtype)
    src = rgb.reshape(b, 3, h * w)
    L = torch.empty(b, 1, h * w, dtype=dtype, device=rgb.device)
    ab = torch.empty(b, 2, h * w, dtype=dtype, device=rgb.device)
    step = max(1, _CHUNK_PIXELS // max(1, h * w)) if rgb.device.type == "cpu" else max(b, 1)
    for s in range(0, b, step):
        _lab_chunk(src[s : s + step], L[s : s + step], ab[s : s + step], k, norm)
    return L.view(b, 1, h, w), ab.view(b, 2, h, w)


def _lab(rgb: torch.Tensor, check: bool, norm: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate, batch, and convert; the shared body of rgb_to_lab and lab_batch."""
    if isinstance(rgb, torch.Tensor) and rgb.dtype == torch.uint8:  # always in range: the shape is enough
        if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
            raise ValueError(f"rgb must have shape B×3×H×W or 3×H×W, got {tuple(rgb.shape)}")
    elif check:
        check_image(rgb, "rgb", 3, -_RGB_TOL, 1.0 + _RGB_TOL)
    else:
        check_image(rgb, "rgb", 3, finite=False)
    single = rgb.ndim == 3
    batch = rgb.unsqueeze(0) if single else rgb
    if torch.is_grad_enabled() and batch.requires_grad:  # differentiable: Kornia's autograd-friendly ops
        lab = _kornia_rgb_to_lab(batch.clamp(0.0, 1.0))
        L, ab = lab[:, :1], lab[:, 1:]
        if norm:
            L, ab = normalize_l(L), normalize_ab(ab)
    else:
        with torch.no_grad():
            L, ab = _lab_planes(batch, norm)
        if batch.is_floating_point() and batch.dtype not in (torch.float32, torch.float64):
            L, ab = L.to(batch.dtype), ab.to(batch.dtype)
    return (L[0], ab[0]) if single else (L, ab)


def rgb_to_lab(rgb: torch.Tensor, check: bool = True) -> torch.Tensor:
    """sRGB in [0, 1] (B×3×H×W or 3×H×W; uint8 is taken as 0..255) to Lab in its usual units.

    Kornia's formula (D65, 2°), recomputed in fused passes with an sRGB lookup table for uint8, for speed
    on the CPU; inputs that require grad go through Kornia itself. `check=False` skips the finiteness and
    range checks (one device sync) for hot paths that know their input is valid; shapes are always checked.
    """
    L, ab = _lab(rgb, check, norm=False)
    return torch.cat([L, ab], dim=-3)


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
    """sRGB batch (B×3×H×W float in [0, 1] or uint8) to normalised (L_n B×1×H×W, ab_n B×2×H×W) in one pass."""
    return _lab(rgb, check, norm=True)


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
