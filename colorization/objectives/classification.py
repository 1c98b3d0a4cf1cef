"""Zhang et al.'s classification objective: soft-encoded ab bins, rebalanced cross-entropy, annealed mean.

Logged keys: the base keys (see colorization.objectives.base) at the module's `temperature`, and, for
every t in `eval_temperatures`, ``val/T=<t>/<metric>`` (psnr, ssim, colorfulness, colorfulness_gap, auc,
auc_rebalanced; t formatted with ``{:g}``, e.g. ``val/T=0.38/psnr``), all decoded from the same logits of
one forward pass, so a single run shows the whole temperature curve.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization import checks
from colorization.color import (
    AB_NORM,
    ABGamut,
    ColorPrior,
    annealed_mean,
    rebalanced_cross_entropy,
    soft_encode,
)
from colorization.errors import ConfigError
from colorization.objectives.base import MAIN, ColorizationModule, net_forward, upsample_to

log = logging.getLogger(__name__)

PRIORS = ("dataset", "uniform")
PRIOR_FILES = (".npy", ".pt")
GAMUTS = ("zhang", "dataset")


def temperature_tag(t: float) -> str:
    """The tag of a temperature's prediction and metrics: "T=0.38" (logged as val/T=0.38/psnr)."""
    return f"T={t:g}"


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
    """Pure-torch inference: L_n (and hints) → bin logits → annealed mean at T → ab (Lab units), full size."""

    def __init__(self, net: nn.Module, points: Tensor, temperature: float, output_stride: int = 1) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("points", points.detach().clone().float())
        self.temperature = float(temperature)
        self.output_stride = int(output_stride)
        self.takes_hints = bool(getattr(net, "takes_hints", False))

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """Predict ab (Lab units) for normalised lightness L (B×1×H×W) and optional hints (B×3×H×W)."""
        logits = net_forward(self.net, L, hints)
        return annealed_decode(logits, self.points, self.temperature, L.shape[-2:], self.output_stride)


class ClassificationModule(ColorizationModule):
    """Soft-encode ab on the fly (k nearest bins, Gaussian sigma), rebalanced CE with λ, decode at T.

    gamut: "zhang" (313 bins) or "dataset" (the training split's bins, from the datamodule's
    `compute_gamut`; the net is then built in `setup`, or from the stored gamut when loading a checkpoint).
    prior: "dataset" (datamodule's `compute_prior`), "uniform", or a file with a precomputed prior (a .npy
    of Q probabilities over the gamut's bins, e.g. Zhang et al.'s released prior_probs.npy, or a saved
    ColorPrior .pt), used as it is: never smoothed again. k: the soft encoding's neighbours (the paper says
    5, the authors' training used 10). rebalance_lambda λ: 0 weighs pixels by the
    inverse prior (the strongest rebalancing), 1 gives every class weight 1 (none); the paper's 0.5 lies
    between. Gamut points, prior and class weights are buffers, so a checkpoint is self-contained. The loss
    is taken at the net's output resolution, with ab area-downsampled to it as in the paper.
    eval_temperatures: the temperatures whose metrics are also logged (none by default; the config's
    `loss.eval_temperatures` holds Zhang et al.'s sweep).
    """

    objective = "classification"

    def __init__(
        self,
        net: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        rebalance_lambda: float = 0.5,
        temperature: float = 0.38,
        eval_temperatures: Sequence[float] = (),
        prior: str = "dataset",
        gamut: str = "zhang",
        k: int = 5,
        sigma: float = 5.0,
        gamut_min_count: int = 1,
        perceptual_metrics: bool = True,
        rebalanced_auc: bool = True,
        init: str | None = None,
        freeze: int = 0,
        hints: dict | None = None,
    ) -> None:
        super().__init__(net, optimizer, scheduler, perceptual_metrics, rebalanced_auc, init, freeze, hints)
        is_file = isinstance(prior, str) and Path(prior).suffix.lower() in PRIOR_FILES
        if not is_file:
            checks.choice("loss.prior", prior, (*PRIORS, "a .npy or .pt prior file"))
        self.prior_kind = "file" if is_file else prior
        self.gamut_kind = checks.choice("loss.gamut", gamut, GAMUTS)
        self.rebalance_lambda = checks.number(
            "loss.lambda", rebalance_lambda, "0 <= lambda <= 1", low=0.0, high=1.0
        )
        self.temperature = checks.number("loss.temperature", temperature, "T > 0", low=0.0, low_open=True)
        self.k = checks.integer("loss.k", k, 1)
        self.sigma = checks.number("loss.sigma", sigma, "sigma > 0", low=0.0, low_open=True)
        self.gamut_min_count = checks.integer("loss.gamut_min_count", gamut_min_count, 1)
        if self.net_spec.get("final_activation") is not None:
            raise ConfigError("classification needs raw logits: set model.net.final_activation=null")
        self.save_hyperparameters()
        points = ABGamut.zhang().points.float() if gamut == "zhang" else torch.zeros(0, 2)
        self.register_buffer("gamut_points", points)
        self.register_buffer("prior_probs", torch.full((len(points),), 1.0 / max(len(points), 1)))
        self.register_buffer("class_weights", torch.ones(len(points)))
        self._prior_ready = False
        self.eval_temperatures: list[float] = []
        self.set_eval_temperatures(eval_temperatures)
        if gamut == "zhang":
            self.net = self.build_net(len(points), final_activation=None)
        else:
            self.check_init(None)  # a published head cannot fit bins that the data has yet to give

    def set_eval_temperatures(self, temperatures: Sequence[float]) -> None:
        """Log metrics at these temperatures too (evaluate.py's `temperatures=[...]` sets them on a loaded
        checkpoint); each gets its own metrics, all decoded from the same logits."""
        if isinstance(temperatures, str) or not isinstance(temperatures, Sequence):
            raise ConfigError(f"loss.eval_temperatures={temperatures!r} must be a list of T > 0")
        temps = [
            checks.number("loss.eval_temperatures", t, "a list of T > 0", low=0.0, low_open=True)
            for t in temperatures
        ]
        for t in self.eval_temperatures:
            self.remove_metrics(temperature_tag(t))
        self.eval_temperatures = list(dict.fromkeys(temps))
        for t in self.eval_temperatures:
            self.add_metrics(temperature_tag(t), f"T{t:g}".replace(".", "_").replace("-", "m"))

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
        """Check the image size; fetch the dataset gamut (then build the net) and the loss's prior, once."""
        super().setup(stage)
        dm = self._datamodule()
        if self.net is None:
            if dm is None or not hasattr(dm, "compute_gamut"):
                raise ConfigError(
                    "loss.gamut=dataset needs a datamodule with compute_gamut(); use loss.gamut=zhang"
                )
            gamut = dm.compute_gamut(min_count=self.gamut_min_count)
            self._set_gamut(gamut.points.cpu())
            log.info("classification over the dataset gamut: Q=%d bins", self.num_classes)
        if not self._prior_ready:
            prior = None
            if self.prior_kind == "file":
                prior = self._load_prior(str(self.hparams.prior))
            elif self.prior_kind == "dataset":
                if dm is not None and hasattr(dm, "compute_prior"):
                    prior = dm.compute_prior(ABGamut(self.gamut_points.cpu()))
                else:
                    log.warning(
                        "loss.prior=dataset but no datamodule with compute_prior(): using the uniform prior"
                    )
            self._set_prior(prior if prior is not None else ColorPrior.uniform(self.gamut_points.cpu()))
            self._prior_ready = True

    def _load_prior(self, path: str) -> ColorPrior:
        """A precomputed prior over this gamut's bins; one-line ConfigError when missing or misfitting."""
        gamut = ABGamut(self.gamut_points.cpu())
        try:
            prior = ColorPrior.load(Path(path).expanduser(), gamut=gamut)
        except FileNotFoundError:
            raise ConfigError(f"loss.prior={path}: no such file") from None
        except ValueError as err:
            raise ConfigError(f"loss.prior={path}: {err}") from None
        if prior.gamut.points.shape != gamut.points.shape or not torch.equal(
            prior.gamut.points, gamut.points
        ):
            raise ConfigError(
                f"loss.prior={path} is over {len(prior)} other bins than the loss's {len(gamut)}"
            )
        return prior

    def init_gamut(self) -> Tensor:
        """The bins a checkpoint used as `model.init` must have been trained over."""
        return self.gamut_points

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
        preds = {MAIN: self.decode_at(output, size)}
        for t in self.eval_temperatures:
            preds[temperature_tag(t)] = (
                preds[MAIN] if t == self.temperature else self.decode_at(output, size, t)
            )
        return preds

    def inference_model(self, temperature: float | None = None) -> nn.Module:
        """L_n → ab (Lab units), annealed mean at `temperature` (default: the module's), eval mode."""
        t = self.temperature if temperature is None else float(temperature)
        return AnnealedMeanInference(self.net, self.gamut_points, t, self.output_stride).eval()
