"""Colorize a film's frames in order: batched prediction, scene cuts, temporal stabilisation.

Per batch of frames: Lab at full resolution (colorization.imaging), L resized to the net's size and
predicted in one backend call (the Colorizer's preprocessing, `net_batch`); then frame by frame, in order:
the cut detector may reset the stabiliser, the stabiliser smooths the prediction (logits or ab), the
result is decoded to ab, resized back and joined with the frame's own full-resolution L. So each output
frame's lightness is its input's and only chroma comes from the network, as for photos.

Classification models run through the torch backend give their bin logits (`Predictor.logits`), decoded
with the objective's annealed mean (colorization.objectives.classification.annealed_decode); other models
and ONNX files give ab, which is then what is smoothed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from colorization import imaging
from colorization.errors import ColorizationError, ConfigError
from colorization.inference.colorizer import Colorizer
from colorization.inference.video.cuts import DEFAULT_THRESHOLD, CutDetector
from colorization.inference.video.stabilise import make_stabiliser

__all__ = ["FramePipeline", "Predictor"]


class Predictor:
    """The network's raw output for a batch (bin logits when the model has them, else ab) and its decoding."""

    def __init__(self, colorizer: Colorizer, want_logits: bool = True) -> None:
        self.colorizer = colorizer
        model = getattr(colorizer.backend, "model", None)
        self.model = model
        self.logits = bool(
            want_logits
            and model is not None
            and all(hasattr(model, k) for k in ("net", "points", "temperature"))
        )

    def raw(self, L_n: np.ndarray) -> np.ndarray:
        """Logits (N×Q×h'×w') or ab (N×2×h×w, Lab units) for normalised L at the net's size."""
        if not self.logits:
            ab = np.asarray(self.colorizer.backend(L_n), dtype=np.float32)
            if ab.ndim != 4 or ab.shape[1] != 2 or ab.shape[2:] != L_n.shape[2:]:
                raise ColorizationError(f"the model returned shape {tuple(ab.shape)}, expected N×2×h×w")
            return ab
        torch = self.colorizer.backend.torch
        from colorization.objectives.base import net_forward

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(L_n, dtype=np.float32)).to(
                self.colorizer.backend.device
            )
            return net_forward(self.model.net, x).float().cpu().numpy()

    def decode(self, raw: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
        """ab (N×2×h×w, Lab units) from `raw`: the annealed mean of logits, or ab as it is."""
        if not self.logits:
            return raw
        torch = self.colorizer.backend.torch
        from colorization.objectives.classification import annealed_decode

        m = self.model
        with torch.inference_mode():
            z = torch.from_numpy(np.ascontiguousarray(raw)).to(self.colorizer.backend.device)
            ab = annealed_decode(z, m.points, m.temperature, size_hw, m.output_stride, check=False)
            return ab.float().cpu().numpy()


class FramePipeline:
    """Colorize frames in order with `mode` stabilisation; `state`/`load` carry it across chunks."""

    def __init__(
        self,
        colorizer: Colorizer,
        mode: str = "flow",
        batch_size: int = 8,
        smoothing: float | None = None,
        cut_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        self.colorizer = colorizer
        self.batch_size = int(batch_size)
        self.stabiliser = make_stabiliser(mode, smoothing)
        self.predictor = Predictor(colorizer, want_logits=True)
        self.smooth_raw = self.stabiliser.wants_logits or not self.predictor.logits
        self.cuts = CutDetector(cut_threshold)
        self.cut_frames: list[int] = []  # indices (counted from the pipeline's start) where shots start
        self.seen = 0

    def state(self) -> dict[str, np.ndarray]:
        """The stabiliser's and the cut detector's memory, and the frame count, as arrays."""
        return {**self.stabiliser.state(), **self.cuts.state(), "seen": np.array(self.seen)}

    def load(self, state: dict[str, Any]) -> None:
        """Continue after the frames that produced `state`."""
        self.stabiliser.load(state)
        self.cuts.load(state)
        self.seen = int(state.get("seen", 0))

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Colorized uint8 RGB frames for RGB frames (uint8 or float in [0, 1], H×W×3), in order."""
        batch: list[np.ndarray] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == self.batch_size:
                yield from self._batch(batch)
                batch = []
        if batch:
            yield from self._batch(batch)

    def _batch(self, frames: list[np.ndarray]) -> Iterator[np.ndarray]:
        L = np.stack([imaging.rgb_to_lab(f)[..., 0] for f in frames])
        L_n = self.colorizer.net_batch(L)
        size = L_n.shape[2:]
        raw = self.predictor.raw(L_n)
        small_L = L_n[:, 0] * np.float32(imaging.L_NORM) + np.float32(imaging.L_CENT)
        if self.smooth_raw:  # smooth what the net gave (logits, or ab), then decode
            out = np.stack([self._step(small_L[i], raw[i]) for i in range(len(frames))])
            ab = self.predictor.decode(out, size)
        else:  # decode the logits, then smooth ab
            ab = self.predictor.decode(raw, size)
            ab = np.stack([self._step(small_L[i], ab[i]) for i in range(len(frames))])
        for i in range(len(frames)):
            full = self.colorizer.full_ab(ab[i], L.shape[1:])
            yield imaging.to_uint8(self.colorizer.compose_rgb(L[i], full))

    def _step(self, L: np.ndarray, pred: np.ndarray) -> np.ndarray:
        if self.cuts.step(L):
            self.stabiliser.reset()
            self.cut_frames.append(self.seen)
        self.seen += 1
        return self.stabiliser.step(L, pred)
