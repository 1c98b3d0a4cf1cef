"""Temporal stabilisation of predicted chroma, frame by frame, at the network's resolution.

- ``none``: every frame as predicted (what a photo colorizer does to a film, flicker included).
- ``ema``: exponential smoothing, out_t = s·out_{t-1} + (1 - s)·pred_t, of the network's bin logits for a
  classification model (before the annealed mean, so the smoothed distribution is decoded once) and of ab
  otherwise. Cheap, but it ignores motion: colour trails behind moving things.
- ``flow``: the previous output's ab is warped to the current frame by Farneback flow on L
  (colorization.inference.video.flow) and blended, s·warped + (1 - s)·pred, where the flow is reliable;
  occluded or uncovered pixels take the fresh prediction. Colour then follows the motion.
`reset` (called at each scene cut) forgets the past, so the first frame of a shot is the per-frame
prediction exactly. Work happens at the net's size (64 to 256 px), where the chroma is predicted, so it
costs little next to the full-resolution colour conversion.
"""

from __future__ import annotations

import numpy as np

from colorization.errors import ConfigError
from colorization.inference.video import flow as dense

__all__ = ["DEFAULT_SMOOTHING", "MODES", "Stabiliser", "make_stabiliser"]

MODES = ("none", "ema", "flow")
DEFAULT_SMOOTHING = {"none": 0.0, "ema": 0.5, "flow": 0.7}
"""The weight s of the past per mode (--smoothing overrides)."""


class Stabiliser:
    """Per-frame: `step` returns the prediction unchanged. Subclasses keep a past."""

    mode = "none"
    wants_logits = False  # smooth the logits (when the model has them) rather than ab

    def __init__(self, smoothing: float = 0.0) -> None:
        if not 0 <= smoothing < 1:
            raise ConfigError(f"--smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)
        self.past: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past (a scene cut)."""
        self.past = None

    def step(self, L: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """The stabilised prediction for a frame with lightness L (Lab units, h×w) and prediction C×h×w."""
        return pred

    def state(self) -> dict[str, np.ndarray]:
        """What resuming needs."""
        return {} if self.past is None else {"past": self.past}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Continue from `state`."""
        self.past = state.get("past")


class EmaStabiliser(Stabiliser):
    """Exponential moving average of logits (classification) or ab."""

    mode = "ema"
    wants_logits = True

    def step(self, L: np.ndarray, pred: np.ndarray) -> np.ndarray:
        s = np.float32(self.smoothing)
        out = pred if self.past is None else s * self.past + (1 - s) * pred
        self.past = out.astype(np.float32, copy=False)
        return out


class FlowStabiliser(Stabiliser):
    """Motion-compensated recursive blend of ab, fresh prediction where the flow is unreliable."""

    mode = "flow"

    def __init__(self, smoothing: float = 0.0) -> None:
        super().__init__(smoothing)
        self.past_L: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self.past_L = None

    def step(self, L: np.ndarray, pred: np.ndarray) -> np.ndarray:
        L8 = dense.lightness8(L)
        if self.past is None or self.past_L is None:
            out = pred
        else:
            back = dense.flow(self.past_L, L8)
            fwd = dense.flow(L8, self.past_L)
            weight = np.float32(self.smoothing) * dense.reliable(back, fwd).astype(np.float32)
            out = weight * dense.warp(self.past, back) + (1 - weight) * pred
        self.past, self.past_L = out.astype(np.float32, copy=False), L8
        return out

    def state(self) -> dict[str, np.ndarray]:
        state = super().state()
        if self.past_L is not None:
            state["past_L"] = self.past_L
        return state

    def load(self, state: dict[str, np.ndarray]) -> None:
        super().load(state)
        self.past_L = state.get("past_L")


def make_stabiliser(mode: str, smoothing: float | None = None) -> Stabiliser:
    """The stabiliser of a --stabilise mode, at its default smoothing unless given."""
    kinds = {"none": Stabiliser, "ema": EmaStabiliser, "flow": FlowStabiliser}
    if mode not in kinds:
        raise ConfigError(f"--stabilise {mode!r} is not a mode; allowed values: {', '.join(MODES)}")
    s = DEFAULT_SMOOTHING[mode] if smoothing is None else smoothing
    return kinds[mode](0.0 if mode == "none" else s)
