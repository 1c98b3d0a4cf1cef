"""The empirical colour prior over a gamut's bins, and the class-rebalancing weights derived from it.

Each training pixel counts for its exact nearest bin (colorization.color.nearest's search); the histogram
is then smoothed with a Gaussian of sigma between bin centres, as Zhang et al. smooth their prior, and
normalised to p. The rebalancing weights of the loss are w ∝ ((1 − λ)p + λ/Q)^−1 with E_p[w] = 1:
λ = 0 is the pure inverse prior (the strongest rebalancing, rare colours weigh most), λ = 1 gives
uniform weights (no rebalancing); Zhang et al. use λ = 0.5.
"""

from __future__ import annotations

import os

import torch

from colorization.color.gamut import ABGamut, ab_pairs, as_points
from colorization.color.nearest import nearest_bins

__all__ = ["ColorPrior"]

_MIN_MIX = 1e-10  # floor of the prior mixture in the rebalancing weights


class ColorPrior:
    """Empirical distribution p over a gamut's bins, accumulated batch by batch, smoothed over the ab plane.

    Each pixel counts for its nearest bin (exactly); `finalize()` smooths the histogram with a Gaussian
    of `sigma` (Lab units) between bin centres, as Zhang et al. smooth their prior, and normalises it.
    """

    def __init__(self, gamut: ABGamut | torch.Tensor, sigma: float = 5.0) -> None:
        """An empty histogram over gamut's bins, to be smoothed with a Gaussian of sigma (Lab units)."""
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.gamut = gamut if isinstance(gamut, ABGamut) else ABGamut(as_points(gamut))
        self.sigma = float(sigma)
        self.counts = torch.zeros(len(self.gamut), dtype=torch.float64)
        self._probs: torch.Tensor | None = None

    def __len__(self) -> int:
        """Q, the number of bins of the gamut."""
        return len(self.gamut)

    def __repr__(self) -> str:
        """Bin count, pixels seen and smoothing, for logs."""
        return f"ColorPrior(Q={len(self)}, pixels={int(self.counts.sum())}, sigma={self.sigma:g})"

    def update(self, ab: torch.Tensor) -> ColorPrior:
        """Add a batch of ab values (B×2×H×W, 2×H×W or N×2, Lab units) to the histogram; returns self."""
        pairs = ab_pairs(ab)
        if pairs.numel() == 0:
            return self
        idx = nearest_bins(pairs, self.gamut, check=True)  # on the pixels' device
        self.counts += torch.bincount(idx, minlength=len(self)).to("cpu", torch.float64)
        self._probs = None
        return self

    def finalize(self) -> ColorPrior:
        """Smooth and normalise the accumulated counts into `.probs`; returns self (so calls chain)."""
        total = float(self.counts.sum())
        if total <= 0:
            raise ValueError("ColorPrior has seen no pixels: call update() with some ab batches first")
        p = self.counts / total
        if self.sigma > 0:
            pts = self.gamut.points.to("cpu", torch.float64)
            kernel = torch.exp(-torch.cdist(pts, pts).square() / (2.0 * self.sigma**2))
            p = kernel @ p
            p = p / p.sum()
        self._probs = p.float()
        return self

    @property
    def probs(self) -> torch.Tensor:
        """The prior p (Q-vector summing to 1), finalised on first use."""
        if self._probs is None:
            self.finalize()
        assert self._probs is not None
        return self._probs

    def weights(self, lam: float = 0.5) -> torch.Tensor:
        """Rebalancing weights w ∝ ((1 − λ)·p + λ/Q)^−1, scaled so that Σ p·w = 1.

        λ = 0: the inverse prior (strongest rebalancing); λ = 1: every weight is 1 (no rebalancing).

        The mixture is floored at 1e-10 so that bins the data never reach (p ≈ 0 at λ ≈ 0) get a large
        but finite weight instead of an infinite one.
        """
        if not 0.0 <= float(lam) <= 1.0:
            raise ValueError(f"rebalancing lambda must lie in [0, 1], got {lam}")
        p = self.probs.double()
        mix = ((1.0 - lam) * p + lam / len(self)).clamp_min(_MIN_MIX)
        w = 1.0 / mix
        w = w / (p * w).sum()
        return w.float()

    @classmethod
    def uniform(cls, gamut: ABGamut | torch.Tensor) -> ColorPrior:
        """The uniform prior (p = 1/Q): rebalancing with it is a no-op, every weight is 1."""
        prior = cls(gamut, sigma=0.0)
        prior.counts = torch.ones(len(prior), dtype=torch.float64)
        prior._probs = torch.full((len(prior),), 1.0 / len(prior))
        return prior

    def state_dict(self) -> dict:
        """Plain tensors and numbers that describe the prior."""
        return {
            "points": self.gamut.points.cpu(),
            "counts": self.counts.clone(),
            "probs": self.probs.cpu(),
            "sigma": self.sigma,
            "version": 1,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the prior (points, counts, probs, sigma) to `path` with torch.save."""
        torch.save(self.state_dict(), os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ColorPrior:
        """Read a prior written by `save`."""
        try:
            state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # a corrupt or foreign file
            raise ValueError(f"{path} is not a saved ColorPrior ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict) or not {"points", "counts", "probs", "sigma"} <= set(state):
            raise ValueError(f"{path} is not a saved ColorPrior")
        prior = cls(ABGamut(state["points"]), sigma=float(state["sigma"]))
        prior.counts = state["counts"].to(torch.float64)
        prior._probs = state["probs"].float()
        return prior
