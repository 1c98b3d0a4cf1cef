"""Callbacks that show what a colorization model does: image grids and ab histograms, for any logger.

Images go to W&B (`wandb.Image` through WandbLogger.log_image), to TensorBoard (`add_image`), and
otherwise to PNG files under ``<trainer.log_dir or default_root_dir>/images``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor

from colorization import checks
from colorization.color import AB_NORM, l_ab_to_rgb
from colorization.imaging import to_uint8

log = logging.getLogger(__name__)


def make_grid(rows: list[Tensor], pad: int = 2) -> Tensor:
    """Tile rows of images (each B×3×H×W in [0, 1]) into one 3×H'×W' image with white padding."""
    b, c, h, w = rows[0].shape
    grid = torch.ones(c, len(rows) * (h + pad) + pad, b * (w + pad) + pad)
    for r, row in enumerate(rows):
        for i in range(b):
            y, x = pad + r * (h + pad), pad + i * (w + pad)
            grid[:, y : y + h, x : x + w] = row[i].detach().float().cpu().clamp(0, 1)
    return grid


def log_image(
    trainer: Trainer, key: str, image: Tensor | np.ndarray, caption: str | None = None
) -> str | None:
    """Send an image (3×H×W tensor in [0, 1] or H×W×3 uint8 array) to every logger; PNG file as fallback.

    Returns the PNG path when a file was written.
    """
    array = (
        to_uint8(image.detach().float().cpu().permute(1, 2, 0).numpy())
        if isinstance(image, Tensor)
        else image
    )
    step = trainer.global_step
    handled = False
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[array], step=step, **extra)
            handled = True
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, array, global_step=step, dataformats="HWC")
            handled = True
    if handled:
        return None
    from PIL import Image

    root = trainer.log_dir or trainer.default_root_dir
    folder = os.path.join(root, "images")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key.replace('/', '_')}_step{step:07d}.png")
    Image.fromarray(array).save(path)
    return path


class ImageGridLogger(Callback):
    """Every `every_n_steps` training steps and at each validation end, log a gray | prediction | truth grid.

    The images are the first `num_images` of the first validation batch (kept fixed, so successive grids
    are comparable); before any validation batch is seen, the current training batch is used.
    """

    def __init__(
        self, every_n_steps: int = 200, num_images: int = 8, temperature: float | None = None
    ) -> None:
        super().__init__()
        checks.integer("callbacks.image_grids.every_n_steps", every_n_steps, 1)
        checks.integer("callbacks.image_grids.num_images", num_images, 1)
        self.every_n_steps, self.num_images, self.temperature = every_n_steps, num_images, temperature
        self._batch: dict[str, Tensor] | None = None
        self._last_step = -1
        self._from_val = False

    def _keep(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: batch[k][: self.num_images].detach() for k in ("L", "ab", "rgb") if k in batch}

    def grid(self, pl_module: LightningModule, batch: dict[str, Tensor]) -> Tensor:
        """The three-row grid for `batch`: input lightness as gray, prediction, ground truth."""
        L = batch["L"].to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            ab = pl_module.inference_model(self.temperature)(L)
        pl_module.train(was_training)
        gray = l_ab_to_rgb(L.float(), torch.zeros_like(ab))
        pred = l_ab_to_rgb(L.float(), ab / AB_NORM)
        truth = batch["rgb"] if "rgb" in batch else l_ab_to_rgb(L.float(), batch["ab"].to(L))
        return make_grid([gray, pred, truth.to(pred)])

    def _log(self, trainer: Trainer, pl_module: LightningModule, key: str) -> None:
        if self._batch is None or not trainer.is_global_zero:
            return
        self._last_step = trainer.global_step
        log_image(trainer, key, self.grid(pl_module, self._batch), caption="gray | prediction | truth")

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Log a grid every `every_n_steps` global steps."""
        if self._batch is None and isinstance(batch, dict) and "L" in batch:
            self._batch = self._keep(batch)
        step = trainer.global_step
        if step % self.every_n_steps == 0 and step != self._last_step:
            self._log(trainer, pl_module, "images/grid")

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the first validation batch as the fixed grid batch."""
        if batch_idx == 0 and not trainer.sanity_checking and isinstance(batch, dict) and "L" in batch:
            if not self._from_val:
                self._batch, self._from_val = self._keep(batch), True

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log the grid of the fixed validation batch."""
        if not trainer.sanity_checking:
            self._log(trainer, pl_module, "images/val_grid")


def ab_histogram(ab: Tensor, bins: int = 64, limit: float = 110.0) -> Tensor:
    """2-D histogram (bins×bins counts, a rows, b columns) of ab (Lab units) in [−limit, limit]²."""
    a, b = ab[:, 0].flatten().float(), ab[:, 1].flatten().float()
    ia = ((a + limit) / (2 * limit) * bins).long().clamp(0, bins - 1)
    ib = ((b + limit) / (2 * limit) * bins).long().clamp(0, bins - 1)
    return torch.bincount(ia * bins + ib, minlength=bins * bins).reshape(bins, bins).float().cpu()


def render_histograms(pred: Tensor, true: Tensor, limit: float = 110.0) -> np.ndarray:
    """Side-by-side log-density images of predicted and true ab histograms, as an H×W×3 uint8 array."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=80)
    for ax, hist, title in ((axes[0], pred, "predicted ab"), (axes[1], true, "true ab")):
        density = torch.log10(hist / hist.sum().clamp_min(1) + 1e-6).numpy()
        ax.imshow(density.T, origin="lower", extent=(-limit, limit, -limit, limit), cmap="viridis", vmin=-6)
        ax.set_title(title)
        ax.set_xlabel("a")
        ax.set_ylabel("b")
    fig.tight_layout()
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array


class ABHistogramLogger(Callback):
    """At each validation end, log 2-D histograms of predicted vs true ab over up to `max_batches` batches.

    Uses the `ab` prediction returned by the objectives' validation_step (no extra forward pass).
    """

    def __init__(self, bins: int = 64, max_batches: int = 8) -> None:
        super().__init__()
        self.bins, self.max_batches = bins, max_batches
        self._pred: Tensor | None = None
        self._true: Tensor | None = None

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start empty histograms."""
        self._pred = torch.zeros(self.bins, self.bins)
        self._true = torch.zeros(self.bins, self.bins)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Add the batch's predicted and true ab to the histograms."""
        if batch_idx >= self.max_batches or not isinstance(outputs, dict) or "ab" not in outputs:
            return
        if self._pred is None or self._true is None:
            self.on_validation_epoch_start(trainer, pl_module)
        self._pred += ab_histogram(outputs["ab"], self.bins)
        self._true += ab_histogram(batch["ab"].float() * AB_NORM, self.bins)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Render and log the two histograms side by side."""
        if (
            trainer.sanity_checking
            or not trainer.is_global_zero
            or self._pred is None
            or self._pred.sum() == 0
        ):
            return
        log_image(trainer, "images/ab_histogram", render_histograms(self._pred, self._true))


class KeepTestImages(Callback):
    """Keep the first `num_images` test images (normalised L, predicted RGB, true RGB) on the CPU, for
    reports: evaluate.py's gray | prediction | truth grids come from the module's own test step."""

    def __init__(self, num_images: int = 8) -> None:
        super().__init__()
        self.num_images = int(num_images)
        self.images: dict[str, list[Tensor]] = {"L": [], "pred": [], "truth": []}

    def __len__(self) -> int:
        """How many images are kept so far."""
        return sum(len(x) for x in self.images["L"])

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep images of this batch until `num_images` are kept."""
        take = min(self.num_images - len(self), batch["L"].shape[0])
        if take <= 0 or not isinstance(outputs, dict) or "rgb" not in outputs:
            return
        truth = batch["rgb"] if "rgb" in batch else l_ab_to_rgb(batch["L"].float(), batch["ab"].float())
        self.images["L"].append(batch["L"][:take].float().cpu())
        self.images["pred"].append(outputs["rgb"][:take].float().cpu())
        self.images["truth"].append(truth[:take].float().cpu())

    def stacked(self) -> dict[str, Tensor]:
        """The kept images as B×C×H×W tensors."""
        return {k: torch.cat(v) for k, v in self.images.items()}
