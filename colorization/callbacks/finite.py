"""The non-finite-loss guard: a NaN or infinite training loss stops the run on every rank, naming its step.

The first global step whose loss (any tensor the training step returns: the GAN returns its generator
and discriminator losses) is not finite is recorded on the device, with no host synchronisation, and
checked on all ranks together every `check_every_n_steps` batches (default: every batch on the CPU, where
a check costs nothing, and Lightning's `log_every_n_steps` on an accelerator), before each validation, at
the end of training and before any checkpoint is written. A checkpoint is never written after a
non-finite loss, nor with non-finite weights, so the last good checkpoint is never overwritten by a
diverged one. The decision goes through the strategy's all-reduce, so no DDP rank is left waiting in a
collective while another one raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor

from colorization.checks import integer
from colorization.errors import NonFiniteLossError

__all__ = ["NonFiniteGuard"]


class NonFiniteGuard(Callback):
    """Stop training with NonFiniteLossError at the first non-finite loss; refuse to save after it."""

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        """check_every_n_steps: batches between checks (None: 1 on the CPU, log_every_n_steps elsewhere)."""
        super().__init__()
        if check_every_n_steps is not None:
            integer("callbacks.non_finite.check_every_n_steps", check_every_n_steps, 1)
        self.check_every_n_steps = check_every_n_steps
        self._first: Tensor | None = None  # first bad global step on this rank (-1: none), on the device
        self._step = 0
        self._since_check = 0

    def _interval(self, trainer: Trainer, pl_module: LightningModule) -> int:
        if self.check_every_n_steps:
            return self.check_every_n_steps
        return 1 if pl_module.device.type == "cpu" else max(1, int(trainer.log_every_n_steps))

    def _flag(self, pl_module: LightningModule) -> Tensor:
        if self._first is None or self._first.device != pl_module.device:
            self._first = torch.full((), -1, dtype=torch.long, device=pl_module.device)
        return self._first

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A new fit starts with a clean flag (a checkpoint of non-finite weights is still refused)."""
        self._flag(pl_module).fill_(-1)
        self._since_check = 0

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Remember the global step this batch trains (the one a NaN of its loss is reported at)."""
        self._step = trainer.global_step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Record a non-finite loss of this batch on the device; check every `_interval()` batches."""
        losses = outputs.values() if isinstance(outputs, Mapping) else [outputs]
        first = self._flag(pl_module)
        for loss in losses:
            if isinstance(loss, Tensor) and loss.is_floating_point():
                bad = ~torch.isfinite(loss.detach()).all()
                first.copy_(torch.where(bad & (first < 0), self._step, first))
        self._since_check += 1
        if self._since_check >= self._interval(trainer, pl_module):
            self._since_check = 0
            self.check(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """No validation of diverged weights."""
        if trainer.state.fn == "fit":
            self.check(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A non-finite loss in the last unchecked batches still stops the run with its message."""
        self.check(trainer, pl_module)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        """Refuse to write after a non-finite loss or with non-finite weights (all ranks decide together)."""
        self.check(
            trainer, pl_module, f"refusing to save a checkpoint at global step {trainer.global_step}: "
        )
        floats = [
            (name, t)
            for name, t in checkpoint.get("state_dict", {}).items()
            if torch.is_tensor(t) and t.is_floating_point()
        ]
        bad = (
            torch.stack([~torch.isfinite(t).all() for _, t in floats])
            if floats
            else torch.zeros(1, dtype=bool)
        )
        local = bool(bad.any())
        if trainer.strategy.reduce_boolean_decision(local, all=False):
            name = floats[int(bad.nonzero()[0])][0] if local else "(on another rank)"
            raise NonFiniteLossError(
                f"refusing to save a checkpoint at global step {trainer.global_step}: "
                f"weight {name} is not finite (training diverged)"
            )

    def check(self, trainer: Trainer, pl_module: LightningModule, context: str = "") -> None:
        """Raise NonFiniteLossError on EVERY rank when any rank recorded a non-finite loss (one host sync).

        The message names the first bad step over all ranks. Called at the same point on every rank.
        """
        first = self._flag(pl_module)
        if not bool(trainer.strategy.reduce_boolean_decision(first >= 0, all=False)):
            return
        steps = pl_module.all_gather(first).reshape(-1)
        step = int(steps[steps >= 0].min())
        raise NonFiniteLossError(
            f"{context}non-finite training loss at global step {step}: training stopped; "
            "lower the learning rate or check the data"
        )
