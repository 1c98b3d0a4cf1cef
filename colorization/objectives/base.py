"""The shared LightningModule of every objective: net building, optimisers, metrics, predictions, NaN guard.

Logged keys (all objectives):
    train/loss                      training loss of the step (GAN: generator loss, plus g/ and d/ parts)
    val/loss                        validation loss (classification: rebalanced CE; regression: its loss;
                                    GAN: L1 on normalised ab)
    val/psnr val/ssim               RGB in [0, 1], data_range 1, mean over images
    val/colorfulness                mean Hasler–Süsstrunk colourfulness of the predictions
    val/colorfulness_gap            mean per-image |colourfulness(pred) − colourfulness(truth)|
    val/auc val/auc_rebalanced      Zhang's AuC of the ab error (0..150), raw and weighted by the inverse
                                    prior of each pixel's true bin (uniform when no prior is available)
    val/lpips val/fid               only when lpips / torch-fidelity and their weights are available
The same keys under ``test/`` for ``trainer.test``. The classification objective also logs
``val/T=<t>/<metric>`` for every t in ``eval_temperatures`` (see ClassificationModule).

Predictions: ``predict_step`` decodes at ``module.predict_temperature`` (None: the module's own T; set it
before ``trainer.predict`` to predict at any temperature; regression and cGAN ignore it).
Non-finite losses: recorded on the device without a host sync, checked on all ranks together every
``finite_check_interval`` batches (None: 1 on CPU, ``trainer.log_every_n_steps`` on an accelerator), before
each validation, at the end of training and before any checkpoint save.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import hydra.utils
import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from colorization.color import AB_NORM, ABGamut, l_ab_to_rgb, lab_batch, nearest_bins
from colorization.errors import ColorizationError, ConfigError, NonFiniteLossError
from colorization.metrics import ColorizationMetrics

log = logging.getLogger(__name__)

DEFAULT_OPTIMIZER: dict[str, Any] = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
_SCHEDULER_KEYS = ("interval", "frequency", "monitor")
_KEEP = object()  # build_net: leave the final activation to the spec / the net's default


def plain_spec(spec: Any) -> Any:
    """A resolved plain-Python copy of a config spec (DictConfig → dict), so it can be edited and saved.

    None and an empty mapping give None (no spec); lists and scalars come back as they are.
    """
    if spec is None:
        return None
    if OmegaConf.is_config(spec):
        spec = OmegaConf.to_container(spec, resolve=True)
    elif isinstance(spec, dict):
        spec = dict(spec)
    return spec if spec or not isinstance(spec, dict) else None


def upsample_to(x: Tensor, size: tuple[int, int] | torch.Size, stride: int) -> Tensor:
    """Bilinearly resize a net output to the input's `size` when the net works at a coarser `stride`."""
    if stride == 1:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ABInference(nn.Module):
    """Pure-torch inference for nets that output normalised ab: L_n → ab in Lab units at input size."""

    def __init__(self, net: nn.Module, output_stride: int = 1) -> None:
        super().__init__()
        self.net = net
        self.output_stride = int(output_stride)

    def forward(self, L: Tensor) -> Tensor:
        """Predict ab (Lab units) for normalised lightness L (B×1×H×W)."""
        ab = self.net(L).float()
        return upsample_to(ab, L.shape[-2:], self.output_stride) * AB_NORM


class ColorizationModule(pl.LightningModule):
    """Base of every objective: subclasses give `out_channels`, `compute_loss` and `decode`.

    `net` is a Hydra `_target_` spec of a network without `out_channels` (added here); `optimizer` and
    `scheduler` are `_partial_` specs. The first step with a non-finite loss is recorded on the device
    (no host sync) and checked on every rank together every `_check_interval()` batches, before each
    validation, at the end of training and before any checkpoint save: all ranks raise NonFiniteLossError
    naming that step, and no checkpoint is written after it, so a good checkpoint is never overwritten.
    """

    def __init__(
        self,
        net: dict,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
    ) -> None:
        super().__init__()
        self.net_spec = plain_spec(net)
        self.optimizer_spec = plain_spec(optimizer) or dict(DEFAULT_OPTIMIZER)
        self.scheduler_spec = plain_spec(scheduler)
        self.perceptual_metrics = perceptual_metrics
        self.rebalanced_auc = rebalanced_auc
        self.net: nn.Module | None = None
        # Per-bin weights for the rebalanced AuC (inverse prior); uniform until a prior is known.
        zhang = ABGamut.zhang().points.float()
        self.register_buffer("auc_points", zhang.clone())
        self.register_buffer("auc_weights", torch.ones(len(zhang)))
        self._auc_ready = False
        self._metrics: dict[str, ColorizationMetrics] = {}
        # First global step whose training loss was NaN/inf (-1: none), kept on the device: recording it
        # costs no host sync; it is checked every `finite_check_interval` steps (see check_finite).
        self.register_buffer("first_nonfinite_step", torch.tensor(-1, dtype=torch.long), persistent=False)
        self.finite_check_interval: int | None = None
        self._steps_since_check = 0
        # Temperature of predict_step (classification; None: the module's own). Set before trainer.predict.
        self.predict_temperature: float | None = None

    # ---------------------------------------------------------------- building
    def build_net(self, out_channels: int, final_activation: Any = _KEEP) -> nn.Module:
        """Instantiate the net spec with the objective's `out_channels` (and its default final activation).

        `final_activation` is passed only when the net accepts one and the spec does not set it.
        """
        if not isinstance(self.net_spec, dict) or "_target_" not in self.net_spec:
            raise ConfigError(f"net must be a Hydra spec with a _target_, got {self.net_spec!r}")
        if "out_channels" in self.net_spec:
            raise ConfigError("net spec must not set out_channels: the objective chooses it")
        extra: dict[str, Any] = {"out_channels": out_channels}
        if final_activation is not _KEEP and "final_activation" not in self.net_spec:
            try:
                params = inspect.signature(hydra.utils.get_class(self.net_spec["_target_"])).parameters
            except Exception:
                params = {}
            if "final_activation" in params:
                extra["final_activation"] = final_activation
        try:
            return hydra.utils.instantiate(self.net_spec, **extra, _convert_="all")
        except Exception as err:
            cause = err.__cause__ or err
            raise ConfigError(f"cannot build net {self.net_spec.get('_target_')}: {cause}") from err

    @property
    def output_stride(self) -> int:
        """The net's output stride (4 for Zhang's net, 1 for full-resolution nets)."""
        return int(getattr(self.net, "output_stride", 1))

    def _datamodule(self) -> Any:
        """The trainer's datamodule, or None when the module is used without one."""
        trainer = self._trainer
        return getattr(trainer, "datamodule", None) if trainer is not None else None

    def setup(self, stage: str) -> None:
        """Fetch the dataset prior for the rebalanced AuC once (uniform with a warning when unavailable)."""
        if self._auc_ready or not self.rebalanced_auc:
            return
        dm = self._datamodule()
        if dm is not None and hasattr(dm, "compute_prior"):
            prior = dm.compute_prior(ABGamut(self.auc_points.cpu()))
            self.auc_weights = prior.weights(0.0).to(self.auc_weights)  # inverse prior (λ = 0)
        else:
            log.warning(
                "no datamodule with compute_prior: val/auc_rebalanced uses uniform weights (= val/auc)"
            )
        self._auc_ready = True

    # ---------------------------------------------------------------- subclass API
    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Loss of the net's raw `output` against the batch (implemented by each objective)."""
        raise NotImplementedError

    def decode(self, output: Tensor, size: torch.Size) -> dict[str, Tensor]:
        """Raw net output → {tag: ab in Lab units at `size`}; tag "" is the main prediction."""
        raise NotImplementedError

    def decode_at(self, output: Tensor, size: torch.Size, temperature: float | None = None) -> Tensor:
        """Raw net output → ab (Lab units) at `size`; `temperature` matters only for classification."""
        return self.decode(output, size)[""]

    def inference_model(self, temperature: float | None = None) -> nn.Module:
        """A pure-torch, ONNX-exportable module L_n (B×1×H×W) → ab (Lab units, B×2×H×W), in eval mode.

        It shares the net (no copy): switching it to eval also switches this module's net.
        """
        return ABInference(self.net, self.output_stride).eval()

    # ---------------------------------------------------------------- steps
    def forward(self, L: Tensor) -> Tensor:
        """The net's raw output for normalised lightness (logits or normalised ab, at the net's stride)."""
        return self.net(L)

    def record_finite(self, loss: Tensor) -> None:
        """Remember, on the device and without a host sync, the first global step whose `loss` is NaN/inf."""
        bad = ~torch.isfinite(loss.detach()).all()
        first = self.first_nonfinite_step
        first.copy_(torch.where(bad & (first < 0), self.global_step, first))

    def check_finite(self, context: str = "") -> None:
        """Raise NonFiniteLossError on EVERY rank when any rank recorded a non-finite loss (one host sync).

        The decision goes through the strategy's all-reduce so that no rank is left waiting in a collective;
        the message names the first bad step over all ranks. Call it at the same point on every rank.
        """
        first = self.first_nonfinite_step
        trainer = self._trainer
        bad = first >= 0
        if trainer is not None:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bool(bad):
            return
        steps = (self.all_gather(first) if trainer is not None else first).reshape(-1)
        step = int(steps[steps >= 0].min())
        raise NonFiniteLossError(
            f"{context}non-finite training loss at global step {step}: training stopped; "
            "lower the learning rate or check the data"
        )

    def _check_interval(self) -> int:
        """Batches between flag checks: `finite_check_interval`, else 1 on CPU (syncs are free there) and
        the trainer's `log_every_n_steps` on an accelerator."""
        if self.finite_check_interval:
            return int(self.finite_check_interval)
        if self.device.type == "cpu" or self._trainer is None:
            return 1
        return max(1, int(self.trainer.log_every_n_steps))

    def on_train_start(self) -> None:
        """A new fit starts with a clean non-finite flag (a checkpoint of NaN weights is still refused)."""
        self.first_nonfinite_step.fill_(-1)
        self._steps_since_check = 0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Check the non-finite flag every `_check_interval()` batches (same batches on every rank)."""
        self._steps_since_check += 1
        if self._steps_since_check >= self._check_interval():
            self._steps_since_check = 0
            self.check_finite()

    def on_validation_start(self) -> None:
        """No validation of diverged weights: check the non-finite flag first."""
        if self.trainer.state.fn == "fit":
            self.check_finite()

    def on_train_end(self) -> None:
        """A non-finite loss in the last unchecked steps still stops the run with its message."""
        self.check_finite()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step: net forward, objective loss, non-finite record, log `train/loss`."""
        loss = self.compute_loss(self(batch["L"]), batch)
        self.record_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["L"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Loss and metrics of one validation batch; returns the main ab prediction for callbacks."""
        return self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Same as validation, logged under `test/`."""
        return self._eval_step(batch, "test")

    def eval_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The loss logged as `val/loss` (the training loss by default)."""
        return self.compute_loss(output, batch)

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> dict[str, Tensor]:
        L, ab_n = batch["L"], batch["ab"]
        output = self(L)
        loss = self.eval_loss(output, batch)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=L.shape[0], sync_dist=True)
        preds = self.decode(output, L.shape[-2:])
        true_ab = ab_n.float() * AB_NORM
        true_rgb = batch["rgb"] if "rgb" in batch else l_ab_to_rgb(L, ab_n)
        weights = self.auc_pixel_weights(true_ab)
        for tag, ab in preds.items():
            metrics = self._metric_set(tag)
            metrics.update(l_ab_to_rgb(L.float(), ab / AB_NORM), true_rgb, ab, true_ab, weights)
        return {"loss": loss.detach(), "ab": preds[""].detach()}

    def auc_pixel_weights(self, true_ab: Tensor) -> Tensor:
        """Per-pixel weights (B×H×W) of the rebalanced AuC: inverse-prior weight of the true nearest bin."""
        return self.auc_weights[nearest_bins(true_ab, self.auc_points, check=False)]

    def _metric_set(self, tag: str) -> ColorizationMetrics:
        if tag not in self._metrics:
            self._metrics[tag] = ColorizationMetrics(perceptual=self.perceptual_metrics and tag == "")
        m = self._metrics[tag]
        return m.to(self.device)

    def _log_metrics(self, stage: str) -> None:
        for tag, metrics in self._metrics.items():
            prefix = f"{stage}/{tag}/" if tag else f"{stage}/"
            for name, value in metrics.compute().items():
                self.log(prefix + name, value, prog_bar=(not tag and name == "psnr"))
            metrics.reset()

    def on_validation_epoch_start(self) -> None:
        """Start every validation epoch with empty metric states."""
        for m in self._metrics.values():
            m.reset()

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        """Log the accumulated validation metrics."""
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Log the accumulated test metrics."""
        self._log_metrics("test")

    def predict_step(self, batch: dict[str, Tensor] | Tensor, batch_idx: int = 0) -> dict[str, Tensor]:
        """Predict ab (Lab units) and RGB in [0, 1] at the input's resolution, at `predict_temperature`.

        `batch` is a batch dict with "L" (normalised), a raw {"rgb": uint8 or float} dict, or an L tensor.
        """
        if isinstance(batch, dict) and "L" not in batch:
            rgb = batch["rgb"]
            batch = {"L": lab_batch(rgb.float() / 255.0 if not rgb.is_floating_point() else rgb)[0]}
        L = batch["L"] if isinstance(batch, dict) else batch
        ab = self.inference_model(self.predict_temperature)(L)
        return {"ab": ab, "rgb": l_ab_to_rgb(L.float(), ab / AB_NORM)}

    # ---------------------------------------------------------------- optimisation
    def make_optimizer(self, params: Any, spec: dict | None = None) -> torch.optim.Optimizer:
        """Instantiate a `_partial_` optimiser spec over `params`."""
        spec = spec if spec is not None else self.optimizer_spec
        try:
            return hydra.utils.instantiate(spec, _partial_=True)(params)
        except Exception as err:
            raise ConfigError(f"cannot build optimizer from {spec!r}: {err.__cause__ or err}") from err

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        """Instantiate the scheduler spec as a Lightning lr_scheduler config (plateau monitors val/loss)."""
        if not self.scheduler_spec:
            return None
        spec = dict(self.scheduler_spec)
        extra = {k: spec.pop(k) for k in _SCHEDULER_KEYS if k in spec}
        try:
            scheduler = hydra.utils.instantiate(spec, _partial_=True)(optimizer)
        except Exception as err:
            raise ConfigError(f"cannot build scheduler from {spec!r}: {err.__cause__ or err}") from err
        config: dict[str, Any] = {
            "scheduler": scheduler,
            "interval": extra.get("interval", "epoch"),
            "frequency": extra.get("frequency", 1),
        }
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config.update(monitor=extra.get("monitor", "val/loss"), strict=False)
        return config

    def configure_optimizers(self) -> Any:
        """Optimiser (and scheduler) from the config specs."""
        optimizer = self.make_optimizer(self.net.parameters())
        scheduler = self.make_scheduler(optimizer)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write after a non-finite loss or with non-finite weights (on every rank together), and
        record the class so `load_checkpoint` can rebuild it."""
        self.check_finite(f"refusing to save a checkpoint at global step {self.global_step}: ")
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
        trainer = self._trainer
        local = bool(bad.any())
        if trainer.strategy.reduce_boolean_decision(local, all=False) if trainer is not None else local:
            name = floats[int(bad.nonzero()[0])][0] if local else "(on another rank)"
            raise NonFiniteLossError(
                f"refusing to save a checkpoint at global step {self.global_step}: "
                f"weight {name} is not finite (training diverged)"
            )
        checkpoint["colorization_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resize buffers whose shape depends on data (gamut-sized) to the stored ones before loading."""
        state = checkpoint.get("state_dict", {})
        for name, buf in list(self.named_buffers()):
            if name in state and state[name].shape != buf.shape:
                module = self.get_submodule(name.rpartition(".")[0]) if "." in name else self
                setattr(module, name.rpartition(".")[2], torch.empty_like(state[name], device=buf.device))
        self._auc_ready = True


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> ColorizationModule:
    """Load any objective's checkpoint (the class is read from the file), in eval mode."""
    import importlib
    import os

    if not os.path.isfile(path):
        raise ColorizationError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ColorizationError(f"cannot read checkpoint {path}: {err}") from err
    class_path = checkpoint.get("colorization_class") if isinstance(checkpoint, dict) else None
    if not class_path:
        raise ColorizationError(f"{path} is not a colorization checkpoint (no colorization_class entry)")
    module_name, _, cls_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    model = cls.load_from_checkpoint(path, map_location=map_location, weights_only=False)
    return model.eval()


__all__ = ["ABInference", "ColorizationModule", "load_checkpoint", "plain_spec", "upsample_to"]
