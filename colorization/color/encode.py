"""Soft encoding of ab into gamut bins, the class-rebalanced cross-entropy and the annealed-mean decoder.

The soft target of a pixel is its k nearest bins (colorization.color.nearest: exact, on the device) with
Gaussian weights exp(−d²/2σ²), normalised; it stays sparse (k indices and weights per pixel), and the
cross-entropy gathers the k log-probabilities it needs instead of building a dense B×Q×H×W target. The
annealed mean reads a colour back from bin logits: softmax(log p / T) over the bin centres.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from colorization.color.gamut import ABGamut, as_points
from colorization.color.nearest import nearest_k, validate_ab

__all__ = ["annealed_mean", "rebalanced_cross_entropy", "soft_encode"]


def soft_encode(
    ab: torch.Tensor, gamut: ABGamut | torch.Tensor, k: int = 5, sigma: float = 5.0, check: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest bins of every pixel and their Gaussian weights exp(−d²/2σ²), normalised to sum to 1.

    ab is B×2×H×W in Lab units; returns (indices long B×k×H×W, weights float B×k×H×W), nearest bin first.
    Shapes are always checked; `check=True` (the default) also validates finiteness and range up front
    (|a|, |b| <= 200: not Lab units otherwise); a training loop that knows its ab are valid passes False.
    NaN pixels raise a ValueError either way.
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not isinstance(ab, torch.Tensor) or ab.ndim != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must have shape B×2×H×W (Lab units), got {tuple(getattr(ab, 'shape', ()))}")
    if check:
        validate_ab(ab)
    b, _, h, w = ab.shape
    rel_d2, idx = nearest_k(ab, gamut, k)  # k×N, nearest first
    weights = rel_d2.mul_(-0.5 / (sigma * sigma)).exp_()  # relative to the nearest bin: no 0/0
    weights /= weights.sum(0, keepdim=True)
    indices = idx.reshape(k, b, h, w).transpose(0, 1).contiguous()
    weights = weights.reshape(k, b, h, w).transpose(0, 1).contiguous()
    return indices, weights


def rebalanced_cross_entropy(
    logits: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Cross-entropy of softmax(logits) with the sparse soft target, each pixel scaled by its class weight.

    logits B×Q×H×W, indices/weights B×k×H×W (same H×W), class_weights a Q-vector or None; mean over pixels.
    Shapes are always checked; `check=True` (the default) also checks values (a host sync): finite logits
    and weights, indices within [0, Q). The training loop, whose indices come from `soft_encode` over the
    same gamut, passes False.
    """
    for name, t in (("logits", logits), ("indices", indices), ("weights", weights)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if logits.ndim != 4 or indices.ndim != 4 or indices.shape != weights.shape:
        raise ValueError(
            f"expected logits B×Q×H×W and indices/weights B×k×H×W, got {tuple(logits.shape)}, "
            f"{tuple(indices.shape)}, {tuple(weights.shape)}"
        )
    if indices.shape[0] != logits.shape[0] or indices.shape[2:] != logits.shape[2:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(indices.shape)} differ in batch or spatial size"
        )
    if indices.dtype != torch.long:
        raise ValueError(f"indices must be a long tensor, got {indices.dtype}")
    if indices.shape[1] > logits.shape[1]:
        raise ValueError(f"k={indices.shape[1]} target bins per pixel exceed the Q={logits.shape[1]} logits")
    if class_weights is not None and (class_weights.ndim != 1 or class_weights.shape[0] != logits.shape[1]):
        raise ValueError(
            f"class_weights must be a vector of Q={logits.shape[1]}, got {tuple(class_weights.shape)}"
        )
    if check and indices.numel():
        if not bool(torch.isfinite(logits).all()):
            raise ValueError("logits contain NaN or infinite values")
        if not bool(torch.isfinite(weights).all()):
            raise ValueError("soft-target weights contain NaN or infinite values")
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= logits.shape[1]:
            raise ValueError(
                f"indices must lie in [0, Q={logits.shape[1]}) of the logits, got [{lo}, {hi}]: "
                "encoded with another gamut?"
            )
    logp = torch.log_softmax(logits, dim=1, dtype=torch.float32)
    per_pixel = -(weights.float() * logp.gather(1, indices)).sum(1)  # B×H×W
    if class_weights is not None:
        per_pixel = per_pixel * class_weights.to(per_pixel)[indices[:, 0]]
    return per_pixel.mean()


def annealed_mean(
    logits: torch.Tensor, gamut: ABGamut | torch.Tensor, T: float = 0.38, check: bool = True
) -> torch.Tensor:
    """ab (B×2×H×W, Lab units) from bin logits: the mean of softmax(log_softmax(z)/T) over bin centres.

    T = 1 gives the mean of the predicted distribution, T → 0 its mode. Plain ops (log_softmax, softmax,
    a 1×1 convolution) so that it exports to ONNX. Shapes are always checked (except while tracing);
    `check=True` (the default) also rejects NaN or infinite logits (a host sync; skipped while tracing).
    """
    if not isinstance(T, torch.Tensor) and not (T > 0 and math.isfinite(T)):
        raise ValueError(f"annealed-mean temperature T must be > 0, got {T}")
    points = gamut.points if isinstance(gamut, ABGamut) else gamut
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):  # shape checks would warn in a trace
        points = as_points(gamut)
        if logits.ndim != 4 or logits.shape[1] != points.shape[0]:
            raise ValueError(f"logits must be B×Q×H×W with Q={points.shape[0]}, got {tuple(logits.shape)}")
        if check and not bool(torch.isfinite(logits).all()):
            raise ValueError("logits contain NaN or infinite values")
    logp = torch.log_softmax(logits.float(), dim=1)
    probs = torch.softmax(logp / T, dim=1)
    weight = points.to(probs).t().reshape(2, points.shape[0], 1, 1)
    return F.conv2d(probs, weight)
