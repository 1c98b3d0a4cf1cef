"""Image grids and ab histograms reach W&B-like loggers, and otherwise land as PNG files in log_dir/images."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from PIL import Image
from support import adam, lab_batches, quiet_trainer
from torch.utils.data import DataLoader

from colorization.callbacks import ABHistogramLogger, ImageGridLogger, ab_histogram, make_grid
from colorization.objectives import RegressionModule

NET = {"_target_": "colorization.nets.BaselineCNN", "width": 0.125}


def batches(n: int = 4, size: int = 16) -> list[dict[str, torch.Tensor]]:
    return lab_batches(n, size, bs=2)


class WandbLogger(LightningWandbLogger):
    """A lightning WandbLogger that records log_image calls instead of starting a W&B run."""

    def __init__(self, save_dir) -> None:  # offline, and no run is started: nothing reaches `experiment`
        super().__init__(save_dir=str(save_dir), offline=True)
        self.images: list[tuple[str, np.ndarray]] = []

    def log_image(self, key, images, step=None, **kwargs) -> None:
        self.images += [(key, img) for img in images]

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def fit(tmp_path, logger) -> pl.Trainer:
    module = RegressionModule(NET, adam(), perceptual_metrics=False)
    data = batches()
    t = quiet_trainer(
        tmp_path,
        max_epochs=1,
        logger=logger,
        callbacks=[ImageGridLogger(every_n_steps=1, num_images=2), ABHistogramLogger(bins=16)],
    )
    t.fit(module, DataLoader(data, batch_size=None), DataLoader(data, batch_size=None))
    return t


def test_png_files_without_an_image_logger(tmp_path) -> None:
    t = fit(tmp_path, CSVLogger(tmp_path))
    files = sorted(p.name for p in (tmp_path.glob("**/images/*.png")))
    assert any(f.startswith("images_grid") for f in files)
    assert any(f.startswith("images_val_grid") for f in files)
    assert any(f.startswith("images_ab_histogram") for f in files)
    grid = np.asarray(Image.open(next(tmp_path.glob("**/images/images_val_grid*.png"))))
    assert grid.shape == (3 * 18 + 2, 2 * 18 + 2, 3)  # 3 rows (gray | prediction | truth) × 2 images
    assert t.log_dir is not None


def test_wandb_logger_receives_images(tmp_path) -> None:
    logger = WandbLogger(tmp_path)
    fit(tmp_path, logger)
    keys = {k for k, _ in logger.images}
    assert {"images/grid", "images/val_grid", "images/ab_histogram"} <= keys
    assert all(img.dtype == np.uint8 and img.ndim == 3 for _, img in logger.images)
    assert not list(tmp_path.glob("**/images/*.png"))


def test_grid_and_histogram_helpers() -> None:
    rows = [torch.zeros(3, 3, 4, 5), torch.ones(3, 3, 4, 5)]
    g = make_grid(rows, pad=1)
    assert g.shape == (3, 2 * 5 + 1, 3 * 6 + 1)
    assert g[:, 1:5, 1:6].max() == 0 and g[:, 6:10, 1:6].min() == 1
    ab = torch.zeros(1, 2, 4, 4)
    ab[:, 0] = 109.0  # a → last row, b = 0 → middle column
    h = ab_histogram(ab, bins=8)
    assert h.sum() == 16 and h[7, 4] == 16
