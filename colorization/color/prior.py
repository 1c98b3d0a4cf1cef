"""The empirical colour prior over a gamut's bins, and the class-rebalancing weights derived from it.

The prior p is the distribution of the training pixels' ab over the Q bins, smoothed with a Gaussian of
sigma (Lab units) as Zhang et al. smooth theirs. Two ways to smooth, `smoothing=`:

- "histogram" (the default; the paper's): the ab histogram itself is smoothed, then read at the bin
  centres: p_q ∝ Σ_pixels exp(−|ab − c_q|² / 2σ²), a kernel density estimate at each centre. Pixels are
  counted on a fine grid (cells of 1 Lab unit, so ab is rounded by at most half a unit) and the smoothed
  grid is evaluated at the centres with the separable kernel: Gₐ · H · G_bᵀ, cheap and exact on the grid.
- "bins": each pixel counts for its exact nearest bin (colorization.color.nearest), and the Q counts are
  smoothed between bin centres, p ∝ K·n with K_qr = exp(−|c_q − c_r|² / 2σ²): the same as the paper's when
  every pixel sits on a bin centre, coarser otherwise (a pixel 4 units from a centre weighs as if on it).
  Either way a bin with four neighbours gathers more than one on the gamut's edge: even counts come out
  up to 1.25× higher inside than at a corner of the gamut.

A precomputed prior (Zhang et al.'s released prior_probs.npy is already smoothed) is loaded with
`ColorPrior.from_probs` or `ColorPrior.load(path.npy)` and used as given: it is never smoothed again.

The rebalancing weights of the loss are w ∝ ((1 − λ)p + λ/Q)^−1 with E_p[w] = 1: λ = 0 is the pure inverse
prior (the strongest rebalancing, rare colours weigh most), λ = 1 gives uniform weights (no rebalancing);
Zhang et al. use λ = 0.5.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from colorization.color.gamut import ABGamut, ab_pairs, as_points
from colorization.color.nearest import nearest_bins

__all__ = ["SMOOTHINGS", "ColorPrior"]

SMOOTHINGS = ("histogram", "bins")
_MIN_MIX = 1e-10  # floor of the prior mixture in the rebalancing weights
_SPAN = 200  # the fine histogram covers ab in [-200, 200] (validate_ab's Lab range), one cell per unit
_SIDE = 2 * _SPAN + 1
_VERSION = 2


class ColorPrior:
    """Empirical distribution p over a gamut's bins, accumulated batch by batch, smoothed over the ab plane.

    `update(ab)` adds pixels: their nearest-bin counts (`counts`, Q) and, for the paper's smoothing, their
    fine ab histogram; `finalize()` smooths with a Gaussian of `sigma` (Lab units) as `smoothing` says
    (see the module docstring) and normalises. sigma = 0 uses the nearest-bin counts unsmoothed.
    """

    def __init__(
        self, gamut: ABGamut | torch.Tensor, sigma: float = 5.0, smoothing: str = "histogram"
    ) -> None:
        """An empty histogram over gamut's bins, to be smoothed with a Gaussian of sigma (Lab units)."""
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        self.gamut = gamut if isinstance(gamut, ABGamut) else ABGamut(as_points(gamut))
        self.sigma = float(sigma)
        self.smoothing = smoothing
        self.given = False  # probabilities set from outside (from_probs): never smoothed again
        self.counts = torch.zeros(len(self.gamut), dtype=torch.float64)
        self.histogram = torch.zeros(_SIDE * _SIDE, dtype=torch.float64)  # cell (a, b) at (a+200)·401 + b+200
        self._probs: torch.Tensor | None = None

    def __len__(self) -> int:
        """Q, the number of bins of the gamut."""
        return len(self.gamut)

    def __repr__(self) -> str:
        """Bin count, pixels seen and smoothing, for logs."""
        how = "given" if self.given else f"sigma={self.sigma:g}, smoothing={self.smoothing}"
        return f"ColorPrior(Q={len(self)}, pixels={int(self.counts.sum())}, {how})"

    def update(self, ab: torch.Tensor) -> ColorPrior:
        """Add a batch of ab values (B×2×H×W, 2×H×W or N×2, Lab units) to the histogram; returns self."""
        if self.given:
            raise ValueError("this prior was given as probabilities (from_probs): it takes no pixels")
        pairs = ab_pairs(ab)
        if pairs.numel() == 0:
            return self
        idx = nearest_bins(pairs, self.gamut, check=True)  # on the pixels' device; validates the range
        self.counts += torch.bincount(idx, minlength=len(self)).to("cpu", torch.float64)
        if self.smoothing == "histogram":
            cells = torch.round(pairs).long() + _SPAN
            flat = cells[:, 0] * _SIDE + cells[:, 1]
            self.histogram += torch.bincount(flat, minlength=_SIDE * _SIDE).to("cpu", torch.float64)
        self._probs = None
        return self

    def _smoothed_histogram_at_centres(self) -> torch.Tensor:
        """Σ_cells H(a, b) · exp(−((a − a_q)² + (b − b_q)²) / 2σ²) for every bin centre (a_q, b_q)."""
        grid = torch.arange(-_SPAN, _SPAN + 1, dtype=torch.float64)
        pts = self.gamut.points.to("cpu", torch.float64)
        g_a = torch.exp(-(grid[None, :] - pts[:, :1]).square() / (2.0 * self.sigma**2))  # Q×401
        g_b = torch.exp(-(grid[None, :] - pts[:, 1:]).square() / (2.0 * self.sigma**2))
        return ((g_a @ self.histogram.view(_SIDE, _SIDE)) * g_b).sum(1)

    def finalize(self) -> ColorPrior:
        """Smooth and normalise the accumulated counts into `.probs`; returns self (so calls chain)."""
        if self.given:
            return self
        total = float(self.counts.sum())
        if total <= 0:
            raise ValueError("ColorPrior has seen no pixels: call update() with some ab batches first")
        p = self.counts / total
        if self.sigma > 0 and self.smoothing == "histogram":
            p = self._smoothed_histogram_at_centres()
            if not float(p.sum()) > 0:  # every pixel farther than ~40σ from every centre
                raise ValueError(f"no pixel lies within reach of the gamut's bins at sigma={self.sigma:g}")
            p = p / p.sum()
        elif self.sigma > 0:
            pts = self.gamut.points.to("cpu", torch.float64)
            kernel = torch.exp(-torch.cdist(pts, pts).square() / (2.0 * self.sigma**2))
            p = kernel @ p
            p = p / p.sum()
        self._probs = p.float()
        return self

    @classmethod
    def from_probs(cls, gamut: ABGamut | torch.Tensor, probs: torch.Tensor | np.ndarray) -> ColorPrior:
        """A prior given as Q probabilities (e.g. Zhang et al.'s prior_probs.npy), used as is: no smoothing.

        The values are normalised to sum to 1; they must be finite, non-negative and not all zero.
        """
        prior = cls(gamut, sigma=0.0)
        p = torch.as_tensor(np.asarray(probs), dtype=torch.float64).reshape(-1)
        if p.numel() != len(prior):
            raise ValueError(f"the prior has {p.numel()} values, the gamut {len(prior)} bins")
        if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or not float(p.sum()) > 0:
            raise ValueError("prior probabilities must be finite, >= 0 and not all zero")
        prior.given = True
        prior.counts = p.clone()
        prior._probs = (p / p.sum()).float()
        return prior

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
        gamut = gamut if isinstance(gamut, ABGamut) else ABGamut(as_points(gamut))
        return cls.from_probs(gamut, torch.ones(len(gamut)))

    def state_dict(self) -> dict:
        """Plain tensors and numbers that describe the prior (the fine histogram sparsely)."""
        cells = self.histogram.nonzero().squeeze(1)
        return {
            "points": self.gamut.points.cpu(),
            "counts": self.counts.clone(),
            "probs": self.probs.cpu(),
            "sigma": self.sigma,
            "smoothing": self.smoothing,
            "given": self.given,
            "cells": cells,
            "cell_counts": self.histogram[cells],
            "version": _VERSION,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the prior (points, counts, probs, sigma, smoothing, histogram) to `path` with torch.save."""
        torch.save(self.state_dict(), os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, gamut: ABGamut | None = None) -> ColorPrior:
        """Read a prior written by `save` (.pt), or Q probabilities saved with numpy (.npy) over `gamut`
        (default: Zhang's 313 bins, the order of their released prior_probs.npy), used without smoothing.

        Files of version 1 (before the paper's smoothing existed) load as smoothing="bins".
        """
        if Path(path).suffix.lower() == ".npy":
            try:
                probs = np.load(os.fspath(path), allow_pickle=False)
            except FileNotFoundError:
                raise
            except Exception as exc:  # noqa: BLE001 - not a numpy file
                raise ValueError(f"{path} is not a numpy array of prior probabilities ({exc})") from exc
            return cls.from_probs(gamut if gamut is not None else ABGamut.zhang(), probs)
        try:
            state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # a corrupt or foreign file
            raise ValueError(f"{path} is not a saved ColorPrior ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict) or not {"points", "counts", "probs", "sigma"} <= set(state):
            raise ValueError(f"{path} is not a saved ColorPrior")
        prior = cls(ABGamut(state["points"]), float(state["sigma"]), str(state.get("smoothing", "bins")))
        prior.given = bool(state.get("given", False))
        prior.counts = state["counts"].to(torch.float64)
        if "cells" in state:
            prior.histogram[state["cells"].long()] = state["cell_counts"].to(torch.float64)
        prior._probs = state["probs"].float()
        return prior
