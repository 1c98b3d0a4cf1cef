"""Zhang et al.'s classification objective: soft-encoded ab bins, rebalanced cross-entropy, annealed mean.

Logged keys: the base keys (see colorization.objectives.base) at the module's `temperature`, and, for
every t in `eval_temperatures`, ``val/T=<t>/<metric>`` (psnr, ssim, colorfulness, colorfulness_gap, auc,
auc_rebalanced; t formatted with ``{:g}``, e.g. ``val/T=0.38/psnr``), all decoded from the same logits of
one forward pass, so a single run shows the whole temperature curve.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color import (
    AB_NORM,
    ABGamut,
    ColorPrior,
    annealed_mean,
    rebalanced_cross_entropy,
    soft_encode,
)
from colorization.errors import ConfigError
from colorization.objectives.base import ColorizationModule, upsample_to

log = logging.getLogger(__name__)

DEFAULT_EVAL_TEMPERATURES = (1.0, 0.77, 0.58, 0.38, 0.29, 0.14)
"""Zhang et al.'s temperature sweep (T → 0, the mode, is approached by 0.14; T must be > 0)."""


def annealed_decode(
    logits: Tensor,
    points: Tensor,
    temperature: float,
    size: tuple[int, int] | torch.Size,
    output_stride: int = 1,
    check: bool = True,
) -> Tensor:
    """Bin logits → ab (Lab units) at `size`: annealed mean at `temperature`, then bilinear upsampling when
    the net works at a coarser `output_stride`. The one decoder of training, evaluation and inference."""
    ab = annealed_mean(logits.float(), points, temperature, check=check)
    return upsample_to(ab, size, output_stride)


class AnnealedMeanInference(nn.Module):
    """Pure-torch inference: L_n → bin logits → annealed mean at T → ab (Lab units) at the input size."""

    def __init__(self, net: nn.Module, points: Tensor, temperature: float, output_stride: int = 1) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("points", points.detach().clone().float())
        self.temperature = float(temperature)
        self.output_stride = int(output_stride)

    def forward(self, L: Tensor) -> Tensor:
        """Predict ab (Lab units) for normalised lightness L (B×1×H×W)."""
        return annealed_decode(self.net(L), self.points, self.temperature, L.shape[-2:], self.output_stride)


class ClassificationModule(ColorizationModule):
    """Soft-encode ab on the fly (k nearest bins, Gaussian sigma), rebalanced CE with λ, decode at T.

    gamut: "zhang" (313 bins) or "dataset" (the training split's bins, from the datamodule's
    `compute_gamut`; the net is then built in `setup`, or from the stored gamut when loading a checkpoint).
    prior: "dataset" (datamodule's `compute_prior`) or "uniform". Gamut points, prior and class weights
    are buffers, so a checkpoint is self-contained. The loss is taken at the net's output resolution,
    with ab area-downsampled to it as in the paper.
    """

    def __init__(
        self,
        net: dict,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        rebalance_lambda: float = 0.5,
        temperature: float = 0.38,
        eval_temperatures: Sequence[float] = DEFAULT_EVAL_TEMPERATURES,
        prior: str = "dataset",
        gamut: str = "zhang",
        k: int = 5,
        sigma: float = 5.0,
        gamut_min_count: int = 1,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
    ) -> None:
        super().__init__(net, optimizer, scheduler, perceptual_metrics, rebalanced_auc)
        if prior not in ("dataset", "uniform"):
            raise ConfigError(f"prior must be 'dataset' or 'uniform', got {prior!r}")
        if gamut not in ("zhang", "dataset"):
            raise ConfigError(f"gamut must be 'zhang' or 'dataset', got {gamut!r}")
        if not 0.0 <= float(rebalance_lambda) <= 1.0:
            raise ConfigError(f"rebalance_lambda must lie in [0, 1], got {rebalance_lambda}")
        if not all(float(t) > 0 for t in [temperature, *(eval_temperatures or [])]):
            raise ConfigError(
                f"temperatures must be > 0, got {temperature} and {list(eval_temperatures or [])}"
            )
        if self.net_spec.get("final_activation") is not None:
            raise ConfigError("classification needs raw logits: set the net's final_activation to null")
        self.save_hyperparameters()
        self.rebalance_lambda = float(rebalance_lambda)
        self.temperature = float(temperature)
        self.eval_temperatures = [float(t) for t in (eval_temperatures or [])]
        self.prior_kind, self.gamut_kind = prior, gamut
        self.k, self.sigma, self.gamut_min_count = int(k), float(sigma), int(gamut_min_count)
        points = ABGamut.zhang().points.float() if gamut == "zhang" else torch.zeros(0, 2)
        self.register_buffer("gamut_points", points)
        self.register_buffer("prior_probs", torch.full((len(points),), 1.0 / max(len(points), 1)))
        self.register_buffer("class_weights", torch.ones(len(points)))
        self._prior_ready = False
        if gamut == "zhang":
            self.net = self.build_net(len(points), final_activation=None)

    @property
    def num_classes(self) -> int:
        """Q, the number of ab bins (0 until a dataset gamut is known)."""
        return int(self.gamut_points.shape[0])

    def _set_gamut(self, points: Tensor) -> None:
        """Adopt a gamut of Q bins: resize the bin buffers (uniform prior) and build a Q-logit net."""
        device = self.gamut_points.device
        self.gamut_points = points.float().to(device)
        q = len(points)
        self.prior_probs = torch.full((q,), 1.0 / q, device=device)
        self.class_weights = torch.ones(q, device=device)
        self.auc_points = self.gamut_points.clone()
        self.auc_weights = torch.ones(q, device=device)
        if self.net is None or getattr(self.net, "out_channels", None) != q:
            self.net = self.build_net(q, final_activation=None).to(device)

    def _set_prior(self, prior: ColorPrior) -> None:
        """Adopt the loss's prior: its probabilities and the λ-rebalanced class weights."""
        self.prior_probs = prior.probs.float().to(self.prior_probs.device)
        self.class_weights = prior.weights(self.rebalance_lambda).float().to(self.class_weights.device)

    def setup(self, stage: str) -> None:
        """Fetch the dataset gamut (then build the net) and the dataset prior from the datamodule, once."""
        dm = self._datamodule()
        if self.net is None:
            if dm is None or not hasattr(dm, "compute_gamut"):
                raise ConfigError("gamut='dataset' needs a datamodule with compute_gamut(); use gamut=zhang")
            gamut = dm.compute_gamut(min_count=self.gamut_min_count)
            self._set_gamut(gamut.points.cpu())
            log.info("classification over the dataset gamut: Q=%d bins", self.num_classes)
        if not self._prior_ready:
            points = self.gamut_points.cpu()
            has_prior = dm is not None and hasattr(dm, "compute_prior")
            wants_prior = self.prior_kind == "dataset" or self.rebalanced_auc
            prior = dm.compute_prior(ABGamut(points)) if has_prior and wants_prior else None
            if prior is None and self.prior_kind == "dataset":
                log.warning("prior='dataset' but no datamodule with compute_prior(): using the uniform prior")
            uniform = ColorPrior.uniform(points)
            self._set_prior(prior if prior is not None and self.prior_kind == "dataset" else uniform)
            # The rebalanced AuC uses the data's prior even when the loss is not rebalanced.
            auc_prior = prior if prior is not None else uniform
            self.auc_weights = auc_prior.weights(0.0).to(self.auc_weights.device)
            self._prior_ready = True
        self._auc_ready = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rebuild the net from the stored gamut so that a dataset-gamut checkpoint loads without data."""
        points = checkpoint.get("state_dict", {}).get("gamut_points")
        if points is not None and (self.net is None or points.shape != self.gamut_points.shape):
            self._set_gamut(points.cpu())
        super().on_load_checkpoint(checkpoint)
        self._prior_ready = True

    def target_ab(self, batch: dict[str, Tensor], size: torch.Size) -> Tensor:
        """True ab in Lab units at the logits' resolution (area-downsampled when the net is coarser)."""
        ab = batch["ab"].float() * AB_NORM
        if ab.shape[-2:] != size:
            ab = F.interpolate(ab, size=size, mode="area")
        return ab

    def compute_loss(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Class-rebalanced cross-entropy against the soft encoding of the (downsampled) true ab."""
        ab = self.target_ab(batch, output.shape[-2:])
        with torch.no_grad():
            # the batch's ab come from the datamodule's Lab conversion and the indices from this gamut: skip
            # the value checks (each a host sync) on the hot path
            idx, w = soft_encode(ab, self.gamut_points, k=self.k, sigma=self.sigma, check=False)
        return rebalanced_cross_entropy(output.float(), idx, w, self.class_weights, check=False)

    def decode_at(self, output: Tensor, size: torch.Size, temperature: float | None = None) -> Tensor:
        """ab (Lab units) at `size` from the net's own logits, annealed mean at `temperature` (default: T)."""
        t = self.temperature if temperature is None else float(temperature)
        return annealed_decode(output, self.gamut_points, t, size, self.output_stride, check=False)

    def decode(self, output: Tensor, size: torch.Size) -> dict[str, Tensor]:
        """Annealed mean at the module's temperature (tag "") and at every evaluation temperature."""
        preds = {"": self.decode_at(output, size)}
        for t in self.eval_temperatures:
            preds[f"T={t:g}"] = preds[""] if t == self.temperature else self.decode_at(output, size, t)
        return preds

    def inference_model(self, temperature: float | None = None) -> nn.Module:
        """L_n → ab (Lab units), annealed mean at `temperature` (default: the module's), eval mode."""
        t = self.temperature if temperature is None else float(temperature)
        return AnnealedMeanInference(self.net, self.gamut_points, t, self.output_stride).eval()
