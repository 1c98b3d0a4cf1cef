"""Stopping a fit on a signal at a batch boundary, so that last.ckpt holds a whole step.

SIGTERM (what SLURM, submitit and sweep launchers send on preemption or at the time limit) is Lightning's
own: its signal connector notes it and its loops raise SIGTERMException at the next batch end. Ctrl-C
(SIGINT) is this module's `StopOnInterrupt`: the first one is noted the same way and raises `Interrupted`
at the next training or validation batch end (a second one stops at once with KeyboardInterrupt). Either
exception reaches every callback's `on_exception`, where `LastCheckpoint` writes last.ckpt at the current
step, and then the app, which exits with 128 + the signal number (130, 143) and says how to resume.

Under DDP every rank gets the Ctrl-C of a terminal, at slightly different batches: the ranks agree
through an all-reduce every `trainer.log_every_n_steps` batches, so they stop at the same step.
Data-loader workers forked after the fit started inherit the handler and ignore the signal, so the
batches they have prepared are still delivered.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["Interrupted", "StopOnInterrupt", "stop_signal"]


class Interrupted(BaseException):
    """Training was asked to stop by a signal (not an Exception: no `except Exception` may swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")


def stop_signal(err: BaseException) -> int | None:
    """The signal behind an exception that ends a fit on request: SIGTERM for Lightning's SIGTERMException,
    SIGINT for Interrupted(SIGINT), a KeyboardInterrupt, or Lightning's `sys.exit(1)` after one; else None."""
    if isinstance(err, Interrupted):
        return err.signum
    if isinstance(err, SIGTERMException):
        return int(signal.SIGTERM)
    if isinstance(err, KeyboardInterrupt):
        return int(signal.SIGINT)
    if isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt):
        return int(signal.SIGINT)
    return None


class StopOnInterrupt(Callback):
    """The first Ctrl-C stops the fit after the current batch (last.ckpt is written); the second at once."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = False
        self._previous: Any = None
        self._installed_by: int | None = None  # pid of the process that installed the handler
        self._since_check = 0

    # ------------------------------------------------------------------ the handler
    def _handle(self, signum: int, frame: Any) -> None:
        if self._installed_by is None:  # not ours any more (restored): what Python does by default
            raise KeyboardInterrupt
        if os.getpid() != self._installed_by:  # a forked data-loader worker: the main process decides
            return
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        print(
            "interrupt: stopping after this batch and saving last.ckpt (Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def _install(self) -> None:
        if threading.current_thread() is threading.main_thread() and self._installed_by is None:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed_by = os.getpid()

    def _restore(self) -> None:
        if self._installed_by == os.getpid() and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        self._installed_by = None

    # ------------------------------------------------------------------ Lightning hooks
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Take over SIGINT for the training (after Lightning recorded the handlers it restores at the
        end, so that its teardown gives the original back whichever way the fit ends)."""
        self.requested = False
        self._since_check = 0
        self._install()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Give SIGINT back (testing after the fit is stopped by Ctrl-C as usual)."""
        self._restore()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Give SIGINT back when the fit ends on an error or a stop."""
        self._restore()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Raise Interrupted(SIGINT) after the batch whose end saw a Ctrl-C (all ranks together)."""
        requested = self.requested
        if trainer.world_size > 1:
            self._since_check += 1
            if self._since_check < max(1, int(trainer.log_every_n_steps)):
                return
            self._since_check = 0
            requested = bool(trainer.strategy.reduce_boolean_decision(requested, all=False))
        if requested:
            raise Interrupted(signal.SIGINT)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """A long validation stops too (single process; DDP ranks agree in the training batches)."""
        if self.requested and trainer.world_size == 1 and not trainer.sanity_checking:
            raise Interrupted(signal.SIGINT)
