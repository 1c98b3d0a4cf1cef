"""pix2pix objective: conditional GAN over (L, ab) pairs + λ_L1·L1, with manual optimisation of G and D.

Logged keys: the base keys (val/loss is the L1 on normalised ab), and per training step
``train/loss`` (generator total), ``train/g_l1``, ``train/g_adv``, ``train/d_loss``, ``train/d_real``,
``train/d_fake`` (mean discriminator outputs, logits), ``train/adversarial`` (0 while pretraining G on L1).
"""

from __future__ import annotations

from typing import Any

import hydra.utils
import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.errors import ConfigError
from colorization.objectives.base import ColorizationModule, plain_spec, upsample_to
from colorization.objectives.regression import RegressionModule

GAN_OPTIMIZER: dict[str, Any] = {
    "_target_": "torch.optim.Adam",
    "_partial_": True,
    "lr": 2e-4,
    "betas": [0.5, 0.999],
}
DEFAULT_DISCRIMINATOR: dict[str, Any] = {"_target_": "colorization.nets.PatchGAN", "in_channels": 3}


def _no_closure() -> None:
    """The closure of an optimiser step whose backward has already run (manual optimisation)."""


class GANModule(ColorizationModule):
    """Generator G: L_n → normalised ab (2 channels); discriminator D: cat(L_n, ab_n) → patch logits.

    The first `pretrain_steps` generator steps use λ_L1·L1 alone (D is not trained); afterwards each
    step updates D on real vs detached fake pairs, then G on adversarial + λ_L1·L1.
    gan_mode "vanilla" uses BCE with logits, "lsgan" the least-squares loss.
    One training batch is one global step (so Trainer(max_steps=N) runs N batches): D's optimiser step goes
    through the strategy (precision plugin included) but not through Lightning's step counter. `g_steps`
    counts generator steps (a Python int, stored in the checkpoint, so resuming keeps the phase right).
    """

    def __init__(
        self,
        net: dict,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        discriminator: dict | None = None,
        d_optimizer: dict | None = None,
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        pretrain_steps: int = 0,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
    ) -> None:
        super().__init__(
            net,
            optimizer if optimizer is not None else GAN_OPTIMIZER,
            scheduler,
            perceptual_metrics,
            rebalanced_auc,
        )
        if gan_mode not in ("vanilla", "lsgan"):
            raise ConfigError(f"gan_mode must be 'vanilla' or 'lsgan', got {gan_mode!r}")
        if lambda_l1 < 0 or pretrain_steps < 0:
            raise ConfigError("lambda_l1 and pretrain_steps must be >= 0")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.lambda_l1, self.gan_mode, self.pretrain_steps = float(lambda_l1), gan_mode, int(pretrain_steps)
        self.d_optimizer_spec = plain_spec(d_optimizer) or dict(GAN_OPTIMIZER)
        self.net = self.build_net(2, final_activation="tanh")  # pix2pix's bounded generator
        if self.output_stride != 1:
            raise ConfigError(
                f"the cGAN needs a full-resolution generator (output_stride 1); "
                f"{type(self.net).__name__} has output_stride {self.output_stride}"
            )
        spec = plain_spec(discriminator) or dict(DEFAULT_DISCRIMINATOR)
        try:
            self.discriminator = hydra.utils.instantiate(spec, _convert_="all")
        except Exception as err:
            raise ConfigError(f"cannot build discriminator {spec!r}: {err.__cause__ or err}") from err
        # Generator steps taken: a Python counter (reading a device buffer each step would sync the host).
        self.g_steps = 0

    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """L1 between the (upsampled) generator output and the true normalised ab."""
        ab = batch["ab"].float()
        return F.l1_loss(upsample_to(output.float(), ab.shape[-2:], self.output_stride), ab)

    decode = RegressionModule.decode

    def gan_loss(self, logits: Tensor, real: bool) -> Tensor:
        """Vanilla (BCE with logits) or least-squares GAN loss against the all-real / all-fake label."""
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.gan_mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One D update (after pretraining) then one G update, with manual optimisation."""
        opt_g, opt_d = self.optimizers()
        L, ab = batch["L"], batch["ab"].float()
        n = L.shape[0]
        fake = upsample_to(self.net(L).float(), ab.shape[-2:], self.output_stride)
        l1 = F.l1_loss(fake, ab)
        adversarial = self.g_steps >= self.pretrain_steps
        logs = {"train/g_l1": l1.detach(), "train/adversarial": float(adversarial)}
        if adversarial:
            real_pair, fake_pair = torch.cat([L, ab], 1), torch.cat([L, fake.detach()], 1)
            self.discriminator.requires_grad_(True)
            d_real, d_fake = self.discriminator(real_pair), self.discriminator(fake_pair)
            d_loss = 0.5 * (self.gan_loss(d_real, True) + self.gan_loss(d_fake, False))
            self.record_finite(d_loss)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            # Through the strategy and its precision plugin (gradient unscaling, clipping hooks), but not
            # through LightningOptimizer.step, whose progress counter would add a 2nd global step per batch.
            self.trainer.strategy.optimizer_step(opt_d.optimizer, _no_closure)
            self.discriminator.requires_grad_(False)
            g_adv = self.gan_loss(self.discriminator(torch.cat([L, fake], 1)), True)
            logs.update(
                {
                    "train/d_loss": d_loss.detach(),
                    "train/d_real": d_real.detach().mean(),
                    "train/d_fake": d_fake.detach().mean(),
                    "train/g_adv": g_adv.detach(),
                }
            )
            g_loss = g_adv + self.lambda_l1 * l1
        else:
            g_loss = self.lambda_l1 * l1
        self.record_finite(g_loss)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.discriminator.requires_grad_(True)
        self.g_steps += 1
        self.log("train/loss", g_loss.detach(), prog_bar=True, batch_size=n)
        self.log_dict(logs, batch_size=n)
        return g_loss.detach()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The base checks, plus the generator step count (the pretraining phase survives a resume)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_g_steps"] = self.g_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the generator step count (older checkpoints kept it as a `g_steps` buffer)."""
        old = checkpoint.get("state_dict", {}).pop("g_steps", None)
        self.g_steps = int(checkpoint.get("gan_g_steps", old if old is not None else 0))
        super().on_load_checkpoint(checkpoint)

    def configure_optimizers(self) -> Any:
        """G and D optimisers (Adam 2e-4, β=(0.5, 0.999) by default) and optional schedulers."""
        opt_g = self.make_optimizer(self.net.parameters())
        opt_d = self.make_optimizer(self.discriminator.parameters(), self.d_optimizer_spec)
        sched_g, sched_d = self.make_scheduler(opt_g), self.make_scheduler(opt_d)
        if sched_g is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], [sched_g, sched_d]

    def on_train_epoch_end(self) -> None:
        """Step the schedulers once per epoch (manual optimisation does not); plateau ones on val/loss.

        Validation of the epoch has run by now, so callback_metrics holds this epoch's val/loss.
        """
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        value = self.trainer.callback_metrics.get("val/loss")
        for s in schedulers if isinstance(schedulers, list) else [schedulers]:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None:
                    s.step(value)
            else:
                s.step()
