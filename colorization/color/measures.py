"""Colour measures that need no network: Hasler–Süsstrunk colourfulness and the AuC of ab errors."""

from __future__ import annotations

import torch

from colorization.color.lab import check_image
from colorization.color.nearest import nearest_bins
from colorization.color.prior import ColorPrior

__all__ = ["ab_auc", "colorfulness", "rebalanced_pixel_weights"]


def colorfulness(rgb: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Hasler and Süsstrunk (2003) colourfulness per image, on 0..255 RGB: σ_rgyb + 0.3·μ_rgyb → B.

    rgb is B×3×H×W (or 3×H×W, giving a 1-vector) in [0, 1]; rg = R − G, yb = (R + G)/2 − B, population σ.
    """
    if check:
        check_image(rgb, "rgb", 3, -1e-3, 1.0 + 1e-3)
    else:
        check_image(rgb, "rgb", 3, finite=False)
    x = (rgb if rgb.ndim == 4 else rgb[None]).float() * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mu = torch.sqrt(rg.mean(1).square() + yb.mean(1).square())
    return sigma + 0.3 * mu


def ab_auc(
    pred_ab: torch.Tensor,
    true_ab: torch.Tensor,
    weights: torch.Tensor | None = None,
    max_threshold: float = 150.0,
) -> torch.Tensor:
    """Area under the curve of the fraction of pixels with ab L2 error <= t, t = 0, 1, ..., max_threshold → B.

    Zhang et al.'s "raw accuracy" (1 for a perfect prediction). ab in Lab units, B×2×H×W; optional
    per-pixel weights (B×H×W or B×1×H×W, e.g. `rebalanced_pixel_weights`) give the class-rebalanced variant.
    Computed in closed form: a pixel with error e is within ⌊max⌋ − ⌈e⌉ + 1 of the thresholds.
    """
    if pred_ab.ndim != 4 or pred_ab.shape[1] != 2 or pred_ab.shape != true_ab.shape:
        raise ValueError(
            f"pred_ab and true_ab must both be B×2×H×W, got {tuple(pred_ab.shape)} and {tuple(true_ab.shape)}"
        )
    if max_threshold < 0:
        raise ValueError(f"max_threshold must be >= 0, got {max_threshold}")
    n_thresholds = int(max_threshold) + 1
    err = (pred_ab.float() - true_ab.float()).square().sum(1).sqrt()  # B×H×W
    within = (n_thresholds - torch.ceil(err)).clamp(0, n_thresholds) / n_thresholds
    within = torch.nan_to_num(within, nan=0.0)  # a NaN prediction is never within any threshold
    if weights is None:
        return within.flatten(1).mean(1)
    if weights.ndim == 4 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.shape != err.shape:
        raise ValueError(f"weights must be B×H×W like errors {tuple(err.shape)}, not {tuple(weights.shape)}")
    weights = weights.float().flatten(1)
    return (within.flatten(1) * weights).sum(1) / weights.sum(1).clamp_min(1e-12)


def rebalanced_pixel_weights(true_ab: torch.Tensor, prior: ColorPrior, lam: float = 0.0) -> torch.Tensor:
    """Per-pixel weights B×H×W for the rebalanced AuC: the prior's weight of each true pixel's nearest bin.

    λ = 0 weights pixels inversely to their colour's probability, as Zhang et al.'s rebalanced accuracy.
    """
    w = prior.weights(lam).to(true_ab.device)
    return w[nearest_bins(true_ab, prior.gamut)]
