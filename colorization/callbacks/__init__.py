"""What plugs into Lightning across objectives: image grids and ab histograms, the non-finite-loss guard,
the dataset prior for the rebalanced AuC, the run's safety (last.ckpt as the latest state: LastCheckpoint;
a Ctrl-C that stops at a batch boundary: StopOnInterrupt; atomic checkpoint files: AtomicCheckpointIO, a
Trainer plugin), and what W&B dashboards compare runs by (dashboards: best-value summaries, the temperature
curve table, a fixed validation image table; idle with other loggers).

Every objective asks for the guard and the prior itself (`configure_callbacks`), so they also act in a
plain `Trainer`; a configured instance (e.g. `NonFiniteGuard(check_every_n_steps=50)`) takes their place.
"""

from colorization.callbacks.channels_last import ChannelsLast
from colorization.callbacks.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError
from colorization.callbacks.dashboards import TemperatureCurveTable, ValidationImageTable, WandbSummaries
from colorization.callbacks.finite import NonFiniteGuard
from colorization.callbacks.images import (
    ABHistogramLogger,
    ImageGridLogger,
    KeepTestImages,
    ab_histogram,
    log_image,
    make_grid,
)
from colorization.callbacks.interrupt import Interrupted, StopOnInterrupt, stop_signal
from colorization.callbacks.last_checkpoint import LastCheckpoint
from colorization.callbacks.prior import AucPrior

__all__ = [
    "ABHistogramLogger",
    "AtomicCheckpointIO",
    "AucPrior",
    "ChannelsLast",
    "CheckpointWriteError",
    "ImageGridLogger",
    "Interrupted",
    "KeepTestImages",
    "LastCheckpoint",
    "NonFiniteGuard",
    "TemperatureCurveTable",
    "ValidationImageTable",
    "WandbSummaries",
    "StopOnInterrupt",
    "ab_histogram",
    "log_image",
    "make_grid",
    "stop_signal",
]
