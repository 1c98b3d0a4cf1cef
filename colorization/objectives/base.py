"""The shared LightningModule of every objective: the network, steps, metrics, predictions and optimisers.

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

Fine-tuning and hints (every objective): `init` (config `model.init`) starts the network from published
weights or a checkpoint, `freeze` (`model.freeze`) keeps its first blocks fixed (objectives.finetune);
`hints` (`model.hints`) simulates user hints in training for a network that takes them
(objectives.hints); validation and test run without hints (automatic colorization).

Predictions: ``predict_step`` decodes at ``module.predict_temperature`` (None: the module's own T; set it
before ``trainer.predict`` to predict at any temperature; regression and cGAN ignore it).
Across objectives, two callbacks come with every module (``configure_callbacks``): the non-finite-loss
guard and the dataset prior of the rebalanced AuC (colorization.callbacks).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization import specs
from colorization.callbacks import AucPrior, NonFiniteGuard
from colorization.color import AB_NORM, ABGamut, ColorPrior, l_ab_to_rgb, lab_batch, nearest_bins
from colorization.errors import ConfigError
from colorization.metrics import ColorizationMetrics
from colorization.nets import Generator
from colorization.objectives import finetune
from colorization.objectives.hints import HintSampler
from colorization.objectives.optimization import check_optimizer, make_optimizer, make_scheduler

_KEEP = object()  # build_net: leave the final activation to the spec / the net's default
MAIN = ""  # tag of the main prediction in `decode`'s output and of its metrics


def upsample_to(x: Tensor, size: tuple[int, int] | torch.Size, stride: int) -> Tensor:
    """Bilinearly resize a net output to the input's `size` when the net works at a coarser `stride`."""
    if stride == 1:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def net_forward(net: nn.Module, L: Tensor, hints: Tensor | None = None) -> Tensor:
    """The net's raw output; `hints` (B×3×H×W) go to a net that takes them, None is automatic mode."""
    return net(L) if hints is None else net(L, hints)


class ABInference(nn.Module):
    """Pure-torch inference for nets that output normalised ab: L_n (and hints) → ab in Lab units."""

    def __init__(self, net: nn.Module, output_stride: int = 1) -> None:
        super().__init__()
        self.net = net
        self.output_stride = int(output_stride)
        self.takes_hints = bool(getattr(net, "takes_hints", False))

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """Predict ab (Lab units) for normalised lightness L (B×1×H×W) and optional hints (B×3×H×W)."""
        ab = net_forward(self.net, L, hints).float()
        return upsample_to(ab, L.shape[-2:], self.output_stride) * AB_NORM


class ColorizationModule(finetune.FineTuning, pl.LightningModule):
    """Base of every objective: subclasses give `out_channels`, `compute_loss` and `decode`.

    `net` is a `_target_` spec of a generator without `out_channels` (the objective adds it); `optimizer`
    (required) and `scheduler` are `_partial_` specs (colorization.specs). Metrics live in `self.metrics`, an
    nn.ModuleDict that Lightning moves with the module: one ColorizationMetrics per decoded prediction.
    """

    #: The objective's name (ONNX metadata, reports): "regression", "classification" or "gan".
    objective = "unknown"
    #: The config key the optimiser spec comes from, for messages (the cGAN's is its loss's own).
    optimizer_key = "optimizer"

    def __init__(
        self,
        net: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
        init: str | None = None,
        freeze: int = 0,
        hints: dict | None = None,
    ) -> None:
        super().__init__()
        self.net_cls = specs.target_of(net, "model.net")
        if not (isinstance(self.net_cls, type) and issubclass(self.net_cls, Generator)):
            raise ConfigError(
                f"model.net._target_={net['_target_']} is not a colorization generator (a colorization.nets"
                ".Generator: L in, ab or bin logits out; a discriminator cannot colorize); e.g. model=zhang"
            )
        if "out_channels" in net:
            raise ConfigError("model.net must not set out_channels: the objective chooses it")
        self.net_spec = dict(net)
        self.configure_fine_tuning(init, freeze)
        self.hint_sampler = HintSampler.from_config(dict(hints)) if hints else None
        if self.hint_sampler is not None and not getattr(self.net_cls, "takes_hints", False):
            raise ConfigError(
                f"model.hints: {self.net_cls.__name__} takes no user hints (SIGGRAPHNet does); "
                "set model.hints=null"
            )
        self.optimizer_spec = check_optimizer(optimizer, self.optimizer_key)
        self.scheduler_spec = dict(scheduler) if scheduler else None
        if self.scheduler_spec is not None:
            specs.target_of(self.scheduler_spec, "scheduler")
        self.perceptual_metrics = bool(perceptual_metrics)
        self.rebalanced_auc = bool(rebalanced_auc)
        self.net: nn.Module | None = None
        # Per-bin weights of the rebalanced AuC (inverse prior); uniform until AucPrior sets them.
        zhang = ABGamut.zhang().points.float()
        self.register_buffer("auc_points", zhang.clone())
        self.register_buffer("auc_weights", torch.ones(len(zhang)))
        self.auc_prior_ready = False
        self.metrics = nn.ModuleDict({"main": ColorizationMetrics(perceptual=self.perceptual_metrics)})
        self._metric_keys = {MAIN: "main"}  # decode tag → key in self.metrics
        # Temperature of predict_step (classification; None: the module's own). Set before trainer.predict.
        self.predict_temperature: float | None = None
        self.datamodule_hparams: dict[str, Any] = {}

    # ---------------------------------------------------------------- building
    def build_net(self, out_channels: int, final_activation: Any = _KEEP) -> nn.Module:
        """Instantiate the net spec with the objective's `out_channels` (and its default final activation,
        unless the spec sets one), after checking that a published `init` fits it; freeze its first blocks."""
        self.check_init(out_channels)
        extra: dict[str, Any] = {"out_channels": out_channels}
        if final_activation is not _KEEP and "final_activation" not in self.net_spec:
            extra["final_activation"] = final_activation
        net = specs.build(self.net_spec, "model.net", **extra)
        finetune.freeze_stages(net, self.freeze)
        return net

    def sample_hints(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Simulated user hints for a training batch (None without `hints`: automatic colorization)."""
        return None if self.hint_sampler is None else self.hint_sampler(batch["ab"])

    @property
    def output_stride(self) -> int:
        """The net's output stride (4 for Zhang's net, 1 for full-resolution nets)."""
        return int(self.net_cls.output_stride)

    @property
    def input_multiple(self) -> int:
        """The multiple the input's H and W must be, by the net class's rule for the spec's arguments."""
        args = {k: v for k, v in self.net_spec.items() if not k.startswith("_")}
        return int(self.net_cls.input_multiple(**args))

    def check_image_size(self, size: int) -> None:
        """ConfigError naming data.image_size (and the U-Net's depth) when `size` does not fit the net."""
        m = self.input_multiple
        if size % m == 0:
            return
        near = ", ".join(str(v) for v in ((size // m) * m, (size // m + 1) * m) if v > 0)
        advice = ""
        if self.net_spec.get("num_downs") is not None and not self.net_spec.get("encoder"):
            depth = next((k for k in range(12, 1, -1) if size % 2**k == 0), None)
            fits = f"model.num_downs <= {depth}" if depth else "an image size divisible by 4"
            advice = f", or lower model.num_downs={self.net_spec['num_downs']} ({fits} for {size} px)"
        raise ConfigError(
            f"data.image_size={size} must be a multiple of {m} for {self.net_cls.__name__}; allowed values "
            f"near it: {near}{advice}"
        )

    def _datamodule(self) -> Any:
        """The trainer's datamodule, or None when the module is used without one."""
        trainer = self._trainer
        return getattr(trainer, "datamodule", None) if trainer is not None else None

    def setup(self, stage: str) -> None:
        """Check the data's image size against the net before any work on the data."""
        size = getattr(self._datamodule(), "image_size", None)
        if isinstance(size, int):
            self.check_image_size(size)

    def configure_callbacks(self) -> list[pl.Callback]:
        """The non-finite-loss guard and the AuC prior, unless the Trainer already has configured ones."""
        present = {type(c) for c in (self._trainer.callbacks if self._trainer is not None else [])}
        return [cb for cb in (NonFiniteGuard(), AucPrior()) if type(cb) not in present]

    # ---------------------------------------------------------------- subclass API
    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Loss of the net's raw `output` against the batch (implemented by each objective)."""
        raise NotImplementedError

    def decode(self, output: Tensor, size: torch.Size) -> dict[str, Tensor]:
        """Raw net output → {tag: ab in Lab units at `size`}; tag MAIN ("") is the main prediction."""
        raise NotImplementedError

    def decode_at(self, output: Tensor, size: torch.Size, temperature: float | None = None) -> Tensor:
        """Raw net output → ab (Lab units) at `size`; `temperature` matters only for classification."""
        return self.decode(output, size)[MAIN]

    def inference_model(self, temperature: float | None = None) -> nn.Module:
        """A pure-torch, ONNX-exportable module L_n (B×1×H×W) → ab (Lab units, B×2×H×W), in eval mode.

        It shares the net (no copy): switching it to eval also switches this module's net.
        """
        return ABInference(self.net, self.output_stride).eval()

    def add_metrics(self, tag: str, key: str) -> None:
        """Track one more decoded prediction (`decode`'s `tag`) with its own metrics, stored under `key`."""
        self.metrics[key] = ColorizationMetrics(perceptual=False)
        self._metric_keys[tag] = key

    def remove_metrics(self, tag: str) -> None:
        """Stop tracking the prediction `tag` (added by `add_metrics`)."""
        key = self._metric_keys.pop(tag, None)
        if key is not None:
            del self.metrics[key]

    # ---------------------------------------------------------------- the AuC prior
    def set_auc_prior(self, prior: ColorPrior) -> None:
        """Weights of the rebalanced AuC: the inverse prior (λ = 0) over `auc_points`."""
        self.auc_weights = prior.weights(0.0).to(self.auc_weights)

    def auc_pixel_weights(self, true_ab: Tensor) -> Tensor:
        """Per-pixel weights (B×H×W) of the rebalanced AuC: inverse-prior weight of the true nearest bin."""
        return self.auc_weights[nearest_bins(true_ab, self.auc_points, check=False)]

    # ---------------------------------------------------------------- steps
    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """The net's raw output for normalised lightness (logits or normalised ab, at the net's stride)
        and, for a net that takes them, user hints (B×3×H×W; None: automatic)."""
        return net_forward(self.net, L, hints)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step: net forward (with simulated hints if asked), loss, log `train/loss`."""
        loss = self.compute_loss(self(batch["L"], self.sample_hints(batch)), batch)
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
        rgb = {}
        for tag, ab in preds.items():
            rgb[tag] = l_ab_to_rgb(L.float(), ab / AB_NORM)
            self.metrics[self._metric_keys[tag]].update(rgb[tag], true_rgb, ab, true_ab, weights)
        return {"loss": loss.detach(), "ab": preds[MAIN].detach(), "rgb": rgb[MAIN].detach()}

    def _log_metrics(self, stage: str) -> None:
        for tag, key in self._metric_keys.items():
            prefix = f"{stage}/{tag}/" if tag else f"{stage}/"
            for name, value in self.metrics[key].compute().items():
                self.log(prefix + name, value, prog_bar=(not tag and name == "psnr"))
            self.metrics[key].reset()

    def on_validation_epoch_start(self) -> None:
        """Start every validation epoch with empty metric states."""
        for m in self.metrics.values():
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
            batch = {"L": lab_batch(batch["rgb"])[0]}
        L = batch["L"] if isinstance(batch, dict) else batch
        ab = self.inference_model(self.predict_temperature)(L)
        return {"ab": ab, "rgb": l_ab_to_rgb(L.float(), ab / AB_NORM)}

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        """Optimiser (and scheduler) from the specs."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]  # frozen blocks stay out
        optimizer = make_optimizer(self.optimizer_spec, trainable, self.optimizer_key)
        scheduler = make_scheduler(self.scheduler_spec, optimizer)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the class so that `load_checkpoint` can rebuild it."""
        checkpoint["colorization_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resize buffers whose shape depends on data (gamut-sized) to the stored ones before loading."""
        state = checkpoint.get("state_dict", {})
        for name, buf in list(self.named_buffers()):
            if name in state and state[name].shape != buf.shape:
                module = self.get_submodule(name.rpartition(".")[0]) if "." in name else self
                setattr(module, name.rpartition(".")[2], torch.empty_like(state[name], device=buf.device))
        self.auc_prior_ready = True
        self._init_pending = False  # the checkpoint's weights win over `init`


__all__ = ["MAIN", "ABInference", "ColorizationModule", "net_forward", "upsample_to"]
