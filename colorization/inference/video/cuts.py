"""Scene cuts: a jump in the lightness histogram between consecutive frames.

Each frame's L (Lab units) is binned into 32 bins over [0, 100]; a cut is declared where the total
variation distance between two consecutive normalised histograms (half their L1 distance, 0 = same
tonal content, 1 = disjoint) exceeds `threshold`. Pans, zooms and grain move a few percent of the mass;
a cut to another shot moves a large share of it. A cut resets the temporal smoothing, so no colour
bleeds from one shot into the next.
"""

from __future__ import annotations

import numpy as np

from colorization.errors import ConfigError

__all__ = ["BINS", "DEFAULT_THRESHOLD", "CutDetector", "histogram_distance"]

BINS = 32
DEFAULT_THRESHOLD = 0.3


def _histogram(L: np.ndarray) -> np.ndarray:
    h, _ = np.histogram(L, bins=BINS, range=(0.0, 100.0))
    return h / max(1, h.sum())


def histogram_distance(L1: np.ndarray, L2: np.ndarray) -> float:
    """Total variation distance (0..1) between the L histograms of two frames."""
    return float(0.5 * np.abs(_histogram(L1) - _histogram(L2)).sum())


class CutDetector:
    """Feed frames' L in order; `step` says whether each one starts a new shot (the first frame does)."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0 < threshold <= 1:
            raise ConfigError(f"cut threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.previous: np.ndarray | None = None

    def step(self, L: np.ndarray) -> bool:
        """True when L starts a shot: the first frame, or a histogram jump above the threshold."""
        h = _histogram(L)
        cut = self.previous is None or 0.5 * np.abs(h - self.previous).sum() > self.threshold
        self.previous = h
        return bool(cut)

    def state(self) -> dict[str, np.ndarray]:
        """What resuming needs: the last histogram."""
        return {} if self.previous is None else {"cut_hist": self.previous}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Continue from `state` (as returned by `state`)."""
        self.previous = state.get("cut_hist")
