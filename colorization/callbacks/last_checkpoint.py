"""last.ckpt as the latest state of a run: the checkpoint a resumed run continues from.

Lightning's `ModelCheckpoint(save_last=True)` rewrites last.ckpt only when it saves a top-k checkpoint in
the same step, so after the monitored metric's peak "last" stays at the best step and a resumed run goes
back there. `LastCheckpoint` owns last.ckpt alone (the best-k `ModelCheckpoint` keeps `save_last: false`)
and writes it:
- at the end of every validation of the fit,
- every `every_n_train_steps` optimiser steps (null: never in between),
- at the end of fitting,
- when the fit is stopped by a signal (SIGTERM, Ctrl-C: colorization.callbacks.interrupt) or by a
  preemption handler's SystemExit (submitit), at the step it reached.
It never writes twice at one global step, nor before the first step, during the sanity check or under
`fast_dev_run`, nor after an error (the non-finite-loss guard refuses diverged weights anyway). It is a
ModelCheckpoint (save_top_k 0), so Lightning's `ckpt_path="last"` and W&B's `log_model` find its file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from colorization import checks
from colorization.callbacks.interrupt import Interrupted
from colorization.errors import ColorizationError

__all__ = ["LastCheckpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Write DIRPATH/last.ckpt at every validation, every N steps, at the end and on interruption."""

    def __init__(
        self, dirpath: str | None = None, every_n_train_steps: int | None = 500, verbose: bool = False
    ) -> None:
        """dirpath: the checkpoint folder (None: Lightning's default); every_n_train_steps: optimiser steps
        between writes besides validations (None: none); verbose: one line per write (its step and why)."""
        if every_n_train_steps is not None:
            checks.integer("callbacks.last_checkpoint.every_n_train_steps", every_n_train_steps, 1)
        super().__init__(
            dirpath=dirpath, save_last=True, save_top_k=0, verbose=bool(verbose), enable_version_counter=False
        )
        self.every_n_train_steps = every_n_train_steps
        self.saved_step: int | None = None  # global step of the last write in this fit (None: none yet)
        self.failure: str | None = None  # why the write on interruption failed, if it did

    @property
    def state_key(self) -> str:
        """Distinct from any ModelCheckpoint's key (this callback keeps no state in checkpoints)."""
        return self._generate_state_key(last_checkpoint=True)

    def state_dict(self) -> dict[str, Any]:
        """Nothing to restore: the file is rewritten from the resumed state."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore (and no "dirpath has changed" warning when a run resumes elsewhere)."""

    # ------------------------------------------------------------------ Lightning hooks
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A new fit has written nothing yet."""
        self.saved_step = None
        self.failure = None
        self._last_global_step_saved = -1

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Every `every_n_train_steps` optimiser steps."""
        every = self.every_n_train_steps
        if every and trainer.global_step % every == 0:
            self.write_last(trainer, f"every {every} steps")

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Not at epoch ends as such (validations, every N steps and the end of fitting cover them)."""

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After every validation of the fit, also when the step was just written by `every_n_train_steps`:
        the validation changed the callbacks' state (the best checkpoint, the early-stopping count)."""
        self.write_last(trainer, "validation", again=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """At the end of fitting."""
        self.write_last(trainer, "end of fitting")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """On a stop by a signal (or a preemption handler's SystemExit), at the step reached; a failed write
        is reported (self.failure) and does not hide the stop."""
        if not isinstance(exception, Interrupted | SystemExit):
            return
        try:
            self.write_last(trainer, "interrupted")
        except ColorizationError as err:
            self.failure = str(err)
            print(f"last.ckpt not saved: {err}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ the write
    def write_last(self, trainer: Trainer, why: str, again: bool = False) -> None:
        """Write last.ckpt at the current global step unless there is nothing new to write (`again`: also
        when this step was written before)."""
        if (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.global_step == 0
            or (self._last_global_step_saved == trainer.global_step and not again)
        ):
            return
        filepath = os.path.join(str(self.dirpath), self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        self.last_model_path = filepath
        self._save_checkpoint(trainer, filepath)
        self.saved_step = trainer.global_step
        if self.verbose and trainer.is_global_zero:
            print(f"last.ckpt: global step {trainer.global_step} ({why}) -> {filepath}", flush=True)
