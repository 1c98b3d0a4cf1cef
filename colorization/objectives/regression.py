"""Regression objective: L2 (default), L1 or smooth L1 on normalised ab, at the input resolution."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from colorization import checks
from colorization.color import AB_NORM
from colorization.objectives.base import MAIN, ColorizationModule, upsample_to

LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class RegressionModule(ColorizationModule):
    """Predict normalised ab directly; a stride-4 net's output is upsampled bilinearly before the loss.

    Logs the base keys (see colorization.objectives.base).
    """

    objective = "regression"

    def __init__(
        self,
        net: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        loss: str = "l2",
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
    ) -> None:
        super().__init__(net, optimizer, scheduler, perceptual_metrics, rebalanced_auc)
        self.loss_name = checks.choice("loss.module.loss", loss, tuple(LOSSES))
        self.save_hyperparameters()
        self.net = self.build_net(2)

    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The chosen loss between the (upsampled) prediction and the true normalised ab."""
        ab = batch["ab"]
        pred = upsample_to(output.float(), ab.shape[-2:], self.output_stride)
        return LOSSES[self.loss_name](pred, ab.float())

    def decode(self, output: Tensor, size) -> dict[str, Tensor]:
        """Normalised ab → Lab units at the input size."""
        return {MAIN: upsample_to(output.float(), size, self.output_stride) * AB_NORM}
