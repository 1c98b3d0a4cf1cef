"""The quantised ab gamut: bin centres on a grid of 10 in the ab plane (Zhang et al.'s 313, or a dataset's).

The empirical prior over these bins and its rebalancing weights live in colorization.color.prior; the
nearest-bin search and its lookup tables in colorization.color.nearest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["GRID", "ABGamut", "as_points"]

GRID: float = 10.0
_AB_LIMIT = 200.0  # |a|, |b| beyond this are not Lab units (sRGB stays within about ±128)

# Zhang et al.'s 313 in-gamut bins: for each a (step 10), the b range (inclusive, step 10).
_ZHANG_B_RANGES: dict[int, tuple[int, int]] = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100), -40: (-40, 100),
    -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100), 10: (-80, 90), 20: (-80, 90),
    30: (-90, 90), 40: (-100, 90), 50: (-100, 80), 60: (-110, 80), 70: (-110, 80), 80: (-110, 70),
    90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def ab_pairs(ab: torch.Tensor, name: str = "ab") -> torch.Tensor:
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
        """The gamut with its points on `device` (self when already there).

        Not needed for the nearest-bin search, which builds its lookup table for the pixels' device from
        points anywhere.
        """
        device = torch.device(device)
        return self if self.points.device == device else ABGamut(self.points.to(device))

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
            pairs = ab_pairs(batch, "ab_samples")
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
