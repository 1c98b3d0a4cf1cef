"""The quantised ab gamut (bins on a grid of 10), the empirical colour prior and its rebalancing weights."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import torch

__all__ = ["GRID", "ABGamut", "ColorPrior", "as_points"]

GRID: float = 10.0
_MIN_MIX = 1e-10  # floor of the prior mixture in the rebalancing weights
_AB_LIMIT = 200.0  # |a|, |b| beyond this are not Lab units (sRGB stays within about ±128)

# Zhang et al.'s 313 in-gamut bins: for each a (step 10), the b range (inclusive, step 10).
_ZHANG_B_RANGES: dict[int, tuple[int, int]] = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100), -40: (-40, 100),
    -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100), 10: (-80, 90), 20: (-80, 90),
    30: (-90, 90), 40: (-100, 90), 50: (-100, 80), 60: (-110, 80), 70: (-110, 80), 80: (-110, 70),
    90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def _ab_pairs(ab: torch.Tensor, name: str = "ab") -> torch.Tensor:
    """Accept B×2×H×W, 2×H×W or N×2 ab values and return them as an N×2 float tensor."""
    if not isinstance(ab, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(ab).__name__}")
    if ab.ndim == 4 and ab.shape[1] == 2:
        return ab.detach().permute(0, 2, 3, 1).reshape(-1, 2).float()
    if ab.ndim == 3 and ab.shape[0] == 2:
        return ab.detach().permute(1, 2, 0).reshape(-1, 2).float()
    if ab.ndim == 2 and ab.shape[1] == 2:
        return ab.detach().float()
    raise ValueError(f"{name} must have shape B×2×H×W, 2×H×W or N×2, got {tuple(ab.shape)}")


class ABGamut:
    """A set of Q ab bin centres (Q×2, Lab units); bin q is the q-th row of `.points`."""

    def __init__(self, points: torch.Tensor) -> None:
        """Keep the bin centres as a float Q×2 tensor; ValueError when empty, not Q×2 or not finite."""
        points = torch.as_tensor(points)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 1:
            raise ValueError(f"gamut points must be a non-empty Q×2 tensor, got {tuple(points.shape)}")
        points = points.detach().float()
        if not bool(torch.isfinite(points).all()):
            raise ValueError("gamut points contain NaN or infinite values")
        self.points: torch.Tensor = points
        self._cache: dict = {}  # per (device, k): the nearest-bin lookup table of colorization.color.encode

    def __len__(self) -> int:
        """Q, the number of bins."""
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        """Bin count and device, for logs."""
        return f"ABGamut(Q={len(self)}, device={self.points.device})"

    @property
    def device(self) -> torch.device:
        """Device of the bin centres."""
        return self.points.device

    def to(self, device: torch.device | str) -> ABGamut:
        """The gamut with its points on `device` (self when already there; the copy is cached)."""
        device = torch.device(device)
        if self.points.device == device:
            return self
        key = ("to", device)  # keep the copy, so that its lookup tables are built once per device
        if key not in self._cache:
            self._cache[key] = ABGamut(self.points.to(device))
        return self._cache[key]

    @classmethod
    def zhang(cls) -> ABGamut:
        """The 313 in-gamut bins of Zhang et al. (ECCV 2016), ordered by a then b."""
        pts = [(a, b) for a, (b0, b1) in sorted(_ZHANG_B_RANGES.items()) for b in range(b0, b1 + 1, 10)]
        return cls(torch.tensor(pts, dtype=torch.float32))

    @classmethod
    def from_ab(
        cls, ab_samples: torch.Tensor | Iterable[torch.Tensor], min_count: int = 1, grid: float = GRID
    ) -> ABGamut:
        """The grid bins (centres at multiples of `grid`) that at least `min_count` samples round to.

        `ab_samples` is one tensor (B×2×H×W, 2×H×W or N×2, Lab units) or an iterable of such batches,
        so a whole dataset can be streamed. Bins come out ordered by a then b, like `zhang()`.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        batches = [ab_samples] if isinstance(ab_samples, torch.Tensor) else ab_samples
        span = int(math.ceil(_AB_LIMIT / grid))  # cells -span..span on each axis
        side = 2 * span + 1
        counts = torch.zeros(side * side, dtype=torch.int64)
        for batch in batches:
            pairs = _ab_pairs(batch, "ab_samples")
            if pairs.numel() == 0:
                continue
            if not bool(torch.isfinite(pairs).all()):
                raise ValueError("ab_samples contain NaN or infinite values")
            peak = float(pairs.abs().amax())
            if peak > _AB_LIMIT:
                raise ValueError(f"ab_samples must be in Lab units (|a|, |b| <= {_AB_LIMIT}), got {peak:.4g}")
            cells = torch.round(pairs / grid).long() + span
            flat = cells[:, 0] * side + cells[:, 1]
            counts += torch.bincount(flat, minlength=side * side).cpu()
        keep = (counts >= min_count).nonzero().squeeze(1)  # ascending: ordered by a, then b
        if keep.numel() == 0:
            raise ValueError(f"no ab bin is reached by at least {min_count} samples")
        cells = torch.stack([keep // side, keep % side], 1) - span
        return cls(cells.float() * grid)


def as_points(gamut: ABGamut | torch.Tensor) -> torch.Tensor:
    """The Q×2 bin centres of an ABGamut or of a Q×2 tensor (e.g. a module buffer)."""
    if isinstance(gamut, ABGamut):
        return gamut.points
    if isinstance(gamut, torch.Tensor) and gamut.ndim == 2 and gamut.shape[1] == 2:
        return gamut
    raise ValueError(f"gamut must be an ABGamut or a Q×2 tensor, got {getattr(gamut, 'shape', type(gamut))}")


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
        from colorization.color.encode import nearest_bins  # encode imports this module

        pairs = _ab_pairs(ab)
        if pairs.numel() == 0:
            return self
        gamut = self.gamut.to(pairs.device)
        idx = nearest_bins(pairs, gamut, check=True)
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
