"""Regression objective: L2 (default), L1, smooth L1 or Huber on normalised ab, at the input resolution.

"huber" is Zhang et al.'s (SIGGRAPH 2017) loss: quadratic within `huber_delta` of the truth, linear beyond.
On normalised ab (ab/110) the authors' δ is 1/110, one Lab unit (the default). "smooth_l1" is PyTorch's
smooth L1 with β = 1 in normalised units: with ab/110 inside [-1, 1] it is half the squared error almost
everywhere, not the paper's loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from colorization import checks
from colorization.color import AB_NORM
from colorization.objectives.base import MAIN, ColorizationModule, upsample_to

LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss, "huber": F.huber_loss}
HUBER_DELTA = 1.0 / 110.0  # one Lab unit in normalised ab, as the SIGGRAPH 2017 training


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
        huber_delta: float = HUBER_DELTA,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
        init: str | None = None,
        freeze: int = 0,
        hints: dict | None = None,
    ) -> None:
        super().__init__(net, optimizer, scheduler, perceptual_metrics, rebalanced_auc, init, freeze, hints)
        self.loss_name = checks.choice("loss.module.loss", loss, tuple(LOSSES))
        self.huber_delta = checks.number("loss.delta", huber_delta, "delta > 0", low=0.0, low_open=True)
        self.save_hyperparameters()
        self.net = self.build_net(2)

    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The chosen loss between the (upsampled) prediction and the true normalised ab."""
        ab = batch["ab"]
        pred = upsample_to(output.float(), ab.shape[-2:], self.output_stride)
        if self.loss_name == "huber":
            return F.huber_loss(pred, ab.float(), delta=self.huber_delta)
        return LOSSES[self.loss_name](pred, ab.float())

    def decode(self, output: Tensor, size) -> dict[str, Tensor]:
        """Normalised ab → Lab units at the input size."""
        return {MAIN: upsample_to(output.float(), size, self.output_stride) * AB_NORM}
