"""Channels-last memory format: faster convolutions on GPUs with tensor cores (hardware=gpu, ddp, slurm)."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["ChannelsLast"]


class ChannelsLast(Callback):
    """Put the model in channels-last memory format when fitting, testing or predicting starts."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Convert the module's 4-D parameters and buffers to channels-last."""
        pl_module.to(memory_format=torch.channels_last)
