"""pix2pix objective: conditional GAN over (L, ab) pairs + λ_L1·L1, with manual optimisation of G and D.

Logged keys: the base keys (val/loss is the L1 on normalised ab), and per training step
``train/loss`` (generator total), ``train/g_l1``, ``train/g_adv``, ``train/d_loss``, ``train/d_real``,
``train/d_fake`` (mean discriminator outputs, logits), ``train/adversarial`` (0 while pretraining G on L1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from colorization import checks, specs
from colorization.errors import ConfigError
from colorization.objectives.base import ColorizationModule, upsample_to
from colorization.objectives.optimization import check_optimizer, make_optimizer, make_scheduler
from colorization.objectives.regression import RegressionModule

GAN_MODES = ("vanilla", "lsgan")


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

    objective = "gan"

    optimizer_key = "loss.g_optimizer"

    def __init__(
        self,
        net: dict,
        optimizer: dict,
        discriminator: dict,
        d_optimizer: dict,
        scheduler: dict | None = None,
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        pretrain_steps: int = 0,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
        init: str | None = None,
        freeze: int = 0,
        hints: dict | None = None,
    ) -> None:
        super().__init__(net, optimizer, scheduler, perceptual_metrics, rebalanced_auc, init, freeze, hints)
        if self.output_stride != 1:
            raise ConfigError(
                f"{self.net_cls.__name__} cannot serve the cGAN: it predicts at 1/{self.output_stride} "
                "resolution but the discriminator judges full-resolution (L, ab) pairs; choose a "
                "full-resolution generator (output_stride 1, e.g. model=unet) or loss=l2, l1 or rebalanced_ce"
            )
        self.gan_mode = checks.choice("loss.gan_mode", gan_mode, GAN_MODES)
        self.lambda_l1 = checks.number("loss.lambda_l1", lambda_l1, "lambda_l1 >= 0", low=0.0)
        self.pretrain_steps = checks.integer("loss.pretrain_steps", pretrain_steps, 0)
        self.d_optimizer_spec = check_optimizer(d_optimizer, "loss.d_optimizer")
        specs.target_of(discriminator, "loss.discriminator")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = self.build_net(2, final_activation="tanh")  # pix2pix's bounded generator
        self.discriminator = specs.build(dict(discriminator), "loss.discriminator")
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

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """One D update (after pretraining) then one G update, with manual optimisation."""
        opt_g, opt_d = self.optimizers()
        L, ab = batch["L"], batch["ab"].float()
        n = L.shape[0]
        fake = upsample_to(self(L, self.sample_hints(batch)).float(), ab.shape[-2:], self.output_stride)
        l1 = F.l1_loss(fake, ab)
        adversarial = self.g_steps >= self.pretrain_steps
        logs = {"train/g_l1": l1.detach(), "train/adversarial": float(adversarial)}
        if adversarial:
            real_pair, fake_pair = torch.cat([L, ab], 1), torch.cat([L, fake.detach()], 1)
            self.discriminator.requires_grad_(True)
            d_real, d_fake = self.discriminator(real_pair), self.discriminator(fake_pair)
            d_loss = 0.5 * (self.gan_loss(d_real, True) + self.gan_loss(d_fake, False))
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
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.discriminator.requires_grad_(True)
        self.g_steps += 1
        self.log("train/loss", g_loss.detach(), prog_bar=True, batch_size=n)
        self.log_dict(logs, batch_size=n)
        out = {"loss": g_loss.detach()}  # what the non-finite guard checks: both players' losses
        if adversarial:
            out["d_loss"] = d_loss.detach()
        return out

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The class, plus the generator step count (the pretraining phase survives a resume)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_g_steps"] = self.g_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the generator step count."""
        self.g_steps = int(checkpoint.get("gan_g_steps", 0))
        super().on_load_checkpoint(checkpoint)

    def configure_optimizers(self) -> Any:
        """G and D optimisers (pix2pix's Adam 2e-4, β=(0.5, 0.999): conf/loss/cgan_l1.yaml) and schedulers."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]  # frozen blocks stay out
        opt_g = make_optimizer(self.optimizer_spec, trainable, self.optimizer_key)
        opt_d = make_optimizer(self.d_optimizer_spec, self.discriminator.parameters(), "loss.d_optimizer")
        sched_g = make_scheduler(self.scheduler_spec, opt_g)
        sched_d = make_scheduler(self.scheduler_spec, opt_d)
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
