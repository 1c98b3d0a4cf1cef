"""The dataset prior for the rebalanced AuC: fetched from the datamodule once, before the first evaluation.

Zhang et al.'s rebalanced AuC weights each pixel by the inverse prior probability of its true colour's bin
(λ = 0 of the rebalancing formula), so rare colours count as much as common ones. The prior is the
training split's, over the module's AuC gamut (Zhang's 313 bins, or a classification module's dataset
gamut); the datamodule computes it once and caches it next to the data. The weights are buffers of the
module, so a checkpoint evaluates the same way without the data; a module that already holds them (from
a checkpoint, or an earlier run of this callback) is left as it is. Without a datamodule that offers
`compute_prior`, the AuC weights stay uniform (val/auc_rebalanced = val/auc) and one warning says so.
"""

from __future__ import annotations

import logging

from lightning.pytorch import Callback, LightningModule, Trainer

from colorization.color import ABGamut

log = logging.getLogger(__name__)

__all__ = ["AucPrior"]


class AucPrior(Callback):
    """Set the module's rebalanced-AuC weights from the datamodule's prior, once, when evaluation nears."""

    def _fetch(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not getattr(pl_module, "rebalanced_auc", False) or pl_module.auc_prior_ready:
            return
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "compute_prior"):
            log.warning(
                "no datamodule with compute_prior: val/auc_rebalanced uses uniform weights (= val/auc)"
            )
        else:
            prior = dm.compute_prior(ABGamut(pl_module.auc_points.cpu()))
            pl_module.set_auc_prior(prior)
        pl_module.auc_prior_ready = True

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Before the first training step (and so before every validation of the fit)."""
        self._fetch(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Before `trainer.validate`."""
        self._fetch(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Before `trainer.test`."""
        self._fetch(trainer, pl_module)
