"""What W&B dashboards compare runs by: best-value summaries, the temperature curve as a table and chart,
and a fixed set of validation images as a table. W&B only: with any other logger (or none) these
callbacks do nothing and cost nothing (no image is loaded, nothing is computed).

- WandbSummaries: each validation metric's run summary is its best value (define_metric: max for PSNR,
  SSIM and AuC, min for the loss, the colourfulness gap, LPIPS and FID), so sweep tables and parallel
  coordinates over λ and T read the best epoch without custom queries. Colourfulness itself has no best
  (more is not better): its summary is the last value.
- TemperatureCurveTable: after each validation epoch of a classification run, one table
  `val/temperature_curve` (a row per T of `eval_temperatures`: T, PSNR, SSIM, colourfulness, gap, AuC)
  and two charts drawn from it (PSNR over T; colourfulness against PSNR).
- ValidationImageTable: `num_images` validation images chosen by the DataModule's seed (so the same in
  every run of a sweep), logged after each validation epoch as the table `val/images` (image, gray,
  truth, prediction), which W&B's table view compares run by run.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from colorization import checks
from colorization.color import AB_NORM, l_ab_to_rgb
from colorization.imaging import to_uint8

log = logging.getLogger(__name__)

__all__ = [
    "CURVE_COLUMNS",
    "CURVE_KEY",
    "IMAGES_KEY",
    "STEP_METRIC",
    "SUMMARIES",
    "TemperatureCurveTable",
    "ValidationImageTable",
    "WandbSummaries",
    "summary_key",
    "wandb_loggers",
]

#: The summary of each validation metric (val/<name>; val/T=<t>/<name> too): its best value.
SUMMARIES = {
    "loss": "min",
    "psnr": "max",
    "ssim": "max",
    "colorfulness": "last",
    "colorfulness_gap": "min",
    "auc": "max",
    "auc_rebalanced": "max",
    "lpips": "min",
    "fid": "min",
}
CURVE_KEY = "val/temperature_curve"
CURVE_COLUMNS = ("T", "psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "auc_rebalanced")
IMAGES_KEY = "val/images"
IMAGE_COLUMNS = ("image", "gray", "truth", "prediction")
#: The x-axis WandbLogger gives every metric.
STEP_METRIC = "trainer/global_step"


def summary_key(metric: str) -> str:
    """The run-summary key W&B shows for a metric with its SUMMARIES aggregate (val/psnr → val/psnr.max)."""
    aggregate = SUMMARIES.get(metric.rsplit("/", 1)[-1], "last")
    return metric if aggregate == "last" else f"{metric}.{aggregate}"


def wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    """The trainer's W&B loggers (none: the callbacks here stay idle)."""
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


class WandbSummaries(Callback):
    """At the start of fitting, define every validation metric's summary as its best value (SUMMARIES)."""

    def definitions(self, pl_module: LightningModule) -> dict[str, str]:
        """{metric key: summary}: train/loss, val/<metric>, and val/T=<t>/<metric> for each swept T."""
        keys = {"train/loss": "min"}
        prefixes = ["val/"] + [f"val/T={t:g}/" for t in getattr(pl_module, "eval_temperatures", ())]
        for prefix in prefixes:
            keys.update({prefix + name: summary for name, summary in SUMMARIES.items()})
        return keys

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Send the definitions to each W&B run (rank zero)."""
        loggers = wandb_loggers(trainer)
        if not loggers or not trainer.is_global_zero:
            return
        definitions = self.definitions(pl_module)
        for logger in loggers:
            for key, summary in definitions.items():
                # W&B reads "." in a name as nesting (val/T=0.38/psnr): escaped, the name is taken whole
                name = key.replace(".", "\\.")
                logger.experiment.define_metric(
                    name, summary=summary, step_metric=STEP_METRIC, step_sync=True
                )


def curve_rows(metrics: dict[str, Any], temperatures: list[float], stage: str = "val") -> list[list[float]]:
    """Rows of the temperature curve (CURVE_COLUMNS) from logged metrics `<stage>/T=<t>/<name>`, by T."""
    rows = []
    for t in sorted(temperatures):
        values = [metrics.get(f"{stage}/T={t:g}/{name}") for name in CURVE_COLUMNS[1:]]
        rows.append([float(t), *(None if v is None else float(v) for v in values)])
    return rows


class TemperatureCurveTable(Callback):
    """After each validation epoch of a classification run: the T curve as a W&B table and two charts."""

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log the table and charts of this epoch's validation metrics (W&B loggers only)."""
        temperatures = list(getattr(pl_module, "eval_temperatures", ()) or ())
        if trainer.sanity_checking or not trainer.is_global_zero or not temperatures:
            return
        loggers = wandb_loggers(trainer)
        if not loggers:
            return
        import wandb

        table = wandb.Table(
            columns=list(CURVE_COLUMNS), data=curve_rows(trainer.callback_metrics, temperatures)
        )
        data = {
            CURVE_KEY: table,
            f"{CURVE_KEY}/psnr": wandb.plot.line(table, "T", "psnr", title="PSNR over the temperature T"),
            f"{CURVE_KEY}/colorfulness_vs_psnr": wandb.plot.scatter(
                table, "psnr", "colorfulness", title="Colourfulness against PSNR over T"
            ),
        }
        for logger in loggers:
            logger.log_metrics(data, step=trainer.global_step)


class ValidationImageTable(Callback):
    """After each validation epoch, a W&B table of `num_images` fixed validation images: gray, truth and
    the prediction, chosen by the DataModule's seed (the same images in every run of a sweep)."""

    def __init__(self, num_images: int = 8) -> None:
        super().__init__()
        self.num_images = checks.integer("callbacks.validation_images.num_images", num_images, 1)
        self.names: list[str] = []
        self.batch: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Choose and load the images (only with a W&B logger, on rank zero, and once)."""
        if self.batch is not None or stage not in ("fit", "validate") or not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        if not wandb_loggers(trainer) or not all(
            hasattr(dm, a) for a in ("dataset", "seed", "to_lab", "splits")
        ):
            return
        dataset = dm.dataset("val")
        if len(dataset) == 0:
            log.info("no validation images: the W&B image table is left out")
            return
        chosen = sorted(
            random.Random(dm.seed).sample(range(len(dataset)), min(self.num_images, len(dataset)))
        )
        rgb = torch.stack([dataset[i]["rgb"] for i in chosen])
        self.batch = dm.to_lab({"rgb": rgb}, stage="val")
        self.names = [str(dataset.paths[i]) for i in chosen]

    def rows(self, pl_module: LightningModule) -> list[list[Any]]:
        """One row per image: its name and three H×W×3 uint8 arrays (gray input, truth, prediction)."""
        assert self.batch is not None
        L = self.batch["L"].to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            ab = pl_module.inference_model()(L).float()
        pl_module.train(was_training)
        gray = l_ab_to_rgb(L.float(), torch.zeros_like(ab))
        pred = l_ab_to_rgb(L.float(), ab / AB_NORM)
        truth = self.batch["rgb"]
        as_arrays = lambda x: [to_uint8(im.permute(1, 2, 0).cpu().numpy()) for im in x]  # noqa: E731
        return [
            list(r) for r in zip(self.names, as_arrays(gray), as_arrays(truth), as_arrays(pred), strict=True)
        ]

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log this epoch's table (W&B loggers only)."""
        if self.batch is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        import wandb

        rows = [[name, *(wandb.Image(a) for a in arrays)] for name, *arrays in self.rows(pl_module)]
        table = wandb.Table(columns=list(IMAGE_COLUMNS), data=rows)
        for logger in wandb_loggers(trainer):
            logger.log_metrics({IMAGES_KEY: table}, step=trainer.global_step)
